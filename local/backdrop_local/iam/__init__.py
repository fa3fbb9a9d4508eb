"""AWS's IAM, as far as the local stack models it: each function's calls are checked
against its own role (enforce.py), each state machine's definition against its role
(state_machines.py), with IAM's evaluation rules (policy.py) and each call's actions and
resources (calls.py)."""

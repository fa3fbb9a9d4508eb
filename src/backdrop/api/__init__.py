"""The HTTPS API: one module per group of routes, errors in one place (errors.py)."""

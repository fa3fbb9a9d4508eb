"""The generation workflow's tasks (statemachine/generation.asl.json decides their order,
waits and retries): what each does, what each takes and answers, and how a failure reads."""

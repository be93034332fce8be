"""Alembic scripts for lpbot's store; run them through ``lpbot.store.migrate``."""

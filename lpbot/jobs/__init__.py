"""Scheduled work: which job calls which step, when (APScheduler)."""

"""From a decision to a confirmed rebalance: plan, dry-run, report, approve, sign, send, reconcile.

Every step is a transition of a persisted state machine (``state``); nothing is signed without a
dry-run report whose hash binds it to the exact transaction, and an approval of that report.
"""

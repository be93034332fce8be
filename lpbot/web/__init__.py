"""The local dashboard: pages over the store and the ledger (``lpbot dashboard``); no logic of
its own (``data`` reads what the CLI reads, ``server`` serves it behind an access token)."""

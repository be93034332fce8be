"""Anvil's development accounts as signers, for the devnet only.

Their keys derive from Anvil's public development mnemonic; they hold nothing outside a local
chain. Real deployments load keys from keystores (``lpbot.signing.local``) or use MPC.
"""

from __future__ import annotations

from eth_account import Account

from lpbot.devnet.anvil import DEV_MNEMONIC
from lpbot.signing.local import LocalKeySigner


def dev_signer(index: int) -> LocalKeySigner:
    """The signer of Anvil development account ``index`` (m/44'/60'/0'/0/index)."""
    Account.enable_unaudited_hdwallet_features()  # type: ignore[no-untyped-call]
    account = Account.from_mnemonic(DEV_MNEMONIC, account_path=f"m/44'/60'/0'/0/{index}")
    return LocalKeySigner(account)

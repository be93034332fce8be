"""Dry-runs on a local Anvil fork of the managed chain, reset to its latest block each time.

A dry-run impersonates the Safe's owners, approves the hash and executes: on the managed chain
itself, a process killed before its revert would leave all that there for good. So every
chain lpbot manages, the devnet included, is dry-run on ``ForkSimulator``: one Anvil forking the
chain's RPC, started on first use and reset to the newest block before each simulation (the
exact transaction against the exact state), killed by the kernel if lpbot dies.
"""

from __future__ import annotations

import logging
from typing import Any

from web3 import Web3

from lpbot.chain.rpc import connect, redact_url
from lpbot.devnet import anvil
from lpbot.errors import RetryLater

log = logging.getLogger(__name__)


class ForkSimulator:
    """A local fork of ``rpc_url`` for dry-runs; started on first use, stopped by ``close``."""

    def __init__(self, rpc_url: str) -> None:
        self._rpc_url = rpc_url
        self._proc: anvil.AnvilProcess | None = None
        self._w3: Web3 | None = None

    @property
    def rpc_url(self) -> str:
        return self._rpc_url

    def follow(self, rpc_url: str) -> None:
        """Fork ``rpc_url`` from the next dry-run on (the chain's node moved): each reset
        names the URL it forks."""
        self._rpc_url = rpc_url

    def fresh(self) -> Web3:
        """A client of the fork, reset to the live chain's latest block."""
        if self._proc is None or self._proc.process.poll() is not None:
            # no log: the URL may hold a key; the fork dies with this process, however it ends
            self._proc = anvil.start(fork_url=self._rpc_url, die_with_parent=True)
            self._w3 = connect(self._proc.url)
            log.info("dry-run fork of %s on %s", redact_url(self._rpc_url), self._proc.url)
        assert self._w3 is not None
        reset: Any = "anvil_reset"
        result = self._w3.provider.make_request(reset, [{"forking": {"jsonRpcUrl": self._rpc_url}}])
        if "error" in result:
            raise RetryLater(f"could not reset the dry-run fork: {result['error']}")
        return self._w3

    def close(self) -> None:
        if self._proc is not None:
            self._proc.stop()
            self._proc = None

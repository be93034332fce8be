"""The revert raised by the exact core where the Solidity code reverts."""

from __future__ import annotations


class UniswapRevert(ValueError):
    """A Solidity ``require`` or ``revert`` in Uniswap V3 failed.

    ``reason`` is the contract's own reason string (``'T'``, ``'SPL'``, ``'LOK'``...), or ``''``
    where the contract reverts without one; ``detail`` says in words which check failed.
    """

    def __init__(self, reason: str, detail: str = "") -> None:
        self.reason = reason
        self.detail = detail
        super().__init__(
            f"{reason or '<no reason>'}: {detail}" if detail else reason or "<no reason>"
        )


def require(condition: bool, reason: str, detail: str = "") -> None:
    """Raise ``UniswapRevert(reason)`` unless ``condition`` holds (Solidity ``require``)."""
    if not condition:
        raise UniswapRevert(reason, detail)

"""lpbot's errors, named after what happens next.

``LpbotError`` is the root. Its branches tell the caller what to do: a person must act
(``NeedsAttention``), try again later (``RetryLater``), this action is refused but the rest goes on
(``Refused``), or state is corrupt and lpbot halts (``Halt``). Third-party errors (web3, ccxt,
Safe) are translated into these once, at the adapter. The exact core's ``UniswapRevert`` stays a
``ValueError`` of its own, since ``lpbot.uniswap`` imports nothing of lpbot.
"""

from __future__ import annotations

from lpbot.uniswap.errors import UniswapRevert

__all__ = [
    "ConfigError",
    "Halt",
    "LpbotError",
    "NeedsAttention",
    "NonceTaken",
    "Refused",
    "RetryLater",
    "UniswapRevert",
]


class LpbotError(Exception):
    """Root of lpbot's own errors."""


class NeedsAttention(LpbotError):
    """A person must act: approve, fix a setting, fund an account."""


class ConfigError(NeedsAttention, ValueError):
    """The configuration or an argument is invalid; the message names the key and the rule."""


class RetryLater(LpbotError):
    """A transient failure (RPC, exchange, rate limit): nothing changed; retry the step later."""


class NonceTaken(RetryLater):
    """Another send (another thread or process) recorded a transaction at this nonce first:
    the transaction signed for it is never broadcast; choose the next nonce and sign again."""


class Refused(LpbotError):
    """This action is refused (guard, policy, limit); nothing was changed and other work goes on."""


class Halt(LpbotError):
    """A bug or corrupt state: stop acting until a person has looked."""

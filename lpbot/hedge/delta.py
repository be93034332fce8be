"""The LP position's delta in its volatile token, from a chain snapshot, for the hedge.

Wraps ``lpbot.analytics.greeks`` (float, analytics) and hands the hedge a ``Decimal`` of whole
volatile tokens. The volatile ("risky") token is the one that is not a USD stablecoin unless named;
its perp is the unwrapped symbol against USDT (WETH -> ``ETH/USDT:USDT``).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Literal

from lpbot.analytics.greeks import Greeks, greeks_at
from lpbot.analytics.prices import price0_per_1, price1_per_0
from lpbot.analytics.value import PositionCurve, price_from_sqrt_x96
from lpbot.chain.reader import PoolSnapshot
from lpbot.errors import ConfigError
from lpbot.hedge.base import to_decimal

__all__ = [
    "STABLECOINS",
    "lp_delta",
    "lp_greeks",
    "perp_symbol",
    "risky_index",
    "risky_price",
]

STABLECOINS = frozenset({"USDC", "USDT", "DAI", "USDC.E", "FRAX", "LUSD"})
_WRAPPED = {"WETH": "ETH", "WBTC": "BTC"}


def risky_index(symbol0: str, symbol1: str, hedge_token: str | None = None) -> Literal[0, 1]:
    """Which of the pool's tokens the hedge offsets: ``hedge_token`` if given, else the one that
    is not a stablecoin."""
    if hedge_token is not None:
        if hedge_token == symbol0:
            return 0
        if hedge_token == symbol1:
            return 1
        raise ConfigError(f"hedge token {hedge_token} is not in the pool {symbol0}/{symbol1}")
    stable0, stable1 = symbol0.upper() in STABLECOINS, symbol1.upper() in STABLECOINS
    if stable0 == stable1:
        raise ConfigError(
            f"pool {symbol0}/{symbol1}: name the token to hedge (exactly one must be volatile)"
        )
    return 1 if stable0 else 0


def check_perp_symbol(symbol: str, token: str, *, key: str = "hedge.symbol") -> None:
    """Refuse a perp whose base asset is not pool token ``token`` (WETH is hedged with an ETH
    perp, WBTC with a BTC one): its short would offset another asset's price, at another size."""
    base = symbol.split("/")[0].upper()
    if base != _WRAPPED.get(token.upper(), token.upper()):
        raise ConfigError(
            f"{key} = {symbol!r} is a {base} perp, but the position's volatile token is "
            f"{token}: set {key} = {perp_symbol(token)!r} (nothing was traded)"
        )


def perp_symbol(token: str, settle: str = "USDT") -> str:
    """The unified linear perp symbol of a pool token: WETH -> ``ETH/USDT:USDT``."""
    base = _WRAPPED.get(token.upper(), token.upper())
    return f"{base}/{settle}:{settle}"


def lp_greeks(
    snapshot: PoolSnapshot, token_id: int, *, decimals0: int, decimals1: int, risky: Literal[0, 1]
) -> Greeks:
    """Greeks of NFT position ``token_id`` (read into ``snapshot``) in the risky token's price."""
    state = snapshot.positions[token_id]
    curve = PositionCurve.from_ticks(
        state.npm.liquidity, state.npm.tick_lower, state.npm.tick_upper, decimals0, decimals1
    )
    p = price_from_sqrt_x96(snapshot.slot0.sqrt_price_x96, decimals0, decimals1)
    if risky == 0:
        return greeks_at(curve, p, quote=1)
    return greeks_at(curve, 1.0 / p, quote=0)


def lp_delta(
    snapshot: PoolSnapshot,
    token_id: int,
    *,
    decimals0: int,
    decimals1: int,
    risky: Literal[0, 1],
    include_fees: bool = False,
) -> Decimal:
    """The position's delta: whole risky tokens held per unit of its price (>= 0). With
    ``include_fees``, plus the uncollected fees in the risky token (``collect`` would pay them:
    they move with its price like the principal), exact from the snapshot's fee growth."""
    greeks = lp_greeks(snapshot, token_id, decimals0=decimals0, decimals1=decimals1, risky=risky)
    delta = to_decimal(greeks.delta)
    if include_fees:
        owed = snapshot.uncollected_fees(token_id)[risky]
        delta += Decimal(owed).scaleb(-(decimals0, decimals1)[risky])
    return delta


def risky_price(
    snapshot: PoolSnapshot, *, decimals0: int, decimals1: int, risky: Literal[0, 1]
) -> Decimal:
    """The pool price of the risky token in the other token (whole tokens), to 8 decimals."""
    sqrt_price = snapshot.slot0.sqrt_price_x96
    if risky == 0:
        price = price1_per_0(sqrt_price, decimals0, decimals1)
    else:
        price = price0_per_1(sqrt_price, decimals0, decimals1)
    return price.quantize(Decimal("1e-8"))

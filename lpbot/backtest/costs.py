"""What acting costs in a backtest: gas per action per chain, hedge fees and funding, slippage.

Gas = units (a constant table per chain and action) x gas price (a constant or a time series, in
gwei) x the native token's USD price. The units are assumptions, not measurements of lpbot's own
transactions; override them per run where it matters:

- Ethereum: typical gas used by the NonfungiblePositionManager and SwapRouter02 calls
  (mint of a new position ~450k, increaseLiquidity ~180k, decreaseLiquidity ~160k, collect
  ~130k, an exactInputSingle swap ~150k); default price 10 gwei.
- Arbitrum One: ArbGas reported for the same calls, which includes the L1 calldata charge and
  so exceeds the L1 execution gas (taken as 2x Ethereum's units); default price 0.02 gwei.
- zkSync Era: gas used on the zkEVM is several times Ethereum's for the same calls (taken as
  4x, pubdata included); default price 0.05 gwei.

A rebalance is decreaseLiquidity + collect + swap (when one is planned) + mint; compounding is
collect + swap (when planned) + increaseLiquidity; opening is swap (when planned) + mint.

The hedge is a simple perpetual-futures model (not ``lpbot.hedge``): a short of the volatile
token sized to ``ratio`` times the LP's holding of it, rebalanced at decision times when it is
off by more than ``band`` (a fraction of the target); each trade pays ``fee_bps`` + ``slippage_bps``
of its notional; funding is paid or received every second at ``rate_per_8h`` (a constant or a
series; positive: longs pay shorts). Float, analytics.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from lpbot.chain.registry import CHAINS

GWEI = 1e-9

ETHEREUM_UNITS: dict[str, int] = {
    "mint": 450_000,
    "increase_liquidity": 180_000,
    "decrease_liquidity": 160_000,
    "collect": 130_000,
    "swap": 150_000,
}
GAS_UNITS: dict[str, dict[str, int]] = {
    "ethereum": dict(ETHEREUM_UNITS),
    "devnet": dict(ETHEREUM_UNITS),
    "arbitrum": {k: 2 * v for k, v in ETHEREUM_UNITS.items()},
    "zksync": {k: 4 * v for k, v in ETHEREUM_UNITS.items()},
}
DEFAULT_GAS_PRICE_GWEI: dict[str, float] = {
    "ethereum": 10.0,
    "devnet": 10.0,
    "arbitrum": 0.02,
    "zksync": 0.05,
}

# seconds between blocks: how long a sent swap waits, for the default slippage (the chain
# registry's block times; the devnet stands for Ethereum)
BLOCK_SECONDS: dict[str, float] = {
    **{c.name: c.block_time_s for c in CHAINS.values()},
    "devnet": CHAINS[1].block_time_s,
}
MIN_SLIPPAGE_BPS = 0.5
# the native token's price when neither the data nor the pool gives it (USD a whole ETH)
TYPICAL_NATIVE_USD = 3_000.0

ACTIONS: dict[str, tuple[str, ...]] = {
    "swap": (),  # a swap alone (with_swap): a benchmark's own rebalancing into its split
    "open": ("mint",),
    "rebalance": ("decrease_liquidity", "collect", "mint"),
    "compound": ("collect", "increase_liquidity"),
    "withdraw": ("decrease_liquidity", "collect"),  # the regime's stressed action
    "reenter": ("mint",),
}


@dataclass(frozen=True)
class StepSeries:
    """A value that holds from each timestamp until the next (the first before it starts)."""

    timestamps: tuple[float, ...]
    values: tuple[float, ...]

    def __post_init__(self) -> None:
        if len(self.timestamps) != len(self.values) or not self.timestamps:
            raise ValueError("a series needs as many timestamps as values, at least one")
        if any(b <= a for a, b in zip(self.timestamps, self.timestamps[1:], strict=False)):
            raise ValueError("series timestamps must increase")

    def at(self, t: float) -> float:
        i = bisect.bisect_right(self.timestamps, t) - 1
        return self.values[max(i, 0)]


@dataclass(frozen=True)
class GasModel:
    """Gas units per action on ``chain`` and its price over time (gwei)."""

    chain: str = "ethereum"
    gas_price_gwei: float | None = None  # None: the chain's default
    gas_price_series: StepSeries | None = None
    units: dict[str, int] = field(default_factory=dict)  # overrides of the chain's table

    def __post_init__(self) -> None:
        if self.chain not in GAS_UNITS:
            raise ValueError(f"unknown chain {self.chain!r}; known: {', '.join(GAS_UNITS)}")

    def units_for(self, action: str, with_swap: bool) -> int:
        table = {**GAS_UNITS[self.chain], **self.units}
        steps = ACTIONS[action] + (("swap",) if with_swap else ())
        return sum(table[s] for s in steps)

    def price_gwei(self, t: float) -> float:
        if self.gas_price_series is not None:
            return self.gas_price_series.at(t)
        if self.gas_price_gwei is not None:
            return self.gas_price_gwei
        return DEFAULT_GAS_PRICE_GWEI[self.chain]

    def cost_usd(self, action: str, with_swap: bool, t: float, native_usd: float) -> float:
        """USD cost of ``action`` at time ``t`` with the native token at ``native_usd``."""
        return self.units_for(action, with_swap) * self.price_gwei(t) * GWEI * native_usd


@dataclass(frozen=True)
class HedgeModel:
    """The perp hedge's parameters (module docstring); ``ratio == 0`` disables it."""

    ratio: float = 0.0
    band: float = 0.1
    fee_bps: float = 5.0
    slippage_bps: float = 2.0
    rate_per_8h: float = 0.0001
    rate_series: StepSeries | None = None

    def __post_init__(self) -> None:
        for name in ("ratio", "band", "fee_bps", "slippage_bps"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f"hedge {name} must be finite and >= 0, got {value}")

    def rate_at(self, t: float) -> float:
        return self.rate_series.at(t) if self.rate_series is not None else self.rate_per_8h


@dataclass
class HedgeBook:
    """A perp position in the volatile token (``size`` < 0: short) and its P&L in USD."""

    model: HedgeModel
    size: float = 0.0
    last_price: float = 0.0
    last_time: float | None = None
    pnl_usd: float = 0.0  # mark-to-market
    funding_usd: float = 0.0  # received (< 0: paid)
    fees_usd: float = 0.0  # trading fees and slippage paid (>= 0)
    trades: int = 0

    def step(self, t: float, price_usd: float, exposure: float) -> None:
        """Mark to ``price_usd``, accrue funding since the last step, then rehedge ``exposure``
        (volatile tokens the LP holds) if the hedge is off its target by more than the band."""
        if self.last_time is not None and self.size:
            self.pnl_usd += self.size * (price_usd - self.last_price)
            dt = t - self.last_time
            # funding is paid on the notional at the previous mark; longs pay a positive rate
            self.funding_usd -= (
                self.size * self.last_price * self.model.rate_at(self.last_time) * dt / 28_800
            )
        self.last_time = t
        self.last_price = price_usd
        if self.model.ratio <= 0:
            return
        target = -self.model.ratio * exposure
        if abs(target - self.size) > self.model.band * max(abs(target), 1e-18):
            traded = abs(target - self.size) * price_usd
            self.fees_usd += traded * (self.model.fee_bps + self.model.slippage_bps) / 10_000
            self.size = target
            self.trades += 1

    def trade_to(self, size: float, price_usd: float) -> None:
        """Trade to ``size`` now at ``price_usd`` (paying fees and slippage), whatever the
        band: the market regime's flatten (0) or re-size (the new delta)."""
        if size == self.size:
            return
        traded = abs(size - self.size) * price_usd
        self.fees_usd += traded * (self.model.fee_bps + self.model.slippage_bps) / 10_000
        self.size = size
        self.trades += 1


def series_from_pairs(pairs: Sequence[tuple[float, float]] | None) -> StepSeries | None:
    if not pairs:
        return None
    rows = sorted(pairs)
    return StepSeries(tuple(t for t, _ in rows), tuple(v for _, v in rows))

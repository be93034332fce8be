"""What the policy decides: frozen values that carry their reasons and the numbers behind them.

USD figures are float (analytics); token amounts are raw ints.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from lpbot.analytics.types import RawAmount
from lpbot.strategy.base import Range
from lpbot.strategy.ev import ExpectedValue
from lpbot.strategy.open import OpenPlan


class Trigger(Enum):
    """Why a rebalance was considered."""

    OUT_OF_RANGE = "out_of_range"
    NEAR_EDGE = "near_edge"
    AGE = "age"
    VOLATILITY_REGIME = "volatility_regime"


@dataclass(frozen=True, slots=True)
class Signals:
    """The position's state as the policy saw it.

    ``edge_distance_pct``: how far the price may move, in percent, before it leaves the range
    (0 when out of range). ``vol_ratio``: short-window over long-window EWMA volatility.
    """

    in_range: bool
    edge_distance_pct: float
    age_seconds: int
    vol_short: float  # per sqrt(second)
    vol_long: float  # per sqrt(second)
    vol_ratio: float
    fees_usd: float


@dataclass(frozen=True, slots=True)
class Costs:
    """What a rebalance costs, in USD; ``total`` is what the expected gain must beat."""

    gas_usd: float
    swap_fee_usd: float
    price_impact_usd: float
    slippage_usd: float

    @property
    def total(self) -> float:
        return self.gas_usd + self.swap_fee_usd + self.price_impact_usd + self.slippage_usd


@dataclass(frozen=True, slots=True)
class Hold:
    """Leave the position as it is. Gain and cost are None when no rebalance was costed."""

    reason: str
    signals: Signals
    triggers: tuple[Trigger, ...] = ()
    expected_gain_usd: float | None = None
    expected_cost_usd: float | None = None
    reasons: tuple[str, ...] = ()
    ev_stay: ExpectedValue | None = None  # the current range left as it is, over the horizon
    ev_move: ExpectedValue | None = None  # the best move the policy priced (not taken)


@dataclass(frozen=True, slots=True)
class Rebalance:
    """Close the position and open ``plan`` (in ``new_range``): the gain beats the cost."""

    new_range: Range
    expected_gain_usd: float
    expected_cost_usd: float
    reason: str
    trigger: Trigger
    triggers: tuple[Trigger, ...]
    plan: OpenPlan
    costs: Costs
    signals: Signals
    reasons: tuple[str, ...] = ()
    ev_stay: ExpectedValue | None = None
    ev_move: ExpectedValue | None = None


@dataclass(frozen=True, slots=True)
class Compound:
    """Collect the fees owed and add them to the position (``plan``, same range)."""

    fees0: RawAmount
    fees1: RawAmount
    fees_usd: float
    gas_usd: float
    reason: str
    plan: OpenPlan | None
    signals: Signals
    reasons: tuple[str, ...] = ()
    swap_cost_usd: float = 0.0  # the swap's fee and price impact, at the marks


Decision = Hold | Rebalance | Compound

"""Range strategies, position opening plans and the rebalance policy. Pure: snapshot -> decision."""

from lpbot.strategy.base import Range, RangeStrategy, max_usable_tick, min_usable_tick
from lpbot.strategy.decision import Compound, Costs, Decision, Hold, Rebalance, Signals, Trigger
from lpbot.strategy.fixed import FixedWidth
from lpbot.strategy.full_range import FullRange
from lpbot.strategy.open import OpenPlan, SwapPlan, plan_open
from lpbot.strategy.rebalance import MarketInputs, RebalancePolicy
from lpbot.strategy.skewed import SkewedBand
from lpbot.strategy.vol_band import VolatilityBand

__all__ = [
    "Compound",
    "Costs",
    "Decision",
    "FixedWidth",
    "FullRange",
    "Hold",
    "MarketInputs",
    "OpenPlan",
    "Range",
    "RangeStrategy",
    "Rebalance",
    "RebalancePolicy",
    "Signals",
    "SkewedBand",
    "SwapPlan",
    "Trigger",
    "VolatilityBand",
    "max_usable_tick",
    "min_usable_tick",
    "plan_open",
]

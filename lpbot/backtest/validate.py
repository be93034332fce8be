"""Engine (b) checked against engine (a): the same period, the same configuration.

The bars are aggregated from the very events engine (a) replays (``bars_from_events``), so the
comparison isolates the bars engine's approximations: fees from bar volume and liquidity share
(instead of each swap against the exact pool), a constant-liquidity pool for plans, and its
own liquidity adding no volume. Tolerances, for a position small beside the pool (below 1% of its
in-range liquidity) whose decisions coincide (same number of rebalances): fees within
``FEE_TOLERANCE`` (relative) and the final value within ``VALUE_TOLERANCE`` of the capital. A
large position earns more in engine (a), where prices follow history and its liquidity adds the
volume needed to move them (fees scale with ``(L_pool + L) / L_pool``).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

from lpbot.backtest.bars import Bars, bars_from_events
from lpbot.backtest.config import BacktestConfig
from lpbot.backtest.dataset import Dataset
from lpbot.backtest.exact import realised_sigma, run_exact
from lpbot.backtest.ledger import BacktestResult
from lpbot.backtest.vector import run_bars

FEE_TOLERANCE = 0.10
VALUE_TOLERANCE = 0.0025
SMALL_SHARE = 0.01  # the tolerances hold for a position below this share of in-range liquidity


@dataclass(frozen=True)
class EngineComparison:
    fees_exact_usd: float
    fees_bars_usd: float
    fees_diff: float  # relative: bars / exact - 1
    value_exact_usd: float
    value_bars_usd: float
    value_diff: float  # (bars - exact) / capital
    rebalances_exact: int
    rebalances_bars: int
    time_in_range_exact: float
    time_in_range_bars: float
    position_share: float  # the bot's largest share of the pool's in-range liquidity

    @property
    def within_tolerance(self) -> bool:
        return abs(self.fees_diff) <= FEE_TOLERANCE and abs(self.value_diff) <= VALUE_TOLERANCE

    @property
    def why(self) -> str:
        """What explains a disagreement (empty when within tolerance)."""
        if self.within_tolerance:
            return ""
        reasons = []
        if self.position_share > SMALL_SHARE:
            reasons.append(
                f"the position reaches {self.position_share:.1%} of the pool's in-range "
                "liquidity: the exact replay follows history's prices, so the bot's liquidity "
                "adds the volume needed to move them and earns more, while the bars keep "
                f"history's volume (the tolerances hold below {SMALL_SHARE:.0%}; try a smaller "
                "--capital-usd, or check the quote token's USD price)"
            )
        if self.rebalances_exact != self.rebalances_bars:
            reasons.append(
                f"the engines decided differently ({self.rebalances_exact} vs "
                f"{self.rebalances_bars} rebalances): at a price jump the bars see the bar's "
                "close and the replay sees each swap"
            )
        if not reasons:
            reasons.append(
                "no known cause: the same decisions by a small position; please report it "
                "with the data"
            )
        return "; ".join(reasons)

    def as_dict(self) -> dict[str, float | int | bool | str | None]:
        fields = asdict(self)
        if not math.isfinite(self.fees_diff):  # fees in one engine only: no ratio (JSON null)
            fields["fees_diff"] = None
        return {
            **fields,
            "fee_tolerance": FEE_TOLERANCE,
            "value_tolerance": VALUE_TOLERANCE,
            "within_tolerance": self.within_tolerance,
            "why": self.why,
        }


def position_share(result: BacktestResult, bars: Bars) -> float:
    """The largest share of the pool's in-range liquidity the bot's position reached."""
    share = 0.0
    liquidity = 0
    for a in result.actions:
        liquidity = a.liquidity if a.kind != "compound" else liquidity + a.liquidity
        i = min(int(np.searchsorted(bars.ts, a.timestamp, side="right")), len(bars) - 1)
        pool = float(bars.liquidity[i])
        share = max(share, liquidity / (pool + liquidity) if pool + liquidity > 0 else 0.0)
    return share


def compare(exact: BacktestResult, bars: BacktestResult, share: float = 0.0) -> EngineComparison:
    fa, fb = exact.breakdown.fees, bars.breakdown.fees
    return EngineComparison(
        fees_exact_usd=fa,
        fees_bars_usd=fb,
        fees_diff=fb / fa - 1.0 if fa else (0.0 if fb == 0 else math.inf),  # none vs some
        value_exact_usd=exact.breakdown.final_usd,
        value_bars_usd=bars.breakdown.final_usd,
        value_diff=(bars.breakdown.final_usd - exact.breakdown.final_usd)
        / exact.breakdown.initial_usd,
        rebalances_exact=exact.metrics.rebalances,
        rebalances_bars=bars.metrics.rebalances,
        time_in_range_exact=exact.metrics.time_in_range,
        time_in_range_bars=bars.metrics.time_in_range,
        position_share=share,
    )


def compare_engines(
    dataset: Dataset, config: BacktestConfig, *, bar_interval: int = 60
) -> tuple[BacktestResult, BacktestResult, EngineComparison]:
    """Run both engines from the first bar of ``dataset``'s swaps; return both and the diff."""
    bars = bars_from_events(dataset, bar_interval)
    if config.start_timestamp is None:
        config = config.model_copy(update={"start_timestamp": int(bars.ts[0])})
    meta = dataset.meta
    config = config.resolve(  # once, so that both engines pay the same costs
        symbol0=meta.symbol0, symbol1=meta.symbol1, sigma_per_sqrt_second=realised_sigma(dataset)
    )
    exact = run_exact(dataset, config)
    approx = run_bars(bars, config)
    return exact, approx, compare(exact, approx, position_share(exact, bars))

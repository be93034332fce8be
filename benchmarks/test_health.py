"""Speed of pool health: depth within ±1% and ±2%, the spread's two exact quotes, from the
snapshot the monitor reads (``PoolSnapshot.to_pool`` included), over 200 initialized ticks.

Target (2-core machine): well under 5 ms per evaluation, which is the budget of one risk
regime evaluation including pool depth (issue 18). Run with ``make bench``.
"""

from __future__ import annotations

from decimal import Decimal

import pytest

from lpbot.chain.reader import PoolSnapshot
from lpbot.execution.health import health_at
from lpbot.risk.health import HealthRule
from lpbot.uniswap.pool import Pool
from lpbot.uniswap.tick_math import get_sqrt_ratio_at_tick

ETH_TICK = 196_256  # about 3000 USDC per WETH (USDC token0, 6 decimals; WETH 18)


class _Marks:
    def usd(self, symbol: str) -> Decimal:
        return {"USDC": Decimal(1), "WETH": Decimal(3000)}[symbol]


def _snapshot(fee: int, spacing: int, step: int) -> PoolSnapshot:
    """A pool with 100 positions whose 200 distinct ends are initialized ticks, ``step``
    spacings apart on each side of the price."""
    centre = ETH_TICK // spacing * spacing
    pool = Pool(fee, spacing, get_sqrt_ratio_at_tick(ETH_TICK))
    for i in range(100):
        off = (i + 1) * step * spacing
        pool.mint("lp", centre - off, centre + off, 10**16 + i * 10**15)
    assert len(pool.ticks) == 200
    return PoolSnapshot(
        address="0x" + "11" * 20,
        block_number=1,
        block_timestamp=1,
        fee=fee,
        tick_spacing=spacing,
        slot0=pool.slot0,
        liquidity=pool.liquidity,
        fee_growth_global0_x128=0,
        fee_growth_global1_x128=0,
        ticks=pool.ticks,
        word_range=(-3500, 3500),
        twap_seconds=(0,),
        tick_cumulatives=None,
    )


@pytest.mark.parametrize(
    ("fee", "spacing", "step"),
    [(100, 1, 2), (500, 10, 2)],
    ids=["200-ticks-within-2pct", "200-ticks-within-40pct"],
)
def test_health_over_200_initialized_ticks(
    benchmark: pytest.FixtureRequest, fee: int, spacing: int, step: int
) -> None:
    snap = _snapshot(fee, spacing, step)
    rule = HealthRule()

    def run() -> bool:
        health = health_at(
            snap,
            _Marks(),
            symbols=("USDC", "WETH"),
            decimals=(6, 18),
            rule=rule,  # type: ignore[arg-type]
        )
        return health.healthy

    benchmark.extra_info["initialized_ticks"] = len(snap.ticks)
    benchmark(run)


def test_regime_and_health_one_tick(benchmark: pytest.FixtureRequest) -> None:
    """The issue's budget: one regime evaluation including pool depth over 200 initialized
    ticks (all within ±2%, the worst case), under 5 ms."""
    from itertools import count

    from lpbot.risk.regime import RegimeConfig, RegimeInputs, RegimeTracker

    inputs = RegimeInputs(
        vol_5m=3.1e-4, vol_30m=2.2e-4, vol_baseline=1.0e-4, var_1m_pct=0.8, var_5m_pct=2.1,
        var_30m_pct=4.0, twap_deviation_bps=-85.0, volume_usd=4.0e6,
        volume_baseline_usd=1.1e6, funding_rate_8h=-0.0007, open_interest_change_pct=-6.5,
        liquidations_usd=3.0e6, liquidations_baseline_usd=2.0e5,
        hedge_liquidation_distance_pct=24.0,
    )  # fmt: skip
    tracker = RegimeTracker(RegimeConfig())
    clock = count(start=1_700_000_000, step=60)
    snap = _snapshot(100, 1, 2)
    rule = HealthRule()

    def run() -> bool:
        health = health_at(
            snap,
            _Marks(),
            symbols=("USDC", "WETH"),
            decimals=(6, 18),
            rule=rule,  # type: ignore[arg-type]
        )
        tracker.update(inputs, next(clock))
        return health.healthy

    benchmark(run)

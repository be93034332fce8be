"""Price history from the pool's oracle: point prices at each sample time, or labelled means.

The same reader (``read_oracle_history``) runs against the exact core's oracle driven along a
per-second path of known volatility, and against the real pool on the devnet after its market.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from web3 import Web3

from lpbot.analytics.greeks import risky_curve
from lpbot.analytics.types import PriceHistory
from lpbot.analytics.value import PositionCurve
from lpbot.analytics.var import value_at_risk
from lpbot.analytics.volatility import annualised, ewma_volatility, per_sqrt_second
from lpbot.chain.history import fetch_oracle_history, read_oracle_history
from lpbot.devnet.deploy import contract
from lpbot.devnet.market import run_market
from lpbot.errors import RetryLater
from lpbot.strategy.vol_band import VolatilityBand
from lpbot.testing.oracle import PathOracle, ticks_of_prices
from tests.analytics.helpers import YEAR
from tests.conftest import Devnet

LONG = 1e12  # an EWMA half-life that weighs every return alike


def per_second_path(sigma_annual: float, seconds: int, seed: int) -> PathOracle:
    """A pool whose price follows a geometric Brownian path, one block every second."""
    rng = np.random.default_rng(seed)
    s = sigma_annual / math.sqrt(YEAR)
    log_p = math.log(3000e-12) + np.cumsum(rng.normal(-0.5 * s * s, s, seconds))
    return PathOracle(ticks_of_prices(np.exp(log_p)))


PATH = per_second_path(0.8, 65_535, seed=3)  # 18 hours, the most one oracle can hold


def test_point_prices_of_a_per_second_path_give_its_volatility() -> None:
    points = read_oracle_history(PATH, window_seconds=10**6, step_seconds=10)
    assert points.averaging_seconds == 0 and points.basis == "point prices"
    assert len(points) == 6_554  # every 10 s over the 65,534 s the oracle covers
    assert annualised(ewma_volatility(points, LONG)) == pytest.approx(0.8, rel=0.03)


def test_means_are_labelled_and_corrected_for_averaging() -> None:
    means = read_oracle_history(PATH, window_seconds=10**6, step_seconds=10, sampling="mean")
    assert means.averaging_seconds == 10 and "mean" in means.basis
    assert annualised(ewma_volatility(means, LONG)) == pytest.approx(0.8, rel=0.03)
    # read as if they were prices, adjacent means carry two thirds of the variance
    as_points = PriceHistory(means.timestamps, means.prices)
    ratio = ewma_volatility(as_points, LONG) / ewma_volatility(means, LONG)
    assert ratio == pytest.approx(math.sqrt(2 / 3), rel=1e-9)
    assert annualised(ewma_volatility(as_points, LONG)) < 0.8 * 0.85


def test_point_ticks_are_the_ticks_in_force_at_each_sample_time() -> None:
    ticks = [100, 100, 105, 90, 90, 90, 120, 80, 80, 77, 60]  # one a second from t0
    oracle = PathOracle(ticks, start=1_000)
    points = read_oracle_history(oracle, window_seconds=9, step_seconds=3)
    # samples at 1001, 1004, 1007, 1010 (the block's own time, slot0's tick)
    assert list(points.timestamps) == [1001.0, 1004.0, 1007.0, 1010.0]
    assert [round(math.log(p) / math.log(1.0001)) for p in points.prices] == [100, 90, 80, 60]
    means = read_oracle_history(oracle, window_seconds=9, step_seconds=3, sampling="mean")
    assert list(means.timestamps) == [1004.0, 1007.0, 1010.0]
    mean_ticks = [math.log(p) / math.log(1.0001) for p in means.prices]
    assert mean_ticks == pytest.approx([(100 + 105 + 90) / 3, 100, (80 + 80 + 77) / 3])


@settings(max_examples=150, deadline=None)
@given(
    ticks=st.lists(st.integers(-887_271, 887_271), min_size=3, max_size=80),
    step=st.integers(1, 9),
    cardinality=st.integers(2, 100),
)
def test_read_oracle_history_returns_the_ticks_in_force_and_the_step_means(
    ticks: list[int], step: int, cardinality: int
) -> None:
    """Against the exact core's Oracle: point ticks are the path's ticks at the sample times and
    means are the step's average tick, whatever the path, step and ring size."""
    oracle = PathOracle(ticks, start=5_000, cardinality=cardinality)
    now, covered = 5_000 + len(ticks) - 1, min(len(ticks), cardinality) - 1
    window = covered // step * step
    if window < 2 * step:
        with pytest.raises(RetryLater):
            read_oracle_history(oracle, window_seconds=10**6, step_seconds=step)
        return
    points = read_oracle_history(oracle, window_seconds=10**6, step_seconds=step)
    times = list(range(now - window, now + 1, step))
    assert list(points.timestamps) == [float(t) for t in times]
    got = [math.log(p) / math.log(1.0001) for p in points.prices]
    assert got == pytest.approx([ticks[t - 5_000] for t in times], abs=1e-6)
    means = read_oracle_history(oracle, window_seconds=10**6, step_seconds=step, sampling="mean")
    expected = [sum(ticks[t - 5_000 - step : t - 5_000]) / step for t in times[1:]]
    got = [math.log(p) / math.log(1.0001) for p in means.prices]
    assert got == pytest.approx(expected, abs=1e-6)


def test_window_is_what_the_oracle_covers() -> None:
    oracle = PathOracle([10 * i for i in range(50)], cardinality=20)  # covers the last 19 s
    history = read_oracle_history(oracle, window_seconds=3600, step_seconds=5)
    assert history.timestamps[-1] - history.timestamps[0] == 15
    with pytest.raises(RetryLater, match="fewer than two 10 s steps"):
        read_oracle_history(oracle, window_seconds=3600, step_seconds=10)
    with pytest.raises(ValueError, match="window >= step"):
        read_oracle_history(oracle, window_seconds=5, step_seconds=10)
    with pytest.raises(ValueError, match="sampling"):
        read_oracle_history(oracle, window_seconds=60, step_seconds=5, sampling="twap")  # type: ignore[arg-type]


@pytest.mark.devnet
def test_devnet_market_volatility_and_var(chain: Devnet) -> None:
    """After ``devnet market --vol 0.8`` (one-minute steps), lpbot's volatility is within 10% of
    0.8 and its VaR within 10% of the Monte Carlo at 0.8; the historical 30-minute VaR of three
    hours is "not enough history", not a figure from overlapping windows."""
    w3, m = chain.w3, chain.manifest
    info = m.pool("USDC/WETH-500")
    steps = 180
    # a step's uninformed trades share the arbitrage's block time, so the oracle never sees them:
    # left out here for speed (the CLI's default of 4 gives the same oracle)
    run_market(w3, m, info, steps=steps, vol=0.8, seed=1, step_seconds=60, trades_per_step=0)
    chain.increase_time(25)  # the bot reads between the market's steps, not on them
    # the market's three hours (earlier tests may have left older, flat observations)
    window = steps * 60
    history = fetch_oracle_history(w3, info.address, window_seconds=window, step_seconds=60)
    assert len(history) == steps + 1

    # every point price is the pool's tick at that time, as slot0 said in the last block before it
    pool = contract(w3, "UniswapV3Pool", info.address)
    head = w3.eth.block_number
    # each market step mines its trades, the arbitrage of both fee tiers and the feed keeper
    block_times = {n: w3.eth.get_block(n)["timestamp"] for n in range(head - 200, head + 1)}
    for t, p in list(zip(history.timestamps, history.prices, strict=True))[-20:]:
        block = max(n for n, ts in block_times.items() if ts <= t)
        assert (
            round(math.log(p) / math.log(1.0001))
            == pool.functions.slot0().call(block_identifier=block)[1]
        )

    vol = annualised(ewma_volatility(history, 3600.0))
    assert vol == pytest.approx(0.8, rel=0.10)

    # WETH is the risky token, USDC (token0) the quote: a +-10% range around the price
    price = 1e12 / float(history.prices[-1])  # USDC per WETH, whole tokens
    curve = PositionCurve(2_000.0, 1 / (price * 1.1), 1 / (price * 0.9))  # WETH per USDC
    estimates = value_at_risk(curve, price, history, quote=0)
    truth = value_at_risk(
        curve, price, history, quote=0, sigma_per_sqrt_second=per_sqrt_second(0.8)
    )
    rng = np.random.default_rng(7)
    for e, t in zip(estimates, truth, strict=True):
        sd = per_sqrt_second(0.8) * math.sqrt(e.horizon_seconds)
        moved = price * np.exp(rng.normal(-0.5 * sd * sd, sd, 400_000))
        risky = risky_curve(curve, 0)
        pnl = risky.values(moved) - risky.value(price)
        monte_carlo = -float(np.quantile(pnl, 0.01))
        assert t.parametric_usd == pytest.approx(monte_carlo, rel=0.02)
        assert e.parametric_usd == pytest.approx(monte_carlo, rel=0.10)
    assert estimates[-1].historical_usd is None and estimates[-1].historical_scenarios == 6

    # the volatility band widens by what averaging hid
    means = fetch_oracle_history(
        w3, info.address, window_seconds=window, step_seconds=60, sampling="mean"
    )
    uncorrected = PriceHistory(means.timestamps, means.prices)
    band = VolatilityBand(halflife_seconds=3600.0)
    assert band.half_width_log(history) > band.half_width_log(uncorrected)


def test_dead_rpc_and_a_pool_without_an_oracle_are_retried_later() -> None:
    provider = Web3.HTTPProvider("http://127.0.0.1:9")  # nothing listens there
    provider.middlewares = ()  # no retries with back-off: the first refusal is the answer
    dead = Web3(provider)
    with pytest.raises(RetryLater, match="cannot read block"):
        fetch_oracle_history(dead, "0x" + "11" * 20, window_seconds=600, step_seconds=60)
    fresh = PathOracle([5])  # initialized this second: no history yet
    with pytest.raises(RetryLater, match="covers 0 s"):
        read_oracle_history(fresh, window_seconds=600, step_seconds=60)


@pytest.mark.devnet
def test_an_address_that_is_not_a_pool_is_retried_later(devnet: Devnet) -> None:
    token = devnet.manifest.token("USDC").address
    with pytest.raises(RetryLater, match="slot0 failed"):
        fetch_oracle_history(devnet.w3, token, window_seconds=600, step_seconds=60)

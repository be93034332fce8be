"""The expected-value model: LVR as Milionis et al. state it, and the invariants a width choice
relies on (properties over random ranges, volatilities and fee rates)."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lpbot.analytics.volatility import expected_time_in_range
from lpbot.strategy.ev import (
    expected_exit_seconds,
    expected_value,
    fee_to_lvr_ratio,
    lvr_rate,
    time_in_range,
    value_per_liquidity,
)

DAY = 86_400.0
SIGMA_80 = 0.8 / math.sqrt(365 * DAY)  # 80% a year, per sqrt(second)
SQRT_P = math.sqrt(1.0001**200_000)  # USDC/WETH raw, ~$2,060 an ETH
ETH_PER_RAW1 = 2_060.0 / 1e18


def _ev(width: float, capital: float = 10_000.0, **kw: float | bool) -> object:
    """EV of ``capital`` USD centred in a range of log half-width ``width``."""
    lo, hi = SQRT_P * math.exp(-width / 2), SQRT_P * math.exp(width / 2)
    liquidity = capital / ETH_PER_RAW1 / value_per_liquidity(SQRT_P, lo, hi)
    args: dict[str, float | bool] = dict(
        sqrt_price=SQRT_P, sqrt_lower=lo, sqrt_upper=hi, liquidity=liquidity, sigma=SIGMA_80,
        horizon_seconds=DAY, fee_flow_usd=0.5, others_liquidity=2e18, token1_usd=ETH_PER_RAW1,
    )  # fmt: skip
    args.update(kw)
    return expected_value(**args)  # type: ignore[arg-type]


def test_full_range_lvr_is_sigma_squared_over_eight_of_the_value() -> None:
    # Milionis, Moallemi, Roughgarden, Zhang (2022), Example 2: ell = sigma^2 / 8 * V for x*y=k
    liquidity = 3.3e14
    value = 2 * liquidity * SQRT_P
    assert lvr_rate(liquidity, SQRT_P, SIGMA_80) == pytest.approx(SIGMA_80**2 / 8 * value)
    # a full-range V3 position (ticks -887270..887270) is worth 2 L sqrt P up to its edges
    lo, hi = math.sqrt(1.0001**-887270), math.sqrt(1.0001**887270)
    assert liquidity * value_per_liquidity(SQRT_P, lo, hi) == pytest.approx(value, rel=1e-9)
    ev = _ev(2 * 887270 * math.log(1.0001), managed=True)
    assert ev.lvr_apr == pytest.approx(0.8**2 / 8, rel=1e-6)  # 8% a year at 80% volatility
    assert ev.recentres < 1e-6


def test_time_in_range_closed_form_matches_the_integral() -> None:
    cases = ((0.05, 0.05, 1e-4, DAY), (0.01, 0.03, 2e-4, DAY), (-0.01, 0.05, 1e-4, DAY),
             (0.001, 0.001, 1e-4, DAY))  # fmt: skip
    for down, up, sigma, horizon in cases:
        exact = time_in_range(down, up, sigma, horizon)
        assert exact == pytest.approx(
            expected_time_in_range(down, up, sigma, horizon, steps=20_000), abs=1e-8
        )
    assert time_in_range(0.0, 1.0, 1e-4, DAY) == pytest.approx(0.5, abs=1e-12)


def test_managed_recentres_and_realised_loss() -> None:
    w = 0.05  # +-5% in log-price
    ev = _ev(w, managed=True)
    stay = expected_exit_seconds(w, w, SIGMA_80)
    assert ev.recentres == pytest.approx(DAY / stay)
    # the loss each re-centre realises is the expected LVR of one stay in the range
    assert ev.realised_loss_usd * ev.recentres == pytest.approx(ev.lvr_usd, rel=1e-3)
    assert stay > 0 and "re-centres" in ev.describe()


def test_below_one_fee_to_lvr_every_width_loses_and_the_widest_least() -> None:
    lvr_per_l = lvr_rate(1.0, SQRT_P, SIGMA_80)
    for ratio, sign in ((0.5, -1), (2.0, 1)):
        fee_per_l_usd = ratio * lvr_per_l * ETH_PER_RAW1
        flow = fee_per_l_usd * 2e18
        assert fee_to_lvr_ratio(ratio * lvr_per_l, SQRT_P, SIGMA_80) == pytest.approx(ratio)
        nets = [_ev(w, fee_flow_usd=flow, managed=True) for w in (0.02, 0.2, 2.0, 20.0)]
        gross = [e.fees_usd - e.lvr_usd for e in nets]
        assert all(math.copysign(1, g) == sign for g in gross)
        if sign < 0:
            assert gross == sorted(gross)  # wider loses less


widths = st.floats(0.002, 5.0)
sigmas = st.floats(1e-5, 5e-4)


@settings(max_examples=200, deadline=None)
@given(d=st.floats(-1.0, 1.0), u=st.floats(-1.0, 1.0), extra=st.floats(0.0, 1.0), s=sigmas,
       h=st.floats(60.0, 30 * DAY))  # fmt: skip
def test_time_in_range_is_a_fraction_and_grows_with_width(
    d: float, u: float, extra: float, s: float, h: float
) -> None:
    t = time_in_range(d, u, s, h)
    assert 0.0 <= t <= 1.0
    assert time_in_range(d + extra, u, s, h) >= t - 1e-12
    assert time_in_range(d, u + extra, s, h) >= t - 1e-12


@settings(max_examples=200, deadline=None)
@given(w=widths, f1=st.floats(0.0, 10.0), f2=st.floats(0.0, 10.0), managed=st.booleans())
def test_ev_is_monotone_in_the_fee_rate(w: float, f1: float, f2: float, managed: bool) -> None:
    lo, hi = sorted((f1, f2))
    a, b = _ev(w, fee_flow_usd=lo, managed=managed), _ev(w, fee_flow_usd=hi, managed=managed)
    assert b.net_usd >= a.net_usd  # type: ignore[attr-defined]


@settings(max_examples=200, deadline=None)
@given(w1=widths, w2=widths, s=sigmas, k=st.floats(1.0, 4.0))
def test_lvr_grows_with_concentration_and_sigma_squared(
    w1: float, w2: float, s: float, k: float
) -> None:
    narrow, wide = sorted((w1, w2))
    a = _ev(narrow, sigma=s, managed=True)
    b = _ev(wide, sigma=s, managed=True)
    assert a.lvr_usd >= b.lvr_usd * (1 - 1e-9)  # type: ignore[attr-defined]
    c = _ev(narrow, sigma=s * k, managed=True)
    assert c.lvr_usd == pytest.approx(a.lvr_usd * k * k, rel=1e-9)  # type: ignore[attr-defined]

"""The expected-value model on every input a live read can give it: finite terms, never an
exception from float underflow, and LVR as the value's curvature (Milionis et al.)."""

from __future__ import annotations

import math

from hypothesis import given, settings
from hypothesis import strategies as st

from lpbot.strategy.ev import expected_value, fee_to_lvr_ratio, lvr_rate, value_per_liquidity

finite_nonneg = st.floats(min_value=0.0, max_value=1e6, allow_nan=False)


@settings(max_examples=300, deadline=None)
@given(
    sigma=st.one_of(st.just(0.0), st.floats(min_value=1e-300, max_value=1e-2)),
    half=st.floats(min_value=1e-6, max_value=5.0),
    reaction=finite_nonneg,
    fee_flow=finite_nonneg,
    managed=st.booleans(),
)
def test_every_term_is_finite_for_any_volatility_a_history_gives(
    sigma: float, half: float, reaction: float, fee_flow: float, managed: bool
) -> None:
    """Before: a volatility whose square underflows (a flat history but for a last-bit change)
    raised ZeroDivisionError out of a quote or a decision."""
    ev = expected_value(
        sqrt_price=1.0, sqrt_lower=math.exp(-half / 2), sqrt_upper=math.exp(half / 2),
        liquidity=1e6, sigma=sigma, horizon_seconds=86_400.0, fee_flow_usd=fee_flow,
        others_liquidity=1e9, token1_usd=1.0, managed=managed, reaction_seconds=reaction,
    )  # fmt: skip
    for term in (ev.net_usd, ev.fees_usd, ev.lvr_usd, ev.recentres, ev.time_in_range):
        assert math.isfinite(term)
    assert 0.0 <= ev.time_in_range <= 1.0


@settings(max_examples=100, deadline=None)
@given(
    s=st.floats(min_value=0.5, max_value=2.0),
    width=st.floats(min_value=0.05, max_value=2.0),
    where=st.floats(min_value=0.1, max_value=0.9),
    sigma=st.floats(min_value=1e-5, max_value=1e-2),
)
def test_lvr_is_half_sigma_squared_p_squared_times_the_holdings_slope(
    s: float, width: float, where: float, sigma: float
) -> None:
    """ell = sigma**2 P**2 / 2 * |x'(P)| with x(P) the range's token0, by central differences
    of the value V(P) = P x(P) + y(P): V'(P) = x(P), so ell = -sigma**2 P**2 / 2 * V''(P)."""
    lo = s * math.exp(-width * where)
    hi = s * math.exp(width * (1 - where))
    p = s * s

    def value(price: float) -> float:
        return value_per_liquidity(math.sqrt(price), lo, hi)

    h = p * 1e-4
    second = (value(p + h) - 2 * value(p) + value(p - h)) / (h * h)
    expected = -(sigma**2) * p * p / 2 * second
    assert math.isclose(lvr_rate(1.0, s, sigma), expected, rel_tol=1e-3)


def test_no_fees_and_no_volatility_is_no_ratio_of_infinity() -> None:
    """Before: a pool with no swaps in the window and a flat price read as fee/LVR "inf" next to
    "do not LP here"."""
    assert fee_to_lvr_ratio(0.0, 1.0, 0.0) == 0.0
    assert fee_to_lvr_ratio(1e-9, 1.0, 0.0) == math.inf

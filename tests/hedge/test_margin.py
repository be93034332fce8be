"""Binance USD-M isolated margin: liquidation price, maintenance margin, funding sign."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import assume, given
from hypothesis import strategies as st

from lpbot.hedge import margin

D = Decimal


def test_short_liquidation_price_hand_computed() -> None:
    # short 2 BTC at 60,000 with 40,000 USDT isolated (3x), first bracket MMR 0.4 %, cum 0:
    # LP = (WB + cum - side*Q*EP) / (Q*MMR - side*Q) = (40000 + 120000) / (0.008 + 2) = 79681.27
    lp = margin.liquidation_price(D(-2), D(60_000), D(40_000), D("0.004"), D(0))
    assert lp is not None
    assert lp.quantize(D("0.01")) == D("79681.27")


def test_long_liquidation_price_hand_computed() -> None:
    # long 1 BTC at 60,000 with 6,000 USDT (10x): (6000 - 60000) / (0.004 - 1) = 54216.87
    lp = margin.liquidation_price(D(1), D(60_000), D(6_000), D("0.004"), D(0))
    assert lp is not None
    assert lp.quantize(D("0.01")) == D("54216.87")


def test_maintenance_amount_enters_the_numerator() -> None:
    # a second bracket (MMR 0.5 %, cum 50): (40000 + 50 + 120000) / (2 * 1.005) = 79626.87
    lp = margin.liquidation_price(D(-2), D(60_000), D(40_000), D("0.005"), D(50))
    assert lp is not None
    assert lp.quantize(D("0.01")) == D("79626.87")


def test_overcollateralised_long_and_flat_have_no_liquidation_price() -> None:
    assert margin.liquidation_price(D(1), D(60_000), D(70_000), D("0.004"), D(0)) is None
    assert margin.liquidation_price(D(0), D(0), D(0), D("0.004"), D(0)) is None


@given(
    size=st.decimals("0.001", "500", places=3),
    short=st.booleans(),
    entry=st.decimals("100", "200000", places=1),
    leverage=st.integers(1, 50),
    mmr=st.sampled_from([D("0.004"), D("0.005"), D("0.01"), D("0.025")]),
)
def test_at_the_liquidation_price_margin_balance_equals_maintenance(
    size: Decimal, short: bool, entry: Decimal, leverage: int, mmr: Decimal
) -> None:
    assume(D(1) / leverage > mmr)  # Binance caps leverage below 1 / MMR of the bracket
    signed = -size if short else size
    wallet = size * entry / leverage
    lp = margin.liquidation_price(signed, entry, wallet, mmr, D(0))
    if lp is None:
        return
    balance = margin.margin_balance(signed, entry, lp, wallet)
    needed = margin.maintenance_margin(signed, lp, mmr, D(0))
    assert abs(balance - needed) <= D("1e-12") * size * entry
    # and it is on the losing side of the entry
    assert (lp > entry) if short else (lp < entry)


def test_funding_sign_positive_rate_short_receives_long_pays() -> None:
    assert margin.funding_payment(D(-2), D(60_000), D("0.0001")) == D(12)
    assert margin.funding_payment(D(2), D(60_000), D("0.0001")) == D(-12)
    # a negative rate: shorts pay longs
    assert margin.funding_payment(D(-2), D(60_000), D("-0.0001")) == D(-12)
    assert margin.funding_payment(D(2), D(60_000), D("-0.0001")) == D(12)

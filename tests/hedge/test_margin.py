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


TIERS = margin.tiers_from_rates(
    [
        (D(0), D(50_000), D("0.004"), D(125)),
        (D(50_000), D(600_000), D("0.005"), D(100)),
        (D(600_000), D(3_000_000), D("0.01"), D(50)),
    ]
)


def test_tier_amounts_keep_the_maintenance_margin_continuous() -> None:
    # Binance BTCUSDT's published cums for these rates: 0, 50, 3,050
    assert [t.cum for t in TIERS] == [D(0), D(50), D(3_050)]
    for t in TIERS[1:]:
        below = margin.maintenance_margin_tiered(D(1), t.floor - D("0.0001"), TIERS)
        at = margin.maintenance_margin_tiered(D(1), t.floor, TIERS)
        assert abs(at - below) < D("0.001")


@given(
    size=st.decimals("0.01", "60", places=2),
    short=st.booleans(),
    entry=st.decimals("1000", "100000", places=1),
    leverage=st.integers(1, 20),
)
def test_at_the_tiered_liquidation_price_margin_balance_equals_tiered_maintenance(
    size: Decimal, short: bool, entry: Decimal, leverage: int
) -> None:
    signed = -size if short else size
    wallet = size * entry / leverage
    lp = margin.liquidation_price_tiered(signed, entry, wallet, TIERS)
    if lp is None:
        return
    balance = margin.margin_balance(signed, entry, lp, wallet)
    needed = margin.maintenance_margin_tiered(signed, lp, TIERS)
    assert abs(balance - needed) <= D("1e-9") * size * entry


def test_position_leverage_is_notional_over_margin_balance() -> None:
    # the case: 100 ETH short at 3,000 posting 100,000: 4.7x at +10 %, 9x at +20 %
    lev10 = margin.position_leverage(D(-100), D(3_000), D(3_300), D(100_000))
    lev20 = margin.position_leverage(D(-100), D(3_000), D(3_600), D(100_000))
    assert lev10 is not None and lev10.quantize(D("0.01")) == D("4.71")
    assert lev20 == D(9)
    assert margin.position_leverage(D(-100), D(3_000), D(4_000), D(100_000)) == D("Infinity")

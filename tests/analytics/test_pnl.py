"""PnL breakdown: the parts add up, in USD and in the numeraire."""

from __future__ import annotations

import pytest

from lpbot.analytics.pnl import UsdPrices, pnl_breakdown
from lpbot.analytics.types import RawAmount, TokenAmounts


def amounts(a0: float, a1: float) -> TokenAmounts:
    """WBTC (8 decimals) and USDC (6 decimals)."""
    return TokenAmounts(RawAmount(int(a0 * 10**8)), RawAmount(int(a1 * 10**6)))


def test_parts_add_up_and_numeraire_says_who_won() -> None:
    entry = amounts(1.0, 60_000)  # 1 BTC and 60k USDC at 60k
    result = pnl_breakdown(
        entry=entry,
        principal=amounts(0.9, 66_200),  # BTC rose: the LP sold some
        fees=amounts(0.004, 300),
        decimals0=8,
        decimals1=6,
        entry_prices=UsdPrices(60_000, 1.0, 60_000),
        prices=UsdPrices(66_000, 1.0, 66_000),
        hedge_usd=-1_000,
        funding_usd=50,
        gas_usd=20,
        numeraire="BTC",
    )
    usd = result.usd
    assert usd.price == pytest.approx(6_000)
    assert usd.impermanent_loss == pytest.approx(0.9 * 66_000 + 66_200 - 126_000)
    assert usd.fees == pytest.approx(0.004 * 66_000 + 300)
    assert usd.gas == -20
    assert usd.total == pytest.approx(result.final_value_usd - result.entry_value_usd)
    btc = result.in_numeraire
    assert btc.total == pytest.approx(
        result.final_value_usd / 66_000 - result.entry_value_usd / 60_000
    )
    assert btc.fees == pytest.approx(usd.fees / 66_000)
    # 2 BTC-worth at entry; holding 2 BTC beat this half-USDC LP in a BTC rally
    assert not result.beat_holding_numeraire
    assert usd.lp_vs_hold == pytest.approx(usd.total - usd.price)


def test_lp_beats_btc_when_btc_falls_and_fees_are_good() -> None:
    result = pnl_breakdown(
        entry=amounts(1.0, 60_000),
        principal=amounts(1.1, 54_100),
        fees=amounts(0.01, 1_000),
        decimals0=8,
        decimals1=6,
        entry_prices=UsdPrices(60_000, 1.0, 60_000),
        prices=UsdPrices(54_000, 1.0, 54_000),
    )
    assert result.usd.total < 0  # lost dollars
    assert result.beat_holding_numeraire  # but gained BTC


def test_validates() -> None:
    with pytest.raises(ValueError, match="token0_usd"):
        UsdPrices(0, 1, 1)
    with pytest.raises(ValueError, match="gas_usd"):
        pnl_breakdown(
            entry=amounts(1, 1),
            principal=amounts(1, 1),
            fees=amounts(0, 0),
            decimals0=8,
            decimals1=6,
            entry_prices=UsdPrices(1, 1, 1),
            prices=UsdPrices(1, 1, 1),
            gas_usd=-1,
        )

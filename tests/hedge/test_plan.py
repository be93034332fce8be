"""The pure hedge decision: band, rounding, minimums, leverage cap, funding gate, client ids."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from lpbot.hedge.base import OrderSide, PerpPosition
from lpbot.hedge.paper import PaperMarketSpec
from lpbot.hedge.plan import (
    HedgeAction,
    HedgeConfig,
    HedgeInputs,
    NoAction,
    band_width,
    client_order_id,
    funding_cost_apr,
    plan_hedge,
)

D = Decimal
BTC = "BTC/USDT:USDT"
MARKET = PaperMarketSpec().market_info()  # Binance BTCUSDT rules: step 0.001, min notional 100
MARK = D(60_000)
CONFIG = HedgeConfig(symbol=BTC, band_abs=D("0.1"), band_pct=D(5))
POSITIVE = (D("0.0001"),) * 3  # 24 h of +0.01 % per 8 h


def inputs(
    lp: str,
    hedge: str,
    *,
    equity: str = "10000000",
    rates: Sequence[Decimal] = POSITIVE,
    step: int = 1,
) -> HedgeInputs:
    size = D(hedge)
    position = PerpPosition(BTC, size, MARK if size else D(0), MARK, D(0), D(0), None)
    return HedgeInputs(
        lp_delta=D(lp),
        position=position,
        market=MARKET,
        mark_price=MARK,
        equity=D(equity),
        funding_rates=tuple(rates),
        position_id="31337:npm:7",
        step=step,
    )


def action(result: HedgeAction | NoAction) -> HedgeAction:
    assert isinstance(result, HedgeAction), result
    return result


def test_inside_the_band_nothing_is_done() -> None:
    assert isinstance(plan_hedge(inputs("10", "-10"), CONFIG), NoAction)
    # band = max(0.1, 5 % of 10) = 0.5 tokens
    assert band_width(D(10), CONFIG) == D("0.5")
    result = plan_hedge(inputs("10", "-9.6"), CONFIG)
    assert isinstance(result, NoAction) and result.band == D("0.5")
    assert "inside the band" in result.reason


def test_outside_the_band_trade_back_to_minus_the_delta() -> None:
    a = action(plan_hedge(inputs("10", "-9.4"), CONFIG))
    assert (a.request.side, a.request.amount, a.target) == (OrderSide.SELL, D("0.6"), D(-10))
    assert not a.request.reduce_only
    # the absolute band rules for a small position: max(0.1, 5 % of 1) = 0.1
    a = action(plan_hedge(inputs("1", "0"), CONFIG))
    assert (a.request.side, a.request.amount) == (OrderSide.SELL, D(1))


def test_over_hedged_buys_back_reduce_only() -> None:
    a = action(plan_hedge(inputs("1", "-1.5"), CONFIG))
    assert (a.request.side, a.request.amount, a.request.reduce_only) == (
        OrderSide.BUY,
        D("0.5"),
        True,
    )


def test_amounts_are_rounded_to_the_step() -> None:
    a = action(plan_hedge(inputs("1.23456", "0"), CONFIG))
    assert a.request.amount == D("1.235")
    assert MARKET.is_valid_amount(a.request.amount)


def test_minimum_size_and_notional() -> None:
    tight = CONFIG.model_copy(update={"band_abs": D("0.0001"), "band_pct": D(0)})
    assert action(plan_hedge(inputs("0.0015", "0"), tight)).request.amount == D("0.002")
    # 0.0012 rounds to 0.001 BTC = 60 USDT < the 100 USDT minimum notional
    result = plan_hedge(inputs("0.0012", "0"), tight)
    assert isinstance(result, NoAction) and "minimum notional" in result.reason
    # a reduce-only trade is exempt from the minimum notional
    a = action(plan_hedge(inputs("1", "-1.0012"), tight))
    assert a.request.reduce_only and a.request.amount == D("0.001")
    result = plan_hedge(inputs("0.0004", "0"), tight)
    assert isinstance(result, NoAction) and "rounds to zero" in result.reason


def test_leverage_caps_the_target() -> None:
    # 3x less 10 % headroom, 2.7x on 100,000 USDT of equity: 270,000 USDT, 4.5 BTC at 60,000
    a = action(plan_hedge(inputs("8", "0", equity="100000"), CONFIG))
    assert (a.target, a.request.amount, a.partial) == (D("-4.5"), D("4.5"), True)
    assert any("capped" in r for r in a.reasons)
    result = plan_hedge(inputs("8", "-4.5", equity="100000"), CONFIG)
    assert isinstance(result, NoAction)


def test_a_capped_order_fits_the_free_balance_with_its_fees() -> None:
    # 100,000 of equity, all of it free: the order's margin at 2.7x plus 20 bps must fit, so
    # floor(100,000 / (60,000 * (1/2.7 + 0.002)) / 0.001) * 0.001 = 4.475 BTC, not 4.5 (whose
    # margin of 100,000 plus the fee the venue refuses)
    i = inputs("8", "0", equity="100000")
    a = action(plan_hedge(replace(i, free_balance=D(100_000)), CONFIG))
    assert a.request.amount == D("4.475") and a.partial
    margin = a.request.amount * MARK / D("2.7")
    fee = a.request.amount * MARK * MARKET.taker_fee
    assert margin + fee < D(100_000)


def test_funding_cost_sign() -> None:
    # a short receives positive funding: 0.03 % a day is -10.95 % a year of cost, i.e. income
    assert funding_cost_apr(-1, POSITIVE) == D("-0.1095")
    assert funding_cost_apr(+1, POSITIVE) == D("0.1095")
    negative = (D("-0.0002"),) * 3
    assert funding_cost_apr(-1, negative) == D("0.2190")


def test_funding_gate_refuses_opening_a_short_that_pays() -> None:
    negative = (D("-0.0002"),) * 3  # shorts pay 21.9 % a year > 20 %
    result = plan_hedge(inputs("5", "0", rates=negative), CONFIG)
    assert isinstance(result, NoAction) and "funding" in result.reason
    result = plan_hedge(inputs("5", "-4", rates=negative), CONFIG)  # nor increasing it
    assert isinstance(result, NoAction)
    # but reducing is always allowed
    a = action(plan_hedge(inputs("5", "-6", rates=negative), CONFIG))
    assert a.request.side is OrderSide.BUY and a.request.reduce_only
    # positive funding is income for the short: allowed however large
    big = (D("0.003"),) * 3
    assert isinstance(plan_hedge(inputs("5", "0", rates=big), CONFIG), HedgeAction)


def test_funding_gate_for_a_long_hedge_is_the_mirror() -> None:
    high = (D("0.0002"),) * 3  # longs pay 21.9 % a year
    result = plan_hedge(inputs("-2", "0", rates=high), CONFIG)
    assert isinstance(result, NoAction) and "funding" in result.reason
    assert isinstance(plan_hedge(inputs("-2", "0", rates=POSITIVE), CONFIG), HedgeAction)


def test_a_wrong_side_hedge_is_only_closed_when_funding_forbids_the_new_side() -> None:
    negative = (D("-0.0002"),) * 3
    a = action(plan_hedge(inputs("2", "1", rates=negative), CONFIG))
    assert (a.target, a.request.side, a.request.amount) == (D(0), OrderSide.SELL, D(1))
    assert a.request.reduce_only


def test_client_order_id_is_deterministic_and_valid_everywhere() -> None:
    a = action(plan_hedge(inputs("5", "0"), CONFIG))
    b = action(plan_hedge(inputs("5", "0"), CONFIG))
    assert a.request.client_order_id == b.request.client_order_id
    cid = a.request.client_order_id
    assert len(cid) == 32 and cid.startswith("lpb") and cid.isalnum()
    assert cid == client_order_id("31337:npm:7", 1, D(-5))
    assert client_order_id("31337:npm:7", 1, D("-5.000")) == cid  # same number, same id
    assert client_order_id("31337:npm:7", 2, D(-5)) != cid
    assert client_order_id("31337:npm:7", 1, D(-5), top_up=1) != cid
    assert client_order_id("31337:npm:8", 1, D(-5)) != cid


@given(
    lp=st.decimals("0", "200", places=6),
    hedge=st.decimals("-250", "50", places=3),
)
def test_after_the_action_net_delta_is_within_half_a_step(lp: Decimal, hedge: Decimal) -> None:
    config = HedgeConfig(symbol=BTC, band_abs=D("0.01"), band_pct=D(2))
    result = plan_hedge(inputs(str(lp), str(hedge)), config)
    net = lp + hedge
    band = band_width(lp, config)
    if isinstance(result, NoAction):
        assert abs(net) <= band
    else:
        assert abs(net) > band
        assert abs(net + result.signed_amount) <= MARKET.amount_step / 2

"""The ledger's identity over random paths and rebalances; its lines from first principles."""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lpbot.analytics.ledger import (
    QUANTUM,
    Figures,
    GasPaid,
    HedgeFigures,
    Ledger,
    LedgerMismatch,
    Prices,
    RebalanceFlow,
    compute_ledger,
)

DEC = (6, 18)
amount0 = st.integers(0, 10**12)  # up to 1M USDC
amount1 = st.integers(0, 500 * 10**18)
usd_price = st.decimals(Decimal("500"), Decimal("9000"), places=6)
stable = st.decimals(Decimal("0.9"), Decimal("1.1"), places=6)


@st.composite
def marks(draw: st.DrawFn) -> Prices:
    eth = draw(usd_price)
    return Prices(
        draw(stable), eth, eth, draw(st.decimals(Decimal(20_000), Decimal(150_000), places=2))
    )


@st.composite
def rebalance(draw: st.DrawFn) -> RebalanceFlow:
    burned = (draw(amount0), draw(amount1))
    fees = (draw(st.integers(0, 10**9)), draw(st.integers(0, 10**17)))
    have = (burned[0] + fees[0], burned[1] + fees[1])
    sell0 = draw(st.booleans())
    if sell0:
        swap_in = (draw(st.integers(0, have[0])), 0)
        swap_out = (0, draw(st.integers(0, 10**20)))
    else:
        swap_in = (0, draw(st.integers(0, have[1])))
        swap_out = (draw(st.integers(0, 10**11)), 0)
    after = tuple(have[i] - swap_in[i] + swap_out[i] for i in (0, 1))
    minted = (draw(st.integers(0, after[0])), draw(st.integers(0, after[1])))
    return RebalanceFlow(burned, fees, swap_in, swap_out, minted, draw(marks()))


@settings(max_examples=300, deadline=None)
@given(
    deposit=st.tuples(amount0, amount1),
    entry=marks(),
    now=marks(),
    path=st.lists(rebalance(), max_size=6),
    principal=st.tuples(amount0, amount1),
    uncollected=st.tuples(st.integers(0, 10**9), st.integers(0, 10**17)),
    gas=st.lists(st.tuples(st.integers(0, 10**16), usd_price, st.booleans()), max_size=8),
    hedge=st.tuples(*[st.decimals(Decimal(-5000), Decimal(5000), places=4)] * 2),
    hedge_fees=st.decimals(Decimal(0), Decimal(100), places=4),
    funding=st.decimals(Decimal(-100), Decimal(100), places=4),
    fees_at_start=st.tuples(st.integers(0, 10**9), st.integers(0, 10**17)),
)
def test_identity_to_the_cent_over_random_paths(
    deposit,
    entry,
    now,
    path,
    principal,
    uncollected,
    gas,
    hedge,
    hedge_fees,
    funding,
    fees_at_start,
) -> None:
    paid = [GasPaid(f"0x{i:064x}", w, p, failed) for i, (w, p, failed) in enumerate(gas)]
    h = HedgeFigures(hedge[0], hedge[1], hedge_fees, funding)
    led = compute_ledger(
        decimals=DEC,
        deposit=deposit,
        entry=entry,
        rebalances=path,
        principal=principal,
        uncollected=uncollected,
        marks=now,
        gas=paid,
        hedge=h,
        fees_at_start=fees_at_start,
    )
    for lines, n in ((led.usd, Decimal(1)), (led.eth, now.eth), (led.btc, now.btc)):
        assert lines is not None and n is not None
        q = QUANTUM[lines.unit]
        # the printed net is the exact net rounded; the explanation adds up to it exactly
        assert lines.net == (led.exact.net / n).quantize(q, rounding=ROUND_HALF_EVEN)
        assert lines.net == (
            lines.fees + lines.il + lines.hedge_pnl + lines.funding - lines.gas - lines.swap_costs
        )
        # value and hold are rounded on their own: within their rounding of net
        value_less_hold = lines.value + lines.hedge_pnl + lines.funding - lines.gas - lines.hold
        assert abs(lines.net - value_less_hold) <= 3 * q
    u = led.usd

    # first principles, at the same marks
    def usd(a, p=now):
        return Decimal(a[0]) / 10**6 * p.token0 + Decimal(a[1]) / 10**18 * p.token1

    idle = [r.idle for r in path]
    assert u.hold == round(usd(deposit) + usd(fees_at_start), 2)
    assert u.value == round(usd(principal) + usd(uncollected) + sum(usd(i) for i in idle), 2)
    earned = sum(usd(r.fees) for r in path) + usd(uncollected) - usd(fees_at_start)
    assert u.fees == round(earned, 2)
    assert u.gas == round(sum(Decimal(w) / 10**18 * p for w, p, _ in gas), 2)
    assert u.swap_costs == round(
        sum(usd(r.swap_in, r.marks) - usd(r.swap_out, r.marks) for r in path), 2
    )
    assert u.hedge_pnl == round(h.realised + h.unrealised - h.fees, 2)


def test_no_rebalance_il_is_principal_against_hold() -> None:
    entry = Prices(Decimal(1), Decimal(3000), Decimal(3000), Decimal(90000))
    now = Prices(Decimal(1), Decimal(2700), Decimal(2700), Decimal(90000))
    led = compute_ledger(
        decimals=DEC,
        deposit=(5000 * 10**6, 10**18 * 5 // 3),
        entry=entry,
        principal=(6400 * 10**6, 10**18 * 14 // 10),
        uncollected=(12 * 10**6, 4 * 10**15),
        marks=now,
    )
    u = led.usd
    assert u.hold == Decimal("9500.00")  # 5000 + 1.6667 ETH x 2700
    assert u.value == Decimal("10202.80")  # 6400 + 3780 + 12 + 10.80
    assert u.fees == Decimal("22.80")
    assert u.il == Decimal("680.00")  # 10180 - 9500 (a made-up path; sign not constrained)
    assert u.net == Decimal("702.80")
    assert u.hold_5050 == Decimal("9500.00")  # 5000 USD + 1.6667 ETH: already 50/50 at entry
    assert u.hold_numeraire == Decimal("10000.00")
    assert led.eth is not None and led.eth.hold == Decimal("3.518519")


def test_hold_moves_with_the_price() -> None:
    entry = Prices(Decimal(1), Decimal(3000), Decimal(3000))
    kw = dict(
        decimals=DEC,
        deposit=(5000 * 10**6, 10**18),
        entry=entry,
        principal=(0, 0),
        uncollected=(0, 0),
    )
    up = compute_ledger(marks=Prices(Decimal(1), Decimal(3100), Decimal(3100)), **kw)  # type: ignore[arg-type]
    down = compute_ledger(marks=Prices(Decimal(1), Decimal(2900), Decimal(2900)), **kw)  # type: ignore[arg-type]
    assert up.usd.hold - down.usd.hold == Decimal(200)


def test_refuses_a_rebalance_that_mints_more_than_it_had() -> None:
    p = Prices(Decimal(1), Decimal(3000), Decimal(3000))
    bad = RebalanceFlow((10, 10), (0, 0), (0, 0), (0, 0), (11, 10), p)
    with pytest.raises(LedgerMismatch, match="minted more"):
        compute_ledger(
            decimals=DEC,
            deposit=(10, 10),
            entry=p,
            rebalances=[bad],
            principal=(11, 10),
            uncollected=(0, 0),
            marks=p,
        )


def _figures(value: str, hold: str, gas: str = "0", funding: str = "0", fees: str = "0") -> Figures:
    v, h, g, fu, fe = (Decimal(x) for x in (value, hold, gas, funding, fees))
    net = v + fu - g - h
    return Figures(v, h, h, h, fe, net - (fe + fu - g), Decimal(0), fu, g, Decimal(0))


@pytest.mark.parametrize(
    ("figures", "net"),
    [
        # 110.0051 - 0.0049 - 99.9507 = 10.0495 exactly; the rounded lines summed gave 10.06
        (_figures("110.0051", "99.9507", gas="0.0049"), Decimal("10.05")),
        # 1145.2049 + 0.0028 - 1000 = 145.2077 exactly; the rounded lines summed gave 145.20
        (_figures("1145.2049", "1000", funding="0.0028"), Decimal("145.21")),
    ],
)
def test_net_is_the_exact_net_rounded_and_il_takes_the_residue(figures: Figures, net) -> None:
    marks = Prices(Decimal(1), Decimal(2000), Decimal(2000), Decimal(50000))
    u = Ledger(figures, marks, marks).usd
    assert u.net == net
    assert u.net == u.fees + u.il + u.hedge_pnl + u.funding - u.gas - u.swap_costs - u.slippage


exact_usd = st.decimals(Decimal(-(10**6)), Decimal(10**6), places=6)


@settings(max_examples=300, deadline=None)
@given(
    value=st.decimals(Decimal(0), Decimal(10**6), places=6),
    hold=st.decimals(Decimal(0), Decimal(10**6), places=6),
    fees=st.decimals(Decimal(0), Decimal(10**4), places=6),
    pnl=exact_usd,
    funding=st.decimals(Decimal(-100), Decimal(100), places=6),
    gas=st.decimals(Decimal(0), Decimal(100), places=6),
    swap=st.decimals(Decimal(-100), Decimal(100), places=6),
    slip=st.decimals(Decimal(0), Decimal(100), places=6),
    now=marks(),
)
def test_rounded_net_is_round_of_exact_net_and_lines_add_up(
    value, hold, fees, pnl, funding, gas, swap, slip, now
) -> None:
    net = value + pnl + funding - gas - slip - hold
    il = net - (fees + pnl + funding - gas - swap - slip)
    f = Figures(value, hold, hold, hold, fees, il, pnl, funding, gas, swap, slip)
    led = Ledger(f, now, now)
    for lines, n in ((led.usd, Decimal(1)), (led.eth, now.eth), (led.btc, now.btc)):
        assert lines is not None and n is not None
        q = QUANTUM[lines.unit]
        assert lines.net == (f.net / n).quantize(q, rounding=ROUND_HALF_EVEN)
        explained = (
            lines.fees + lines.il + lines.hedge_pnl + lines.funding
            - lines.gas - lines.swap_costs - lines.slippage
        )  # fmt: skip
        assert lines.net == explained

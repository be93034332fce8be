"""The README's first command, shortened: the managed-LP cycle on a private devnet."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from lpbot import demo
from lpbot.cli.daemon import ledger_lines
from lpbot.jobs import ledger as ledger_store
from lpbot.store.session import make_engine, session_factory

pytestmark = pytest.mark.devnet


def test_the_demo_rebalances_through_the_module_and_keeps_the_hedge_in_its_band(
    tmp_path: Path,
) -> None:
    lines: list[str] = []
    result = demo.run(days=2, seed=11, out=lines.append, workdir=tmp_path)
    assert result.rebalances >= 1
    # every execution (rebalance or compound) had its dry-run report
    assert len(result.reports) == result.rebalances + result.compounds
    assert result.fees_usd > 0
    assert result.gas_usd > 0
    # the hedge stays within its band (0.1 ETH, or 5% of the LP delta) after every sync
    assert result.max_abs_net_delta <= 0.25
    assert any("the module's operator key" in line for line in lines)
    # the bot held no Safe owner key: every rebalance went through the module
    assert not any("Safe signatures" in line for line in lines)
    assert (tmp_path / "lpbot.db").exists()
    _summary_is_the_ledger_in_the_database(result, lines)


def _summary_is_the_ledger_in_the_database(result: demo.DemoResult, lines: list[str]) -> None:
    engine = make_engine(f"sqlite:///{result.database}")
    with session_factory(engine)() as s:
        h = ledger_store.history(s, "demo-usdc-weth")
    final = h.last
    assert final is not None
    # the summary's numbers are the ledger recomputed from the stored snapshots and flows
    assert final == result.ledger
    u = final.usd
    assert (u.fees, u.il, u.hedge_pnl, u.funding, u.gas, u.net) == (
        result.fees_usd, result.il_usd, result.hedge_pnl_usd, result.funding_usd,
        result.gas_usd, result.net_vs_hold_usd,
    )  # fmt: skip
    # and the summary's lines add up to the cent, as printed
    assert u.net == u.fees + u.il + u.hedge_pnl + u.funding - u.gas - u.swap_costs
    # value and hold are each rounded; net is the exact net rounded
    assert abs(u.net - (u.value + u.hedge_pnl + u.funding - u.gas - u.hold)) <= Decimal("0.02")
    assert f"${u.net:>10.2f}" in next(line for line in lines if "net vs holding" in line)
    # the passive full-range benchmark, opened at the deposit, as the stored ledger has it
    assert u.full_range is not None and final.full_range is not None
    assert not final.full_range.late
    full_line = next(line for line in lines if "passive full range" in line)
    assert f"${u.full_range:>10.2f}" in full_line and f"${u.net_vs_full_range:.2f}" in full_line
    # hold is marked to the market: the deposit at each snapshot's own marks
    for p in h.points:
        m = ledger_store.snapshot_prices(p.snapshot)
        hold = Decimal(h.deposit[0]) / 10**6 * m.token0 + Decimal(h.deposit[1]) / 10**18 * m.token1
        assert p.ledger.usd.hold == hold.quantize(Decimal("0.01"))
    assert len({p.ledger.usd.hold for p in h.points}) > len(h.points) // 2
    # the hedge is valued at the same block as the position: two snapshots of one block (the
    # last hour's and the summary's) have the same hedge figures and the same net
    by_block: dict[int, set[tuple[str | None, Decimal]]] = {}
    for p in h.points:
        by_block.setdefault(p.snapshot.block_number or 0, set()).add(
            (p.snapshot.hedge, p.ledger.usd.net)
        )
    assert max(len(v) for v in by_block.values()) == 1, by_block
    # an out-of-range position's value moves with the price too (its tokens are marked)
    out = [p for p in h.points if not p.in_range]
    assert out
    by_price = {ledger_store.snapshot_prices(p.snapshot).token1: p.ledger.usd.value for p in out}
    assert len(set(by_price.values())) == len(by_price)
    # `lpbot export` and `lpbot status` read the same ledger
    with session_factory(engine)() as s:
        rows = ledger_store.export_rows(s)
        status = dict(ledger_lines(s))
    snaps = [r for r in rows if r["kind"] == "snapshot"]
    assert len(snaps) == len(h.points)
    assert snaps[-1]["net_usd"] == str(u.net) and snaps[-1]["il_usd"] == str(u.il)
    assert Decimal(snaps[-1]["amount1"]) == Decimal(h.points[-1].snapshot.amount1) / 10**18
    rebalances = [r for r in rows if r["kind"] == "rebalance"]
    assert len(rebalances) == result.rebalances
    assert len([r for r in rows if r["kind"] == "compound"]) == result.compounds
    # the mint that opened the position is the ledger's first gas (from its receipt)
    [opening] = [r for r in rows if r["kind"] == "opening transaction"]
    assert int(opening["gas_wei"]) > 0 and final.gas[0].tx_hash == opening["tx_hash"]
    gas_line = next(line for line in lines if line.lstrip().startswith("gas "))
    assert f"({result.rebalances + result.compounds + 1} transaction(s))" in gas_line
    assert all(r["tx_hash"].startswith("0x") and int(r["gas_wei"]) > 0 for r in rebalances)
    paid = [*rebalances, *(r for r in rows if r["kind"] == "compound"), opening]
    assert abs(sum(Decimal(r["gas_usd"]) for r in paid) - u.gas) <= Decimal("0.01") * len(paid)
    assert f"net ${u.net:,.2f}" in status["demo-usdc-weth"]


def test_the_demo_as_make_demo_runs_it_compounds_through_the_module(tmp_path: Path) -> None:
    """`make demo` (three days, its seed): the compound the module refuses while the pool's TWAP
    is outside the range waits, and goes through the module once the TWAP is back, instead of
    asking the owners to sign it."""
    lines: list[str] = []
    result = demo.run(out=lines.append, workdir=tmp_path)
    assert result.compounds >= 1
    assert any(
        line.lstrip().startswith("- compounded fees") and "the module's operator key" in line
        for line in lines
    )
    assert not any("awaits approval" in line for line in lines)


def test_the_crash_scenario_widens_withdraws_rehedges_and_comes_back(tmp_path: Path) -> None:
    lines: list[str] = []
    result = demo.run(seed=11, out=lines.append, workdir=tmp_path, scenario="crash")
    print("\n".join(lines))
    levels = [level for _minute, level, _reasons in result.changes]
    assert levels[:2] == ["elevated", "stressed"], result.changes
    assert any("TWAP" in r for r in result.changes[1][2])
    assert result.withdraw_id is not None and result.received is not None
    assert result.received[0] > 0 or result.received[1] > 0
    assert result.hedge_before < 0 and result.hedge_after == 0
    assert levels[-1] == "normal", result.changes
    assert [a for a in result.alerts if a.startswith("withdrawn:")]
    assert any("elevated: the next range" in line for line in lines)

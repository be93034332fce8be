"""The ledger read back from the store (``jobs.ledger``), on a database the daemon used before."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from lpbot.analytics.ledger import HedgeFigures, Prices
from lpbot.cli import main
from lpbot.cli.daemon import ledger_lines
from lpbot.devnet.context import devnet_context
from lpbot.devnet.deploy import GAS, contract
from lpbot.errors import NeedsAttention
from lpbot.jobs import ledger as ledger_store
from lpbot.jobs import tasks
from lpbot.jobs.alerts import MemoryNotifier
from lpbot.pricing.base import Mark, Marks
from lpbot.pricing.marks import chain_pricer
from lpbot.store import migrate, repo
from lpbot.store.session import make_engine, session_factory
from tests.conftest import Devnet


def test_snapshots_from_before_the_ledger_started_are_not_read(tmp_path: Path) -> None:
    # a position monitored before this version (its snapshots carry no marks), then by `lpbot
    # run`, which starts the ledger at its first snapshot with marks: the ledger begins there
    engine = make_engine(f"sqlite:///{tmp_path / 'lpbot.db'}")
    migrate.upgrade(engine)
    sessions = session_factory(engine)
    marks = Prices(Decimal(1), Decimal(3000), Decimal(3000), Decimal(90000), block=20)
    amounts = (3_000_000_000, 10**18)
    with sessions() as s, s.begin():
        pos = repo.record_position(
            s, label="p", chain_id=31337, pool_address="0x" + "11" * 20, token_id=7,
            owner_address="0x" + "22" * 20, tick_lower=-600, tick_upper=600,
        )  # fmt: skip
        common = dict(sqrt_price_x96=2**96, tick=0, liquidity=10**12, amount0=amounts[0],
                      amount1=amounts[1], fees0=0, fees1=0)  # fmt: skip
        at = datetime(2026, 1, 1, tzinfo=UTC)
        repo.save_snapshot(s, pos.id, taken_at=at, block_number=10, **common)  # type: ignore[arg-type]
        ledger_store.record_deposit(
            s, "p", deposit=amounts, decimals=(6, 18), symbols=("USDC", "WETH"), marks=marks
        )
        repo.save_snapshot(
            s, pos.id, taken_at=at, block_number=20,
            mark_sources=ledger_store.mark_sources_json(marks, _marks(marks)),
            hedge=ledger_store.hedge_json(HedgeFigures()), **common,  # type: ignore[arg-type]
        )  # fmt: skip
    with sessions() as s:
        h = ledger_store.history(s, "p")
        assert [p.snapshot.block_number for p in h.points] == [20]
        assert h.points[0].ledger.usd.value == h.points[0].ledger.usd.hold == Decimal("6000.00")
        assert len([r for r in ledger_store.export_rows(s) if r["kind"] == "snapshot"]) == 1
        assert "net $0.00" in dict(ledger_lines(s))["p"]


def test_liquidity_added_outside_lpbot_is_refused_not_counted_as_il(tmp_path: Path) -> None:
    # the owner adds as much again to the NFT the daemon watches: value doubles while the
    # deposit held does not; counted, it would read as IL of +$6,000; the ledger refuses
    engine = make_engine(f"sqlite:///{tmp_path / 'lpbot.db'}")
    migrate.upgrade(engine)
    sessions = session_factory(engine)
    marks = Prices(Decimal(1), Decimal(3000), Decimal(3000), Decimal(90000), block=20)
    deposit = (3_000_000_000, 10**18)
    with sessions() as s, s.begin():
        pos = repo.record_position(
            s, label="p", chain_id=31337, pool_address="0x" + "11" * 20, token_id=7,
            owner_address="0x" + "22" * 20, tick_lower=-600, tick_upper=600,
        )  # fmt: skip
        ledger_store.record_deposit(
            s, "p", deposit=deposit, decimals=(6, 18), symbols=("USDC", "WETH"), marks=marks
        )
        at = datetime(2026, 1, 1, tzinfo=UTC)
        for block, k in ((20, 1), (30, 1), (40, 2)):
            repo.save_snapshot(
                s, pos.id, taken_at=at, block_number=block, sqrt_price_x96=2**96, tick=0,
                liquidity=10**12 * k, amount0=deposit[0] * k, amount1=deposit[1] * k,
                fees0=0, fees1=0, mark_sources=ledger_store.mark_sources_json(marks, _marks(marks)),
                hedge=ledger_store.hedge_json(HedgeFigures()),
            )  # fmt: skip
    with sessions() as s:
        with pytest.raises(
            NeedsAttention, match=r"#7 changed outside lpbot between blocks 30 and 40"
        ):
            ledger_store.history(s, "p")
        assert "changed outside lpbot" in dict(ledger_lines(s))["p"]


def test_lpbots_own_compound_is_no_outside_change(tmp_path: Path) -> None:
    # the fees collected and added back to the same NFT by a recorded compound: the ledger reads
    # on through it (status, export and the dashboard showed "changed outside lpbot" for every
    # compounding position); an addition by someone else afterwards is still refused
    from lpbot.analytics.ledger import GasPaid, RebalanceFlow

    engine = make_engine(f"sqlite:///{tmp_path / 'lpbot.db'}")
    migrate.upgrade(engine)
    sessions = session_factory(engine)
    marks = Prices(Decimal(1), Decimal(3000), Decimal(3000), Decimal(90000), block=20)
    deposit, fees = (3_000_000_000, 10**18), (1_000_000, 10**15)
    with sessions() as s, s.begin():
        pos = repo.record_position(
            s, label="p", chain_id=31337, pool_address="0x" + "11" * 20, token_id=7,
            owner_address="0x" + "22" * 20, tick_lower=-600, tick_upper=600,
        )  # fmt: skip
        ledger_store.record_deposit(
            s, "p", deposit=deposit, decimals=(6, 18), symbols=("USDC", "WETH"), marks=marks
        )
        at = datetime(2026, 1, 1, tzinfo=UTC)

        def snap(
            block: int, liquidity: int, amounts: tuple[int, int], owed: tuple[int, int]
        ) -> None:
            repo.save_snapshot(
                s, pos.id, taken_at=at, block_number=block, sqrt_price_x96=2**96, tick=0,
                liquidity=liquidity, amount0=amounts[0], amount1=amounts[1], fees0=owed[0],
                fees1=owed[1], mark_sources=ledger_store.mark_sources_json(marks, _marks(marks)),
                hedge=ledger_store.hedge_json(HedgeFigures()),
            )  # fmt: skip

        snap(20, 10**12, deposit, (0, 0))
        snap(30, 10**12, deposit, fees)
        flow = RebalanceFlow((0, 0), fees, (0, 0), (0, 0), fees, marks)
        gas = GasPaid("0x" + "ab" * 32, 10**15, Decimal(3000))
        ledger_store.record_rebalance(s, "p", flow, gas, 35, 0, what="compound")
        grown = (deposit[0] + fees[0], deposit[1] + fees[1])
        snap(40, 10**12 + 10**9, grown, (0, 0))
    with sessions() as s:
        h = ledger_store.history(s, "p")
        assert [p.snapshot.block_number for p in h.points] == [20, 30, 40]
        last = h.points[-1].ledger.usd
        assert last.value == Decimal("6004.00") and last.hold == Decimal("6000.00")
        assert last.gas == Decimal("3.00")
        assert "changed outside lpbot" not in dict(ledger_lines(s))["p"]
    with sessions() as s, s.begin():
        snap(50, 2 * 10**12, (2 * grown[0], 2 * grown[1]), (0, 0))
    with sessions() as s, pytest.raises(NeedsAttention, match=r"between blocks 40 and 50"):
        ledger_store.history(s, "p")


def _marks(p: Prices) -> Marks:
    return Marks("devnet", p.block, 0, {})


@pytest.mark.devnet
def test_the_monitor_alerts_when_someone_else_adds_to_the_position(
    chain: Devnet, tmp_path: Path
) -> None:
    # NonfungiblePositionManager lets anyone add to any NFT: the bot account adds to the Safe's
    # position between two monitor runs; the monitor says so, and the stored ledger refuses
    m = chain.manifest
    info = m.pool("USDC/WETH-500")
    assert m.safe_position is not None
    engine = make_engine(f"sqlite:///{tmp_path / 'lpbot.db'}")
    migrate.upgrade(engine)
    notifier = MemoryNotifier()
    mp = tasks.ManagedPosition(
        name="p",
        ctx=devnet_context(chain.w3, m, None, tmp_path),  # type: ignore[arg-type]
        sessions=session_factory(engine),
        policy=None,  # type: ignore[arg-type]
        token_id=m.safe_position,
        pool=info.address,
        token0=m.token(info.token0).address,
        token1=m.token(info.token1).address,
        notifier=notifier,
        pricer=chain_pricer(chain.w3, m),
        ledger_from_first_snapshot=True,
    )
    tasks.monitor(mp)
    tasks.monitor(mp)
    assert not [a for a in notifier.alerts if a.kind == "ledger_outside_change"]
    npm = contract(
        chain.w3, "NonfungiblePositionManager", m.contracts["NonfungiblePositionManager"]
    )
    deadline = chain.w3.eth.get_block("latest")["timestamp"] + 600
    params = (m.safe_position, 1_000 * 10**6, 10**18, 0, 0, deadline)
    tx = npm.functions.increaseLiquidity(params).transact({"from": m.accounts.bot, "gas": GAS})
    assert chain.w3.eth.wait_for_transaction_receipt(tx)["status"] == 1
    tasks.monitor(mp)
    (alert,) = [a for a in notifier.alerts if a.kind == "ledger_outside_change"]
    assert f"#{m.safe_position} changed outside lpbot" in alert.title
    with session_factory(engine)() as s:
        assert "changed outside lpbot" in dict(ledger_lines(s))["p"]


@pytest.mark.devnet
def test_the_opening_gas_is_the_ledgers_first_cost_to_the_wei(
    chain: Devnet, tmp_path: Path
) -> None:
    """Before: the demo's ledger left out the mint that opened its position (a 1-day run said
    gas $0.00 (0))."""
    from lpbot.chain.reader import PoolReader
    from lpbot.devnet.positions import mint_usdc_weth_tx

    m, w3 = chain.manifest, chain.w3
    info = m.pool("USDC/WETH-500")
    reader = PoolReader(w3, multicall=m.contracts["Multicall3"], tick_lens=m.contracts["TickLens"])
    snap = reader.fetch_pool_state(info.address, twap_seconds=(0,))
    lower = (snap.slot0.tick - 1200) // 10 * 10
    token_id, a0, a1, mint_tx = mint_usdc_weth_tx(
        w3, m, snap, lower, lower + 2400, usdc=3_000, recipient=m.safe or ""
    )
    receipt = w3.eth.get_transaction_receipt(mint_tx)  # type: ignore[arg-type]
    wei = int(receipt["gasUsed"]) * int(receipt["effectiveGasPrice"])
    engine = make_engine(f"sqlite:///{tmp_path / 'lpbot.db'}")
    migrate.upgrade(engine)
    pricer = chain_pricer(w3, m)
    mp = tasks.ManagedPosition(
        name="p",
        ctx=devnet_context(w3, m, None, tmp_path),  # type: ignore[arg-type]
        sessions=session_factory(engine),
        policy=None,  # type: ignore[arg-type]
        token_id=token_id,
        pool=info.address,
        token0=m.token(info.token0).address,
        token1=m.token(info.token1).address,
        notifier=MemoryNotifier(),
        pricer=pricer,
        entry=(a0, a1),
    )
    mp.entry_marks = mp.prices(pricer.fetch_marks(["USDC", "WETH"], w3.eth.block_number))
    mp.opened_by([mint_tx])
    first = tasks.monitor(mp)
    eth = mp.prices(pricer.fetch_marks(["USDC", "WETH"], int(receipt["blockNumber"]))).eth
    assert first.ledger is not None
    assert first.ledger.gas[0].wei == wei
    assert first.ledger.usd.gas == (Decimal(wei) / 10**18 * eth).quantize(Decimal("0.01")) > 0
    tasks.monitor(mp)
    with session_factory(engine)() as s:
        start = ledger_store.load(s, "p")
        assert start is not None
        [(block, flow, gas)] = start.rebalances
        assert (block, flow, gas.tx_hash, gas.wei) == (receipt["blockNumber"], None, mint_tx, wei)
        assert gas.eth_usd == eth and not gas.failed
        last = ledger_store.history(s, "p").last
        assert last is not None and last.usd.gas == first.ledger.usd.gas
        [row] = [r for r in ledger_store.export_rows(s) if r["tx_hash"] == mint_tx]
        assert (row["kind"], row["gas_wei"]) == ("opening transaction", str(wei))
    engine.dispose()


def test_export_has_one_row_per_snapshot_block_and_per_transaction(tmp_path: Path) -> None:
    """Before: two snapshots at one block were two rows, and a reverted rebalance transaction
    was exported twice (the ledger's gas entry and the rebalance's record), its gas counted
    twice."""
    from lpbot.analytics.ledger import GasPaid
    from lpbot.execution.state import TxRecord
    from lpbot.store.rebalances import SqlRebalanceRepo

    engine = make_engine(f"sqlite:///{tmp_path / 'lpbot.db'}")
    migrate.upgrade(engine)
    sessions = session_factory(engine)
    marks = Prices(Decimal(1), Decimal(3000), Decimal(3000), Decimal(90000), block=20)
    amounts = (3_000_000_000, 10**18)
    safe, pool = "0x" + "22" * 20, "0x" + "11" * 20
    with sessions() as s, s.begin():
        pos = repo.record_position(
            s, label="p", chain_id=31337, pool_address=pool, token_id=7,
            owner_address=safe, tick_lower=-600, tick_upper=600,
        )  # fmt: skip
        ledger_store.record_deposit(
            s, "p", deposit=amounts, decimals=(6, 18), symbols=("USDC", "WETH"), marks=marks
        )
        at = datetime(2026, 1, 1, tzinfo=UTC)
        for block in (20, 21, 21):  # the monitor ran twice before block 22
            repo.save_snapshot(
                s, pos.id, taken_at=at, block_number=block, sqrt_price_x96=2**96, tick=0,
                liquidity=10**12, amount0=amounts[0], amount1=amounts[1], fees0=0, fees1=0,
                mark_sources=ledger_store.mark_sources_json(marks, _marks(marks)),
                hedge=ledger_store.hedge_json(HedgeFigures()),
            )  # fmt: skip
    # a rebalance whose transaction reverted at block 21: its record, and the ledger's entry
    rebalances = SqlRebalanceRepo(sessions)
    record = rebalances.create(idempotency_key="k", chain_id=31337, safe=safe, token_id=7)
    tx_hash = "0x" + "ab" * 32
    sent = TxRecord(tx_hash, 0, "0x" + "33" * 20, safe, 500_000, 2 * 10**9, 10**9)
    rebalances.record_transaction(record.id, sent)
    mined = TxRecord(
        tx_hash, 0, sent.sender, safe, 500_000, 2 * 10**9, 10**9,
        status="REVERTED", block=21, gas_used=123_456, effective_gas_price=10**9,
    )  # fmt: skip
    rebalances.update_transaction(record.id, mined)
    with sessions() as s, s.begin():
        gas = GasPaid(tx_hash, 123_456 * 10**9, Decimal(3000), failed=True)
        ledger_store.record_gas(s, "p", gas, 21, 0)
    with sessions() as s:
        h = ledger_store.history(s, "p")
    # what `lpbot export` writes
    config = tmp_path / "lpbot.toml"
    config.write_text(
        f'version = 1\ndata_dir = "{tmp_path}"\n[chains.devnet]\nmanifest = "m.json"\n'
    )
    out = tmp_path / "ledger.json"
    assert main(["--config", str(config), "export", "--out", str(out), "--format", "json"]) == 0
    rows = json.loads(out.read_text())
    snaps = [r for r in rows if r["kind"] == "snapshot"]
    assert [r["block"] for r in snaps] == [20, 21] == [p.snapshot.block_number for p in h.points]
    [paid] = [r for r in rows if r["tx_hash"] == tx_hash]
    assert (paid["kind"], paid["gas_wei"], paid["failed"]) == (
        "failed transaction", str(123_456 * 10**9), True,
    )  # fmt: skip
    assert sum(int(r["gas_wei"] or 0) for r in rows) == 123_456 * 10**9
    engine.dispose()


def test_a_rebalance_reconciled_again_is_recorded_once(tmp_path: Path) -> None:
    """A resumed rebalance is reconciled again (a crash after its entry, before its state
    moved): the ledger keeps its flows and gas once, by transaction hash."""
    engine = make_engine(f"sqlite:///{tmp_path / 'lpbot.db'}")
    migrate.upgrade(engine)
    sessions = session_factory(engine)
    marks = Prices(Decimal(1), Decimal(3000), Decimal(3000), Decimal(90000), block=20)
    outcome = {
        "tx_hash": "0x" + "cd" * 32, "block": 30, "decreased": ["100", "200"],
        "collected": ["110", "210"], "swap": ["5", "-1"], "minted": ["90", "190"],
    }  # fmt: skip
    with sessions() as s, s.begin():
        ledger_store.record_deposit(
            s, "p", deposit=(100, 200), decimals=(6, 18), symbols=("USDC", "WETH"), marks=marks
        )
        for _ in range(2):
            ledger_store.record_reconciled(
                s, "p", outcome, gas_wei=7 * 10**15, confirmed=True, marks=marks, timestamp=0
            )
    with sessions() as s:
        start = ledger_store.load(s, "p")
    assert start is not None
    [(block, flow, gas)] = start.rebalances
    assert (block, gas.wei) == (30, 7 * 10**15) and flow is not None
    assert (flow.fees, flow.swap_in, flow.swap_out) == ((10, 10), (5, 0), (0, 1))
    engine.dispose()


def test_the_full_range_benchmark_starts_at_the_first_snapshot_with_fee_growth(
    tmp_path: Path,
) -> None:
    """A deposit recorded before snapshots kept the pool's fee growth (and a first snapshot
    without it): the benchmark opens at the first snapshot that has it, with the deposit's
    tokens, and every surface says so; its fees are L x the fee growth since, exactly."""
    from math import isqrt

    from lpbot.analytics.full_range import PoolFeeState
    from lpbot.uniswap.tick_math import get_tick_at_sqrt_ratio

    engine = make_engine(f"sqlite:///{tmp_path / 'lpbot.db'}")
    migrate.upgrade(engine)
    sessions = session_factory(engine)
    marks = Prices(Decimal(1), Decimal(3000), Decimal(3000), Decimal(90000), block=20)
    deposit = (1_000_000_000, 10**18)  # $1,000 + $3,000: the benchmark sells WETH
    sqrt_price = isqrt(10**18 * 2**192 // (3000 * 10**6))  # 3000 USDC per WETH, raw
    tick = get_tick_at_sqrt_ratio(sqrt_price)
    g0, g1 = 10**30, 10**20

    def fees_at(block: int, growth: int) -> PoolFeeState:
        return PoolFeeState(
            block=block, sqrt_price_x96=sqrt_price, tick=tick, fee=500, tick_spacing=10,
            fee_growth_global0_x128=g0 + growth, fee_growth_global1_x128=g1 + 3 * growth,
            lower_outside=(0, 0), upper_outside=(0, 0),
        )  # fmt: skip

    growth = 2**128 // 10**6  # per unit of liquidity: a millionth of a raw unit
    with sessions() as s, s.begin():
        pos = repo.record_position(
            s, label="p", chain_id=31337, pool_address="0x" + "11" * 20, token_id=7,
            owner_address="0x" + "22" * 20, tick_lower=tick - 600, tick_upper=tick + 600,
        )  # fmt: skip
        ledger_store.record_deposit(
            s, "p", deposit=deposit, decimals=(6, 18), symbols=("USDC", "WETH"), marks=marks
        )
        at = datetime(2026, 1, 1, tzinfo=UTC)
        for block, pool in ((20, None), (30, fees_at(30, 0)), (40, fees_at(40, growth))):
            repo.save_snapshot(
                s, pos.id, taken_at=at, block_number=block, sqrt_price_x96=sqrt_price, tick=tick,
                liquidity=10**12, amount0=deposit[0], amount1=deposit[1], fees0=0, fees1=0,
                mark_sources=ledger_store.mark_sources_json(marks, _marks(marks)),
                hedge=ledger_store.hedge_json(HedgeFigures()), pool_fees=pool,
            )  # fmt: skip
    with sessions() as s:
        h = ledger_store.history(s, "p")
        rows = [r for r in ledger_store.export_rows(s) if r["kind"] == "snapshot"]
        line = dict(ledger_lines(s))["p"]
    fr = h.full_range
    assert fr is not None and h.full_range_late and fr.at.block == 30
    assert fr.capital == deposit
    first, opened, last = (p.ledger for p in h.points)
    assert first.full_range is None and first.usd.full_range is None
    assert opened.full_range is not None and opened.full_range.late
    assert opened.full_range.fee_tokens == (0, 0)
    assert last.full_range is not None
    assert last.full_range.fee_tokens == (
        growth * fr.liquidity >> 128,
        3 * growth * fr.liquidity >> 128,
    )
    assert min(last.full_range.fee_tokens) > 0
    # the deposit's tokens, swapped to the full range at the pool's fee, no gas (lpbot did not
    # open this position): a few cents under holding, all of it the swap's fee and rounding
    assert opened.full_range.gas == 0 and opened.full_range.swap_costs > 0
    gap = opened.exact.hold - (opened.exact.full_range or 0)
    assert abs(gap - opened.full_range.swap_costs) < Decimal("0.00001")  # the mint rounds up
    assert abs(opened.full_range.swap_costs - Decimal("0.50")) < Decimal("0.01")  # 0.05% of $1,000
    assert "full range from block 30: snapshots before it carry no fee growth" in line
    assert f"full range ${last.usd.full_range:,.2f}" in line
    assert [r["full_range_usd"] for r in rows] == [
        None,
        str(opened.usd.full_range),
        str(last.usd.full_range),
    ]
    assert [r["full_range_from_block"] for r in rows] == [None, 30, 30]
    engine.dispose()


def test_a_slow_node_reading_a_rebalances_marks_holds_no_write_lock(tmp_path: Path) -> None:
    # two chains, one store: chain A's rebalance is reconciled while A's node is slow; its
    # marks and block time are read from that node. Meanwhile chain B's jobs must be able to
    # write (on SQLite a held write lock makes them fail "database is locked" after 30 s,
    # and the daemon then stops as if the database could not be written)
    import sqlite3

    path = tmp_path / "lpbot.db"
    engine = make_engine(f"sqlite:///{path}")
    migrate.upgrade(engine)
    sessions = session_factory(engine)
    p = Prices(Decimal(1), Decimal(3000), Decimal(3000), None, block=99)
    with sessions() as s, s.begin():
        ledger_store.record_deposit(
            s, "a", deposit=(3_000_000_000, 10**18), decimals=(6, 18), symbols=("USDC", "WETH"),
            marks=p,
        )  # fmt: skip
    others_wrote: list[bool] = []

    def another_chain_writes() -> None:  # chain B's job, while A's node is being read
        other = sqlite3.connect(path, timeout=0.2)
        try:
            other.execute("BEGIN IMMEDIATE")
            other.execute("ROLLBACK")
            others_wrote.append(True)
        except sqlite3.OperationalError:  # "database is locked"
            others_wrote.append(False)
        finally:
            other.close()

    class SlowNode:
        def fetch_marks(self, symbols: list[str], block: int) -> Marks:
            another_chain_writes()
            at = {t: Mark(t, u, "pool", (t,), block, 0) for t, u in (("USDC", 1), ("WETH", 3000))}
            return Marks("a", block, 0, at)

        class eth:  # web3's attribute
            @staticmethod
            def get_block(block: int) -> dict[str, int]:
                another_chain_writes()
                return {"timestamp": 1_700_000_000}

    record = ledger_store.reconciled_recorder(sessions, SlowNode(), SlowNode(), lambda _t: ["a"])
    outcome = {
        "tx_hash": "0x" + "ab" * 32, "block": 100, "decreased": [1000, 10**15],
        "collected": [1010, 10**15 + 5], "swap": None, "minted": [1000, 10**15],
    }  # fmt: skip
    report = {"tokens": [{"symbol": "USDC"}, {"symbol": "WETH"}]}
    receipt = {"blockNumber": 100, "gasUsed": 300_000, "effectiveGasPrice": 10**9}
    record(type("Rec", (), {"kind": "rebalance", "token_id": 7})(), outcome, report, receipt, True)
    assert others_wrote == [True, True]
    with sessions() as s:  # recorded once, with its gas
        assert ledger_store.recorded_hashes(s, "a") == {"0x" + "ab" * 32}
        (_block, flow, gas) = ledger_store.load(s, "a").rebalances[0]  # type: ignore[union-attr]
        assert gas.wei == 300_000 * 10**9 and flow is not None and flow.fees == (10, 5)


@pytest.mark.devnet
def test_the_monitor_reads_the_hedge_venue_before_it_takes_the_write_lock(
    chain: Devnet, tmp_path: Path
) -> None:
    # the hedge's PnL is read at the venue (a network call, with retries while it is down):
    # meanwhile the other chains' jobs must be able to write to the one SQLite store
    import sqlite3

    from lpbot.hedge.state import HedgePnl

    m = chain.manifest
    info = m.pool("USDC/WETH-500")
    assert m.safe_position is not None
    path = tmp_path / "lpbot.db"
    engine = make_engine(f"sqlite:///{path}")
    migrate.upgrade(engine)
    others_wrote: list[bool] = []

    class SlowVenue:  # the runner's face the monitor uses
        include_fees = True

        def pnl(self, delta: Decimal) -> HedgePnl:
            other = sqlite3.connect(path, timeout=0.2)
            try:
                other.execute("BEGIN IMMEDIATE")
                other.execute("ROLLBACK")
                others_wrote.append(True)
            except sqlite3.OperationalError:  # "database is locked"
                others_wrote.append(False)
            finally:
                other.close()
            return HedgePnl(
                realised=Decimal(5), unrealised=Decimal(0), fees=Decimal(1), funding=Decimal(0)
            )

    mp = tasks.ManagedPosition(
        name="p",
        ctx=devnet_context(chain.w3, m, None, tmp_path),  # type: ignore[arg-type]
        sessions=session_factory(engine),
        policy=None,  # type: ignore[arg-type]
        token_id=m.safe_position,
        pool=info.address,
        token0=m.token(info.token0).address,
        token1=m.token(info.token1).address,
        notifier=MemoryNotifier(),
        pricer=chain_pricer(chain.w3, m),
        ledger_from_first_snapshot=True,
    )
    mp.hedge, mp.hedge_runner = object(), SlowVenue()  # type: ignore[assignment]
    tasks.monitor(mp)
    assert others_wrote and all(others_wrote)
    with session_factory(engine)() as s:  # the snapshot has the hedge's figures
        (point,) = ledger_store.history(s, "p").points
        hedge = json.loads(point.snapshot.hedge or "{}")
        assert (hedge["realised"], hedge["fees"]) == ("5", "1")


def test_a_rebalance_reconciled_without_a_position_is_booked_on_its_own_chain(
    tmp_path: Path,
) -> None:
    # `lpbot rebalance execute` without --position: the rebalanced NFT's id is also that of a
    # position on another chain (NFT ids are per chain), listed first; the ledger entry goes
    # to the position of the chain it was executed on
    from lpbot.app import App

    pool = "0xC6962004f452bE9203591991D15f6b388e09E8D0"
    text = f'version = 1\ndata_dir = "{tmp_path}"\n'
    for chain in ("arbitrum", "ethereum"):
        text += f'[chains.{chain}]\nrpc_url_env = "LPBOT_{chain.upper()}_RPC"\n'
    for name, chain in (("arb", "arbitrum"), ("eth", "ethereum")):
        text += (
            f'[[positions]]\nname = "{name}"\nchain = "{chain}"\npool = "{pool}"\n'
            'token_id = 7\n[positions.strategy]\nkind = "full_range"\n'
        )
    (tmp_path / "lpbot.toml").write_text(text)
    app = App.load(tmp_path / "lpbot.toml", environ={})
    p = Prices(Decimal(1), Decimal(3000), Decimal(3000), None, block=99)
    with app.sessions() as s, s.begin():
        for name in ("arb", "eth"):
            ledger_store.record_deposit(
                s, name, deposit=(3_000_000_000, 10**18), decimals=(6, 18),
                symbols=("USDC", "WETH"), marks=p,
            )  # fmt: skip

    class Node:
        def fetch_marks(self, symbols: list[str], block: int) -> Marks:
            at = {t: Mark(t, u, "pool", (t,), block, 0) for t, u in (("USDC", 1), ("WETH", 3000))}
            return Marks("ethereum", block, 0, at)

        class eth:  # web3's attribute
            @staticmethod
            def get_block(block: int) -> dict[str, int]:
                return {"timestamp": 1_700_000_000}

    record = app._ledger_recorder(None, Node(), Node(), "ethereum")
    outcome = {
        "tx_hash": "0x" + "cd" * 32, "block": 100, "decreased": [1000, 10**15],
        "collected": [1010, 10**15 + 5], "swap": None, "minted": [1000, 10**15],
    }  # fmt: skip
    report = {"tokens": [{"symbol": "USDC"}, {"symbol": "WETH"}]}
    receipt = {"blockNumber": 100, "gasUsed": 300_000, "effectiveGasPrice": 10**9}
    record(type("Rec", (), {"kind": "rebalance", "token_id": 7})(), outcome, report, receipt, True)
    with app.sessions() as s:
        assert ledger_store.recorded_hashes(s, "eth") == {"0x" + "cd" * 32}
        assert ledger_store.recorded_hashes(s, "arb") == set()
    app.close()

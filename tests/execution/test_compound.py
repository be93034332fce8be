"""Compounding a Safe-owned position on the devnet: the policy's cost gate, the dry-run report,
the auto-execute policy, 2-of-3 signatures, the pre-flight, the ledger, and kill-and-resume."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import pytest
from web3.logs import DISCARD

from lpbot.devnet.context import devnet_context
from lpbot.devnet.deploy import GAS, contract
from lpbot.devnet.keys import dev_signer
from lpbot.devnet.market import run_market
from lpbot.execution import service
from lpbot.execution.state import RebalanceState as S
from lpbot.jobs import ledger as ledger_store
from lpbot.jobs import tasks
from lpbot.jobs.alerts import MemoryNotifier
from lpbot.pricing.marks import chain_pricer
from lpbot.report.dryrun import read_report
from lpbot.store import migrate
from lpbot.store.rebalances import SqlRebalanceRepo
from lpbot.store.session import make_engine, session_factory
from lpbot.strategy.fixed import FixedWidth
from lpbot.strategy.rebalance import RebalancePolicy
from tests.conftest import Devnet
from tests.execution.conftest import Crash

pytestmark = pytest.mark.devnet


@dataclass
class Position:
    chain: Devnet
    mp: tasks.ManagedPosition
    tokens: tuple[str, str]

    def balances(self) -> tuple[int, int]:
        m = self.chain.manifest
        return tuple(  # type: ignore[return-value]
            contract(self.chain.w3, "TestERC20", t).functions.balanceOf(m.safe).call()
            for t in self.tokens
        )

    def npm(self) -> list[int]:
        return list(
            self.mp.ctx.contract("NonfungiblePositionManager")
            .functions.positions(self.mp.token_id)
            .call()
        )

    def safe_nonce(self) -> int:
        return int(self.mp.ctx.safe_contract.functions.nonce().call())


@pytest.fixture
def position(chain: Devnet, tmp_path: Path) -> Iterator[Position]:
    """A Safe-owned position, wide around the price, that earned fees over two hours of
    trading; managed by the daemon's job body with the owners' keys and an auto-execute limit."""
    m, w3 = chain.manifest, chain.w3
    info = m.pool("USDC/WETH-500")
    npm = contract(w3, "NonfungiblePositionManager", m.contracts["NonfungiblePositionManager"])
    tick = contract(w3, "UniswapV3Pool", info.address).functions.slot0().call()[1]
    t0, t1 = m.token(info.token0).address, m.token(info.token1).address
    lower, upper = (tick - 3000) // 10 * 10, (tick + 3000) // 10 * 10
    tx = npm.functions.mint(
        (t0, t1, 500, lower, upper, 20_000 * 10**6, 8 * 10**18, 0, 0, m.safe, 2**40)
    ).transact({"from": m.accounts.bot, "gas": GAS})
    receipt = w3.eth.wait_for_transaction_receipt(tx)
    event = npm.events.IncreaseLiquidity().process_receipt(receipt, errors=DISCARD)[0]
    token_id = event["args"]["tokenId"]
    run_market(w3, m, info, steps=12, vol=1.2, seed=4, step_seconds=600)
    engine = make_engine(f"sqlite:///{tmp_path / 'lpbot.db'}")
    migrate.upgrade(engine)
    sessions = session_factory(engine)
    ctx = devnet_context(w3, m, SqlRebalanceRepo(sessions), tmp_path / "reports")
    policy = RebalancePolicy(
        strategy=FixedWidth(half_width_ticks=3000),
        edge_pct=None,
        vol_ratio_trigger=None,
        max_age_seconds=None,
        compound_margin=0.01,  # the devnet's gas is cheap next to a test's fees
        rebalance_rule="fees",  # compound on the fees owed, whatever the devnet pool's LVR
    )
    mp = tasks.ManagedPosition(
        name="compounding",
        ctx=ctx,
        sessions=sessions,
        policy=policy,
        token_id=token_id,
        pool=info.address,
        token0=t0,
        token1=t1,
        notifier=MemoryNotifier(),
        owner_signers=[dev_signer(9), dev_signer(10)],
        allow_hot_quorum=True,  # the test's two owners sign from this process, accepted
        auto_execute_max_usd=Decimal(1_000_000),
        auto_via="multisig",
        pricer=chain_pricer(w3, m),
        ledger_from_first_snapshot=True,
        out=lambda _line: None,
    )
    tasks.monitor(mp)  # the ledger starts here
    yield Position(chain, mp, (t0, t1))


def test_the_job_compounds_exactly_as_the_report_says_then_the_gate_holds(
    position: Position,
) -> None:
    mp = position.mp
    before, nonce, npm_before = position.balances(), position.safe_nonce(), position.npm()
    owed = mp.reader.fetch_pool_state(mp.pool, token_ids=[mp.token_id]).uncollected_fees(
        mp.token_id
    )
    assert owed[0] > 0 and owed[1] > 0

    event = tasks.rebalance_check(mp)
    assert event.startswith(f"compounded fees {owed[0]}/{owed[1]} (raw) into #{mp.token_id}")
    (record,) = [r for r in _records(mp) if r.kind == "compound"]
    assert record.state == S.CONFIRMED and record.result is not None
    assert record.result["matches_report"] is True
    report = read_report(mp.ctx.reports_dir, record.report_id or "")
    assert report["operation"] == "compound" and all(c["ok"] for c in report["checks"])
    assert report["dry_run"]["collected"] == [str(owed[0]), str(owed[1])]

    # liquidity rose by the report's amount, on the same NFT; every fee was collected
    after_npm = position.npm()
    added = int(report["position"]["new_liquidity"])
    assert added > 0 and after_npm[7] == npm_before[7] + added
    assert (after_npm[5], after_npm[6]) == (npm_before[5], npm_before[6])
    assert (after_npm[10], after_npm[11]) == (0, 0)  # tokens owed
    # the Safe's balances changed exactly as the report said, to the wei: only the dust left
    after = position.balances()
    change = report["dry_run"]["balance_change"]
    delta = (after[0] - before[0], after[1] - before[1])
    assert delta == (int(change[position.tokens[0]]), int(change[position.tokens[1]]))
    plan = report["plan"]
    assert delta == (int(plan["dust0"]), int(plan["dust1"])) and min(delta) >= 0
    assert position.safe_nonce() == nonce + 1

    # the ledger: the fees collected and put back, not a deposit
    with mp.sessions() as s:
        start = ledger_store.load(s, mp.name)
    assert start is not None
    (flow,) = [f for _, f, _ in start.rebalances if f is not None]
    assert flow.burned == (0, 0) and flow.fees == owed
    assert flow.minted == tuple(int(x) for x in report["dry_run"]["minted"])
    assert start.deposit == mp.entry  # unchanged by the compound
    state = tasks.monitor(mp)
    assert state.ledger is not None
    u = state.ledger.usd
    assert u.net == u.fees + u.il + u.hedge_pnl + u.funding - u.gas - u.swap_costs
    assert "ledger_outside_change" not in {a.kind for a in mp.notifier.alerts}  # type: ignore[attr-defined]

    # right after, the fees owed are nothing: the cost gate holds
    again = tasks.rebalance_check(mp)
    assert again.startswith("hold"), again
    assert position.safe_nonce() == nonce + 1 and position.npm()[7] == after_npm[7]


def _records(mp: tasks.ManagedPosition) -> list:
    repo = mp.ctx.repo
    out, i = [], 1
    while (r := repo.get(i)) is not None:
        out.append(r)
        i += 1
    return out


@pytest.mark.parametrize("crash_at", ["signed", "submitted"])
def test_a_crash_mid_compound_resumes_without_a_second_increase(
    position: Position, crash_at: str
) -> None:
    mp = position.mp
    nonce, liquidity = position.safe_nonce(), position.npm()[7]

    def checkpoint(name: str) -> None:
        if name == crash_at:
            raise Crash(name)

    mp.ctx.checkpoint = checkpoint
    with pytest.raises(Crash):
        tasks.rebalance_check(mp)
    mp.ctx.checkpoint = lambda _name: None  # the restarted process
    (record,) = mp.ctx.repo.unfinished()
    assert (record.kind, record.state.value) == ("compound", crash_at.upper())
    report = read_report(mp.ctx.reports_dir, record.report_id or "")

    resumed = service.resume(mp.ctx)
    assert [(r.kind, r.state) for r in resumed] == [("compound", S.CONFIRMED)]
    assert position.safe_nonce() == nonce + 1
    assert position.npm()[7] == liquidity + int(report["position"]["new_liquidity"])
    # resumed again, and the job's next check: nothing more is added
    assert service.resume(mp.ctx) == []
    assert tasks.rebalance_check(mp).startswith("hold")
    assert position.safe_nonce() == nonce + 1
    assert position.npm()[7] == liquidity + int(report["position"]["new_liquidity"])


def test_compounding_through_the_module(position: Position) -> None:
    """The module already allows collect and increaseLiquidity: the operator key alone."""
    mp = position.mp
    mp.auto_via = "module"
    nonce, liquidity = position.safe_nonce(), position.npm()[7]
    event = tasks.rebalance_check(mp)
    assert "the module's operator key" in event, event
    (record,) = [r for r in _records(mp) if r.kind == "compound"]
    report = read_report(mp.ctx.reports_dir, record.report_id or "")
    assert "module_tx" in report
    assert position.safe_nonce() == nonce  # no Safe transaction
    assert position.npm()[7] == liquidity + int(report["position"]["new_liquidity"])


def test_a_compound_the_module_refuses_waits_for_the_owners_as_a_safe_transaction(
    position: Position,
) -> None:
    """Refused by the module (paused), the compound is planned again for the owners in the
    same block: that plan is a Safe transaction they can sign, not the module call again."""
    mp, w3 = position.mp, position.chain.w3
    module = contract(w3, "LPRebalanceModule", mp.ctx.contracts["LPRebalanceModule"])
    tx = module.functions.pause().transact({"from": dev_signer(9).address, "gas": 200_000})
    assert w3.eth.wait_for_transaction_receipt(tx)["status"] == 1
    mp.auto_via = "module"
    nonce, liquidity = position.safe_nonce(), position.npm()[7]
    event = tasks.rebalance_check(mp)
    assert "awaits approval" in event, event
    assert isinstance(mp.notifier, MemoryNotifier)
    assert [a.kind for a in mp.notifier.alerts] == ["module_refused", "approval_needed"]
    waiting = [r for r in mp.ctx.repo.unfinished() if r.kind == "compound"]
    reports = {r.id: read_report(mp.ctx.reports_dir, r.report_id or "") for r in waiting}
    (owners_plan,) = [r for r in waiting if "safe_tx" in reports[r.id]]
    assert owners_plan.state == S.SIMULATED and owners_plan.approved_by is None
    assert reports[owners_plan.id]["report_id"] in event
    assert all(c["ok"] for c in reports[owners_plan.id]["checks"])
    assert position.safe_nonce() == nonce and position.npm()[7] == liquidity


def test_a_pool_whose_fees_are_below_its_lvr_is_alerted_once(position: Position) -> None:
    """The devnet pool's fees are below its LVR: the daemon's check says so once (issue: the
    daemon alerts when a managed pool turns negative), and holds; nothing is sent."""
    mp = position.mp
    mp.policy = dataclasses.replace(mp.policy, rebalance_rule="ev")
    notifier = MemoryNotifier()
    mp.notifier = notifier
    nonce = position.safe_nonce()
    first = tasks.rebalance_check(mp)
    second = tasks.rebalance_check(mp)
    assert first.startswith("hold") and second.startswith("hold"), (first, second)
    kinds = [a.kind for a in notifier.alerts]
    assert kinds == ["expected_loss"], kinds
    assert "fee/LVR 0." in notifier.alerts[0].title
    assert position.safe_nonce() == nonce


def test_a_compound_waiting_on_another_chain_holds_back_nothing_here(position: Position) -> None:
    # one Safe address on two chains (a Safe deployed at the same address everywhere) and an
    # NFT of the same id on each: the other chain's compound awaiting approval is neither
    # resumed with this chain's context nor a reason for this chain's to wait
    from sqlalchemy import select

    from lpbot.store.models import Position as Row
    from lpbot.store.models import Rebalance

    mp = position.mp
    limit, mp.auto_execute_max_usd = mp.auto_execute_max_usd, Decimal(0)  # asks the owners
    assert "awaits approval" in tasks.rebalance_check(mp)
    (waiting,) = [r for r in _records(mp) if r.kind == "compound"]
    assert waiting.state == S.SIMULATED
    with mp.sessions() as s, s.begin():  # that one is the other chain's (Arbitrum's)
        row = s.get(Rebalance, waiting.id)
        assert row is not None
        s.add(Row(**{
            c.name: getattr(s.get(Row, row.position_id), c.name)
            for c in Row.__table__.columns if c.name != "id"
        } | {"chain_id": 42161, "label": f"42161:{mp.token_id}"}))  # fmt: skip
        s.flush()
        row.position_id = s.scalars(select(Row.id).where(Row.chain_id == 42161)).one()
        row.idempotency_key = f"42161:{row.idempotency_key}"  # its key names its chain
    assert mp.ctx.repo.get(waiting.id).chain_id == 42161  # type: ignore[union-attr]
    mp.auto_execute_max_usd = limit
    nonce = position.safe_nonce()
    event = tasks.rebalance_check(mp)
    assert event.startswith("compounded fees"), event
    assert position.safe_nonce() == nonce + 1
    assert mp.ctx.repo.get(waiting.id).state == S.SIMULATED  # type: ignore[union-attr]

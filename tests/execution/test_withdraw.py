"""Withdrawing a Safe-owned position to the Safe on the devnet: all its liquidity decreased and
everything owed collected, no swap, no mint, the NFT kept; through a 2-of-3 Safe and through the
module; killed between signing and confirmation and resumed without a second send; refused
inputs change nothing."""

from __future__ import annotations

from pathlib import Path

import pytest

from lpbot.chain.forksim import ForkSimulator
from lpbot.devnet.keys import dev_signer
from lpbot.errors import Refused
from lpbot.execution import service
from lpbot.execution.state import RebalanceState
from lpbot.report.dryrun import render_markdown
from lpbot.store import repo as store
from lpbot.store.rebalances import SqlRebalanceRepo
from tests.execution.conftest import Crash, Setup
from tests.execution.test_call_dry_run import fork as fork  # the call dry-run's fork fixture

pytestmark = pytest.mark.devnet
S = RebalanceState
OWNERS = (9, 10, 11)  # Anvil accounts that own the devnet Safe


def _npm(setup: Setup, token_id: int) -> list[int]:
    npm = setup.ctx.contract("NonfungiblePositionManager")
    return list(npm.functions.positions(token_id).call())


def _receipt_collect(setup: Setup, tx_hash: str) -> tuple[int, int]:
    """The Collect event of the receipt: what the position manager paid out."""
    from web3.logs import DISCARD

    npm = setup.ctx.contract("NonfungiblePositionManager")
    receipt = setup.chain.w3.eth.get_transaction_receipt(tx_hash)  # type: ignore[arg-type]
    (event,) = npm.events.Collect().process_receipt(receipt, errors=DISCARD)
    assert event["args"]["recipient"] == setup.ctx.safe
    return int(event["args"]["amount0"]), int(event["args"]["amount1"])


def _check_withdrawn(setup: Setup, record: object, before: tuple[int, int]) -> None:
    """The Safe's balances rose by exactly the receipt's collected amounts; the NFT is the
    Safe's still, with no liquidity and nothing owed."""
    result = record.result  # type: ignore[attr-defined]
    assert result is not None and result["matches_report"] is True
    collected = _receipt_collect(setup, result["tx_hash"])
    assert [str(x) for x in collected] == result["collected"]
    after = setup.balances()
    assert (after[0] - before[0], after[1] - before[1]) == collected
    assert collected[0] > 0 and collected[1] > 0
    position = _npm(setup, setup.token_id)
    assert (position[7], position[10], position[11]) == (0, 0, 0)  # liquidity, tokens owed
    assert result["position_after"] == ["0", "0", "0"]
    npm = setup.ctx.contract("NonfungiblePositionManager")
    assert npm.functions.ownerOf(setup.token_id).call() == setup.ctx.safe  # not burned


def test_a_withdraw_through_a_2_of_3_safe(setup: Setup) -> None:
    ctx = setup.ctx
    before, nonce = setup.balances(), setup.safe_nonce()
    liquidity = _npm(setup, setup.token_id)[7]

    record, report, paths = service.plan_withdraw(ctx, setup.token_id, "test")
    assert (record.kind, record.state) == ("withdraw", S.SIMULATED)
    assert report["operation"] == "withdraw"
    assert all(c["ok"] for c in report["checks"]), report["checks"]
    names = {c["name"] for c in report["checks"]}
    assert "the position holds no liquidity and owes nothing after" in names
    assert "the Safe receives what was collected" in names
    # the report: what the Safe receives, at what market value, and that nothing stays
    plan, dry = report["plan"], report["dry_run"]
    assert plan["swap_zero_for_one"] is None and plan["new_liquidity"] == "0"
    assert dry["swap"] is None and dry["new_token_id"] is None
    assert dry["position_after"] == ["0", "0", "0"]
    assert report["position"]["old_liquidity"] == str(liquidity)
    assert int(plan["decrease_min0"]) < int(plan["decrease0"])  # the slippage bound is set
    assert report["deadline"] > report["snapshot"]["timestamp"]
    md = paths["md"].read_text()
    assert md.startswith(f"# Withdraw dry-run {report['report_id']}")
    assert "The Safe receives" in md and "market value $" in md
    assert "the position will hold no liquidity" in md
    (call,) = report["calls"]
    assert "collect all to the Safe" in call["label"] and "burn" not in call["label"]
    assert setup.balances() == before and setup.safe_nonce() == nonce  # the dry-run left nothing

    service.approve(ctx, report["report_id"], approver="alice")
    record = service.execute(ctx, report["report_id"], signers=[dev_signer(i) for i in OWNERS[:2]])
    assert record.state == S.CONFIRMED
    assert setup.safe_nonce() == nonce + 1
    _check_withdrawn(setup, record, before)
    change = dry["balance_change"]
    after = setup.balances()
    # the dry-run said it to the wei (no block passed between them on the devnet)
    assert after[0] - before[0] == int(change[setup.tokens[0]])
    assert after[1] - before[1] == int(change[setup.tokens[1]])

    # the store: the position is withdrawn (closed by a confirmed withdraw)
    if isinstance(ctx.repo, SqlRebalanceRepo):
        with ctx.repo.sessions() as s:
            found = store.withdrawal_of(s, ctx.chain_id, setup.token_id)
            assert found is not None and found.id == record.id
            assert store.open_positions(s) == []

    # withdrawn: a second withdraw is refused before anything is recorded
    with pytest.raises(Refused, match="holds no liquidity"):
        service.plan_withdraw(ctx, setup.token_id, "again")
    assert ctx.repo.unfinished() == []


def test_a_withdraw_through_the_module_needs_no_owner_signature(setup: Setup) -> None:
    """The module allows decreaseLiquidity and collect to the Safe: the operator key alone;
    the module charges the decrease at its reference price (its loss budget) and passes it."""
    ctx = setup.ctx
    ctx.via = "module"
    before, nonce = setup.balances(), setup.safe_nonce()
    record, report, _ = service.plan_withdraw(ctx, setup.token_id, "test")
    assert "module_tx" in report and "safe_tx" not in report
    assert all(c["ok"] for c in report["checks"]), report["checks"]
    service.approve(ctx, report["report_id"], approver="alice")
    record = service.execute(ctx, report["report_id"])  # no owner signers at all
    assert record.state == S.CONFIRMED
    assert setup.safe_nonce() == nonce  # no Safe transaction: the module called for the Safe
    _check_withdrawn(setup, record, before)


@pytest.mark.parametrize("via", ["multisig", "module"])
@pytest.mark.parametrize("crash_at", ["signed", "submitted"])
def test_a_kill_between_signing_and_confirmation_resumes_without_a_second_send(
    setup: Setup, crash_at: str, via: str
) -> None:
    ctx = setup.ctx
    ctx.via = via
    before, nonce = setup.balances(), setup.safe_nonce()
    sender = (ctx.operator if via == "module" else ctx.executor).address  # type: ignore[union-attr]
    sent_before = setup.chain.w3.eth.get_transaction_count(sender)

    def checkpoint(name: str) -> None:
        if name == crash_at:
            raise Crash(name)

    _, report, _ = service.plan_withdraw(ctx, setup.token_id, "test")
    service.approve(ctx, report["report_id"], approver="alice")
    ctx.checkpoint = checkpoint
    with pytest.raises(Crash):
        service.execute(ctx, report["report_id"], signers=[dev_signer(i) for i in OWNERS[:2]])
    ctx.checkpoint = lambda _name: None  # the restarted process
    (left,) = ctx.repo.unfinished()
    assert (left.kind, left.state.value) == ("withdraw", crash_at.upper())

    [record] = service.resume(ctx)
    assert (record.kind, record.state) == ("withdraw", S.CONFIRMED)
    _check_withdrawn(setup, record, before)
    # one transaction was sent, once
    assert setup.chain.w3.eth.get_transaction_count(sender) == sent_before + 1
    assert setup.safe_nonce() == nonce + (1 if via == "multisig" else 0)
    assert service.resume(ctx) == []
    assert setup.chain.w3.eth.get_transaction_count(sender) == sent_before + 1


def test_a_second_plan_finds_the_waiting_withdraw(setup: Setup) -> None:
    ctx = setup.ctx
    first, report, _ = service.plan_withdraw(ctx, setup.token_id, "first")
    again, same, paths = service.plan_withdraw(ctx, setup.token_id, "second")
    assert again.id == first.id and same["report_id"] == report["report_id"] and paths == {}
    assert [r.id for r in ctx.repo.unfinished()] == [first.id]


def test_bad_inputs_are_refused_and_change_nothing(setup: Setup, tmp_path: Path) -> None:
    ctx = setup.ctx
    before, nonce = setup.balances(), setup.safe_nonce()
    with pytest.raises(Refused, match="does not exist"):
        service.plan_withdraw(ctx, 10**9, "unknown")
    # a position the Safe does not own
    m = setup.chain.manifest
    from web3.logs import DISCARD

    from lpbot.devnet.deploy import GAS, contract

    w3 = setup.chain.w3
    npm = contract(w3, "NonfungiblePositionManager", m.contracts["NonfungiblePositionManager"])
    p = _npm(setup, setup.token_id)
    tx = npm.functions.mint(
        (p[2], p[3], p[4], p[5], p[6], 10**6, 10**15, 0, 0, m.accounts.bot, 2**40)
    ).transact({"from": m.accounts.bot, "gas": GAS})
    receipt = w3.eth.wait_for_transaction_receipt(tx)
    theirs = npm.events.IncreaseLiquidity().process_receipt(receipt, errors=DISCARD)[0]["args"][
        "tokenId"
    ]
    with pytest.raises(Refused, match="not the Safe"):
        service.plan_withdraw(ctx, theirs, "not ours")
    assert ctx.repo.unfinished() == []
    assert setup.balances() == before and setup.safe_nonce() == nonce
    assert report_files(ctx.reports_dir) == []


def report_files(directory: Path) -> list[Path]:
    return sorted(directory.glob("*.json")) if directory.exists() else []


def test_the_markdown_names_the_withdraw(setup: Setup) -> None:
    _, report, _ = service.plan_withdraw(setup.ctx, setup.token_id, "stressed market")
    md = render_markdown(report)
    assert "Why: stressed market" in md
    assert "(kept, empty, owned by the Safe)" in md
    assert "Deposited in" not in md


def test_a_stale_withdraw_is_replanned_as_a_withdraw(setup: Setup) -> None:
    ctx = setup.ctx
    first, _, _ = service.plan_withdraw(ctx, setup.token_id, "first")
    ctx.repo.transition(first.id, S.SIMULATED, S.STALE, error="test")
    record, again, _ = service.replan(ctx, first.id)
    assert record.kind == "withdraw" and record.id != first.id
    assert again["operation"] == "withdraw" and again["plan"]["new_liquidity"] == "0"
    assert "(re-planned after withdraw" in again["reason"]


def test_a_withdraw_gets_the_same_report_from_the_call_dry_run(
    setup: Setup, fork: ForkSimulator, tmp_path: Path
) -> None:
    """Where the chain is dry-run by eth_call (no fork): the same report, the emptied NFT read
    in the Safe-context replay; then executed as any other."""
    from tests.execution.test_call_dry_run import _assert_same, _both

    def plan(ctx: service.ExecutionContext) -> dict[str, object]:
        _record, report, _ = service.plan_withdraw(ctx, setup.token_id, "t")
        return report

    fork_report, call_report, by_call = _both(setup, fork, tmp_path, plan)
    _assert_same(fork_report, call_report)
    assert all(c["ok"] for c in call_report["checks"]), call_report["checks"]
    assert call_report["dry_run"]["position_after"] == ["0", "0", "0"]
    before = setup.balances()
    service.approve(by_call, call_report["report_id"], approver="alice")
    signers = [dev_signer(i) for i in OWNERS[:2]]
    record = service.execute(by_call, call_report["report_id"], signers=signers)
    assert record.state == S.CONFIRMED
    _check_withdrawn(setup, record, before)


def test_a_withdraw_is_refused_while_a_rebalance_of_the_nft_is_in_flight(setup: Setup) -> None:
    """An approved (or sent) rebalance of the same NFT: the withdraw is refused in one line,
    nothing recorded; one only waiting for approval is superseded (made STALE: it can never
    run after the withdraw emptied its NFT)."""
    ctx = setup.ctx
    before, nonce = setup.balances(), setup.safe_nonce()
    waiting, report, _ = service.plan_rebalance(ctx, setup.token_id, setup.new_range, "t")
    service.approve(ctx, report["report_id"], approver="alice")
    with pytest.raises(Refused, match=f"rebalance {waiting.id} of #{setup.token_id} is APPROVED"):
        service.plan_withdraw(ctx, setup.token_id, "while a rebalance is in flight")
    assert [(r.id, r.kind) for r in ctx.repo.unfinished()] == [(waiting.id, "rebalance")]
    assert setup.balances() == before and setup.safe_nonce() == nonce

    # only waiting for approval: the withdraw supersedes it
    ctx.repo.transition(waiting.id, S.APPROVED, S.STALE, error="test")
    again, _, _ = service.replan(ctx, waiting.id)
    assert again.state == S.SIMULATED
    record, _, _ = service.plan_withdraw(ctx, setup.token_id, "the owner withdraws instead")
    assert record.kind == "withdraw" and record.state == S.SIMULATED
    assert [r.id for r in ctx.repo.unfinished()] == [record.id]
    superseded = ctx.repo.get(again.id)
    assert superseded is not None and superseded.state == S.STALE

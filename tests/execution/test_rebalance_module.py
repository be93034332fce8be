"""Rebalancing through LPRebalanceModule on the devnet: the operator key alone, within limits;
what the module refuses is caught by the dry-run, before anything is signed."""

from __future__ import annotations

import pytest

from lpbot.devnet.deploy import contract
from lpbot.errors import Refused
from lpbot.execution import service
from lpbot.execution.state import RebalanceState
from tests.execution.conftest import Crash, Setup

pytestmark = pytest.mark.devnet
S = RebalanceState


def test_a_rebalance_through_the_module_needs_no_owner_signature(setup: Setup) -> None:
    ctx = setup.ctx
    ctx.via = "module"
    npm = ctx.contract("NonfungiblePositionManager")
    before, nonce = setup.balances(), setup.safe_nonce()

    record, report, paths = service.plan_rebalance(ctx, setup.token_id, setup.new_range, "test")
    assert "module_tx" in report and "safe_tx" not in report
    assert all(c["ok"] for c in report["checks"]), report["checks"]
    assert "rebalance module" in paths["md"].read_text()
    service.approve(ctx, report["report_id"], approver="alice")
    record = service.execute(ctx, report["report_id"])  # no owner signers at all
    assert record.state == S.CONFIRMED
    assert record.result is not None and record.result["matches_report"] is True

    after = setup.balances()
    change = report["dry_run"]["balance_change"]
    assert after[0] - before[0] == int(change[setup.tokens[0]])
    assert after[1] - before[1] == int(change[setup.tokens[1]])
    assert setup.safe_nonce() == nonce  # no Safe transaction: the module called for the Safe
    new_id = record.result["new_token_id"]
    assert npm.functions.ownerOf(new_id).call() == ctx.safe


def test_the_dry_run_catches_what_the_module_refuses(setup: Setup) -> None:
    ctx = setup.ctx
    ctx.via = "module"
    _, report, _ = service.plan_rebalance(ctx, setup.token_id, setup.new_range, "first")
    service.approve(ctx, report["report_id"], approver="alice")
    first = service.execute(ctx, report["report_id"])
    assert first.result is not None
    # a second rebalance minutes later: the module's minimum interval (10 min) refuses it
    new_id = first.result["new_token_id"]
    shifted = type(setup.new_range)(
        setup.new_range.tick_lower - 100, setup.new_range.tick_upper - 100, 10
    )
    before, nonce = setup.balances(), setup.safe_nonce()
    _, second, _ = service.plan_rebalance(ctx, new_id, shifted, "second")
    failed = [c for c in second["checks"] if not c["ok"]]
    assert failed and failed[0]["name"] == "dry-run succeeded"
    with pytest.raises(Refused, match="failed its checks"):
        service.approve(ctx, second["report_id"], approver="alice")
    assert setup.balances() == before and setup.safe_nonce() == nonce


def test_kill_after_submitting_a_module_call_and_resume_executes_once(setup: Setup) -> None:
    ctx = setup.ctx
    ctx.via = "module"
    module = contract(setup.chain.w3, "LPRebalanceModule", ctx.contracts["LPRebalanceModule"])
    last_before = module.functions.lastRebalanceAt().call()

    def checkpoint(name: str) -> None:
        if name == "submitted":
            raise Crash(name)

    _, report, _ = service.plan_rebalance(ctx, setup.token_id, setup.new_range, "test")
    service.approve(ctx, report["report_id"], approver="alice")
    ctx.checkpoint = checkpoint
    with pytest.raises(Crash):
        service.execute(ctx, report["report_id"])
    ctx.checkpoint = lambda _name: None
    [record] = service.resume(ctx)
    assert record.state == S.CONFIRMED
    # the module counted exactly one rebalance: one call went through
    assert module.functions.lastRebalanceAt().call() > last_before
    assert module.functions.rebalancesOnDay().call() == 1
    assert service.resume(ctx) == []

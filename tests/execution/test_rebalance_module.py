"""Rebalancing through LPRebalanceModule on the devnet: the operator key alone, within limits
and the owners' loss budget; what the module refuses is caught by the dry-run, by its decoded
name, before anything is signed."""

from __future__ import annotations

import pytest

from lpbot.devnet.deploy import (
    MODULE_ANCHOR,
    MODULE_BOUNDS,
    MODULE_LOSS_BUDGET,
    MODULE_PRICE_CHECK,
    ZERO_ADDRESS,
    contract,
)
from lpbot.devnet.keys import dev_signer
from lpbot.errors import Refused
from lpbot.execution import service
from lpbot.execution.state import RebalanceState
from lpbot.signing.module import budget_mismatches, fetch_module_bounds
from tests.conftest import Devnet
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
    assert "the module refused: TooSoon(earliest=" in failed[0]["detail"]
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
    assert module.functions.window().call()[0] == 1
    assert service.resume(ctx) == []


def _as(setup: Setup, sender: str, fn: str, *args: object) -> None:
    """Send a module call from ``sender`` (impersonated on the devnet)."""
    w3 = setup.chain.w3
    module = contract(w3, "LPRebalanceModule", setup.ctx.contracts["LPRebalanceModule"])
    w3.provider.make_request("anvil_impersonateAccount", [sender])  # type: ignore[arg-type]
    w3.provider.make_request("anvil_setBalance", [sender, hex(10**18)])  # type: ignore[arg-type]
    tx = getattr(module.functions, fn)(*args).transact({"from": sender, "gas": 200_000})
    assert w3.eth.wait_for_transaction_receipt(tx)["status"] == 1
    w3.provider.make_request("anvil_stopImpersonatingAccount", [sender])  # type: ignore[arg-type]


def _refused_by_dry_run(setup: Setup, name: str) -> None:
    ctx = setup.ctx
    before, nonce = setup.balances(), setup.safe_nonce()
    _, report, _ = service.plan_rebalance(ctx, setup.token_id, setup.new_range, "test")
    failed = [c for c in report["checks"] if not c["ok"]]
    assert failed and failed[0]["name"] == "dry-run succeeded"
    assert f"the module refused: {name}" in failed[0]["detail"], failed[0]["detail"]
    with pytest.raises(Refused, match="failed its checks"):
        service.approve(ctx, report["report_id"], approver="alice")
    assert setup.balances() == before and setup.safe_nonce() == nonce


def test_the_devnet_module_carries_the_owners_budget(chain: Devnet) -> None:
    bounds = fetch_module_bounds(chain.w3, chain.manifest.contracts["LPRebalanceModule"])
    assert (bounds.loss_budget_per_call_bps, bounds.loss_budget_per_day_bps) == MODULE_LOSS_BUDGET
    assert (bounds.slippage_bps, bounds.min_range_width, bounds.max_deadline_horizon) == (
        MODULE_BOUNDS
    )
    assert bounds.twap_window == MODULE_PRICE_CHECK[0] == 30 * 60
    assert not bounds.paused and bounds.rebalances_in_window == 0
    assert "loss budget: 100 bps per call, 300 bps per 24 h" in bounds.lines()[0]
    assert budget_mismatches(bounds, per_call_bps=100, per_day_bps=300) == []
    assert budget_mismatches(bounds, per_call_bps=50, per_day_bps=None) == [
        "signer.module.loss_budget_per_call_bps = 50, but the module's owners set 100"
    ]


# the store plays no part in a refusal: one of its two kinds is enough
@pytest.mark.parametrize("repo", ["memory"], indirect=True)
def test_a_plan_beyond_the_loss_budget_is_refused_in_the_dry_run(setup: Setup) -> None:
    setup.ctx.via = "module"
    # the owners allow no loss at all: the rebalance's swap fee alone is over budget
    _as(setup, setup.ctx.safe, "setLossBudget", 0, 0)
    _refused_by_dry_run(setup, "CallLossBudgetExceeded(loss=")


@pytest.mark.parametrize("repo", ["memory"], indirect=True)
def test_any_single_owner_pauses_the_operator(setup: Setup) -> None:
    setup.ctx.via = "module"
    _as(setup, dev_signer(9).address, "pause")
    assert fetch_module_bounds(setup.chain.w3, setup.ctx.contracts["LPRebalanceModule"]).paused
    _refused_by_dry_run(setup, "IsPaused()")


def test_the_devnet_anchors_every_listed_pool_to_its_feeds(chain: Devnet) -> None:
    m, w3 = chain.manifest, chain.w3
    module = contract(w3, "LPRebalanceModule", m.contracts["LPRebalanceModule"])
    assert m.pools
    for p in m.pools:
        feed0, max_age, max_deviation, _exp, feed1 = module.functions.anchorOf(p.address).call()
        assert (max_age, max_deviation) == MODULE_ANCHOR
        for feed, symbol in ((feed0, p.token0), (feed1, p.token1)):
            # USDC is the unit (no feed); the others are priced by the devnet's feeds
            assert feed == (ZERO_ADDRESS if symbol == "USDC" else m.price_feeds[symbol])
        # the feeds start at the pools' prices: the anchor admits the pool as deployed
        tick = contract(w3, "UniswapV3Pool", p.address).functions.slot0().call()[1]
        assert abs(module.functions.anchorTick(p.address).call() - tick) <= 5


@pytest.mark.parametrize("repo", ["memory"], indirect=True)
def test_a_pool_off_its_feeds_is_refused_in_the_dry_run(setup: Setup) -> None:
    """The feeds say ETH is worth twice what the pool (its TWAP) says: refused before anything
    is signed. The planner's reference-price guard reads the same feeds and refuses first; the
    module's own AnchorDeviates refusal is tested on the contract (forge)."""
    setup.ctx.via = "module"
    m, w3 = setup.chain.manifest, setup.chain.w3
    feed = contract(w3, "PriceFeed", m.price_feeds["WETH"])
    answer = feed.functions.latestAnswer().call()
    tx = feed.functions.updateAnswer(answer * 2).transact({"from": m.accounts.deployer})
    assert w3.eth.wait_for_transaction_receipt(tx)["status"] == 1
    before, nonce = setup.balances(), setup.safe_nonce()
    with pytest.raises(Refused, match="from the reference price chainlink feed"):
        service.plan_rebalance(setup.ctx, setup.token_id, setup.new_range, "test")
    assert setup.ctx.repo.unfinished() == []
    assert setup.balances() == before and setup.safe_nonce() == nonce

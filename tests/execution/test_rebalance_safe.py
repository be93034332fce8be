"""A Safe-owned position rebalanced end to end on the devnet: plan, dry-run report, approval,
2-of-3 signatures, execution, reconciliation; the refusals; kill-and-resume at every step."""

from __future__ import annotations

import threading

import pytest

from lpbot.chain.submit import SentTx, Submitter
from lpbot.devnet.deploy import GAS, contract
from lpbot.devnet.keys import dev_signer
from lpbot.errors import NeedsAttention, Refused
from lpbot.execution import service
from lpbot.execution.plan import swap_price_limit
from lpbot.execution.preflight import PreflightRefused
from lpbot.execution.state import RebalanceState
from tests.conftest import Devnet
from tests.execution.conftest import Crash, Setup

pytestmark = pytest.mark.devnet
S = RebalanceState
OWNERS = (9, 10, 11)  # Anvil accounts that own the devnet Safe


def _owners() -> list:
    return [dev_signer(i) for i in OWNERS]


def test_full_rebalance_through_a_2_of_3_safe(setup: Setup) -> None:
    ctx = setup.ctx
    npm = ctx.contract("NonfungiblePositionManager")
    before = setup.balances()
    nonce = setup.safe_nonce()

    record, report, paths = service.plan_rebalance(ctx, setup.token_id, setup.new_range, "test")
    assert record.state == S.SIMULATED
    assert all(c["ok"] for c in report["checks"]), report["checks"]
    assert paths["md"].read_text().startswith(f"# Rebalance dry-run {report['report_id']}")
    # the swap carries a price limit: the simulated price after it, the slippage further
    plan = report["plan"]
    assert plan["swap_zero_for_one"] is not None
    limit = int(plan["swap_sqrt_price_limit_x96"])
    assert limit == swap_price_limit(
        int(report["dry_run"]["sqrt_price_after"]), plan["swap_zero_for_one"], ctx.slippage_bps
    )
    assert f"{limit:064x}" in next(c["data"] for c in report["calls"] if "swap" in c["label"])
    assert "<svg" in paths["html"].read_text()
    # the dry-run left nothing behind
    assert setup.balances() == before and setup.safe_nonce() == nonce

    service.approve(ctx, report["report_id"], approver="alice")
    record = service.execute(ctx, report["report_id"], signers=_owners()[:2])
    assert record.state == S.CONFIRMED
    assert record.result is not None and record.result["matches_report"] is True

    # balances moved exactly as the report said, to the wei
    after = setup.balances()
    expected = report["dry_run"]["balance_change"]
    assert after[0] - before[0] == int(expected[setup.tokens[0]])
    assert after[1] - before[1] == int(expected[setup.tokens[1]])
    assert setup.safe_nonce() == nonce + 1
    new_id = record.result["new_token_id"]
    assert npm.functions.ownerOf(new_id).call() == ctx.safe
    position = npm.functions.positions(new_id).call()
    assert (position[5], position[6]) == (setup.new_range.tick_lower, setup.new_range.tick_upper)
    assert str(position[7]) == report["position"]["new_liquidity"]
    with pytest.raises(Exception, match="nonexistent token"):
        npm.functions.ownerOf(setup.token_id).call()  # the old NFT was burned


def test_execution_is_refused_without_approval(setup: Setup) -> None:
    ctx = setup.ctx
    nonce, before = setup.safe_nonce(), setup.balances()
    record, report, _ = service.plan_rebalance(ctx, setup.token_id, setup.new_range, "test")
    with pytest.raises(Refused, match="only an approved report"):
        service.execute(ctx, report["report_id"], signers=_owners())
    assert ctx.repo.get(record.id).state == S.SIMULATED  # type: ignore[union-attr]
    assert setup.safe_nonce() == nonce and setup.balances() == before


def test_one_signature_is_not_enough(setup: Setup) -> None:
    ctx = setup.ctx
    _, report, _ = service.plan_rebalance(ctx, setup.token_id, setup.new_range, "test")
    service.approve(ctx, report["report_id"], approver="alice")
    with pytest.raises(NeedsAttention, match="1 of 2"):
        service.execute(ctx, report["report_id"], signers=_owners()[:1])
    assert ctx.repo.by_report(report["report_id"]).state == S.APPROVED  # type: ignore[union-attr]


def test_a_price_move_after_the_dry_run_is_not_sent_and_loses_nothing(setup: Setup) -> None:
    ctx = setup.ctx
    m = setup.chain.manifest
    npm = ctx.contract("NonfungiblePositionManager")
    _, report, _ = service.plan_rebalance(ctx, setup.token_id, setup.new_range, "test")
    service.approve(ctx, report["report_id"], approver="alice")
    # someone moves the price 3% before the rebalance lands
    pool = contract(setup.chain.w3, "UniswapV3Pool", setup.pool)
    sqrt = pool.functions.slot0().call()[0]
    router = contract(setup.chain.w3, "SwapRouter02", m.contracts["SwapRouter02"])
    trader = m.accounts.traders[1]
    router.functions.exactInputSingle(
        (setup.tokens[0], setup.tokens[1], 500, trader, 10**15, 0, sqrt * 985 // 1000)
    ).transact({"from": trader, "gas": GAS})
    before, nonce = setup.balances(), setup.safe_nonce()
    liquidity_before = npm.functions.positions(setup.token_id).call()[7]

    sent_before = setup.chain.w3.eth.get_transaction_count(ctx.executor.address)
    with pytest.raises(PreflightRefused, match="price moved"):
        service.execute(ctx, report["report_id"], signers=_owners()[:2])
    assert ctx.repo.by_report(report["report_id"]).state == S.STALE  # type: ignore[union-attr]
    assert setup.chain.w3.eth.get_transaction_count(ctx.executor.address) == sent_before
    assert setup.balances() == before
    assert setup.safe_nonce() == nonce
    assert npm.functions.positions(setup.token_id).call()[7] == liquidity_before


def test_a_manipulated_pool_is_refused(setup: Setup) -> None:
    ctx = setup.ctx
    m = setup.chain.manifest
    pool = contract(setup.chain.w3, "UniswapV3Pool", setup.pool)
    sqrt = pool.functions.slot0().call()[0]
    router = contract(setup.chain.w3, "SwapRouter02", m.contracts["SwapRouter02"])
    trader = m.accounts.traders[1]
    # a large swap in the block before planning pushes the spot 5% off its TWAP
    router.functions.exactInputSingle(
        (setup.tokens[1], setup.tokens[0], 500, trader, 10**24, 0, sqrt * 1025 // 1000)
    ).transact({"from": trader, "gas": GAS})
    with pytest.raises(Refused, match="may be manipulated"):
        service.plan_rebalance(ctx, setup.token_id, setup.new_range, "test")
    assert ctx.repo.unfinished() == []


@pytest.mark.parametrize("crash_at", ["planned", "simulated", "approved", "signed", "submitted"])
def test_kill_and_resume_at_every_step_executes_once(setup: Setup, crash_at: str) -> None:
    ctx = setup.ctx
    nonce = setup.safe_nonce()

    def checkpoint(name: str) -> None:
        if name == crash_at:
            raise Crash(name)

    ctx.checkpoint = checkpoint
    report_id = None
    with pytest.raises(Crash):
        _, report, _ = service.plan_rebalance(ctx, setup.token_id, setup.new_range, "test")
        report_id = report["report_id"]
        service.approve(ctx, report_id, approver="alice")
        service.execute(ctx, report_id, signers=_owners()[:2])
    ctx.checkpoint = lambda _name: None  # the restarted process

    resumed = service.resume(ctx)
    if crash_at == "planned":
        assert [r.state for r in resumed] == [S.EXPIRED]  # nothing was signed: abandoned
        _, report, _ = service.plan_rebalance(ctx, setup.token_id, setup.new_range, "again")
        report_id = report["report_id"]
    record = ctx.repo.by_report(report_id) if report_id else ctx.repo.unfinished()[0]
    assert record is not None
    report_id = record.report_id
    assert report_id is not None
    if record.state == S.SIMULATED:
        service.approve(ctx, report_id, approver="alice")
        record = ctx.repo.by_report(report_id)  # type: ignore[assignment]
    if record.state == S.APPROVED:
        record = service.execute(ctx, report_id, signers=_owners()[:2])
    assert record.state == S.CONFIRMED
    assert setup.safe_nonce() == nonce + 1  # executed exactly once
    # running resume again changes nothing
    assert service.resume(ctx) == []
    assert setup.safe_nonce() == nonce + 1


def test_a_stuck_transaction_is_replaced_with_higher_fees(chain: Devnet) -> None:
    w3 = chain.w3
    m = chain.manifest
    sender = dev_signer(7)
    token = contract(w3, "TestERC20", m.token("USDC").address)
    data = bytes.fromhex(token.encode_abi(fn_name="approve", args=[m.accounts.bot, 1])[2:])
    sent: list[SentTx] = []
    w3.provider.make_request("evm_setAutomine", [False])  # type: ignore[arg-type]
    try:

        def on_sent(tx: SentTx) -> None:
            sent.append(tx)
            if len(sent) == 2:  # the replacement is in the mempool: mine a block now
                threading.Timer(
                    0.3,
                    lambda: w3.provider.make_request("evm_mine", []),  # type: ignore[arg-type]
                ).start()

        checked: list[dict] = []
        submitter = Submitter(
            w3, sender, preflight=checked.append, replace_after=0.5, max_replacements=2, poll=0.05
        )
        receipt, mined = submitter.send_and_confirm(token.address, data, 100_000, on_sent=on_sent)
    finally:
        w3.provider.make_request("evm_setAutomine", [True])  # type: ignore[arg-type]
    assert len(sent) == 2
    first, second = sent
    assert first.nonce == second.nonce
    assert second.fees.max_fee_per_gas * 1000 >= first.fees.max_fee_per_gas * 1125
    assert second.fees.max_priority_fee_per_gas * 1000 >= first.fees.max_priority_fee_per_gas * 1125
    assert "0x" + bytes(receipt["transactionHash"]).hex() == second.hash == mined.hash
    assert receipt["status"] == 1
    assert len(checked) == 4  # each transaction checked before signing and before sending


def test_a_report_of_another_chain_is_refused_and_left_as_it_was(setup: Setup) -> None:
    # one store, several chains, one Safe address on each: `lpbot rebalance execute REPORT`
    # run with another chain's context (its first position's, --position forgotten) must
    # refuse in one line, neither expire nor spoil the report, and send nothing
    import dataclasses

    ctx = setup.ctx
    nonce, before = setup.safe_nonce(), setup.balances()
    record, report, _ = service.plan_rebalance(ctx, setup.token_id, setup.new_range, "test")
    service.approve(ctx, report["report_id"], approver="alice")
    arbitrum = dataclasses.replace(ctx, chain_id=42161)  # the same Safe address, on Arbitrum
    with pytest.raises(Refused, match=f"of chain id {ctx.chain_id}, not 42161"):
        service.execute(arbitrum, report["report_id"], signers=_owners()[:2])
    with pytest.raises(Refused, match=f"of chain id {ctx.chain_id}, not 42161"):
        service.approve(arbitrum, report["report_id"], approver="bob")
    assert ctx.repo.get(record.id).state == S.APPROVED  # type: ignore[union-attr]
    assert setup.safe_nonce() == nonce and setup.balances() == before

"""The call dry-run (``eth_call`` only: SimulateTxAccessor and Multicall3 through the Safe's
simulateAndRevert) writes the same report as the fork's dry-run, on the devnet.

Each test plans the same operation twice on the same chain state: once dry-run on a second
Anvil forking the devnet (the path every live chain with a fork takes), once by ``eth_call`` on
the devnet's own node. Every field of the two reports is compared; only those that are
path-specific by nature may differ (``PATH_SPECIFIC``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from lpbot.chain.forksim import ForkSimulator
from lpbot.devnet.deploy import GAS, contract
from lpbot.devnet.keys import dev_signer
from lpbot.errors import Refused
from lpbot.execution import service
from lpbot.execution.service import ExecutionContext
from lpbot.execution.state import RebalanceRepo, RebalanceState
from lpbot.report.dryrun import render_markdown
from lpbot.testing.fakes import MemoryRebalanceRepo
from tests.execution.conftest import Setup

pytestmark = pytest.mark.devnet

# what differs between the two dry-runs by nature: when the report was written (and so its
# hash), how the dry-run ran, the block it reports (the fork: the block it mined the
# transaction in, after the owners' approvals; the call: the block whose state it read), and the
# gas (the fork: the receipt's, after refunds; the call: the accessor's measure of the batch
# plus execTransaction's overhead, before refunds) and what that gas costs
PATH_SPECIFIC = {
    "created_at",
    "report_hash",
    "report_id",
    "dry_run.method",
    "dry_run.block",
    "dry_run.gas_used",
    "dry_run.gas_cost_wei",
    "dry_run.gas_cost_usd",
}


@pytest.fixture
def repo() -> RebalanceRepo:
    return MemoryRebalanceRepo()


@pytest.fixture
def fork(setup: Setup) -> Iterator[ForkSimulator]:
    sim = ForkSimulator(setup.chain.url)
    try:
        yield sim
    finally:
        sim.close()


def _flat(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for k, v in value.items():
            out.update(_flat(v, f"{prefix}.{k}" if prefix else str(k)))
        return out
    return {prefix: value}


def _both(
    setup: Setup,
    fork: ForkSimulator,
    tmp_path: Path,
    plan: Callable[[ExecutionContext], dict[str, Any]],
) -> tuple[dict[str, Any], dict[str, Any], ExecutionContext]:
    """The report of ``plan`` dry-run on the fork, then by eth_call, from the same state."""
    block = setup.chain.w3.eth.block_number
    by_fork = dataclasses.replace(setup.ctx, simulator=fork.fresh, dry_run="fork")
    fork_report = plan(by_fork)
    assert setup.chain.w3.eth.block_number == block  # the fork's dry-run left the chain alone
    by_call = dataclasses.replace(
        setup.ctx,
        simulator=None,
        dry_run="call",
        repo=MemoryRebalanceRepo(),
        reports_dir=tmp_path / "call-reports",
    )
    call_report = plan(by_call)
    assert setup.chain.w3.eth.block_number == block  # eth_call only: nothing mined
    return fork_report, call_report, by_call


def _assert_same(fork_report: dict[str, Any], call_report: dict[str, Any]) -> None:
    a, b = _flat(fork_report), _flat(call_report)
    assert set(a) == set(b)
    differ = {k for k in a if a[k] != b[k]}
    assert differ <= PATH_SPECIFIC, {k: (a[k], b[k]) for k in differ - PATH_SPECIFIC}
    assert (fork_report["dry_run"]["method"], call_report["dry_run"]["method"]) == ("fork", "call")
    # the person reading the report is told how it was dry-run, and what the call did not run
    fork_md, call_md = render_markdown(fork_report), render_markdown(call_report)
    assert "- Dry-run: executed on a disposable fork of the chain" in fork_md
    assert "eth_call" not in fork_md
    assert "- Dry-run: by eth_call on the chain's node at block " in call_md
    assert "nothing was executed" in call_md
    # the call's gas: the batch as the accessor measured it plus execTransaction's overhead,
    # before refunds; the fork's receipt is after them, which take at most a fifth (EIP-3529):
    # within 3% of that window
    fork_gas, call_gas = fork_report["dry_run"]["gas_used"], call_report["dry_run"]["gas_used"]
    print(f"gas: fork {fork_gas:,}, call {call_gas:,}")
    assert call_gas * 0.8 * 0.97 <= fork_gas <= call_gas * 1.03


def test_a_rebalance_gets_the_same_report_from_the_call_dry_run(
    setup: Setup, fork: ForkSimulator, tmp_path: Path
) -> None:
    def plan(ctx: ExecutionContext) -> dict[str, Any]:
        _record, report, _ = service.plan_rebalance(ctx, setup.token_id, setup.new_range, "t")
        return report

    fork_report, call_report, by_call = _both(setup, fork, tmp_path, plan)
    _assert_same(fork_report, call_report)
    d = call_report["dry_run"]
    assert all(c["ok"] for c in call_report["checks"]), call_report["checks"]
    # every step of the batch was seen: decrease, collect, a swap in the pool, a mint to the Safe
    assert int(d["decreased"][0]) > 0 and int(d["decreased"][1]) > 0
    assert int(d["collected"][0]) >= int(d["decreased"][0])
    assert d["swap"] is not None and int(d["new_liquidity"]) > 0
    assert d["new_token_id"] == fork_report["dry_run"]["new_token_id"]

    # the call-path report is executed as any other; the chain does what it said
    before = setup.balances()
    service.approve(by_call, call_report["report_id"], approver="alice")
    record = service.execute(
        by_call, call_report["report_id"], signers=[dev_signer(9), dev_signer(10)]
    )
    assert record.state == RebalanceState.CONFIRMED
    assert record.result is not None and record.result["matches_report"] is True
    after = setup.balances()
    change = d["balance_change"]
    assert after[0] - before[0] == int(change[setup.tokens[0]])
    assert after[1] - before[1] == int(change[setup.tokens[1]])


def test_a_compound_gets_the_same_report_from_the_call_dry_run(
    setup: Setup, fork: ForkSimulator, tmp_path: Path
) -> None:
    def plan(ctx: ExecutionContext) -> dict[str, Any]:
        _record, report, _ = service.plan_compound(ctx, setup.token_id, "t")
        return report

    fork_report, call_report, _ = _both(setup, fork, tmp_path, plan)
    _assert_same(fork_report, call_report)
    d = call_report["dry_run"]
    assert all(c["ok"] for c in call_report["checks"]), call_report["checks"]
    assert d["new_token_id"] == setup.token_id and int(d["new_liquidity"]) > 0
    assert int(d["collected"][0]) > 0 or int(d["collected"][1]) > 0


def _fund_safe(setup: Setup) -> int:
    """Give the Safe spare token0 (a trader's) to open a position with; the amount."""
    w3, trader = setup.chain.w3, setup.chain.manifest.accounts.traders[0]
    token = contract(w3, "TestERC20", setup.tokens[0])
    amount = token.functions.balanceOf(trader).call() // 20
    tx = token.functions.transfer(setup.ctx.safe, amount).transact({"from": trader, "gas": GAS})
    assert w3.eth.wait_for_transaction_receipt(tx)["status"] == 1
    return int(amount)


def test_an_open_gets_the_same_report_from_the_call_dry_run(
    setup: Setup, fork: ForkSimulator, tmp_path: Path
) -> None:
    amount = _fund_safe(setup)

    def plan(ctx: ExecutionContext) -> dict[str, Any]:
        _record, report, _ = service.plan_open(
            ctx, "fresh", setup.pool, (amount, 0), lambda _s: setup.new_range, "t"
        )
        assert report is not None
        return report

    fork_report, call_report, by_call = _both(setup, fork, tmp_path, plan)
    _assert_same(fork_report, call_report)
    d = call_report["dry_run"]
    assert all(c["ok"] for c in call_report["checks"]), call_report["checks"]
    assert d["swap"] is not None and int(d["new_liquidity"]) > 0
    change = [int(d["balance_change"][t]) for t in setup.tokens]
    # the capital is token0 alone: no more of it taken, and the swap's dust of token1 comes back
    assert 0 < -change[0] <= amount and change[1] == int(call_report["plan"]["dust1"]) >= 0

    # approved and executed: the chain moves the Safe's balances as the report said
    before = setup.balances()
    service.approve(by_call, call_report["report_id"], approver="alice")
    record = service.execute(
        by_call, call_report["report_id"], signers=[dev_signer(9), dev_signer(10)]
    )
    assert record.state == RebalanceState.CONFIRMED
    assert record.result is not None and record.result["matches_report"] is True
    after = setup.balances()
    assert [a - b for a, b in zip(after, before, strict=True)] == change


def test_a_batch_that_would_revert_is_refused_by_both_dry_runs(
    setup: Setup, fork: ForkSimulator, tmp_path: Path
) -> None:
    """The Safe's token0 is taken away between the plan and its dry-run: the open's swap and
    mint cannot be paid. Both dry-runs say the batch fails; neither report can be approved."""
    amount = _fund_safe(setup)
    w3, safe = setup.chain.w3, setup.ctx.safe
    token = contract(w3, "TestERC20", setup.tokens[0])
    sink = setup.chain.manifest.accounts.traders[1]

    def drain(name: str) -> None:
        if name != "planned":
            return
        w3.provider.make_request("anvil_setBalance", [safe, hex(10**18)])  # type: ignore[arg-type]
        w3.provider.make_request("anvil_impersonateAccount", [safe])  # type: ignore[arg-type]
        balance = token.functions.balanceOf(safe).call()
        tx = token.functions.transfer(sink, balance).transact({"from": safe, "gas": GAS})
        assert w3.eth.wait_for_transaction_receipt(tx)["status"] == 1
        w3.provider.make_request("anvil_stopImpersonatingAccount", [safe])  # type: ignore[arg-type]

    snapshot = w3.provider.make_request("evm_snapshot", [])["result"]  # type: ignore[arg-type]

    def plan(ctx: ExecutionContext) -> dict[str, Any]:
        ctx.checkpoint = drain
        _record, report, _ = service.plan_open(
            ctx, "fresh", setup.pool, (amount, 0), lambda _s: setup.new_range, "t"
        )
        assert report is not None
        return report

    by_fork = dataclasses.replace(setup.ctx, simulator=fork.fresh, dry_run="fork")
    fork_report = plan(by_fork)
    w3.provider.make_request("evm_revert", [snapshot])  # type: ignore[arg-type]
    by_call = dataclasses.replace(
        setup.ctx,
        simulator=None,
        dry_run="call",
        repo=MemoryRebalanceRepo(),
        reports_dir=tmp_path / "call-reports",
    )
    call_report = plan(by_call)
    for report, ctx in ((fork_report, by_fork), (call_report, by_call)):
        assert report["dry_run"]["success"] is False
        assert report["dry_run"]["minted"] == ["0", "0"]
        assert report["dry_run"]["new_token_id"] is None
        failed = {c["name"] for c in report["checks"] if not c["ok"]}
        assert "dry-run succeeded" in failed
        with pytest.raises(Refused, match="failed its checks"):
            service.approve(ctx, report["report_id"], approver="alice")
    # the fork's and the call's checks fail alike
    assert [c["ok"] for c in fork_report["checks"]] == [c["ok"] for c in call_report["checks"]]
    # the call's reason names the token whose transfer failed (from the node's trace)
    reason = call_report["dry_run"]["revert_reason"]
    assert reason.startswith("the Safe batch reverts")
    assert setup.tokens[0].lower() in reason.lower()


def test_a_rebalance_through_the_module_gets_the_same_report_from_the_call_dry_run(
    setup: Setup, fork: ForkSimulator, tmp_path: Path
) -> None:
    """The operator's module call: its success and gas by eth_call and eth_estimateGas from the
    operator, the effects replayed in the Safe's context and checked against the module's own
    results."""
    setup.ctx.via = "module"

    def plan(ctx: ExecutionContext) -> dict[str, Any]:
        _record, report, _ = service.plan_rebalance(ctx, setup.token_id, setup.new_range, "t")
        return report

    fork_report, call_report, by_call = _both(setup, fork, tmp_path, plan)
    assert "module_tx" in call_report and "safe_tx" not in call_report
    a, b = _flat(fork_report), _flat(call_report)
    differ = {k for k in a if a[k] != b[k]}
    assert set(a) == set(b) and differ <= PATH_SPECIFIC, differ - PATH_SPECIFIC
    assert all(c["ok"] for c in call_report["checks"]), call_report["checks"]
    # the call's gas is eth_estimateGas of the module call: at least what the fork's receipt
    # used, and within a fifth and 3% of it (the refunds, EIP-3529)
    fork_gas, call_gas = fork_report["dry_run"]["gas_used"], call_report["dry_run"]["gas_used"]
    print(f"module gas: fork {fork_gas:,}, call {call_gas:,}")
    assert call_gas * 0.8 * 0.97 <= fork_gas <= call_gas

    service.approve(by_call, call_report["report_id"], approver="alice")
    record = service.execute(by_call, call_report["report_id"])
    assert record.state == RebalanceState.CONFIRMED
    assert record.result is not None and record.result["matches_report"] is True


def test_a_simulate_tx_accessor_without_code_is_one_clear_refusal(
    setup: Setup, tmp_path: Path
) -> None:
    """The Safe's delegatecall into an address without code succeeds with nothing returned: the
    call dry-run says so in one line (and records nothing), not a decoding traceback."""
    name = "SimulateTxAccessor"
    empty = "0x000000000000000000000000000000000000dEaD"
    assert setup.chain.w3.eth.get_code(empty) == b""
    ctx = dataclasses.replace(
        setup.ctx,
        simulator=None,
        dry_run="call",
        contracts={**setup.ctx.contracts, name: empty},
        reports_dir=tmp_path / "call-reports",
    )
    with pytest.raises(Refused, match=rf"{name} .*{empty}.* has no code"):
        service.plan_rebalance(ctx, setup.token_id, setup.new_range, "t")
    assert ctx.repo.unfinished() == []


def test_a_safe_with_a_guard_is_not_dry_run_by_call(
    setup: Setup, fork: ForkSimulator, tmp_path: Path
) -> None:
    """A Safe guard runs in execTransaction, which the call dry-run does not run: here one that
    refuses every DELEGATECALL but to another address (Safe's example
    DelegateCallTransactionGuard), so the batch through MultiSendCallOnly can never execute.
    The fork's dry-run fails it; the call dry-run refuses to judge it instead of saying the
    batch succeeds."""
    import json

    from lpbot.chain.artifacts import project_root

    w3, safe = setup.chain.w3, setup.ctx.safe
    path = (
        project_root() / "node_modules/@safe-global/safe-contracts/build/artifacts/contracts/"
        "examples/guards/DelegateCallTransactionGuard.sol/DelegateCallTransactionGuard.json"
    )
    artifact = json.loads(path.read_text())
    deployer = setup.chain.manifest.accounts.deployer
    factory = w3.eth.contract(abi=artifact["abi"], bytecode=artifact["bytecode"])
    sent = factory.constructor(deployer).transact({"from": deployer, "gas": GAS})
    guard = w3.eth.wait_for_transaction_receipt(sent)["contractAddress"]
    w3.provider.make_request("anvil_setBalance", [safe, hex(10**18)])  # type: ignore[arg-type]
    w3.provider.make_request("anvil_impersonateAccount", [safe])  # type: ignore[arg-type]
    sent = setup.ctx.safe_contract.functions.setGuard(guard).transact({"from": safe, "gas": GAS})
    assert w3.eth.wait_for_transaction_receipt(sent)["status"] == 1
    w3.provider.make_request("anvil_stopImpersonatingAccount", [safe])  # type: ignore[arg-type]

    by_fork = dataclasses.replace(setup.ctx, simulator=fork.fresh, dry_run="fork")
    _record, fork_report, _ = service.plan_rebalance(by_fork, setup.token_id, setup.new_range, "t")
    assert fork_report["dry_run"]["success"] is False

    by_call = dataclasses.replace(
        setup.ctx,
        simulator=None,
        dry_run="call",
        repo=MemoryRebalanceRepo(),
        reports_dir=tmp_path / "call-reports",
    )
    with pytest.raises(Refused, match=rf"guard {guard}.*dry_run = \"fork\""):
        service.plan_rebalance(by_call, setup.token_id, setup.new_range, "t")
    assert by_call.repo.unfinished() == []


def test_a_withdraw_gets_the_same_report_from_the_call_dry_run(
    setup: Setup, fork: ForkSimulator, tmp_path: Path
) -> None:
    def plan(ctx: ExecutionContext) -> dict[str, Any]:
        _record, report, _ = service.plan_withdraw(ctx, setup.token_id, "t")
        return report

    fork_report, call_report, by_call = _both(setup, fork, tmp_path, plan)
    _assert_same(fork_report, call_report)
    assert all(c["ok"] for c in call_report["checks"]), call_report["checks"]
    before = setup.balances()
    service.approve(by_call, call_report["report_id"], approver="alice")
    record = service.execute(
        by_call, call_report["report_id"], signers=[dev_signer(9), dev_signer(10)]
    )
    assert record.state == RebalanceState.CONFIRMED
    change = call_report["dry_run"]["balance_change"]
    after = setup.balances()
    assert [a - b for a, b in zip(after, before, strict=True)] == [
        int(change[t]) for t in setup.tokens
    ]

"""The pre-flight on the devnet: a rebalance that would revert at the latest block is never sent;
the price bound refuses before simulating; stale reports are re-planned; gas from the live
estimate; stuck transactions cancelled; private submission; and every path checked by counting
``eth_sendRawTransaction`` on a recording provider."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from web3 import HTTPProvider, Web3

from lpbot.chain.gas import Eip1559GasModel, GasCost
from lpbot.devnet.deploy import GAS, contract
from lpbot.devnet.keys import dev_signer
from lpbot.devnet.market import push_feeds
from lpbot.errors import Refused, RetryLater
from lpbot.execution import service
from lpbot.execution.preflight import PreflightRefused, gas_limit
from lpbot.execution.state import RebalanceRepo, RebalanceState, wasted_gas_wei
from lpbot.signing.base import SignedTransaction
from lpbot.store import migrate
from lpbot.store.rebalances import SqlRebalanceRepo
from lpbot.store.session import make_engine, session_factory
from lpbot.testing.rpc import RecordingProvider, SubmitEndpoint, decode_raw
from tests.conftest import Devnet
from tests.execution.conftest import Crash, Setup

pytestmark = pytest.mark.devnet
S = RebalanceState
OWNERS = (9, 10, 11)


@pytest.fixture
def repo(tmp_path: Path) -> RebalanceRepo:
    """The SQL store only (the conftest also runs the in-memory one; once is enough here)."""
    engine = make_engine(f"sqlite:///{tmp_path / 'lpbot.db'}")
    migrate.upgrade(engine)
    return SqlRebalanceRepo(session_factory(engine))


def _owners() -> list[Any]:
    return [dev_signer(i) for i in OWNERS[:2]]


def _recording(setup: Setup) -> RecordingProvider:
    """Route the context's chain client through a provider that records every request."""
    provider = RecordingProvider(setup.chain.url)
    setup.ctx.w3 = Web3(provider)
    return provider


def _alerts(setup: Setup) -> list[tuple[str, str]]:
    alerts: list[tuple[str, str]] = []
    setup.ctx.alert = lambda kind, text: alerts.append((kind, text))
    return alerts


def move_price(setup: Setup, price_bps: float) -> None:
    """A trader moves the pool's price by ``price_bps`` (signed; price = token1 per token0)."""
    w3, m = setup.chain.w3, setup.chain.manifest
    pool = contract(w3, "UniswapV3Pool", setup.pool)
    sqrt = pool.functions.slot0().call()[0]
    # sqrt price target: sqrt(1 + bps/1e4), to 1e-12
    target = sqrt * int((1 + Decimal(str(price_bps)) / 10_000).sqrt() * 10**12) // 10**12
    router = contract(w3, "SwapRouter02", m.contracts["SwapRouter02"])
    trader = m.accounts.traders[1]
    t0, t1 = setup.tokens
    path = (t0, t1) if target < sqrt else (t1, t0)
    # everything the trader holds, bounded by the price limit: the move is exact whatever
    # liquidity earlier tests left in the pool
    amount = contract(w3, "TestERC20", path[0]).functions.balanceOf(trader).call()
    tx = router.functions.exactInputSingle((*path, 500, trader, amount, 0, target)).transact(
        {"from": trader, "gas": GAS}
    )
    # mined before the caller reads the pool (the test reads it right after)
    assert w3.eth.wait_for_transaction_receipt(tx)["status"] == 1
    assert pool.functions.slot0().call()[0] == target, "the trader could not move the price"


def _planned_and_approved(setup: Setup) -> dict[str, Any]:
    _, report, _ = service.plan_rebalance(setup.ctx, setup.token_id, setup.new_range, "test")
    service.approve(setup.ctx, report["report_id"], approver="alice")
    return report


def _sends(provider: RecordingProvider) -> list[int]:
    return [i for i, (m, _) in enumerate(provider.requests) if m == "eth_sendRawTransaction"]


def assert_every_send_was_preflighted(provider: RecordingProvider) -> int:
    """Each eth_sendRawTransaction was preceded, since the previous one, by two ``eth_call``s
    at ``latest`` of exactly its sender, target, calldata and gas limit: one before it was
    signed and one after. Returns how many were sent."""
    previous = -1
    sends = _sends(provider)
    for index in sends:
        tx = decode_raw(provider.requests[index][1][0])
        exact = [
            p
            for m, p in provider.requests[previous + 1 : index]
            if m == "eth_call"
            and p[1] == "latest"
            and p[0].get("from", "").lower() == tx.sender.lower()
            and p[0]["to"].lower() == tx.to.lower()
            and p[0]["data"] == "0x" + tx.data.hex()
            and int(p[0].get("gas", "0x0"), 16) == tx.gas
        ]
        assert len(exact) >= 2, f"send #{index} of {tx.to} was not checked twice"
        previous = index
    return len(sends)


def test_the_market_moves_inside_the_bound_and_the_mint_would_revert(setup: Setup) -> None:
    """The case: approved, the market moves a little, the minimums would fail. Nothing is
    sent; the reason and the move are shown; the report is STALE for good; replan executes."""
    ctx = setup.ctx
    report = _planned_and_approved(setup)
    move_price(setup, -7)  # 0.07%: inside the bound (25 bps), past what the minimums allow
    provider = _recording(setup)
    alerts = _alerts(setup)
    before, nonce = setup.balances(), setup.safe_nonce()
    npm = ctx.contract("NonfungiblePositionManager")
    liquidity = npm.functions.positions(setup.token_id).call()[7]

    with pytest.raises(PreflightRefused) as refused:
        service.execute(ctx, report["report_id"], signers=_owners())
    text = str(refused.value)
    # the close's decreaseLiquidity (inside the position manager's multicall) is named
    assert "'Price slippage check'" in text and "in call 'close position" in text
    assert "price moved 7.0" in text and "Safe nonce 1 -> 1" in text
    assert _sends(provider) == []
    assert setup.balances() == before and setup.safe_nonce() == nonce
    assert npm.functions.positions(setup.token_id).call()[7] == liquidity
    record = ctx.repo.by_report(report["report_id"])
    assert record is not None and record.state == S.STALE
    assert [k for k, _ in alerts] == ["rebalance_stale"]
    with pytest.raises(Refused, match="STALE"):
        service.execute(ctx, report["report_id"], signers=_owners())

    new, new_report, _ = service.replan(ctx, record.id)
    assert new.id != record.id and new_report["report_id"] != report["report_id"]
    assert all(c["ok"] for c in new_report["checks"])
    service.approve(ctx, new_report["report_id"], approver="alice")
    done = service.execute(ctx, new_report["report_id"], signers=_owners())
    assert done.state == S.CONFIRMED
    assert setup.safe_nonce() == nonce + 1
    assert assert_every_send_was_preflighted(provider) == 1
    with pytest.raises(Refused, match="does not exist"):  # its position is gone: one clear line
        service.replan(ctx, record.id)


def test_a_move_past_the_bound_is_refused_before_simulating(setup: Setup) -> None:
    ctx = setup.ctx
    report = _planned_and_approved(setup)
    move_price(setup, 30)  # 0.30% > 50% of the 0.50% tolerance
    provider = _recording(setup)
    with pytest.raises(PreflightRefused, match=r"stale: the price moved 30\.\d\d bps"):
        service.execute(ctx, report["report_id"], signers=_owners())
    assert "eth_estimateGas" not in provider.methods() and _sends(provider) == []
    assert ctx.repo.by_report(report["report_id"]).state == S.STALE  # type: ignore[union-attr]


def test_a_move_inside_the_tolerance_executes_with_a_gas_limit_from_the_estimate(
    setup: Setup,
) -> None:
    ctx = setup.ctx
    report = _planned_and_approved(setup)
    move_price(setup, 0.2)  # the 0.5% minimums on a +-3% range allow about 1 bps
    provider = _recording(setup)
    record = service.execute(ctx, report["report_id"], signers=_owners())
    assert record.state == S.CONFIRMED
    [index] = _sends(provider)
    sent = decode_raw(provider.requests[index][1][0])
    # the pre-flight's own eth_estimateGas and the chain gas model's: the larger counts
    estimates = [
        int(r["result"], 16)
        for (m, p), r in zip(provider.requests, provider.responses, strict=True)
        if m == "eth_estimateGas" and p[0]["data"] == "0x" + sent.data.hex()
    ]
    assert len(estimates) == 2
    estimate = max(estimates)
    assert sent.gas == gas_limit(estimate, int(report["dry_run"]["gas_used"]), ctx.gas_margin_bps)
    [tx] = ctx.repo.transactions(record.id)
    assert tx.status == "CONFIRMED" and tx.gas_limit == sent.gas and tx.fee_wei > 0
    assert assert_every_send_was_preflighted(provider) == 1


def test_gas_above_the_usd_limit_waits_and_alerts_then_sends(setup: Setup) -> None:
    ctx = setup.ctx
    report = _planned_and_approved(setup)
    alerts = _alerts(setup)
    provider = _recording(setup)
    ctx.max_fee_usd = Decimal("0.0001")
    with pytest.raises(RetryLater, match="above the"):
        service.execute(ctx, report["report_id"], signers=_owners())
    assert [k for k, _ in alerts] == ["gas_too_high"] and _sends(provider) == []
    assert ctx.repo.by_report(report["report_id"]).state == S.SIGNED  # type: ignore[union-attr]
    assert service.resume(ctx) == []  # the next tick, still too expensive: no new alert
    assert [k for k, _ in alerts] == ["gas_too_high"] and _sends(provider) == []
    ctx.max_fee_usd = Decimal(100)
    [record] = service.resume(ctx)
    assert record.state == S.CONFIRMED
    assert assert_every_send_was_preflighted(provider) == 1


def test_a_gas_price_above_the_chains_limit_sends_nothing_until_it_is_raised(
    setup: Setup,
) -> None:
    """``max_gas_price_gwei``: above it the rebalance waits (nothing signed, the sender's nonce
    unchanged) and alerts; with the limit raised the next resume sends it."""
    from lpbot.chain.submit import fetch_fees

    ctx = setup.ctx
    report = _planned_and_approved(setup)
    alerts = _alerts(setup)
    provider = _recording(setup)
    sender = ctx.executor.address
    nonce = ctx.w3.eth.get_transaction_count(sender)
    fee = fetch_fees(ctx.w3).max_fee_per_gas
    ctx.max_gas_price_wei = fee // 2  # the chain's max fee per gas is twice the limit
    with pytest.raises(RetryLater, match="max_gas_price_gwei"):
        service.execute(ctx, report["report_id"], signers=_owners())
    assert [k for k, _ in alerts] == ["gas_price_too_high"] and _sends(provider) == []
    assert ctx.w3.eth.get_transaction_count(sender) == nonce
    assert ctx.repo.transactions(ctx.repo.by_report(report["report_id"]).id) == []  # type: ignore[union-attr]
    assert ctx.repo.by_report(report["report_id"]).state == S.SIGNED  # type: ignore[union-attr]
    # the daemon's next ticks try again while the price is still too high: no new alert
    assert service.resume(ctx) == [] and service.resume(ctx) == []
    assert [k for k, _ in alerts] == ["gas_price_too_high"] and _sends(provider) == []
    ctx.max_gas_price_wei = fee * 10
    [record] = service.resume(ctx)
    assert record.state == S.CONFIRMED
    assert ctx.w3.eth.get_transaction_count(sender) == nonce + 1
    [tx] = ctx.repo.transactions(record.id)
    assert tx.max_fee_per_gas <= fee * 10
    assert assert_every_send_was_preflighted(provider) == 1


def test_a_replacement_is_sent_above_the_gas_price_limit_a_new_transaction_is_not(
    chain: Devnet,
) -> None:
    """The limit stops new transactions only: a stuck nonce can always be replaced."""
    from lpbot.chain.submit import Fees, GasPriceTooHigh, Submitter

    w3, signer = chain.w3, dev_signer(9)
    high = Fees(max_fee_per_gas=50 * 10**9, max_priority_fee_per_gas=10**9)
    submitter = Submitter(
        w3, signer, preflight=lambda tx: None, fees=lambda: high, max_fee_per_gas_limit=10**9
    )
    nonce = w3.eth.get_transaction_count(signer.address, "pending")
    with pytest.raises(GasPriceTooHigh, match="50 gwei, above the limit of 1 gwei"):
        submitter.send(signer.address, b"", 21_000)
    assert w3.eth.get_transaction_count(signer.address, "pending") == nonce
    sent = submitter.send(signer.address, b"", 21_000, nonce=nonce, kind="replacement")
    assert w3.eth.wait_for_transaction_receipt(sent.hash)["status"] == 1
    assert w3.eth.get_transaction_count(signer.address) == nonce + 1


def test_a_recorded_transaction_the_node_never_took_is_not_replaced_above_the_limit(
    chain: Devnet,
) -> None:
    """A transaction recorded but never taken by the node (its fees refused, or a crash before
    broadcasting) is a new one: re-signed with a new gas limit on resume, it waits above the
    gas price limit like any new transaction; nothing is sent."""
    from lpbot.chain.submit import Fees, GasPriceTooHigh, Submitter, sent_from_raw

    w3, signer = chain.w3, dev_signer(9)
    high = Fees(max_fee_per_gas=50 * 10**9, max_priority_fee_per_gas=10**9)
    submitter = Submitter(
        w3,
        signer,
        preflight=lambda tx: None,
        fees=lambda: high,
        market=lambda: high,
        max_fee_per_gas_limit=10**9,
    )
    nonce = w3.eth.get_transaction_count(signer.address, "pending")
    signed = signer.sign_transaction(
        {
            "type": 2, "chainId": w3.eth.chain_id, "nonce": nonce, "to": signer.address,
            "value": 0, "data": b"", "gas": 21_000, "maxFeePerGas": 10**9 // 2,
            "maxPriorityFeePerGas": 10**8,
        }
    )  # fmt: skip
    recorded = sent_from_raw(bytes(signed.raw))  # below the limit, never broadcast
    sent: list[object] = []
    with pytest.raises(GasPriceTooHigh):
        submitter.resume_and_confirm([recorded], on_sent=sent.append, replace_gas=30_000)
    assert sent == []
    assert w3.eth.get_transaction_count(signer.address, "pending") == nonce


class MarketMovesWhileSigning:
    """A signer that takes its time (as an MPC round does) while the market moves."""

    def __init__(self, setup: Setup, price_bps: int) -> None:
        self.inner = dev_signer(8)
        self.setup = setup
        self.price_bps = price_bps

    @property
    def address(self) -> str:
        return self.inner.address

    def sign_digest(self, digest: bytes) -> Any:
        return self.inner.sign_digest(digest)

    def sign_transaction(self, tx: dict[str, Any]) -> SignedTransaction:
        move_price(self.setup, self.price_bps)
        return self.inner.sign_transaction(tx)


@pytest.mark.parametrize("via", ["multisig", "module"])
def test_every_path_checks_before_signing_and_before_sending(setup: Setup, via: str) -> None:
    """Counts eth_sendRawTransaction on a recording provider: the Safe and module paths, a
    resume after a crash between signing and sending, and an executor whose signing lets the
    market move (the check after signing stops it)."""
    ctx = setup.ctx
    ctx.via = via
    provider = _recording(setup)

    def crash(name: str) -> None:
        if name == "signed":
            raise Crash(name)

    report = _planned_and_approved(setup)
    ctx.checkpoint = crash
    with pytest.raises(Crash):
        service.execute(ctx, report["report_id"], signers=_owners())
    ctx.checkpoint = lambda _name: None
    assert _sends(provider) == []
    [record] = service.resume(ctx)
    assert record.state == S.CONFIRMED
    assert assert_every_send_was_preflighted(provider) == 1

    # the next rebalance's executor signs while the market moves 0.4%
    new_id = int(record.result["new_token_id"])  # type: ignore[index]
    setup.chain.increase_time(3600)  # past the module's minimum interval
    push_feeds(setup.chain.w3, setup.chain.manifest)  # the feed keeper runs, as on the devnet
    shifted = type(setup.new_range)(
        setup.new_range.tick_lower - 100, setup.new_range.tick_upper - 100, 10
    )
    _, second, _ = service.plan_rebalance(ctx, new_id, shifted, "second")
    service.approve(ctx, second["report_id"], approver="alice")
    slow = MarketMovesWhileSigning(setup, -40)
    ctx.max_price_move_share_bps = 10_000
    if via == "module":
        ctx.operator = slow
    else:
        ctx.executor = slow
    with pytest.raises(PreflightRefused):
        service.execute(ctx, second["report_id"], signers=_owners())
    assert ctx.repo.by_report(second["report_id"]).state == S.STALE  # type: ignore[union-attr]
    assert assert_every_send_was_preflighted(provider) == 1  # still only the first rebalance


def stuck_then_cancelled(setup: Setup) -> None:
    """Automine off: the rebalance and its replacement sit in the mempool; the cancel (a
    zero-value self-transfer at the same nonce) is mined; CANCELLED, its gas recorded."""
    ctx = setup.ctx
    ctx.via = "module"
    ctx.replace_after = 0.3
    ctx.max_replacements = 1
    alerts = _alerts(setup)
    lines: list[str] = []
    w3 = setup.chain.w3

    def progress(line: str) -> None:
        lines.append(line)
        if line.startswith("cancelling"):
            w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]

    ctx.progress = progress
    report = _planned_and_approved(setup)
    provider = _recording(setup)
    before = setup.balances()
    npm = ctx.contract("NonfungiblePositionManager")
    w3.provider.make_request("evm_setAutomine", [False])  # type: ignore[arg-type]
    try:
        record = service.execute(ctx, report["report_id"])
    finally:
        w3.provider.make_request("evm_setAutomine", [True])  # type: ignore[arg-type]
    assert record.state == S.CANCELLED and "needs attention" in (record.error or "")
    assert [k for k, _ in alerts] == ["rebalance_cancelled"]
    assert any(line.startswith("not mined after") and "max fee" in line for line in lines), lines
    txs = ctx.repo.transactions(record.id)
    assert [(t.kind, t.status) for t in txs] == [
        ("rebalance", "REPLACED"),
        ("rebalance", "REPLACED"),
        ("cancel", "CONFIRMED"),
    ]
    assert txs[2].gas_used == 21_000 and wasted_gas_wei(txs) == txs[2].fee_wei > 0
    assert txs[1].max_fee_per_gas * 1000 >= txs[0].max_fee_per_gas * 1125
    assert setup.balances() == before
    assert npm.functions.ownerOf(setup.token_id).call() == ctx.safe  # nothing rebalanced
    assert service.resume(ctx) == []
    # the rebalance, its replacement and the cancel: each checked before signing and sending
    assert assert_every_send_was_preflighted(provider) == 3


def test_the_private_endpoint_gets_the_raw_transaction_and_the_public_one_does_not(
    setup: Setup,
) -> None:
    ctx = setup.ctx
    report = _planned_and_approved(setup)
    provider = _recording(setup)
    ctx.submit_w3 = Web3(HTTPProvider("http://127.0.0.1:9"))  # nothing listens: refused
    with pytest.raises(RetryLater, match="submit endpoint is unreachable"):
        service.execute(ctx, report["report_id"], signers=_owners())
    assert _sends(provider) == []
    with SubmitEndpoint(setup.chain.url) as endpoint:
        ctx.submit_w3 = Web3(HTTPProvider(endpoint.url))
        [record] = service.resume(ctx)
    assert record.state == S.CONFIRMED
    [raw] = endpoint.raw_transactions()
    sent = decode_raw(raw)
    assert sent.sender == ctx.executor.address and sent.to.lower() == ctx.safe.lower()
    # the first attempt's hash was recorded before the endpoint was tried; it never got out
    assert record.tx_hashes[-1] == record.result["tx_hash"]  # type: ignore[index]
    assert _sends(provider) == []  # the public node never saw it


def test_a_stuck_rebalance_is_cancelled_and_status_and_export_show_its_gas(
    setup: Setup, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Stuck, replaced, cancelled; the cancel's fee read back from the store by the CLI."""
    from lpbot.cli import main

    stuck_then_cancelled(setup)
    [record] = [r for r in (setup.ctx.repo.get(i) for i in range(1, 5)) if r is not None]
    lost = wasted_gas_wei(setup.ctx.repo.transactions(record.id))
    db = setup.ctx.repo.sessions.kw["bind"].url  # type: ignore[attr-defined]
    config = tmp_path / "lpbot.toml"
    config.write_text(f'database_url = "{db}"\n[chains.ethereum]\nrpc_url = "http://127.0.0.1:1"\n')
    capsys.readouterr()
    assert main(["status", "--config", str(config)]) == 0
    out = capsys.readouterr().out
    assert f"rebalance {record.id} (CANCELLED)" in out and f"({lost:,} wei)" in out
    assert f"lpbot rebalance replan {record.id}" in out
    csv_path = tmp_path / "actions.csv"
    assert main(["export", "--config", str(config), "--out", str(csv_path)]) == 0
    import csv

    rows = [r for r in csv.DictReader(csv_path.open()) if " transaction " in r["kind"]]
    kinds = sorted(r["kind"] for r in rows)
    assert kinds == [
        "cancel transaction CONFIRMED",
        "rebalance transaction REPLACED",
        "rebalance transaction REPLACED",
    ]
    cancel = next(r for r in rows if r["kind"].startswith("cancel"))
    assert int(cancel["gas_wei"]) == lost and cancel["position"] == f"rebalance:{record.id}"


def test_a_pending_rebalance_that_would_now_revert_is_cancelled_on_resume(setup: Setup) -> None:
    """Sent, not mined, the process dies; meanwhile the market moves. Resume does not replace
    it (it would revert and burn its gas limit): it cancels it at its nonce."""
    ctx = setup.ctx
    ctx.via = "module"
    w3 = setup.chain.w3
    alerts = _alerts(setup)
    report = _planned_and_approved(setup)
    before = setup.balances()

    submitted: list[str] = []

    def crash(name: str) -> None:
        # killed while replacing: the first is in the mempool, the replacement never went out
        submitted.append(name)
        if submitted.count("submitted") == 2:
            raise Crash(name)

    ctx.checkpoint = crash
    ctx.replace_after = 0.3
    w3.provider.make_request("evm_setAutomine", [False])  # type: ignore[arg-type]
    try:
        with pytest.raises(Crash):
            service.execute(ctx, report["report_id"])
        ctx.checkpoint = lambda _name: None
        # a block with room for the trader's swap but not for the rebalance
        w3.provider.make_request("evm_setBlockGasLimit", [hex(400_000)])  # type: ignore[arg-type]
        m = setup.chain.manifest
        pool = contract(w3, "UniswapV3Pool", setup.pool)
        sqrt = pool.functions.slot0().call()[0]
        router = contract(w3, "SwapRouter02", m.contracts["SwapRouter02"])
        trader = m.accounts.traders[1]
        router.functions.exactInputSingle(
            (*setup.tokens, 500, trader, 10**15, 0, sqrt * 99_965 // 100_000)
        ).transact({"from": trader, "gas": 300_000, "maxPriorityFeePerGas": 10**11,
                    "maxFeePerGas": 10**12})  # fmt: skip
        w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]
        assert pool.functions.slot0().call()[0] < sqrt  # the swap is in, the rebalance is not
        w3.provider.make_request("evm_setBlockGasLimit", [hex(30_000_000)])  # type: ignore[arg-type]
        ctx.progress = lambda line: (
            w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]
            if line.startswith("cancelling")
            else None
        )
        [record] = service.resume(ctx)
    finally:
        w3.provider.make_request("evm_setAutomine", [True])  # type: ignore[arg-type]
        w3.provider.make_request("evm_setBlockGasLimit", [hex(30_000_000)])  # type: ignore[arg-type]
    assert record.state == S.CANCELLED and "would revert now" in (record.error or "")
    assert [(t.kind, t.status) for t in ctx.repo.transactions(record.id)] == [
        ("rebalance", "REPLACED"),
        ("rebalance", "REPLACED"),
        ("cancel", "CONFIRMED"),
    ]
    assert [k for k, _ in alerts] == ["rebalance_cancelled"]
    assert setup.balances() == before


class WithL1Component:
    """Arbitrum One's shape on the devnet: the node's estimate plus an L1 data part counted in
    L2 gas (what NodeInterface.gasEstimateL1Component reports), which a fork's gas used never
    includes. The devnet does not charge it; the test checks what is signed."""

    l1_gas = 600_000

    def fetch_cost(self, w3: Web3, tx: Any) -> GasCost:
        base = Eip1559GasModel().fetch_cost(w3, tx)
        price = base.l2_fee_wei // base.gas_units
        return GasCost(
            gas_units=base.gas_units + self.l1_gas,
            l2_fee_wei=base.l2_fee_wei,
            l1_fee_wei=self.l1_gas * price,
            total_wei=base.l2_fee_wei + self.l1_gas * price,
            max_fee_per_gas=base.max_fee_per_gas,
            max_priority_fee_per_gas=base.max_priority_fee_per_gas,
        )


def test_the_gas_limit_and_fee_caps_come_from_the_chains_gas_model(setup: Setup) -> None:
    ctx = setup.ctx
    ctx.gas_model = WithL1Component()
    report = _planned_and_approved(setup)
    provider = _recording(setup)
    record = service.execute(ctx, report["report_id"], signers=_owners())
    assert record.state == S.CONFIRMED
    [index] = _sends(provider)
    sent = decode_raw(provider.requests[index][1][0])
    dry_run_gas = int(report["dry_run"]["gas_used"])
    estimates = [
        int(r["result"], 16)
        for (m, p), r in zip(provider.requests, provider.responses, strict=True)
        if m == "eth_estimateGas" and p[0]["data"] == "0x" + sent.data.hex()
    ]
    # the pre-flight's eth_estimateGas, then the gas model's (plus its L1 part)
    preflight_estimate, model_estimate = estimates
    with_l1 = model_estimate + WithL1Component.l1_gas
    assert sent.gas == gas_limit(max(with_l1, preflight_estimate), dry_run_gas, 2_000)
    # the old fixed limit (the fork's gas used x 1.3 + 50k) is below what such a chain needs
    assert dry_run_gas * 13 // 10 + 50_000 < with_l1
    assert record.result is not None and record.result["gas_used"] < sent.gas

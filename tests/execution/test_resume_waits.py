"""``resume`` goes on past a rebalance that must wait (retry later) to the other records."""

from __future__ import annotations

from decimal import Decimal

import pytest

from lpbot.devnet.keys import dev_signer
from lpbot.execution import service
from lpbot.execution.state import RebalanceState
from tests.execution.conftest import Crash, Setup

pytestmark = pytest.mark.devnet
S = RebalanceState


def test_one_rebalance_waiting_for_gas_does_not_stop_the_others(setup: Setup) -> None:
    ctx = setup.ctx
    _, report, _ = service.plan_rebalance(ctx, setup.token_id, setup.new_range, "test")
    service.approve(ctx, report["report_id"], approver="alice")

    def checkpoint(name: str) -> None:
        if name == "signed":
            raise Crash(name)

    ctx.checkpoint = checkpoint
    with pytest.raises(Crash):
        service.execute(ctx, report["report_id"], signers=[dev_signer(9), dev_signer(10)])
    ctx.checkpoint = lambda _name: None
    signed = ctx.repo.by_report(report["report_id"])
    assert signed is not None and signed.state == S.SIGNED
    # a second record, left half planned by a crash: resume closes it without the chain
    half = ctx.repo.create(
        idempotency_key="half-planned", chain_id=ctx.chain_id, safe=ctx.safe, token_id=1
    )
    assert half.id > signed.id  # resumed after the one that waits
    lines: list[str] = []
    ctx.progress = lines.append
    ctx.max_fee_usd = Decimal("0.000001")  # gas now costs more than the limit: wait
    sent_before = ctx.w3.eth.get_transaction_count(ctx.executor.address)
    done = service.resume(ctx)
    assert [(r.id, r.state) for r in done] == [(half.id, S.EXPIRED)]
    assert ctx.repo.get(signed.id).state == S.SIGNED  # type: ignore[union-attr]
    assert ctx.w3.eth.get_transaction_count(ctx.executor.address) == sent_before
    assert any(line.startswith(f"rebalance {signed.id}: waits (gas would cost") for line in lines)
    # the limit lifted, the next resume sends it
    ctx.max_fee_usd = None
    (record,) = service.resume(ctx)
    assert record.id == signed.id and record.state == S.CONFIRMED

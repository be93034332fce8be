"""Against a live chain the dry-run runs on a local fork of it; here the "live" chain is the
devnet itself, forked by a second Anvil, so the real path runs end to end."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from lpbot.chain.forksim import ForkSimulator
from lpbot.execution import service
from lpbot.execution.state import RebalanceState
from tests.execution.conftest import Setup

pytestmark = pytest.mark.devnet


@pytest.fixture
def fork(setup: Setup) -> Iterator[ForkSimulator]:
    sim = ForkSimulator(setup.chain.url)
    try:
        yield sim
    finally:
        sim.close()


def test_the_dry_run_on_a_fork_leaves_the_chain_alone_and_predicts_the_execution(
    setup: Setup, fork: ForkSimulator
) -> None:
    ctx = setup.ctx
    ctx.simulator = fork.fresh
    w3 = setup.chain.w3
    block, before, nonce = w3.eth.block_number, setup.balances(), setup.safe_nonce()

    record, report, _ = service.plan_rebalance(ctx, setup.token_id, setup.new_range, "fork")
    assert all(c["ok"] for c in report["checks"]), report["checks"]
    # nothing happened on the chain itself: no block, no balance change, no snapshot needed
    assert w3.eth.block_number == block
    assert setup.balances() == before and setup.safe_nonce() == nonce

    from lpbot.devnet.keys import dev_signer

    service.approve(ctx, report["report_id"], approver="alice")
    record = service.execute(ctx, report["report_id"], signers=[dev_signer(9), dev_signer(10)])
    assert record.state == RebalanceState.CONFIRMED
    assert record.result is not None and record.result["matches_report"] is True
    after = setup.balances()
    change = report["dry_run"]["balance_change"]
    assert after[0] - before[0] == int(change[setup.tokens[0]])
    assert after[1] - before[1] == int(change[setup.tokens[1]])

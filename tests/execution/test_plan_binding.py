"""What a plan binds: the route in its idempotency key, the SafeTx's target and operation in
its report, and MultiSendCallOnly's address checked against its code."""

from __future__ import annotations

import pytest

from lpbot.errors import NeedsAttention
from lpbot.execution import service
from tests.execution.conftest import Setup

pytestmark = pytest.mark.devnet


def test_the_same_rebalance_planned_both_ways_in_one_block_is_two_plans(setup: Setup) -> None:
    ctx = setup.ctx
    ctx.via = "module"
    first, by_module, _ = service.plan_rebalance(ctx, setup.token_id, setup.new_range, "test")
    ctx.via = "multisig"
    second, by_safe, paths = service.plan_rebalance(ctx, setup.token_id, setup.new_range, "test")
    assert by_module["snapshot"]["block"] == by_safe["snapshot"]["block"]  # one block
    assert first.id != second.id and first.idempotency_key != second.idempotency_key
    assert "module_tx" in by_module and "safe_tx" in by_safe  # not the module's report again
    # the report shows what the Safe itself calls, and how
    tx = by_safe["safe_tx"]
    assert tx["to"] == ctx.contracts["MultiSendCallOnly"] and tx["operation"] == 1
    md = paths["md"].read_text()
    assert f"to `{tx['to']}` by DELEGATECALL (operation 1) to MultiSendCallOnly" in md


@pytest.mark.parametrize("where", ["Multicall3", "nowhere"])
def test_a_multisend_address_without_its_code_is_refused(setup: Setup, where: str) -> None:
    ctx = setup.ctx
    before, nonce = setup.balances(), setup.safe_nonce()
    wrong = ctx.contracts.get(where, "0x000000000000000000000000000000000000dEaD")
    ctx.contracts["MultiSendCallOnly"] = wrong
    expected = "no code" if where == "nowhere" else "[0-9]+ bytes of other code"
    with pytest.raises(NeedsAttention, match=f"is not Safe 1.4.1's \\({expected}"):
        service.plan_rebalance(ctx, setup.token_id, setup.new_range, "test")
    assert ctx.repo.unfinished() == []  # nothing recorded, nothing to sign
    assert setup.balances() == before and setup.safe_nonce() == nonce

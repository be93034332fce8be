"""The price guards bind: a pool held off-price long enough for its own TWAP to follow is still
refused against a second source; the spot-vs-TWAP bound is applied again in the block of the
send; the swap carries a price limit from the simulation and the slippage."""

from __future__ import annotations

import math

import pytest

from lpbot.devnet.deploy import GAS, contract
from lpbot.devnet.keys import dev_signer
from lpbot.errors import Refused
from lpbot.execution import service
from lpbot.execution.plan import BPS, swap_price_limit
from lpbot.execution.preflight import PreflightRefused, fetch_pool_now, twap_deviation_bps
from lpbot.execution.state import RebalanceState
from lpbot.uniswap.tick_math import MAX_SQRT_RATIO, MIN_SQRT_RATIO
from tests.execution.conftest import Setup

S = RebalanceState


def _hold_off_price(setup: Setup, steps: int, step_per_mille: int) -> None:
    """A trader pushes only the traded pool up, ``step_per_mille`` per mille at a time, ten
    minutes apart, and holds it there: its own TWAP follows, the pair's other pool and the
    feeds do not."""
    m = setup.chain.manifest
    w3 = setup.chain.w3
    pool = contract(w3, "UniswapV3Pool", setup.pool)
    router = contract(w3, "SwapRouter02", m.contracts["SwapRouter02"])
    trader = m.accounts.traders[1]
    for _ in range(steps):
        target = pool.functions.slot0().call()[0] * (1000 + step_per_mille) // 1000
        tx = router.functions.exactInputSingle(
            (setup.tokens[1], setup.tokens[0], 500, trader, 10**24, 0, target)
        ).transact({"from": trader, "gas": GAS})
        assert w3.eth.wait_for_transaction_receipt(tx)["status"] == 1
        assert pool.functions.slot0().call()[0] == target
        setup.chain.increase_time(600)


@pytest.mark.devnet
def test_a_pool_held_off_price_for_several_blocks_is_refused(setup: Setup) -> None:
    ctx = setup.ctx
    before, nonce = setup.balances(), setup.safe_nonce()
    _hold_off_price(setup, steps=6, step_per_mille=3)  # 1.8% over an hour, in 0.3% steps
    now = fetch_pool_now(ctx.w3, setup.pool, ctx.twap_seconds)
    deviation = twap_deviation_bps(now.tick, now.twap_tick)
    # its own TWAP followed: the spot-vs-TWAP guard alone would let it through
    assert deviation is not None and deviation < ctx.max_twap_deviation_bps
    for via in ("multisig", "module"):
        ctx.via = via
        with pytest.raises(Refused, match="from the reference price") as refused:
            service.plan_rebalance(ctx, setup.token_id, setup.new_range, "test")
        # the reference is both tokens' Chainlink feeds (the devnet has USDC/USD and ETH/USD)
        assert "reference price chainlink feed" in str(refused.value)
    assert ctx.repo.unfinished() == []
    assert setup.balances() == before and setup.safe_nonce() == nonce


@pytest.mark.devnet
def test_a_compound_on_a_pool_held_off_price_is_refused(setup: Setup) -> None:
    """Compounding swaps part of the fees through the same pool: the same second source."""
    ctx = setup.ctx
    before, nonce = setup.balances(), setup.safe_nonce()
    _hold_off_price(setup, steps=6, step_per_mille=3)
    for via in ("multisig", "module"):
        ctx.via = via
        with pytest.raises(Refused, match="from the reference price") as refused:
            service.plan_compound(ctx, setup.token_id, "test")
        assert "reference price chainlink feed" in str(refused.value)
    assert ctx.repo.unfinished() == []
    assert setup.balances() == before and setup.safe_nonce() == nonce


@pytest.mark.devnet
def test_the_report_names_its_reference_and_the_swap_its_price_limit(setup: Setup) -> None:
    ctx = setup.ctx
    _, report, paths = service.plan_rebalance(ctx, setup.token_id, setup.new_range, "test")
    price = report["price"]
    assert price["reference_source"].startswith("chainlink feed")
    assert price["reference_deviation_bps"] < ctx.pricer.config.max_deviation_bps
    assert "bps from the reference chainlink feed" in paths["md"].read_text()
    plan = report["plan"]
    limit = int(plan["swap_sqrt_price_limit_x96"])
    assert limit == swap_price_limit(
        int(report["dry_run"]["sqrt_price_after"]), plan["swap_zero_for_one"], ctx.slippage_bps
    )
    assert "sqrtPriceLimitX96" in paths["md"].read_text()


@pytest.mark.devnet
def test_the_spot_vs_twap_bound_is_applied_again_in_the_block_of_the_send(setup: Setup) -> None:
    ctx = setup.ctx
    _, report, _ = service.plan_rebalance(ctx, setup.token_id, setup.new_range, "test")
    service.approve(ctx, report["report_id"], approver="alice")
    now = fetch_pool_now(ctx.w3, setup.pool, ctx.twap_seconds)
    assert now.tick != now.twap_tick
    before, nonce = setup.balances(), setup.safe_nonce()
    # the bound at the send's block: with 0 bps allowed, any spot off its TWAP is refused
    ctx.max_twap_deviation_bps = 0
    with pytest.raises(PreflightRefused, match="may be manipulated"):
        service.execute(ctx, report["report_id"], signers=[dev_signer(9), dev_signer(10)])
    assert ctx.repo.by_report(report["report_id"]).state == S.STALE  # type: ignore[union-attr]
    assert setup.balances() == before and setup.safe_nonce() == nonce


@pytest.mark.parametrize("bps", [0, 10, 50, 300])
@pytest.mark.parametrize("sqrt", [MIN_SQRT_RATIO + 5, 79228162514264337593543950336, 2**150])
def test_the_swap_price_limit_is_the_price_after_moved_by_the_slippage(sqrt: int, bps: int) -> None:
    down = swap_price_limit(sqrt, True, bps)
    up = swap_price_limit(sqrt, False, bps)
    assert MIN_SQRT_RATIO < down <= sqrt <= up < MAX_SQRT_RATIO
    # exactly the slippage in price (sqrt squared), rounded to the looser side by < 1 unit
    if down > MIN_SQRT_RATIO + 1:
        assert down**2 * BPS <= sqrt**2 * (BPS - bps) < (down + 1) ** 2 * BPS
    assert (up - 1) ** 2 * BPS < sqrt**2 * (BPS + bps) <= up**2 * BPS
    assert math.isqrt(sqrt**2) == sqrt

"""The configured policy decides the path: small rebalances through the module, larger ones
(or ones the module refuses) through the full multisig."""

from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import Engine

from lpbot.analytics.prices import price1_per_0
from lpbot.devnet.context import manifest_pricer
from lpbot.devnet.deploy import GAS, contract
from lpbot.devnet.keys import dev_signer
from lpbot.jobs import tasks
from lpbot.jobs.alerts import MemoryNotifier
from lpbot.pricing.base import PricingConfig
from lpbot.store import migrate, repo
from lpbot.store.session import make_engine, session_factory
from lpbot.strategy.fixed import FixedWidth
from lpbot.strategy.rebalance import RebalancePolicy
from tests.execution.conftest import Setup

pytestmark = pytest.mark.devnet


def _push_price_out_of_range(setup: Setup) -> None:
    m = setup.chain.manifest
    pool = contract(setup.chain.w3, "UniswapV3Pool", setup.pool)
    router = contract(setup.chain.w3, "SwapRouter02", m.contracts["SwapRouter02"])
    trader = m.accounts.traders[0]
    for _ in range(6):  # 0.4% steps ten minutes apart: the TWAP follows the price
        sqrt = pool.functions.slot0().call()[0]
        router.functions.exactInputSingle(
            (setup.tokens[1], setup.tokens[0], 500, trader, 10**24, 0, sqrt * 1004 // 1000)
        ).transact({"from": trader, "gas": GAS})
        setup.chain.increase_time(600)
    # the market moved, not just this pool: the ETH/USD feed follows it, as `devnet market`'s
    # keeper does (the module's anchor refuses a pool held off its feeds)
    info = next(p for p in m.pools if p.address == setup.pool)
    weth, usdc = m.token("WETH"), m.token("USDC")
    sqrt = pool.functions.slot0().call()[0]
    eth_usd = (
        price1_per_0(sqrt, weth.decimals, usdc.decimals)
        if info.token0 == "WETH"
        else 1 / price1_per_0(sqrt, usdc.decimals, weth.decimals)
    )
    feed = contract(setup.chain.w3, "PriceFeed", m.price_feeds["WETH"])
    feed.functions.updateAnswer(int(eth_usd * 10**8)).transact(
        {"from": m.accounts.deployer, "gas": GAS}
    )


def _managed(setup: Setup, engine: Engine, max_usd: int, via: str) -> tasks.ManagedPosition:
    return tasks.ManagedPosition(
        name="routing",
        ctx=setup.ctx,
        sessions=session_factory(engine),
        policy=RebalancePolicy(
            strategy=FixedWidth(half_width_ticks=600),
            edge_pct=None,
            vol_ratio_trigger=None,
            min_gain_over_cost=0.0,
        ),
        token_id=setup.token_id,
        pool=setup.pool,
        token0=setup.tokens[0],
        token1=setup.tokens[1],
        notifier=MemoryNotifier(),
        owner_signers=[dev_signer(9), dev_signer(10)],
        auto_execute_max_usd=Decimal(max_usd),
        auto_via=via,
        out=lambda _line: None,
    )


@pytest.fixture
def engine(tmp_path: object) -> Engine:
    e = make_engine(f"sqlite:///{tmp_path}/routing.db")
    migrate.upgrade(e)
    return e


def test_a_small_rebalance_goes_through_the_module(setup: Setup, engine: Engine) -> None:
    _push_price_out_of_range(setup)
    nonce = setup.safe_nonce()
    # the pool and the ETH/USD feed alone were pushed ~5% off the chain's other USDC/WETH pools,
    # where the marks are taken: USDC then marks ~0.95 USD. Bounds that tolerate it let the
    # report's marks check pass (the test below shows the default bounds refusing)
    setup.ctx.pricer = manifest_pricer(
        setup.chain.w3,
        setup.chain.manifest,
        PricingConfig(max_deviation_bps=1_000, depeg_bps=1_000),
    )
    mp = _managed(setup, engine, max_usd=1_000_000, via="module")
    outcome = tasks.rebalance_check(mp)
    assert outcome.startswith("rebalanced") and "module's operator key" in outcome
    assert setup.safe_nonce() == nonce  # no Safe transaction was needed
    with session_factory(engine)() as s:
        (entry,) = [e for e in repo.audit_entries(s) if e.kind == "auto-execute"]
    assert entry.decision == "execute" and "<= auto-execute limit $1,000,000.00" in entry.reasons[0]


def test_above_the_limit_the_owners_must_approve(setup: Setup, engine: Engine) -> None:
    _push_price_out_of_range(setup)
    nonce = setup.safe_nonce()
    mp = _managed(setup, engine, max_usd=10, via="module")  # $10: every rebalance is larger
    outcome = tasks.rebalance_check(mp)
    assert "awaits approval" in outcome
    assert setup.safe_nonce() == nonce
    assert isinstance(mp.notifier, MemoryNotifier)
    # (the pool alone was pushed off the other pools, so the marks also alert on it)
    kinds = [a.kind for a in mp.notifier.alerts]
    assert kinds.count("approval_needed") == 1 and "failure" not in kinds
    # the limit is read at the report's marks, and the decision names them
    with session_factory(engine)() as s:
        (entry,) = [e for e in repo.audit_entries(s) if e.kind == "auto-execute"]
    assert entry.decision == "ask"
    assert "> auto-execute limit $10.00" in entry.reasons[0]
    # and the marks disagreeing (this pool off the others) fail the report: never auto-executed
    assert "marks current and consistent" in entry.reasons[1]
    assert "WETH $" in entry.reasons[0] and "from pool:" in entry.reasons[0]
    (asked,) = [a for a in mp.notifier.alerts if a.kind == "approval_needed"]
    assert "from pool:" in asked.body

"""The configured policy decides the path: small rebalances through the module, larger ones
(or ones the module refuses) through the full multisig."""

from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import Engine

from lpbot.devnet.deploy import GAS, contract
from lpbot.devnet.keys import dev_signer
from lpbot.devnet.market import push_feeds
from lpbot.jobs import tasks
from lpbot.jobs.alerts import MemoryNotifier
from lpbot.store import migrate, repo
from lpbot.store.session import make_engine, session_factory
from lpbot.strategy.fixed import FixedWidth
from lpbot.strategy.rebalance import RebalancePolicy
from tests.execution.conftest import Setup

pytestmark = pytest.mark.devnet


def _push_price_out_of_range(setup: Setup) -> None:
    """The market moves 2.4% in an hour: every USDC/WETH pool follows (arbitrage) and the
    ETH/USD feed with it (the devnet's keeper), so the marks and the module's anchor agree."""
    m = setup.chain.manifest
    w3 = setup.chain.w3
    pool = contract(w3, "UniswapV3Pool", setup.pool)
    router = contract(w3, "SwapRouter02", m.contracts["SwapRouter02"])
    trader = m.accounts.traders[0]
    t0, t1 = setup.tokens
    others = [
        p for p in m.pools if {p.token0, p.token1} == {"USDC", "WETH"} and p.address != setup.pool
    ]

    def move(fee: int, address: str, target: int) -> None:
        sqrt = contract(w3, "UniswapV3Pool", address).functions.slot0().call()[0]
        if sqrt == target:
            return
        token_in, token_out = (t1, t0) if sqrt < target else (t0, t1)
        router.functions.exactInputSingle(
            (token_in, token_out, fee, trader, 10**24, 0, target)
        ).transact({"from": trader, "gas": GAS})

    for _ in range(6):  # 0.4% steps ten minutes apart: the TWAP follows the price
        target = pool.functions.slot0().call()[0] * 1004 // 1000
        move(500, setup.pool, target)
        for other in others:
            move(other.fee, other.address, target)
        setup.chain.increase_time(600)
    push_feeds(w3, m)


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
    assert [a.kind for a in mp.notifier.alerts] == ["approval_needed"]
    # the limit is read at the report's marks, and the decision names them
    with session_factory(engine)() as s:
        (entry,) = [e for e in repo.audit_entries(s) if e.kind == "auto-execute"]
    assert entry.decision == "ask"
    assert "> auto-execute limit $10.00" in entry.reasons[0]
    assert "WETH $" in entry.reasons[0] and "from pool:" in entry.reasons[0]
    (asked,) = [a for a in mp.notifier.alerts if a.kind == "approval_needed"]
    assert "from pool:" in asked.body

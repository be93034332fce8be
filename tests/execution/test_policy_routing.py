"""The configured policy decides the path: small rebalances through the module, larger ones
through the full multisig, for people to approve. A rebalance the module refuses is an alert
and a plan the owners approve: never one the bot signs with owner keys it holds."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest
from sqlalchemy import Engine

from lpbot.devnet.deploy import GAS, USD_PRICES, contract
from lpbot.devnet.keys import dev_signer
from lpbot.devnet.market import push_feeds
from lpbot.execution.state import RebalanceState
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


def _managed(
    setup: Setup,
    engine: Engine,
    max_usd: int,
    via: str,
    owners: tuple[int, ...] = (9, 10),
    allow_hot_quorum: bool = False,
) -> tasks.ManagedPosition:
    return tasks.ManagedPosition(
        name="routing",
        ctx=setup.ctx,
        sessions=session_factory(engine),
        policy=RebalancePolicy(
            strategy=FixedWidth(half_width_ticks=600),
            edge_pct=None,
            vol_ratio_trigger=None,
            min_gain_over_cost=0.0,
            rebalance_rule="fees",  # re-centre whatever the LVR
        ),
        token_id=setup.token_id,
        pool=setup.pool,
        token0=setup.tokens[0],
        token1=setup.tokens[1],
        notifier=MemoryNotifier(),
        owner_signers=[dev_signer(i) for i in owners],
        auto_execute_max_usd=Decimal(max_usd),
        auto_via=via,
        allow_hot_quorum=allow_hot_quorum,
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
    # the value is at the price source's mark of the plan's block, not a devnet constant
    found = re.search(r"at marks of block (\d+): .*WETH \$([\d,.]+) from", entry.reasons[0])
    assert found is not None
    block, weth = int(found[1]), Decimal(found[2].replace(",", ""))
    assert weth == Decimal(f"{setup.ctx.pricer.fetch_mark('WETH', block).usd:.6g}")
    assert weth != USD_PRICES["WETH"]
    (asked,) = [a for a in mp.notifier.alerts if a.kind == "approval_needed"]
    assert "from pool:" in asked.body


def _pause_module(setup: Setup) -> None:
    """One owner pauses the module's operator (any single owner may)."""
    w3 = setup.chain.w3
    owner = dev_signer(9).address
    module = contract(w3, "LPRebalanceModule", setup.ctx.contracts["LPRebalanceModule"])
    tx = module.functions.pause().transact({"from": owner, "gas": 200_000})
    assert w3.eth.wait_for_transaction_receipt(tx)["status"] == 1


def test_a_module_refusal_waits_for_people_even_with_a_hot_quorum(
    setup: Setup, engine: Engine
) -> None:
    _push_price_out_of_range(setup)
    _pause_module(setup)
    nonce = setup.safe_nonce()
    npm = setup.ctx.contract("NonfungiblePositionManager")
    # the bot even holds two of the three owner keys, hot quorum allowed: the module's refusal
    # still is not gone around
    mp = _managed(setup, engine, max_usd=1_000_000, via="module", allow_hot_quorum=True)
    outcome = tasks.rebalance_check(mp)
    assert "awaits approval" in outcome
    assert setup.safe_nonce() == nonce  # no Safe transaction was executed
    assert npm.functions.ownerOf(setup.token_id).call() == setup.ctx.safe  # not burned
    assert isinstance(mp.notifier, MemoryNotifier)
    kinds = [a.kind for a in mp.notifier.alerts]
    assert kinds == ["module_refused", "approval_needed"]
    assert "IsPaused" in mp.notifier.alerts[0].body
    with session_factory(engine)() as s:
        (entry,) = [e for e in repo.audit_entries(s) if e.kind == "auto-execute"]
    assert entry.decision == "ask"
    assert any("the module refused it" in r for r in entry.reasons)
    # the owners' plan is waiting for a person: nothing is marked approved by the policy
    records = setup.ctx.repo.unfinished()
    states = sorted(r.state.value for r in records)
    assert RebalanceState.APPROVED.value not in states
    assert all(r.approved_by is None for r in records)


@pytest.mark.parametrize(
    ("owners", "allow", "why"),
    [
        ((9,), True, "the bot holds 1 of the 2 owner keys the Safe needs"),
        ((9, 10), False, "signer.allow_hot_quorum is off"),
    ],
)
def test_the_multisig_runs_on_its_own_only_with_an_allowed_hot_quorum(
    setup: Setup, engine: Engine, owners: tuple[int, ...], allow: bool, why: str
) -> None:
    _push_price_out_of_range(setup)
    nonce = setup.safe_nonce()
    mp = _managed(
        setup, engine, max_usd=1_000_000, via="multisig", owners=owners, allow_hot_quorum=allow
    )
    outcome = tasks.rebalance_check(mp)
    assert "awaits approval" in outcome
    assert setup.safe_nonce() == nonce
    with session_factory(engine)() as s:
        (entry,) = [e for e in repo.audit_entries(s) if e.kind == "auto-execute"]
    assert entry.decision == "ask"
    assert any(why in r for r in entry.reasons), entry.reasons
    assert all(r.approved_by is None for r in setup.ctx.repo.unfinished())

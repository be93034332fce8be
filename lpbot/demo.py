"""``lpbot demo``: the whole managed-LP cycle on a private local chain, in a few minutes.

1. A local chain with the official Uniswap V3 and Safe contracts, seeded pools and a 2-of-3 Safe.
2. The market trades for half a day so the pool's oracle has a price history.
3. The bot opens a Safe-owned USDC/WETH 0.05% position in a volatility band (its range from the
   strategy, its amounts from the exact core, minimums and a deadline on the mint).
4. Simulated days pass (Anvil's clock is advanced, not waited for). Every hour the monitor job
   reads the position and the hedge job keeps a paper perp short delta-neutral; every few hours
   the rebalance job asks the policy. When the price leaves the range and the gain beats the
   cost, it plans the rebalance, dry-runs it into a report, and the bot's one key, the rebalance
   module's operator, sends it (the policy lets small moves execute without a person; the
   module's limits, set by the Safe's owners, are enforced on chain); it is reconciled. The bot
   holds no Safe owner key: a rebalance the module refuses waits for the owners.
5. The summary: the ledger at the last snapshot, every figure at the market's marks (the pools
   against USDC, USDC through the ETH/USD feed): value against holding, explained by fees, IL,
   hedge PnL, funding, gas and swap costs, to the cent; and the reports.
"""

from __future__ import annotations

import contextlib
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from lpbot.analytics.ledger import Ledger
from lpbot.analytics.prices import price0_per_1, to_units
from lpbot.chain.history import fetch_oracle_history
from lpbot.chain.rpc import connect
from lpbot.devnet import anvil
from lpbot.devnet.context import SAFE_OWNER_INDEXES, devnet_context
from lpbot.devnet.deploy import contract
from lpbot.devnet.keys import dev_signer
from lpbot.devnet.manifest import Manifest, PoolInfo
from lpbot.devnet.market import run_market
from lpbot.devnet.positions import mint_usdc_weth_tx
from lpbot.devnet.service import load_or_deploy
from lpbot.execution.service import ExecutionContext
from lpbot.execution.snapshots import pool_snapshot
from lpbot.hedge.base import ManualClock
from lpbot.hedge.controller import HedgeController
from lpbot.hedge.paper import PAPER_MARKETS, FundingSeries, PaperExchange
from lpbot.hedge.plan import HedgeConfig
from lpbot.hedge.state import MemoryStateStore
from lpbot.jobs import tasks
from lpbot.jobs.alerts import MemoryNotifier
from lpbot.pricing.marks import chain_pricer
from lpbot.store import migrate
from lpbot.store.rebalances import SqlRebalanceRepo
from lpbot.store.session import make_engine, session_factory
from lpbot.strategy.rebalance import RebalancePolicy
from lpbot.strategy.vol_band import VolatilityBand

HOUR = 3600


@dataclass(frozen=True)
class CrashResult:
    """The crash scenario: each regime change (minute, level, reasons), the withdraw's record
    id and what the Safe received (raw token0, token1), the hedge before and after."""

    changes: list[tuple[int, str, tuple[str, ...]]]
    withdraw_id: int | None
    received: tuple[int, int] | None
    hedge_before: Decimal
    hedge_after: Decimal
    alerts: list[str]


@dataclass(frozen=True)
class DemoResult:
    fees_usd: Decimal
    il_usd: Decimal
    hedge_pnl_usd: Decimal
    funding_usd: Decimal
    gas_usd: Decimal
    net_vs_hold_usd: Decimal
    rebalances: int
    compounds: int
    reports: list[Path]
    max_abs_net_delta: Decimal
    ledger: Ledger
    database: Path
    alerts: int


def run(
    *,
    days: int = 3,
    seed: int = 11,
    vol: float = 1.0,
    capital_usd: int = 10_000,
    out: Callable[[str], None] = print,
    workdir: Path | None = None,
    via: str = "module",
    signer: str = "keys",
    scenario: str = "hourly",
) -> Any:
    """Run the demo (module docstring); ``scenario="crash"``: the market regime through a crash
    (``_crash``, returns a ``CrashResult``), else ``days`` of hourly management
    (a ``DemoResult``)."""
    if scenario == "crash":
        # the stressed withdraw runs on its own through the multisig (the demo's hot quorum):
        # the module's limits may refuse it at a crash's prices, and then the owners sign
        via, signer = "multisig", "keys"
    work = workdir or Path(tempfile.mkdtemp(prefix="lpbot-demo-"))
    cache = Path(tempfile.gettempdir()) / "lpbot-demo-cache"
    t0 = time.monotonic()
    out("1. local chain")
    proc = anvil.start(log_path=work / "anvil.log")
    stack = contextlib.ExitStack()
    try:
        w3 = connect(proc.url)
        manifest, cached = load_or_deploy(w3, proc.url, cache)
        out(
            f"   Anvil at {proc.url}: Uniswap V3, Safe 1.4.1 and pools "
            f"{'loaded' if cached else 'deployed from the official artifacts'} "
            f"({time.monotonic() - t0:.1f} s); Safe {manifest.safe} (2 of 3)"
        )
        info = manifest.pool("USDC/WETH-500")
        usdc, weth = manifest.token(info.token0), manifest.token(info.token1)

        # start the chain's clock at the next UTC midnight (+30 min): the same seed then gives
        # the same story whenever the demo runs
        latest = w3.eth.get_block("latest")["timestamp"]
        set_time: Any = "evm_setNextBlockTimestamp"
        w3.provider.make_request(set_time, [(latest // 86400 + 1) * 86400 + 1800])
        w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]

        out("2. the market trades for 12 hours (oracle history)")
        run_market(w3, manifest, info, steps=12, vol=vol, seed=seed, step_seconds=HOUR)

        engine = make_engine(f"sqlite:///{work / 'lpbot.db'}")
        migrate.upgrade(engine)
        sessions = session_factory(engine)
        notifier = MemoryNotifier()
        # the simulated market jumps to each hour's price in one block, so the spot can stand
        # 1-2% off a 10-minute TWAP without manipulation; the demo's guard allows 2.5%
        ctx = devnet_context(
            w3, manifest, SqlRebalanceRepo(sessions), work / "reports", max_twap_deviation_bps=250
        )
        owners: list[Any] = [dev_signer(i) for i in SAFE_OWNER_INDEXES[:2]]
        if signer == "mpc":
            from lpbot.devnet.mpc_owner import demo_mpc_owner

            out("   MPC owner: this host's party + the co-signer (its own process and policy)")
            mpc_owner = stack.enter_context(demo_mpc_owner(w3, manifest, work, out))
            # the Safe's 2 of 3: owner 1's key, and the MPC owner (party 1 + the co-signer)
            owners = [dev_signer(SAFE_OWNER_INDEXES[0]), mpc_owner]
        strategy = VolatilityBand(k=1.5, horizon_seconds=6 * HOUR, halflife_seconds=6 * HOUR)
        policy = RebalancePolicy(
            strategy=strategy,
            edge_pct=None,
            vol_ratio_trigger=None,
            horizon_seconds=24 * HOUR,
            vol_short_halflife_seconds=2 * HOUR,
            vol_long_halflife_seconds=24 * HOUR,
            # compound when the fees are worth 10 x what compounding costs (gas and swap)
            compound_margin=10.0,
            # the demo shows a rebalance through the module: re-centre when the extra fees beat
            # the costs, whatever the devnet pool's LVR
            rebalance_rule="fees",
        )

        out("3. open a Safe-owned position in a volatility band")
        token_id, entry, mint_tx = _open(ctx, manifest, info, strategy, capital_usd, out)

        clock = ManualClock(w3.eth.get_block("latest")["timestamp"] * 1000)
        pricer = chain_pricer(w3, manifest)
        opened = pricer.fetch_marks(["USDC", "WETH"], w3.eth.block_number)
        price_box: list[Decimal] = [opened.usd("WETH")]
        spec, book = PAPER_MARKETS["ETH/USDT:USDT"]
        paper = PaperExchange(
            reference_price=lambda: price_box[0],
            clock=clock,
            spec=spec,
            book=book,
            funding=FundingSeries.constant(Decimal("0.0001")),
            seed=seed,
            initial_balance=Decimal(capital_usd),
        )
        market_info = paper.load_market(spec.symbol)
        hedge = HedgeController(
            paper,
            HedgeConfig(symbol=spec.symbol, band_abs=Decimal("0.1"), band_pct=Decimal(5)),
            MemoryStateStore(None),
            position_id=f"demo:{token_id}",
            clock=clock,
        )
        assert market_info.min_amount > 0
        if via == "multisig" and signer == "keys":
            # two of the Safe's three owner keys in this process: the multisig is a hot wallet,
            # which lpbot only accepts when told (signer.allow_hot_quorum); the demo says so
            out(
                "   --via multisig: the bot holds 2 of the Safe's 3 owner keys "
                "(allow_hot_quorum, for this demo only: the multisig is then a hot wallet)"
            )
        elif via == "multisig":
            out(
                "   --via multisig: the bot holds one owner key; the MPC owner signs only what "
                "its co-signer's own policy allows"
            )
        else:
            out(
                "   the bot holds the module's operator key only: the Safe's owners set its "
                "limits on chain, and sign anything beyond them"
            )
            owners = []
        mp = tasks.ManagedPosition(
            name="demo-usdc-weth",
            ctx=ctx,
            sessions=sessions,
            policy=policy,
            token_id=token_id,
            pool=info.address,
            token0=usdc.address,
            token1=weth.address,
            notifier=notifier,
            owner_signers=owners,
            auto_execute_max_usd=Decimal(capital_usd * 2),
            auto_via=via,
            allow_hot_quorum=via == "multisig" and signer == "keys",
            hedge=hedge,
            hedge_risky=1,
            entry=entry,
            opened_at=w3.eth.get_block("latest")["timestamp"],
            out=out,
            pricer=pricer,
        )
        mp.entry_marks = mp.prices(opened)
        mp.opened_by([mint_tx])  # the opening's gas: the ledger's first cost

        if scenario == "crash":
            return _crash(w3, manifest, info, mp, hedge, clock, price_box, notifier, out, t0)
        out(f"4. {days} days of market; monitor and hedge hourly, rebalance check every 4 h")
        out(
            f"   {'hour':>4} {'ETH/USD':>9} {'range':>5} {'value $':>10} {'hold $':>10} "
            f"{'fees $':>7} {'LP delta':>8} {'hedge':>8} {'net':>7}  event"
        )
        max_net = Decimal(0)
        state = None
        pool_c = contract(w3, "UniswapV3Pool", info.address)

        def follow_chain() -> None:
            # the paper perp's mark and clock are the chain's latest block, before the monitor
            # values the hedge with the position: every snapshot's hedge PnL and funding are
            # at the same block (and price) as its position's value
            clock.set(int(w3.eth.get_block("latest")["timestamp"]) * 1000)
            sqrt_price = pool_c.functions.slot0().call()[0]
            price_box[0] = price0_per_1(sqrt_price, usdc.decimals, weth.decimals)

        for hour in range(1, days * 24 + 1):
            run_market(w3, manifest, info, steps=1, vol=vol, seed=seed * 1000 + hour)
            follow_chain()
            state = tasks.monitor(mp)
            event = ""
            if hour % 4 == 0:
                outcome = tasks.run_safely(
                    "rebalance_check", lambda: tasks.rebalance_check(mp), notifier
                )
                if outcome and outcome.startswith(("rebalanced", "compounded")):
                    event = outcome
                    follow_chain()
                    state = tasks.monitor(mp)
                elif outcome:
                    event = outcome if len(outcome) < 90 else outcome[:87] + "..."
            tasks.run_safely("hedge_sync", lambda: tasks.hedge_sync(mp), notifier)
            status = hedge.status(state.delta)
            max_net = max(max_net, abs(status.net))
            assert state.marks is not None
            fees_usd = mp.prices(state.marks).usd((state.fees0, state.fees1), mp.decimals)
            if event or hour % 6 == 0:
                out(
                    f"   {hour:>4} {state.price:>9.2f} {'in' if state.in_range else 'OUT':>5} "
                    f"{state.value_usd:>10.2f} {state.hold_usd or 0:>10.2f} {fees_usd:>7.2f} "
                    f"{state.delta:>8.4f} {status.hedge:>+8.4f} {status.net:>+7.4f}  {event}"
                )
        assert state is not None

        out("5. summary")
        # a last snapshot after the hedge's last sync: the summary is the ledger at it, as
        # stored (``lpbot export`` recomputes the same numbers from the database)
        follow_chain()
        state = tasks.monitor(mp)
        result = _summary(mp, state, hedge, max_net, out, work / "lpbot.db", len(notifier.alerts))
        out(f"   reports: {len(result.reports)} dry-run report(s) in {work / 'reports'}")
        for path in result.reports:
            out(f"     {path}")
        out(f"   database: {work / 'lpbot.db'}; alerts raised: {len(notifier.alerts)}")
        for a in notifier.alerts:
            if a.kind.startswith("price_"):
                out(f"     {a.kind}: {a.title}")
        config = _write_config(work, manifest)
        out(f"   done in {time.monotonic() - t0:.0f} s")
        out(f"   see it in the dashboard: lpbot dashboard --config {config}")
        return result
    finally:
        stack.close()
        proc.stop()


DEMO_CONFIG = """\
# the demo's run, for `lpbot dashboard --config THIS_FILE` (its chain is stopped: read only)
version = 1
data_dir = "."
[chains.devnet]
manifest = "manifest.json"
"""


def _write_config(work: Path, manifest: Manifest) -> Path:
    """A configuration over the demo's database and reports, for the dashboard."""
    manifest.write(work / "manifest.json")
    path = work / "lpbot.toml"
    path.write_text(DEMO_CONFIG)
    return path


def _open(
    ctx: ExecutionContext,
    manifest: Manifest,
    info: PoolInfo,
    strategy: VolatilityBand,
    capital_usd: int,
    out: Callable[[str], None],
) -> tuple[int, tuple[int, int], str]:
    """Open the position; (token id, the amounts it took, the mint's transaction hash)."""
    from lpbot.chain.reader import PoolReader

    m = manifest
    w3 = ctx.w3
    reader = PoolReader(
        w3,
        multicall=m.contracts["Multicall3"],
        tick_lens=m.contracts["TickLens"],
    )
    pool_addr = info.address
    snap = reader.fetch_pool_state(pool_addr, twap_seconds=(0,))
    usdc = m.token(info.token0)
    weth = m.token(info.token1)
    history = fetch_oracle_history(w3, pool_addr, window_seconds=12 * HOUR, step_seconds=HOUR)
    rng = strategy.range_for(pool_snapshot(snap, usdc.decimals, weth.decimals), history)
    token_id, need0, need1, tx_hash = mint_usdc_weth_tx(
        w3, m, snap, rng.tick_lower, rng.tick_upper, usdc=capital_usd // 2, recipient=m.safe or ""
    )
    lo_price = Decimal("1.0001") ** -rng.tick_upper * Decimal(10) ** 12
    hi_price = Decimal("1.0001") ** -rng.tick_lower * Decimal(10) ** 12
    out(
        f"   #{token_id} for the Safe: ETH {lo_price:,.0f} to {hi_price:,.0f} USD "
        f"(ticks [{rng.tick_lower}, {rng.tick_upper}) from {len(history)} hourly oracle prices); "
        f"paid {to_units(need0, usdc.decimals):,.2f} USDC + {to_units(need1, weth.decimals):.4f} "
        "WETH, exactly as computed"
    )
    return token_id, (need0, need1), tx_hash


def _summary(
    mp: tasks.ManagedPosition,
    state: tasks.PositionState,
    hedge: HedgeController,
    max_net: Decimal,
    out: Callable[[str], None],
    database: Path,
    alerts: int,
) -> DemoResult:
    t = mp.tally
    status = hedge.status(state.delta)
    ledger = state.ledger
    assert ledger is not None
    u = ledger.usd
    marks = state.marks
    assert marks is not None
    reports = sorted(mp.ctx.reports_dir.glob("*.html")) if mp.ctx.reports_dir.exists() else []
    out(
        f"   marks at block {ledger.block}: "
        + "; ".join(
            f"{t} {m.usd:,.4f} USD ({m.source})" for t, m in marks.marks.items() if t != "WBTC"
        )
    )
    out(
        f"   value now          ${u.value:>10.2f}  (hold the deposit ${u.hold:.2f}; "
        f"50/50 at the deposit, no costs ${u.hold_5050:.2f}; kept in USD ${u.hold_numeraire:.2f})"
    )
    if ledger.full_range is not None and u.full_range is not None:
        out(
            f"   passive full range ${u.full_range:>10.2f}  (its fees ${u.full_range_fees:.2f}, "
            f"after its opening's gas; net vs it ${u.net_vs_full_range:.2f}; "
            f"{ledger.full_range.note})"
        )
    out(
        f"   fees earned        ${u.fees:>10.2f}  ({t.rebalances} rebalance(s), "
        f"{t.compounds} compound(s))"
    )
    out(f"   IL vs holding      ${u.il:>10.2f}")
    out(
        f"   hedge PnL          ${u.hedge_pnl:>10.2f}  (after ${status.pnl.fees:.2f} trading "
        f"fees); max |net delta| {max_net:.4f} ETH"
    )
    out(f"   funding            ${u.funding:>10.2f}")
    out(f"   gas                ${-u.gas:>10.2f}  ({len(t.gas)} transaction(s))")
    out(f"   swap fee + impact  ${-u.swap_costs:>10.2f}")
    out(
        f"   net vs holding     ${u.net:>10.2f}  (= the lines above; in ETH "
        f"{ledger.lines('ETH').net:+.6f})"
    )
    for e in t.events:
        out(f"   - {e}")
    return DemoResult(
        fees_usd=u.fees,
        il_usd=u.il,
        hedge_pnl_usd=u.hedge_pnl,
        funding_usd=u.funding,
        gas_usd=u.gas,
        net_vs_hold_usd=u.net,
        rebalances=t.rebalances,
        compounds=t.compounds,
        reports=reports,
        max_abs_net_delta=max_net,
        ledger=ledger,
        database=database,
        alerts=alerts,
    )


def _crash(
    w3: Any,
    manifest: Manifest,
    info: PoolInfo,
    mp: tasks.ManagedPosition,
    hedge: HedgeController,
    clock: ManualClock,
    price_box: list[Decimal],
    notifier: MemoryNotifier,
    out: Callable[[str], None],
    t0: float,
) -> CrashResult:
    """The market regime through a crash: an hour of calm (the baseline), ETH falling about 8%
    in three minutes with the paper perp's liquidations and open interest following, the
    regime rising with its reasons (the next range wider and the hedge band tighter when
    elevated, the withdraw to the Safe and the hedge to the new delta when stressed, the
    monitor every minute), then the market calming and the regime coming back to normal."""
    import random

    from lpbot.config import RiskConfig
    from lpbot.devnet.market import move_price
    from lpbot.jobs.regime import RegimeWatch
    from lpbot.risk.regime import Level

    risk = RiskConfig(min_dwell_seconds=600)
    mp.regime = RegimeWatch(risk.regime_config(), risk.actions(), risk.stress_monitor_seconds)
    pool_c = contract(w3, "UniswapV3Pool", info.address)
    usdc, weth = manifest.token(info.token0), manifest.token(info.token1)
    rng = random.Random(5)
    start = int(w3.eth.get_block("latest")["timestamp"])
    changes: list[tuple[int, str, tuple[str, ...]]] = []
    withdraw_id: int | None = None
    received: tuple[int, int] | None = None

    def step(seconds: int, factor: float) -> str:
        w3.provider.make_request("evm_increaseTime", [seconds])
        w3.provider.make_request("evm_mine", [])
        if factor != 1:
            move_price(w3, manifest, info, factor)
        clock.set(int(w3.eth.get_block("latest")["timestamp"]) * 1000)
        price_box[0] = price0_per_1(
            pool_c.functions.slot0().call()[0], usdc.decimals, weth.decimals
        )
        before = mp.regime.level if mp.regime is not None else Level.NORMAL
        tasks.run_safely("hedge_sync", lambda: tasks.hedge_sync(mp), notifier)
        state = tasks.monitor(mp)
        assert mp.regime is not None and mp.regime.tracker is not None
        now = mp.regime.tracker.state
        minute = (int(w3.eth.get_block("latest")["timestamp"]) - start) // 60
        event = ""
        if now.level != before:
            changes.append((minute, now.level.label, now.reasons))
            why = "; ".join(now.reasons) or (
                f"every signal below its {before.label} exit threshold for "
                f"{risk.min_dwell_seconds:.0f} s"
            )
            event = f"{before.label} -> {now.level.label}: {why}"
        status = hedge.status(state.delta)
        out(
            f"   {minute:>4} {state.price:>9.2f} {now.level.label:>8} "
            f"{state.value_usd:>10.2f} {state.delta:>8.4f} {status.hedge:>+8.4f}  {event}"
        )
        return event

    out("4. a crash with a liquidation cascade; the market regime on every monitor tick")
    out(f"   {'min':>4} {'ETH/USD':>9} {'regime':>8} {'value $':>10} {'LP delta':>8} {'hedge':>8}")
    hedge_before = Decimal(0)
    for _ in range(12):  # an hour of calm, every 5 minutes: the baseline
        step(300, 1 + rng.choice((-1, 1)) * 0.00025)
        hedge_before = hedge.status(Decimal(0)).hedge
    for factor in (1.01, 1.015, 1.015):  # ETH falls about 2%, then 6% more
        step(60, factor)
        if mp.regime.level is Level.ELEVATED:
            widened = tasks.decision_policy(mp).strategy
            out(
                f"        elevated: the next range {mp.regime.actions.widen_factor:g}x as wide "
                f"({type(widened).__name__}), the hedge band x"
                f"{mp.regime.actions.hedge_band_factor:g}"
            )
    for _ in range(20):  # stressed: every minute, until the withdraw is through
        if mp.withdrawn:
            break
        step(60, 1.0)
    for r in _withdraws(mp):
        withdraw_id = r.id
        if r.result is not None:
            received = (int(r.result["collected"][0]), int(r.result["collected"][1]))
    if received is not None:
        out(
            f"        withdrew to the Safe: {to_units(received[0], usdc.decimals)} USDC + "
            f"{to_units(received[1], weth.decimals)} WETH; the hedge to the new delta, zero"
        )
    for _ in range(12):  # the market calms: every 5 minutes
        step(300, 1 + rng.choice((-1, 1)) * 0.00025)
        if mp.regime.level is Level.NORMAL:
            break
    if mp.regime.level is Level.NORMAL:
        out(
            "        the regime is normal again: the position waits in the Safe, re-entry is "
            "the owners' (`lpbot position open`): lpbot does not re-enter on its own yet"
        )
    hedge_after = hedge.status(Decimal(0)).hedge
    alerts = [f"{a.kind}: {a.title}" + (f" ({a.body})" if a.body else "") for a in notifier.alerts]
    out("5. alerts")
    for a in alerts:
        out(f"   {a}")
    out(f"   done in {time.monotonic() - t0:.0f} s")
    return CrashResult(changes, withdraw_id, received, hedge_before, hedge_after, alerts)


def _withdraws(mp: tasks.ManagedPosition) -> list[Any]:
    out, i = [], 1
    while (r := mp.ctx.repo.get(i)) is not None:
        if r.kind == "withdraw":
            out.append(r)
        i += 1
    return out

"""Plan, dry-run, approve, sign, send and reconcile one rebalance of a Safe-owned position.

Each function moves the persisted state machine (``state``) by compare-and-set and never takes
an on-chain step that the chain shows was already taken: the SafeTx nonce makes the Safe execute
a rebalance at most once, and ``resume`` looks at the chain (receipts, the Safe's nonce and its
``ExecutionSuccess`` events) before doing anything for a rebalance found unfinished.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, localcontext
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

import requests
from eth_utils.address import to_checksum_address
from web3 import Web3
from web3.exceptions import ContractLogicError, TransactionNotFound, Web3Exception
from web3.logs import DISCARD
from web3.types import TxReceipt

from lpbot.analytics.types import Tick
from lpbot.chain import artifacts
from lpbot.chain.gas import GasModel, gas_model_for
from lpbot.chain.reader import PoolReader, PoolSnapshot
from lpbot.chain.registry import default_contract
from lpbot.chain.submit import (
    Fees,
    GasPriceTooHigh,
    NonceManager,
    NonceUsedElsewhere,
    SentTx,
    SubmissionRoute,
    Submitter,
    sent_from_raw,
    submission_route,
)
from lpbot.errors import NeedsAttention, Refused, RetryLater
from lpbot.execution import preflight as pf
from lpbot.execution.callsim import (
    call_dry_run,
    call_dry_run_module,
    check_helper_code,
    check_no_guard,
)
from lpbot.execution.plan import (
    MAX_SLIPPAGE_BPS,
    RebalancePlan,
    build_compound_plan,
    build_open_plan,
    build_rebalance_plan,
    build_withdraw_plan,
    open_idempotency_key,
    range_slippage_bps,
    sandwich_exposure,
)
from lpbot.execution.simulate import DryRunResult, _decode, dry_run, dry_run_module
from lpbot.execution.state import (
    RebalanceRecord,
    RebalanceRepo,
    RebalanceState,
    TxRecord,
    wasted_gas_wei,
)
from lpbot.pricing.base import Marks, NoPriceRoute
from lpbot.report.dryrun import approvable, build_report, read_report, write_report
from lpbot.signing.base import Signer
from lpbot.signing.module import ModuleTransaction, build_module_transaction
from lpbot.signing.safe import (
    InnerCall,
    OwnerSignature,
    ReportSigner,
    SafeTransaction,
    build_safe_transaction,
    check_multisend_code,
    combine,
    exec_transaction_data,
    read_signature_file,
    sign,
)
from lpbot.strategy.base import Range

if TYPE_CHECKING:
    from lpbot.chain.book import AddressBook
    from lpbot.devnet.manifest import Manifest

log = logging.getLogger(__name__)
S = RebalanceState
P = ParamSpec("P")
R = TypeVar("R")


def _node_down_is_retry_later(step: Callable[P, R]) -> Callable[P, R]:
    """A node that cannot be reached mid-step is one line, retry-later, without its URL (the
    error's text may hold it, and with it an API key); every step taken was recorded, so
    running the command again, or resume, goes on from there."""

    @functools.wraps(step)
    def wrapped(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return step(*args, **kwargs)
        except requests.RequestException as exc:
            raise RetryLater(
                f"the node cannot be reached ({type(exc).__name__}): nothing more was done; "
                "run it again later, it goes on from the last recorded step"
            ) from exc

    return wrapped


@dataclass
class ExecutionContext:
    """Everything the rebalance steps need, wired by the CLI or the scheduler."""

    w3: Web3
    chain_id: int
    safe: str
    contracts: dict[str, str]  # NonfungiblePositionManager, SwapRouter02, UniswapV3Factory, ...
    repo: RebalanceRepo
    reports_dir: Path
    executor: Signer
    symbols: Mapping[str, tuple[str, int]]  # token address -> (symbol, decimals)
    native_usd: Decimal
    slippage_bps: int = 50
    max_slippage_bps: int = MAX_SLIPPAGE_BPS  # --force: up to 9,999
    # where ``slippage_bps`` comes from (the policy's key, the command line), in the report
    slippage_source: str = ""
    # set when the policy gives no slippage: each plan's is derived from its range's width so
    # that a sandwich takes at most this many bps of the position (``default_slippage_bps``);
    # ``slippage_bps`` is then unused
    max_sandwich_bps: int | None = None
    deadline_seconds: int = 1200
    twap_seconds: int = 600
    max_twap_deviation_bps: int = 100
    report_max_age_seconds: float = 900.0
    via: str = "multisig"  # or "module": the operator key through LPRebalanceModule
    operator: Signer | None = None
    confirmations: int = 1
    replace_after: float = 60.0
    checkpoint: Callable[[str], None] = field(default=lambda _name: None)
    # the chain's price source (``pricing.marks.Pricer``, built from ``[pricing]``): the marks
    # behind every USD figure of a decision and of the dry-run report, taken at their block
    pricer: Any = None
    # where dry-runs run: None = this chain itself, snapshotted and reverted (a devnet); on a live
    # chain, a fresh local fork of it (``lpbot.chain.forksim.ForkSimulator.fresh``)
    simulator: Callable[[], Web3] | None = None
    # how the dry-run runs: "fork" (``simulator``, or this chain snapshotted) or "call" (only
    # ``eth_call`` on this chain's node: ``lpbot.execution.callsim``)
    dry_run: str = "fork"
    # the pre-flight's staleness bound: the price may move at most this share (bps) of the
    # slippage tolerance between the report and the send
    max_price_move_share_bps: int = 5_000
    # gas limit = max(live eth_estimateGas, the dry-run's gas used) x (1 + margin)
    gas_margin_bps: int = 2_000
    # the most one rebalance may cost in gas (expected fee, USD); above it, wait and alert
    max_fee_usd: Decimal | None = None
    # the highest max fee per gas (wei) a rebalance's transaction is first sent with; above
    # it, wait and alert (a replacement or cancel of one already sent is always sent)
    max_gas_price_wei: int | None = None
    # the gas token's USD price (a mark from pricing/, or the pools'); None: ``native_usd``
    gas_token_usd: Callable[[], Decimal] | None = None
    gas_model: GasModel | None = None  # None: the chain's, from the registry
    # where signed transactions go: a private endpoint (Flashbots Protect-like, a sequencer);
    # None sends to the public mempool through ``w3``
    submit_w3: Web3 | None = None
    public_fallback: bool = False  # the private endpoint down: fall back to the public mempool
    # which transactions go to ``submit_w3`` (``chain.submit.submission_route``): "auto" (on
    # Ethereum the swap-bearing ones), "always" or "never"; ``submit_endpoint`` names the
    # endpoint in reports (an environment variable's name, never a URL that may hold a key)
    private_submission: str = "auto"
    submit_endpoint: str | None = None
    # the chain whose submission rules apply (None: ``chain_id``): a local stand-in of a chain
    # gives the chain it stands for
    submission_chain_id: int | None = None
    max_replacements: int = 3  # then a zero-value self-transfer cancels the stuck transaction
    # the store's ledger entry of a reconciled rebalance (``jobs.ledger.reconciled_recorder``,
    # wired by ``app`` and the daemon): called with (record, outcome, report, receipt,
    # confirmed) before the record leaves SUBMITTED, so a crash in between is reconciled, and
    # recorded, again (the entry is kept once per transaction hash)
    on_reconciled: (
        Callable[[RebalanceRecord, dict[str, Any], dict[str, Any], TxReceipt, bool], None] | None
    ) = None
    progress: Callable[[str], None] = field(default=lambda line: log.info("%s", line))
    alert: Callable[[str, str], None] = field(
        default=lambda kind, text: log.warning("alert %s: %s", kind, text)
    )
    # (rebalance id, alert kind) of the waits already alerted: each wait is alerted once,
    # not on every resume that finds it still waiting
    waits_alerted: set[tuple[int, str]] = field(default_factory=set)

    def alert_wait(self, record_id: int, kind: str, text: str) -> None:
        """Alert ``kind`` for rebalance ``record_id``'s wait, the first time it waits so."""
        if (record_id, kind) not in self.waits_alerted:
            self.waits_alerted.add((record_id, kind))
            self.alert(kind, text)

    def contract(self, name: str, address: str | None = None) -> Any:
        addr = address or self.contracts[name]
        return self.w3.eth.contract(address=to_checksum_address(addr), abi=artifacts.abi(name))

    @property
    def safe_contract(self) -> Any:
        return self.contract("SafeL2", self.safe)


def chain_context(
    w3: Web3,
    manifest: Manifest,
    repo: RebalanceRepo,
    reports_dir: Path,
    *,
    safe: str,
    executor: Signer,
    pricer: Any,
    operator: Signer | None = None,
    book: AddressBook | None = None,
    **overrides: object,
) -> ExecutionContext:
    """A context for ``manifest``'s chain (a live chain's ``registry_manifest`` or the devnet's):
    the Safe that owns the positions, the key that sends, the chain's pricer; token symbols and
    decimals from ``book`` (read from the chain where the manifest does not list them). The
    gas token's USD price is WETH's mark when the rebalance is sent."""
    from lpbot.chain.book import AddressBook as Book
    from lpbot.chain.book import BookSymbols

    book = book or Book.of(w3, manifest)
    ctx = ExecutionContext(
        w3=w3,
        chain_id=manifest.chain_id,
        safe=str(safe),
        contracts=dict(manifest.contracts),
        repo=repo,
        reports_dir=reports_dir,
        executor=executor,
        symbols=BookSymbols(book),
        native_usd=pricer.fetch_mark("WETH", w3.eth.block_number).usd,
        operator=operator,
        pricer=pricer,
        gas_token_usd=lambda: pricer.fetch_mark("WETH", w3.eth.block_number).usd,
    )
    for k, v in overrides.items():
        setattr(ctx, k, v)
    return ctx


def plan_slippage(
    ctx: ExecutionContext,
    snapshot: PoolSnapshot,
    tick_lower: int,
    tick_upper: int,
    *,
    module: bool = False,
) -> tuple[int, int, str]:
    """The slippage of a plan minting into ``[tick_lower, tick_upper]`` at the snapshot's
    spot, its spot-vs-TWAP
    bound, and where the slippage is from: the configured value (with the context's bound,
    which ``app`` keeps at most the slippage), or derived from the range's width
    (``max_sandwich_bps``; the bound then at most the derived slippage). ``module``: the plan
    goes through the rebalance module, whose own ``slippageBps`` a derived value never passes
    (the module would refuse the looser minimums)."""
    if ctx.max_sandwich_bps is None:
        source = ctx.slippage_source or "the execution's setting"
        return ctx.slippage_bps, ctx.max_twap_deviation_bps, source
    half = (tick_upper - tick_lower) // 2
    spot = snapshot.slot0.sqrt_price_x96
    bps = range_slippage_bps(spot, tick_lower, tick_upper, ctx.max_sandwich_bps)
    capped = f", capped at {MAX_SLIPPAGE_BPS} bps" if bps == MAX_SLIPPAGE_BPS else ""
    if module:
        onchain = int(ctx.contract("LPRebalanceModule").functions.slippageBps().call())
        if onchain < bps:
            bps, capped = onchain, f", capped at the module's slippageBps {onchain}"
    bound = bps * sandwich_exposure(spot, tick_lower, tick_upper)
    source = (
        f"derived from the range's half-width of {half} ticks: a sandwich takes at most "
        f"{float(bound):.2f} bps of the position "
        f"(execution.max_sandwich_bps {ctx.max_sandwich_bps}){capped}"
    )
    return bps, min(ctx.max_twap_deviation_bps, bps), source


def _impact_source(source: str, derived: int, plan: RebalancePlan) -> str:
    """``source``, and the derived slippage tightened by the plan's swap (``mint_exposure``)."""
    if plan.slippage_bps >= derived:
        return source
    return f"{source}; {plan.slippage_bps} bps for the price after the swap, where the mint happens"


def route_of(ctx: ExecutionContext, *, swap: bool) -> SubmissionRoute:
    """Where a transaction of ``ctx``'s chain is sent; ``swap``: it carries a swap. Refused when
    it must go privately and no private endpoint is configured."""
    endpoint = None
    if ctx.submit_w3 is not None:
        endpoint = ctx.submit_endpoint or "the chain's submit endpoint"
    return submission_route(
        ctx.submission_chain_id or ctx.chain_id,
        ctx.private_submission,
        swap=swap,
        endpoint=endpoint,
        public_fallback=ctx.public_fallback,
    )


def carries_swap(report: dict[str, Any]) -> bool:
    """Whether a report's transaction swaps (a rebalance, compound or open with a swap)."""
    return report["plan"].get("swap_zero_for_one") is not None


def report_marks(ctx: ExecutionContext, symbols: tuple[str, str], block: int) -> Marks:
    """The price source's marks of a plan's tokens (and WETH, for gas) at the plan's block,
    checks applied: the dry-run report's USD figures, and the auto-execute limit's."""
    if ctx.pricer is None:
        raise Refused("no price source configured: the dry-run report's USD figures need marks")
    marks: Marks = ctx.pricer.fetch_marks(list(symbols), block)
    if "WETH" not in marks.marks:  # the gas figures' mark: refused before anything is recorded
        raise NoPriceRoute("WETH", marks.chain, "the gas cost's mark")
    return marks


def fetch_reference(
    ctx: ExecutionContext, tokens: tuple[str, str], pool: str, block: int
) -> tuple[Decimal, str] | None:
    """A second source's price of the pool's token0 in token1, raw units, and where it is from
    (the price source's feeds or another pool of the pair, never ``pool``): the planner refuses
    a spot that far from it. Refused when the price source has none for the pair."""
    if ctx.pricer is None:
        raise Refused("no price source configured: a plan needs a reference price")
    (s0, d0), (s1, d1) = ctx.symbols[tokens[0]], ctx.symbols[tokens[1]]
    ref = ctx.pricer.fetch_reference(s0, s1, block, exclude_pool=pool)
    if ref is None:
        raise Refused(
            f"no second price source for {s0}/{s1} on this chain (Chainlink feeds of both "
            "tokens, or another pool of the pair): refusing to plan against the pool's own "
            "price alone"
        )
    with localcontext() as dc:
        dc.prec = 60
        raw = ref.price1_per_0 * Decimal(10) ** (d1 - d0)
    return raw, ref.text


def pool_of_position(ctx: ExecutionContext, token_id: int) -> tuple[str, str, str, int]:
    """(pool, token0, token1, fee) of an NFT position."""
    npm = ctx.contract("NonfungiblePositionManager")
    try:
        p = npm.functions.positions(token_id).call()
    except Exception as exc:  # a revert: no such token
        raise Refused(f"position {token_id} does not exist: {exc}") from exc
    token0, token1, fee = p[2], p[3], p[4]
    pool = ctx.contract("UniswapV3Factory").functions.getPool(token0, token1, fee).call()
    return pool, token0, token1, fee


def _safe_owners(ctx: ExecutionContext) -> tuple[list[str], int]:
    safe = ctx.safe_contract
    return list(safe.functions.getOwners().call()), safe.functions.getThreshold().call()


def pool_reader(ctx: ExecutionContext) -> PoolReader:
    """A pool reader on ``ctx``'s chain and contracts."""
    return PoolReader(
        ctx.w3,
        multicall=ctx.contracts["Multicall3"],
        tick_lens=ctx.contracts["TickLens"],
        position_manager=ctx.contracts["NonfungiblePositionManager"],
    )


def _allowances(ctx: ExecutionContext, token0: str, token1: str) -> dict[tuple[str, str], int]:
    erc20 = ctx.w3.eth.contract(abi=artifacts.abi("TestERC20"))
    router, npm_addr = ctx.contracts["SwapRouter02"], ctx.contracts["NonfungiblePositionManager"]
    return {
        (t, spender): erc20(address=to_checksum_address(t))
        .functions.allowance(ctx.safe, spender)
        .call()
        for t in (token0, token1)
        for spender in (router, npm_addr)
    }


def _safe_position_now(
    ctx: ExecutionContext, token_id: int
) -> tuple[str, str, str, PoolSnapshot, Marks]:
    """NFT ``token_id`` as a plan starts from it: refused unless it exists and the Safe owns
    it; its pool and tokens, the pool's state at ``latest`` (with its TWAP), and the report's
    USD marks at that block, taken before anything is recorded (no price source, or no
    route: refused, nothing written)."""
    npm = ctx.contract("NonfungiblePositionManager")
    try:
        owner = npm.functions.ownerOf(token_id).call()
    except ContractLogicError as exc:
        raise Refused(f"position {token_id} does not exist (a later rebalance burned it?)") from exc
    if owner != to_checksum_address(ctx.safe):
        raise Refused(f"position {token_id} is owned by {owner}, not the Safe {ctx.safe}")
    pool, token0, token1, _fee = pool_of_position(ctx, token_id)
    snapshot = pool_reader(ctx).fetch_pool_state(
        pool, token_ids=[token_id], twap_seconds=(0, ctx.twap_seconds)
    )
    marks = report_marks(
        ctx, (ctx.symbols[token0][0], ctx.symbols[token1][0]), snapshot.block_number
    )
    return pool, token0, token1, snapshot, marks


def plan_rebalance(
    ctx: ExecutionContext, token_id: int, new_range: Range, reason: str
) -> tuple[RebalanceRecord, dict[str, Any], dict[str, Path]]:
    """Plan and dry-run; write the report. PLANNED -> SIMULATED."""
    pool, token0, token1, snapshot, marks = _safe_position_now(ctx, token_id)
    reference = fetch_reference(ctx, (token0, token1), pool, snapshot.block_number)
    slippage, twap, source = plan_slippage(
        ctx, snapshot, new_range.tick_lower, new_range.tick_upper, module=ctx.via == "module"
    )
    plan = build_rebalance_plan(
        snapshot,
        token_id=token_id,
        new_range=new_range,
        chain_id=ctx.chain_id,
        safe=ctx.safe,
        position_manager=ctx.contracts["NonfungiblePositionManager"],
        router=ctx.contracts["SwapRouter02"],
        slippage_bps=slippage,
        max_sandwich_bps=ctx.max_sandwich_bps,
        max_slippage_bps=ctx.max_slippage_bps,
        deadline_seconds=ctx.deadline_seconds,
        max_twap_deviation_bps=twap,
        reference_price=reference[0] if reference else None,
        reference_source=reference[1] if reference else "",
        max_reference_deviation_bps=ctx.pricer.config.max_deviation_bps,
        allowances=_allowances(ctx, token0, token1),
        route=ctx.via,
    )
    return _record_and_simulate(
        ctx, plan, snapshot, marks, reason, slippage_source=_impact_source(source, slippage, plan)
    )


_ABANDONED = (S.EXPIRED, S.FAILED, S.STALE, S.CANCELLED)


def _record_and_simulate(
    ctx: ExecutionContext,
    plan: RebalancePlan,
    snapshot: PoolSnapshot,
    marks: Marks,
    reason: str,
    *,
    label: str | None = None,
    slippage_source: str = "",
) -> tuple[RebalanceRecord, dict[str, Any], dict[str, Path]]:
    """Record the plan (PLANNED, by its idempotency key), dry-run it, write the report.
    PLANNED -> SIMULATED; a plan recorded before is returned as it is."""
    token0, token1, pool = plan.token0, plan.token1, plan.pool
    npm_addr = ctx.contracts["NonfungiblePositionManager"]
    by_call = ctx.dry_run == "call"
    if ctx.via != "module":
        # the SafeTx DELEGATECALLs it: its code is checked before anything is recorded
        check_multisend_code(ctx.w3, ctx.contracts["MultiSendCallOnly"])
    if by_call:
        # the call dry-run's helpers, delegatecalled by the Safe's simulateAndRevert
        helpers = {"Multicall3": ctx.contracts["Multicall3"]}
        if ctx.via != "module" or plan.kind == "open":
            helpers["SimulateTxAccessor"] = _accessor(ctx)
            check_no_guard(ctx.w3, ctx.safe)  # a guard runs in execTransaction only
        check_helper_code(ctx.w3, helpers)
    # where it will be sent, shown in the report; refused here when it must go privately and
    # there is no private endpoint
    route = route_of(ctx, swap=plan.amounts.swap_zero_for_one is not None)

    def create(key: str) -> RebalanceRecord:
        return ctx.repo.create(
            idempotency_key=key,
            chain_id=ctx.chain_id,
            safe=ctx.safe,
            token_id=plan.token_id,
            pool=pool,
            tick_range=plan.old_range if plan.kind != "open" else plan.new_range,
            reason=reason,
            kind=plan.kind,
            label=label,
        )

    record = create(plan.idempotency_key)
    while record.state in _ABANDONED:
        # the same plan was abandoned or failed before: this is a new attempt
        record = create(f"{plan.idempotency_key}:after-{record.id}")
    if record.state != S.PLANNED:
        if record.report_id is None:
            raise Refused(f"{plan.kind} {record.id} is being planned by another process")
        return record, read_report(ctx.reports_dir, record.report_id), {}
    ctx.checkpoint("planned")
    owners, threshold = _safe_owners(ctx)
    safe_tx: SafeTransaction | None = None
    module_tx: ModuleTransaction | None = None
    sim_w3 = ctx.w3 if by_call or ctx.simulator is None else ctx.simulator()
    keeps = plan.token_id if plan.kind == "withdraw" else None  # its emptied NFT is read after
    if ctx.via == "module" and plan.kind != "open":
        if ctx.operator is None:
            raise Refused("rebalancing through the module needs the operator key")
        module_tx = build_module_transaction(
            plan, module=ctx.contracts["LPRebalanceModule"], operator=ctx.operator.address
        )
        dry: DryRunResult = (
            call_dry_run_module(
                ctx.w3,
                module_tx,
                safe=ctx.safe,
                calls=[InnerCall(c.to, c.data, c.value) for c in plan.calls],
                tokens=[token0, token1],
                position_manager=npm_addr,
                router=ctx.contracts["SwapRouter02"],
                pool=pool,
                multicall=ctx.contracts["Multicall3"],
                keeps=keeps,
            )
            if by_call
            else dry_run_module(
                sim_w3,
                module_tx,
                safe=ctx.safe,
                tokens=[token0, token1],
                position_manager=npm_addr,
                pool=pool,
                checkpoint=ctx.checkpoint,
                keeps=keeps,
            )
        )
        binding, nonce = "0x" + module_tx.tx_hash.hex(), None
    else:
        inner = [InnerCall(c.to, c.data, c.value) for c in plan.calls]
        safe_tx = build_safe_transaction(
            chain_id=ctx.chain_id,
            safe=ctx.safe,
            nonce=ctx.safe_contract.functions.nonce().call(),
            calls=inner,
            multisend_call_only=ctx.contracts["MultiSendCallOnly"],
        )
        dry = (
            call_dry_run(
                ctx.w3,
                safe_tx,
                calls=inner,
                threshold=threshold,
                executor=ctx.executor.address,
                tokens=[token0, token1],
                position_manager=npm_addr,
                router=ctx.contracts["SwapRouter02"],
                pool=pool,
                multicall=ctx.contracts["Multicall3"],
                accessor=_accessor(ctx),
                keeps=keeps,
            )
            if by_call
            else dry_run(
                sim_w3,
                safe_tx,
                owners=owners,
                threshold=threshold,
                executor=ctx.executor.address,
                tokens=[token0, token1],
                position_manager=npm_addr,
                pool=pool,
                checkpoint=ctx.checkpoint,
                keeps=keeps,
            )
        )
        binding, nonce = "0x" + safe_tx.safe_tx_hash.hex(), safe_tx.nonce
    s0, s1 = ctx.symbols[token0], ctx.symbols[token1]
    report = build_report(
        plan=plan,
        safe_tx=safe_tx,
        dry=dry,
        snapshot=snapshot,
        symbols=(s0[0], s1[0]),
        decimals=(s0[1], s1[1]),
        marks=marks,
        owners=owners,
        threshold=threshold,
        reason=reason,
        module_tx=module_tx,
        submission=route.to_json(),
        slippage_source=slippage_source,
        method="call" if by_call else "fork",
    )
    paths = write_report(report, ctx.reports_dir)
    record = ctx.repo.transition(
        record.id,
        S.PLANNED,
        S.SIMULATED,
        report_id=report["report_id"],
        report_hash=report["report_hash"],
        safe_tx_hash=binding,  # the SafeTx hash, or the module call's hash
        safe_nonce=nonce,
    )
    ctx.checkpoint("simulated")
    return record, report, paths


def _accessor(ctx: ExecutionContext) -> str:
    """Safe's SimulateTxAccessor on ``ctx``'s chain: the manifest's, else the registry's."""
    address = ctx.contracts.get("SimulateTxAccessor") or default_contract(
        ctx.chain_id, "SimulateTxAccessor"
    )
    if address is None:
        raise Refused(
            f"no SimulateTxAccessor known on chain {ctx.chain_id}: the call dry-run needs one "
            '(dry_run = "fork" instead)'
        )
    return address


@_node_down_is_retry_later
def plan_compound(
    ctx: ExecutionContext, token_id: int, reason: str
) -> tuple[RebalanceRecord, dict[str, Any], dict[str, Path]]:
    """Plan and dry-run compounding NFT ``token_id``: collect its fees, swap the part that does
    not fit its range's ratio, increaseLiquidity; write the report. PLANNED -> SIMULATED."""
    pool, token0, token1, snapshot, marks = _safe_position_now(ctx, token_id)
    reference = fetch_reference(ctx, (token0, token1), pool, snapshot.block_number)
    npm = snapshot.positions[token_id].npm
    slippage, twap, source = plan_slippage(
        ctx, snapshot, npm.tick_lower, npm.tick_upper, module=ctx.via == "module"
    )
    plan = build_compound_plan(
        snapshot,
        token_id=token_id,
        chain_id=ctx.chain_id,
        safe=ctx.safe,
        position_manager=ctx.contracts["NonfungiblePositionManager"],
        router=ctx.contracts["SwapRouter02"],
        slippage_bps=slippage,
        max_sandwich_bps=ctx.max_sandwich_bps,
        max_slippage_bps=ctx.max_slippage_bps,
        deadline_seconds=ctx.deadline_seconds,
        max_twap_deviation_bps=twap,
        reference_price=reference[0] if reference else None,
        reference_source=reference[1] if reference else "",
        max_reference_deviation_bps=ctx.pricer.config.max_deviation_bps,
        allowances=_allowances(ctx, token0, token1),
        route=ctx.via,
    )
    return _record_and_simulate(
        ctx, plan, snapshot, marks, reason, slippage_source=_impact_source(source, slippage, plan)
    )


def withdraw_under_way(ctx: ExecutionContext, token_id: int) -> RebalanceRecord | None:
    """The unfinished withdraw of NFT ``token_id`` on this chain and Safe, if any (a second
    plan while one waits or is under way finds it, never plans another)."""
    for r in ctx.repo.unfinished():
        if (
            r.kind == "withdraw"
            and r.token_id == token_id
            and r.chain_id == ctx.chain_id
            and r.safe.lower() == ctx.safe.lower()
        ):
            return r
    return None


@_node_down_is_retry_later
def plan_withdraw(
    ctx: ExecutionContext, token_id: int, reason: str
) -> tuple[RebalanceRecord, dict[str, Any], dict[str, Path]]:
    """Plan and dry-run withdrawing NFT ``token_id`` to the Safe: decreaseLiquidity of all
    of it and collect everything owed (no swap, no mint, the NFT kept); write the report.
    PLANNED -> SIMULATED; then approved, signed and sent as a rebalance is.

    A withdraw of the same NFT already waiting or under way is returned as it is (one whose
    report went stale is expired first, then planned afresh). Refused before anything is
    recorded: an NFT that does not exist or is not the Safe's, or that holds no liquidity."""
    waiting = withdraw_under_way(ctx, token_id)
    if waiting is not None and waiting.state in (S.SIMULATED, S.APPROVED):
        waiting = resume_one(ctx, waiting)  # expired when its report or Safe nonce is stale
    if waiting is not None and not waiting.state.terminal and waiting.report_id is not None:
        return waiting, read_report(ctx.reports_dir, waiting.report_id), {}
    others = _others_on(ctx, token_id)
    for other in others:
        if other.state != S.SIMULATED:  # approved, signed or sent: it may still run
            raise Refused(
                f"{other.kind} {other.id} of #{token_id} is {other.state.value}: withdraw "
                "once it has finished (`lpbot rebalance resume`)"
            )
    pool, token0, token1, snapshot, marks = _safe_position_now(ctx, token_id)
    npm = snapshot.positions[token_id].npm
    if npm.liquidity == 0:
        raise Refused(f"position {token_id} holds no liquidity: there is nothing to withdraw")
    reference = fetch_reference(ctx, (token0, token1), pool, snapshot.block_number)
    slippage, twap, source = plan_slippage(
        ctx, snapshot, npm.tick_lower, npm.tick_upper, module=ctx.via == "module"
    )
    plan = build_withdraw_plan(
        snapshot,
        token_id=token_id,
        chain_id=ctx.chain_id,
        safe=ctx.safe,
        position_manager=ctx.contracts["NonfungiblePositionManager"],
        router=ctx.contracts["SwapRouter02"],
        slippage_bps=slippage,
        max_slippage_bps=ctx.max_slippage_bps,
        deadline_seconds=ctx.deadline_seconds,
        max_twap_deviation_bps=twap,
        reference_price=reference[0] if reference else None,
        reference_source=reference[1] if reference else "",
        max_reference_deviation_bps=ctx.pricer.config.max_deviation_bps,
        route=ctx.via,
    )
    planned = _record_and_simulate(ctx, plan, snapshot, marks, reason, slippage_source=source)
    for other in others:  # waiting for approval only: the withdraw empties its NFT
        ctx.repo.transition(
            other.id, S.SIMULATED, S.STALE, error=f"superseded by withdraw {planned[0].id}"
        )
    return planned


def _others_on(ctx: ExecutionContext, token_id: int) -> list[RebalanceRecord]:
    """The unfinished rebalances and compounds of NFT ``token_id`` on this chain and Safe
    that have a report (planned and dry-run, approved, signed or sent)."""
    return [
        r
        for r in ctx.repo.unfinished()
        if r.kind in ("rebalance", "compound")
        and r.token_id == token_id
        and r.chain_id == ctx.chain_id
        and r.safe.lower() == ctx.safe.lower()
        and r.state != S.PLANNED
    ]


def latest_open(ctx: ExecutionContext, label: str) -> RebalanceRecord | None:
    """The newest attempt to open configured position ``label`` (its idempotency key and the
    attempts that followed abandoned ones), or None when none was ever planned."""
    key = open_idempotency_key(ctx.chain_id, ctx.safe, label)
    record = ctx.repo.by_key(key)
    while record is not None and record.state in _ABANDONED:
        after = ctx.repo.by_key(f"{key}:after-{record.id}")
        if after is None:
            break
        record = after
    return record


def check_pool(ctx: ExecutionContext, pool: str) -> tuple[str, str, int]:
    """(token0, token1, fee) of ``pool``; refused unless it is a pool of this chain's factory."""
    pool = to_checksum_address(pool)
    if not ctx.w3.eth.get_code(pool):
        raise Refused(f"no contract at pool address {pool} on chain {ctx.chain_id}")
    c = ctx.contract("UniswapV3Pool", pool)
    try:
        token0, token1, fee = (
            c.functions.token0().call(),
            c.functions.token1().call(),
            int(c.functions.fee().call()),
        )
    except (ContractLogicError, Web3Exception) as exc:
        raise Refused(f"{pool} is not a Uniswap V3 pool") from exc
    factory = ctx.contract("UniswapV3Factory")
    if factory.functions.getPool(token0, token1, fee).call() != pool:
        raise Refused(f"{pool} is not a pool of this chain's Uniswap V3 factory")
    return to_checksum_address(token0), to_checksum_address(token1), fee


@_node_down_is_retry_later
def plan_open(
    ctx: ExecutionContext,
    label: str,
    pool: str,
    capital: tuple[int, int],
    choose_range: Callable[[PoolSnapshot], Range],
    reason: str,
) -> tuple[RebalanceRecord, dict[str, Any] | None, dict[str, Path]]:
    """Plan and dry-run opening configured position ``label`` in ``pool`` with ``capital``
    (raw token0, token1) from the Safe, in the range ``choose_range`` picks on the pool's
    snapshot; write the report. PLANNED -> SIMULATED.

    At most one open per (chain, Safe, label): an open already planned, waiting, under way or
    confirmed is returned as it is (a waiting one whose report went stale is expired first,
    then planned afresh). Refused before anything is recorded: an unknown pool, no capital,
    capital above the Safe's balance.
    """
    latest = latest_open(ctx, label)
    if latest is not None and latest.state in (S.SIMULATED, S.APPROVED):
        latest = resume_one(ctx, latest)  # expired when its report or Safe nonce is stale
    if latest is not None and latest.state not in _ABANDONED:
        report = read_report(ctx.reports_dir, latest.report_id) if latest.report_id else None
        return latest, report, {}
    token0, token1, _fee = check_pool(ctx, pool)
    if capital[0] < 0 or capital[1] < 0 or capital == (0, 0):
        raise Refused(f"{label}: no capital to open a position with")
    have = _balances_now(ctx, [token0, token1])
    for token, amount in zip((token0, token1), capital, strict=True):
        sym, dec = ctx.symbols.get(token, (token, 0))
        if amount > have[token]:
            raise Refused(
                f"{label}: capital {Decimal(amount).scaleb(-dec):f} {sym} is more than the Safe "
                f"{ctx.safe} holds ({Decimal(have[token]).scaleb(-dec):f} {sym})"
            )
    snapshot = pool_reader(ctx).fetch_pool_state(
        to_checksum_address(pool), twap_seconds=(0, ctx.twap_seconds)
    )
    marks = report_marks(
        ctx, (ctx.symbols[token0][0], ctx.symbols[token1][0]), snapshot.block_number
    )
    new_range = choose_range(snapshot)
    # the open's swap trades at this spot: checked against a second source, as a rebalance's
    reference = fetch_reference(ctx, (token0, token1), pool, snapshot.block_number)
    slippage, twap, source = plan_slippage(
        ctx, snapshot, new_range.tick_lower, new_range.tick_upper
    )
    plan = build_open_plan(
        snapshot,
        label=label,
        new_range=new_range,
        capital=capital,
        tokens=(token0, token1),
        chain_id=ctx.chain_id,
        safe=ctx.safe,
        position_manager=ctx.contracts["NonfungiblePositionManager"],
        router=ctx.contracts["SwapRouter02"],
        slippage_bps=slippage,
        max_sandwich_bps=ctx.max_sandwich_bps,
        deadline_seconds=ctx.deadline_seconds,
        max_twap_deviation_bps=twap,
        reference_price=reference[0] if reference else None,
        reference_source=reference[1] if reference else "",
        max_reference_deviation_bps=ctx.pricer.config.max_deviation_bps,
        allowances=_allowances(ctx, token0, token1),
    )
    return _record_and_simulate(
        ctx,
        plan,
        snapshot,
        marks,
        reason,
        label=label,
        slippage_source=_impact_source(source, slippage, plan),
    )


@_node_down_is_retry_later
def replan(
    ctx: ExecutionContext, rebalance_id: int
) -> tuple[RebalanceRecord, dict[str, Any], dict[str, Path]]:
    """Plan a stale, cancelled or expired rebalance again from the chain's latest state: the
    same position, new range and route (Safe or module); a new dry-run and a new report, to be
    approved again. A report not yet executed is first made STALE, so it can never run."""
    record = ctx.repo.get(rebalance_id)
    if record is None:
        raise Refused(f"no rebalance {rebalance_id}")
    if record.state in (S.SIMULATED, S.APPROVED):
        record = ctx.repo.transition(record.id, record.state, S.STALE, error="re-planned")
    if record.state not in (S.STALE, S.CANCELLED, S.EXPIRED) or record.report_id is None:
        raise Refused(
            f"rebalance {rebalance_id} is {record.state.value}: only a stale, cancelled or "
            "expired rebalance is re-planned"
        )
    old = read_report(ctx.reports_dir, record.report_id)
    if old.get("operation") == "withdraw":  # withdrawn again, never re-centred
        ctx.via = "module" if "module_tx" in old else "multisig"
        reason = old["reason"].split(" (re-planned after ")[0]
        return plan_withdraw(
            ctx,
            int(old["position"]["token_id"]),
            f"{reason} (re-planned after withdraw {rebalance_id})",
        )
    lower, upper = old["position"]["new_range"]
    pool = ctx.w3.eth.contract(
        address=to_checksum_address(old["pool"]), abi=artifacts.abi("UniswapV3Pool")
    )
    spacing = int(pool.functions.tickSpacing().call())
    ctx.via = "module" if "module_tx" in old else "multisig"
    reason = old["reason"].split(" (re-planned after ")[0]
    return plan_rebalance(
        ctx,
        int(old["position"]["token_id"]),
        Range(Tick(int(lower)), Tick(int(upper)), spacing),
        f"{reason} (re-planned after rebalance {rebalance_id})",
    )


def _record_for(ctx: ExecutionContext, report_id: str) -> RebalanceRecord:
    """Report ``report_id``'s rebalance, refused unless it is of this context's chain and
    Safe (one store holds every chain's: another chain's is left as it is)."""
    record = ctx.repo.by_report(report_id)
    if record is None:
        raise Refused(f"no rebalance has report {report_id}")
    if record.chain_id != ctx.chain_id or record.safe.lower() != ctx.safe.lower():
        raise Refused(
            f"report {report_id} is of chain id {record.chain_id}, not {ctx.chain_id} (Safe "
            f"{record.safe}): act on it with a position of its chain (--position)"
        )
    return record


def _fresh(ctx: ExecutionContext, report: dict[str, Any]) -> None:
    age = time.time() - float(report["created_at"])
    if age > ctx.report_max_age_seconds:
        raise Refused(
            f"report {report['report_id']} is {age:.0f} s old (max "
            f"{ctx.report_max_age_seconds:.0f}): plan again"
        )


def _balances_now(ctx: ExecutionContext, tokens: list[str]) -> dict[str, int]:
    erc20 = ctx.w3.eth.contract(abi=artifacts.abi("TestERC20"))
    return {
        t: erc20(address=to_checksum_address(t)).functions.balanceOf(ctx.safe).call()
        for t in tokens
    }


def check_drift(ctx: ExecutionContext, report: dict[str, Any]) -> pf.Drift:
    """What changed since the report; refused (``PreflightRefused``) when the price moved past
    the policy's bound: ``max_price_move_share_bps`` of the report's slippage tolerance."""
    try:
        now = pf.fetch_pool_now(ctx.w3, report["pool"], ctx.twap_seconds)
    except (OSError, Web3Exception) as exc:  # the node is down or answered nonsense
        # the type only: a request error's text holds the RPC URL, and with it any API key
        raise RetryLater(f"cannot read the pool for the pre-flight ({type(exc).__name__})") from exc
    price = report["price"]
    tokens = [t["address"] for t in report["tokens"]]
    then_balances = report["dry_run"].get("balance_before") or {}
    nonce_now = None
    if "safe_tx" in report:
        nonce_now = ctx.safe_contract.functions.nonce().call()
    drift = pf.Drift(
        report_block=int(report["snapshot"]["block"]),
        block=now.block,
        price_move_bps=pf.price_move_bps(int(price["sqrt_price_x96"]), now.sqrt_price_x96),
        bound_bps=Fraction(int(report["slippage_bps"]) * ctx.max_price_move_share_bps, 10_000),
        tick_then=int(price["spot_tick"]),
        tick_now=now.tick,
        twap_deviation_then_bps=pf.twap_deviation_bps(
            int(price["spot_tick"]), price.get("twap_tick")
        ),
        twap_deviation_now_bps=pf.twap_deviation_bps(now.tick, now.twap_tick),
        liquidity_then=(int(price["pool_liquidity"]) if "pool_liquidity" in price else None),
        liquidity_now=now.liquidity,
        balances_then={t: int(v) for t, v in then_balances.items()},
        balances_now=_balances_now(ctx, tokens),
        nonce_then=report["safe_tx"]["nonce"] if "safe_tx" in report else None,
        nonce_now=nonce_now,
    )
    if drift.price_move_bps > drift.bound_bps:
        raise pf.PreflightRefused(
            f"the report is stale: the price moved {float(drift.price_move_bps):.2f} bps since "
            f"it, more than {ctx.max_price_move_share_bps / 100:g}% of its "
            f"{report['slippage_bps']} bps slippage tolerance",
            drift,
            _lines(ctx, drift),
        )
    # the planner's spot-vs-TWAP guard again, in the block the transaction is sent in: a pool
    # pushed off-price after the plan (and held there) is refused here too
    deviation = drift.twap_deviation_now_bps
    twap_bound = ctx.max_twap_deviation_bps
    if ctx.max_sandwich_bps is not None:  # the plan's slippage was derived: its bound too
        twap_bound = min(twap_bound, int(report["slippage_bps"]))
    if deviation is None or deviation > twap_bound:
        now_text = "cannot be read" if deviation is None else f"is {deviation:.1f} bps"
        raise pf.PreflightRefused(
            f"the pool's spot vs its {ctx.twap_seconds} s TWAP {now_text} at block "
            f"{drift.block} (max {twap_bound}): the pool may be manipulated",
            drift,
            _lines(ctx, drift),
        )
    return drift


def _lines(ctx: ExecutionContext, drift: pf.Drift | None) -> list[str]:
    if drift is None:
        return []
    return drift.lines({t: sym for t, (sym, _d) in ctx.symbols.items()})


def _traced_reason(
    ctx: ExecutionContext, tx: SafeTransaction, report: dict[str, Any]
) -> str | None:
    """The inner call's own revert reason (MultiSendCallOnly drops it), from a trace of the
    Safe's ``simulateAndRevert``, naming the plan's call that failed."""
    safe_c = ctx.safe_contract
    call = bytes.fromhex(safe_c.encode_abi(fn_name="simulateAndRevert", args=[tx.to, tx.data])[2:])
    failed = pf.fetch_inner_reason(ctx.w3, ctx.executor.address, tx.safe, call)
    if failed is None:
        return None
    for c in report["calls"]:
        # the call itself, or one inside its multicall (the position manager's close)
        if (
            c["to"].lower() == failed.to.lower()
            and failed.input
            and failed.input.hex() in c["data"]
        ):
            return f"{failed.reason} in call '{c['label']}'"
    return f"{failed.reason} in a call to {failed.to}"


@contextlib.contextmanager
def _stale_on_refusal(
    ctx: ExecutionContext, record: RebalanceRecord, *, pending: bool = False
) -> Any:
    """A pre-flight refusal moves the rebalance to STALE (never executable again) and alerts.

    Not while a transaction of it is ``pending``: the caller cancels that one first."""
    try:
        yield
    except pf.PreflightRefused as exc:
        current = ctx.repo.get(record.id)
        state = current.state if current is not None else record.state
        if pending and state == S.SUBMITTED:
            raise
        if not state.terminal:
            ctx.repo.transition(record.id, state, S.STALE, error=str(exc))
        ctx.alert(
            "rebalance_stale",
            f"rebalance {record.id} not sent: {exc}\nnext: lpbot rebalance replan {record.id}",
        )
        raise


def approve(ctx: ExecutionContext, report_id: str, approver: str) -> RebalanceRecord:
    """A person approves the report they read. SIMULATED -> APPROVED."""
    record = _record_for(ctx, report_id)
    report = read_report(ctx.reports_dir, report_id)
    if record.report_hash != report["report_hash"]:
        raise Refused("the report on disk is not the one recorded for this rebalance")
    if not approvable(report):
        failed = [c["name"] for c in report["checks"] if not c["ok"]]
        raise Refused(f"report {report_id} failed its checks ({', '.join(failed)}): not approvable")
    _fresh(ctx, report)
    if record.state != S.SIMULATED:
        raise Refused(f"rebalance {record.id} is {record.state.value}, not awaiting approval")
    record = ctx.repo.transition(record.id, S.SIMULATED, S.APPROVED, approved_by=approver)
    ctx.checkpoint("approved")
    return record


def _report_of(ctx: ExecutionContext, record: RebalanceRecord) -> dict[str, Any]:
    """The rebalance's report, checked to be the one recorded (hash) when it was simulated."""
    assert record.report_id is not None
    report = read_report(ctx.reports_dir, record.report_id)
    if record.report_hash != report["report_hash"]:
        raise Refused("the report on disk is not the one recorded for this rebalance")
    return report


def _safe_tx_of(
    ctx: ExecutionContext, record: RebalanceRecord
) -> tuple[SafeTransaction, dict[str, Any]]:
    report = _report_of(ctx, record)
    tx = SafeTransaction.from_json(report["safe_tx"])
    if "0x" + tx.safe_tx_hash.hex() != record.safe_tx_hash:
        raise Refused("the Safe transaction is not the one the report was approved for")
    return tx, report


def _executed(ctx: ExecutionContext, safe_tx_hash: str, since_block: int) -> TxReceipt | None:
    """The receipt of the Safe's ExecutionSuccess for ``safe_tx_hash``, if the chain has one."""
    safe = ctx.safe_contract
    logs = safe.events.ExecutionSuccess().get_logs(fromBlock=since_block)
    for entry in logs:
        if "0x" + bytes(entry["args"]["txHash"]).hex() == safe_tx_hash:
            return ctx.w3.eth.get_transaction_receipt(entry["transactionHash"])
    return None


@_node_down_is_retry_later
def execute(
    ctx: ExecutionContext,
    report_id: str,
    *,
    signers: Sequence[Signer] = (),
    signature_files: Sequence[Path] = (),
) -> RebalanceRecord:
    """Sign with the owners given, send ``execTransaction`` and reconcile.

    APPROVED -> SIGNED -> SUBMITTED -> CONFIRMED (or FAILED). Refused unless the report was
    approved, is recent, and its SafeTx hash is exactly what is signed.
    """
    record = _record_for(ctx, report_id)
    if record.state in (S.SIGNED, S.SUBMITTED):
        return resume_one(ctx, record)
    if record.state != S.APPROVED:
        raise Refused(
            f"rebalance {record.id} is {record.state.value}: only an approved report is executed"
        )
    assert record.report_id is not None
    if "module_tx" in read_report(ctx.reports_dir, record.report_id):
        return _execute_module(ctx, record)
    tx, report = _safe_tx_of(ctx, record)
    _fresh(ctx, report)
    if ctx.safe_contract.functions.nonce().call() != tx.nonce:
        ctx.repo.transition(record.id, S.APPROVED, S.EXPIRED, error="Safe nonce moved")
        raise Refused("the Safe executed another transaction since the dry-run: plan again")
    with _stale_on_refusal(ctx, record):
        drift = check_drift(ctx, report)
        inner = pf.simulate_safe_calls(
            ctx.w3, tx.safe, tx.to, tx.data, ctx.executor.address, operation=tx.operation
        )
        if not inner.ok:
            reason = inner.reason
            if not inner.revert_data:
                reason = _traced_reason(ctx, tx, report) or reason
            raise pf.PreflightRefused(
                f"the Safe transaction would revert now: {reason}", drift, _lines(ctx, drift)
            )
    owners, threshold = _safe_owners(ctx)
    # owners that need a co-signer (MPC) sign first: if it is down or refuses, no other key
    # has signed anything
    ordered = sorted(signers, key=lambda s: not isinstance(s, ReportSigner))
    collected: list[OwnerSignature] = [sign(tx, s, report) for s in ordered if s.address in owners]
    collected += [read_signature_file(p, tx, owners) for p in signature_files]
    combine(collected, threshold)  # refuses below the threshold, before any state change
    record = ctx.repo.transition(
        record.id,
        S.APPROVED,
        S.SIGNED,
        signatures=[{"owner": s.owner, "signature": "0x" + s.signature.hex()} for s in collected],
    )
    ctx.checkpoint("signed")
    return _submit(ctx, record, tx, report)


def _signatures(record: RebalanceRecord) -> list[OwnerSignature]:
    return [
        OwnerSignature(s["owner"], bytes.fromhex(s["signature"][2:])) for s in record.signatures
    ]


def _submit(
    ctx: ExecutionContext,
    record: RebalanceRecord,
    tx: SafeTransaction,
    report: dict[str, Any],
    pending: Sequence[TxRecord] = (),
) -> RebalanceRecord:
    _owners, threshold = _safe_owners(ctx)
    data = exec_transaction_data(tx, combine(_signatures(record), threshold))
    record, receipt = _send_recorded(ctx, record, ctx.executor, tx.safe, data, report, pending)
    if receipt is None:
        return record
    return reconcile(ctx, record, receipt, report)


def _send_recorded(
    ctx: ExecutionContext,
    record: RebalanceRecord,
    signer: Signer,
    to: str,
    data: bytes,
    report: dict[str, Any],
    pending: Sequence[TxRecord] = (),
) -> tuple[RebalanceRecord, TxReceipt | None]:
    """Pre-flight, price the gas, then send (replace while stuck, cancel after the last
    replacement) with every transaction recorded, signed bytes and all, before it is broadcast.

    ``pending``: this rebalance's transactions recorded at one nonce and not mined (a resume);
    the newest is sent again as signed, or, if its gas limit would now run out, replaced with
    a new limit; if the call would revert now, cancelled. The receipt is None when the
    cancelling self-transfer took the nonce (CANCELLED).
    """
    route = route_of(ctx, swap=carries_swap(report))
    said = report.get("submission")
    if said is not None and said["route"] == "private" and not route.private:
        # never to the public mempool when the report promised otherwise (the reverse, a
        # private endpoint configured since, is only safer); a resume neither: its signed
        # bytes, sent again or replaced, would be seen there
        again = (
            "restore the private route to resume it (its transaction may be pending there)"
            if pending
            else "plan again"
        )
        raise Refused(
            f"the report says its transaction goes privately ({said['why']}); the "
            f"configuration now sends it to {route.text()}: {again}"
        )
    try:
        with _stale_on_refusal(ctx, record, pending=bool(pending)):
            drift = check_drift(ctx, report)
            outcome = pf.fetch_call_outcome(ctx.w3, signer.address, to, data)
            if not outcome.ok:
                reason = outcome.reason
                if "safe_tx" in report and "GS013" in reason:
                    tx = SafeTransaction.from_json(report["safe_tx"])
                    traced = _traced_reason(ctx, tx, report) or "inner reason unknown"
                    reason = f"{reason}: {traced}"
                raise pf.PreflightRefused(
                    f"the transaction would revert now: {reason}", drift, _lines(ctx, drift)
                )
    except pf.PreflightRefused as exc:
        if not pending:
            raise
        # one of ours is pending and would revert if mined: cancel it instead
        return _cancel_pending(ctx, ctx.repo.get(record.id) or record, signer, pending, exc)
    assert outcome.gas_estimate is not None
    gas, cost = _priced_gas(ctx, record, signer, to, data, report, outcome.gas_estimate)
    state = {"record": record}

    def check(tx: dict[str, Any]) -> None:
        if tx["to"].lower() == signer.address.lower() and not tx["data"]:
            _check_cancel(ctx, tx)  # no report to compare with, only the call itself
            return
        with _stale_on_refusal(ctx, state["record"], pending=True):
            drift = check_drift(ctx, report)
            exact = pf.fetch_call_outcome(
                ctx.w3, tx["from"], tx["to"], bytes(tx["data"]), gas=int(tx["gas"]), estimate=False
            )
            if not exact.ok:
                raise pf.PreflightRefused(
                    f"the signed transaction would revert now: {exact.reason}",
                    drift,
                    _lines(ctx, drift),
                )

    def regas() -> int:
        """A replacement's gas limit, estimated again at the latest block."""
        again = pf.fetch_call_outcome(ctx.w3, signer.address, to, data)
        if not again.ok or again.gas_estimate is None:
            raise pf.PreflightRefused(f"it would revert now: {again.reason}", None)
        return _priced_gas(ctx, record, signer, to, data, report, again.gas_estimate)[0]

    def market() -> Fees:
        """The chain gas model's fees now: what a refused ("underpriced") one is re-priced to."""
        model = ctx.gas_model or gas_model_for(ctx.chain_id)
        now = model.fetch_cost(ctx.w3, {"from": signer.address, "to": to, "data": data})
        return Fees(now.max_fee_per_gas, now.max_priority_fee_per_gas)

    submitter = _submitter(
        ctx,
        signer,
        check,
        fees=lambda: Fees(cost.max_fee_per_gas, cost.max_priority_fee_per_gas),
        market=market,
        max_replacements=ctx.max_replacements,
        swap=carries_swap(report),
    )
    on_sent = _recorder(ctx, state, signer)
    with _alert_on_foreign_nonce(ctx, record), _alert_on_gas_price(ctx, record):
        receipt, mined = _send_or_resume(
            ctx, record, submitter, signer, to, data, gas, pending, on_sent, regas
        )
    ctx.checkpoint("mined")  # sent and mined, nothing of it reconciled yet
    record = state["record"]
    record_costs(ctx, record, receipt)
    if mined.kind == "cancel":
        why = f"stuck after {ctx.max_replacements} replacement(s)"
        return _cancelled(ctx, record, why), None
    return record, receipt


@contextlib.contextmanager
def _alert_on_foreign_nonce(ctx: ExecutionContext, record: RebalanceRecord) -> Any:
    """A nonce of ours used by a transaction lpbot did not send: alert, and stop (resume finds
    the nonce taken and sends nothing more for this rebalance)."""
    try:
        yield
    except NonceUsedElsewhere as exc:
        ctx.alert("nonce_taken", f"rebalance {record.id}: {exc}")
        raise


@contextlib.contextmanager
def _alert_on_gas_price(ctx: ExecutionContext, record: RebalanceRecord) -> Any:
    """The chain's gas price above its limit: alert, and wait (nothing was signed)."""
    try:
        yield
    except GasPriceTooHigh as exc:
        ctx.alert_wait(
            record.id,
            "gas_price_too_high",
            f"rebalance {record.id} waits: {exc}; it is retried on the next resume",
        )
        raise


def _send_or_resume(
    ctx: ExecutionContext,
    record: RebalanceRecord,
    submitter: Submitter,
    signer: Signer,
    to: str,
    data: bytes,
    gas: int,
    pending: Sequence[TxRecord],
    on_sent: Callable[[SentTx], None],
    regas: Callable[[], int],
) -> tuple[TxReceipt, SentTx]:
    if pending:
        sents = [_sent_of(t) for t in pending]
        last = sents[-1]
        replace_gas: int | None = None
        if last.gas < gas:
            # signed under an older state: would its limit run out now?
            fits = pf.fetch_call_outcome(ctx.w3, signer.address, to, data, gas=last.gas)
            if not fits.ok:
                ctx.progress(
                    f"rebalance {record.id}: the recorded transaction's gas limit {last.gas:,} "
                    f"would run out now ({fits.reason}); replacing it with limit {gas:,}"
                )
                replace_gas = gas
        return submitter.resume_and_confirm(
            sents, on_sent=on_sent, replace_gas=replace_gas, regas=regas
        )
    return submitter.send_and_confirm(to, data, gas, on_sent=on_sent, regas=regas)


def _priced_gas(
    ctx: ExecutionContext,
    record: RebalanceRecord,
    signer: Signer,
    to: str,
    data: bytes,
    report: dict[str, Any],
    preflight_estimate: int,
) -> tuple[int, Any]:
    """The gas limit (the larger of the live estimates and the dry-run's gas, plus the
    margin) and the chain gas model's cost; waits (RetryLater) above the USD fee limit."""
    model = ctx.gas_model or gas_model_for(ctx.chain_id)
    cost = model.fetch_cost(ctx.w3, {"from": signer.address, "to": to, "data": data})
    estimate = max(cost.gas_units, preflight_estimate)
    gas = pf.gas_limit(estimate, int(report["dry_run"]["gas_used"]), ctx.gas_margin_bps)
    usd = ctx.gas_token_usd() if ctx.gas_token_usd is not None else ctx.native_usd
    fee_usd = Decimal(cost.total_wei) * usd / Decimal(10**18)
    if ctx.max_fee_usd is not None and not usd > 0:
        raise RetryLater("no USD price for the gas token: the fee limit cannot be checked")
    if ctx.max_fee_usd is not None and fee_usd > ctx.max_fee_usd:
        ctx.alert_wait(
            record.id,
            "gas_too_high",
            f"rebalance {record.id} waits: gas would cost ${fee_usd:.2f} (limit "
            f"${ctx.max_fee_usd}); it is retried on the next resume",
        )
        raise RetryLater(
            f"gas would cost ${fee_usd:.2f}, above the ${ctx.max_fee_usd} limit per rebalance: "
            "waiting"
        )
    ctx.progress(
        f"gas: estimate {estimate:,}, dry-run {int(report['dry_run']['gas_used']):,}, limit "
        f"{gas:,}; expected fee ${fee_usd:.4f}, max fee {cost.max_fee_per_gas:,} wei/gas"
    )
    return gas, cost


def _submitter(
    ctx: ExecutionContext,
    signer: Signer,
    check: Callable[[dict[str, Any]], None],
    *,
    fees: Callable[[], Fees] | None = None,
    market: Callable[[], Fees] | None = None,
    max_replacements: int = 3,
    swap: bool = False,
) -> Submitter:
    """The submitter of one transaction (its replacements and cancel too) on its route:
    ``swap``: it carries a swap (a cancelling self-transfer does not)."""
    route = route_of(ctx, swap=swap)
    return Submitter(
        ctx.w3,
        signer,
        preflight=check,
        nonces=NonceManager(ctx.w3, ctx.repo),  # the store's: shared by every sender
        confirmations=ctx.confirmations,
        replace_after=ctx.replace_after,
        max_replacements=max_replacements,
        submit_w3=ctx.submit_w3 if route.private else None,
        public_fallback=route.public_fallback,
        fees=fees,
        market=market,
        on_progress=ctx.progress,
        max_fee_per_gas_limit=ctx.max_gas_price_wei,
    )


def _sent_of(t: TxRecord) -> SentTx:
    """A recorded transaction as the submitter knows it (its signed bytes when recorded)."""
    kind = "cancel" if t.kind == "cancel" else t.sent_as
    if t.raw:
        return sent_from_raw(t.raw, kind)
    fees = Fees(t.max_fee_per_gas, t.max_priority_fee_per_gas)
    return SentTx(t.tx_hash, t.nonce, fees, t.to, t.gas_limit, kind)


def _check_cancel(ctx: ExecutionContext, tx: dict[str, Any]) -> None:
    """The cancelling self-transfer's pre-flight: the exact call at ``latest``."""
    plain = pf.fetch_call_outcome(
        ctx.w3, tx["from"], tx["to"], b"", gas=int(tx["gas"]), estimate=False
    )
    if not plain.ok:
        raise RetryLater(f"the cancelling self-transfer would fail: {plain.reason}")


def _recorder(
    ctx: ExecutionContext, state: dict[str, RebalanceRecord], signer: Signer
) -> Callable[[SentTx], None]:
    def on_sent(sent: SentTx) -> None:
        current = state["record"]
        ctx.repo.record_transaction(
            current.id,
            TxRecord(
                tx_hash=sent.hash,
                nonce=sent.nonce,
                sender=signer.address,
                to=sent.to,
                gas_limit=sent.gas,
                max_fee_per_gas=sent.fees.max_fee_per_gas,
                max_priority_fee_per_gas=sent.fees.max_priority_fee_per_gas,
                raw=sent.raw,
                sent_as=sent.kind,
            ),
            claim=sent.fresh,
        )
        hashes = [h for h in current.tx_hashes if h != sent.hash] + [sent.hash]
        state["record"] = ctx.repo.transition(
            current.id, current.state, S.SUBMITTED, tx_hashes=hashes
        )
        ctx.checkpoint("submitted")

    return on_sent


def _cancel_pending(
    ctx: ExecutionContext,
    record: RebalanceRecord,
    signer: Signer,
    pending: Sequence[TxRecord],
    why: pf.PreflightRefused,
) -> tuple[RebalanceRecord, TxReceipt | None]:
    """A pending transaction of this rebalance would revert now: replace it with a zero-value
    self-transfer at its nonce (a revert would burn the whole gas limit; this costs 21,000)."""
    sents = sorted((_sent_of(t) for t in pending), key=lambda t: t.fees.max_fee_per_gas)
    ctx.progress(f"rebalance {record.id}: the pending transaction would revert now: {why.reason}")
    submitter = _submitter(ctx, signer, lambda tx: _check_cancel(ctx, tx))
    state = {"record": record}
    with _alert_on_foreign_nonce(ctx, record):
        receipt, mined = submitter.cancel(sents, on_sent=_recorder(ctx, state, signer))
    record = state["record"]
    record_costs(ctx, record, receipt)
    if mined.kind == "cancel":
        return _cancelled(ctx, record, f"it would revert now ({why.reason})"), None
    return record, receipt


def _resume_cancel(
    ctx: ExecutionContext,
    record: RebalanceRecord,
    signer: Signer,
    pending: Sequence[TxRecord],
    report: dict[str, Any],
    *,
    via_module: bool,
) -> RebalanceRecord:
    """A cancel was sent and neither it nor what it cancels is mined yet: only the cancel is
    followed (sent again as signed, re-priced if still stuck); the cancelled transaction is
    never sent again. Whichever takes the nonce decides: the cancel, CANCELLED for good; the
    rebalance itself, reconciled."""
    submitter = _submitter(ctx, signer, lambda tx: _check_cancel(ctx, tx))
    state = {"record": record}
    with _alert_on_foreign_nonce(ctx, record):
        receipt, mined = submitter.resume_and_confirm(
            [_sent_of(t) for t in pending], on_sent=_recorder(ctx, state, signer)
        )
    return _settle(ctx, state["record"], receipt, mined.kind, report, via_module=via_module)


def _settle(
    ctx: ExecutionContext,
    record: RebalanceRecord,
    receipt: TxReceipt,
    kind: str,
    report: dict[str, Any],
    *,
    via_module: bool,
) -> RebalanceRecord:
    """A mined transaction of this rebalance: its gas recorded; the cancel ends the rebalance
    CANCELLED for good, the rebalance itself is reconciled."""
    record_costs(ctx, record, receipt)
    if kind == "cancel":
        return _cancelled(ctx, record, "the cancelling self-transfer took its nonce")
    return reconcile(ctx, record, receipt, report, via_module=via_module)


def record_costs(ctx: ExecutionContext, record: RebalanceRecord, receipt: TxReceipt) -> None:
    """The mined transaction's gas (a cost whether it rebalanced, reverted or cancelled), and
    the others at its nonce marked REPLACED."""
    mined = "0x" + bytes(receipt["transactionHash"]).hex()
    for tx in ctx.repo.transactions(record.id):
        if tx.tx_hash == mined:
            tx.status = "CONFIRMED" if receipt["status"] == 1 else "REVERTED"
            tx.receipt_status = int(receipt["status"])
            tx.block = int(receipt["blockNumber"])
            tx.gas_used = int(receipt["gasUsed"])
            tx.effective_gas_price = int(receipt.get("effectiveGasPrice", 0))
        elif tx.status == "PENDING":
            tx.status = "REPLACED"
        else:
            continue
        ctx.repo.update_transaction(record.id, tx)


def _cancelled(ctx: ExecutionContext, record: RebalanceRecord, why: str) -> RebalanceRecord:
    txs = ctx.repo.transactions(record.id)
    wasted = wasted_gas_wei(txs)
    record = ctx.repo.transition(
        record.id,
        record.state,
        S.CANCELLED,
        error=(
            f"{why}: cancelled at its nonce (gas {wasted:,} wei): needs attention; "
            f"lpbot rebalance replan {record.id}"
        ),
    )
    ctx.alert(
        "rebalance_cancelled",
        f"rebalance {record.id} was not mined and has been cancelled; it needs attention",
    )
    ctx.checkpoint("cancelled")
    return record


def reconcile(
    ctx: ExecutionContext,
    record: RebalanceRecord,
    receipt: TxReceipt,
    report: dict[str, Any],
    *,
    via_module: bool = False,
) -> RebalanceRecord:
    """Decode the receipt into the amounts that moved; CONFIRMED or FAILED.

    The store records CONFIRMED in the same database transaction as the old position closed
    and the minted one (``new_token_id``, ``new_range``) opened in its place."""
    tokens = [t["address"] for t in report["tokens"]]
    result = _decode(
        ctx.w3,
        receipt,
        {t: 0 for t in tokens},
        {t: 0 for t in tokens},
        ctx.contracts["NonfungiblePositionManager"],
        report["pool"],
        ctx.safe,
        via_module=via_module,
    )
    outcome = {
        "tx_hash": "0x" + bytes(receipt["transactionHash"]).hex(),
        "block": receipt["blockNumber"],
        "gas_used": receipt["gasUsed"],
        "decreased": [str(x) for x in result.decreased],
        "collected": [str(x) for x in result.collected],
        "swap": [str(x) for x in result.swap] if result.swap else None,
        "minted": [str(x) for x in result.minted],
        "new_token_id": result.new_token_id,
        "new_range": list(result.new_ticks) if result.new_ticks else None,
        "new_liquidity": str(result.new_liquidity),
        "matches_report": (
            result.success
            and [str(x) for x in result.collected] == report["dry_run"]["collected"]
            and [str(x) for x in result.minted] == report["dry_run"]["minted"]
        ),
    }
    if record.kind == "withdraw" and result.success:
        # the emptied NFT as the chain holds it right after the withdraw: nothing left in it
        p = (
            ctx.contract("NonfungiblePositionManager")
            .functions.positions(record.token_id)
            .call(block_identifier=int(receipt["blockNumber"]))
        )
        outcome["position_after"] = [str(p[7]), str(p[10]), str(p[11])]
    new = S.CONFIRMED if result.success else S.FAILED
    if ctx.on_reconciled is not None:
        # every route (execute, the module, resume; daemon or command line) comes through here
        ctx.on_reconciled(record, outcome, report, receipt, result.success)
    record = ctx.repo.transition(
        record.id,
        record.state,
        new,
        result=outcome,
        error=None if result.success else "execTransaction reverted",
    )
    ctx.checkpoint("confirmed" if result.success else "failed")
    log.info("rebalance %d %s: %s", record.id, new.value, json.dumps(outcome))
    return record


def _module_tx_of(
    ctx: ExecutionContext, record: RebalanceRecord
) -> tuple[ModuleTransaction, dict[str, Any]]:
    report = _report_of(ctx, record)
    tx = ModuleTransaction.from_json(report["module_tx"])
    if "0x" + tx.tx_hash.hex() != record.safe_tx_hash:
        raise Refused("the module call is not the one the report was approved for")
    return tx, report


def _module_executed(
    ctx: ExecutionContext, record: RebalanceRecord, tx: ModuleTransaction, since_block: int
) -> TxReceipt | None:
    """The receipt of the module call ``tx``, if the chain has one: a rebalance burns its old
    position (so it cannot have happened twice); a compound (a withdraw) is found by its
    ``LiquidityIncreased`` (``LiquidityDecreased``) event in a transaction carrying exactly
    ``tx``'s calldata."""
    module = ctx.contract("LPRebalanceModule")
    event = {
        "compound": module.events.LiquidityIncreased,
        "withdraw": module.events.LiquidityDecreased,
    }.get(record.kind)
    if event is None:
        for entry in module.events.PositionBurned().get_logs(fromBlock=since_block):
            if entry["args"]["tokenId"] == record.token_id:
                return ctx.w3.eth.get_transaction_receipt(entry["transactionHash"])
        return None
    for entry in event().get_logs(fromBlock=since_block):
        if entry["args"]["tokenId"] != record.token_id:
            continue
        sent = ctx.w3.eth.get_transaction(entry["transactionHash"])
        if bytes(sent["input"]) == tx.data:
            return ctx.w3.eth.get_transaction_receipt(entry["transactionHash"])
    return None


def _execute_module(
    ctx: ExecutionContext, record: RebalanceRecord, *, pending: Sequence[TxRecord] = ()
) -> RebalanceRecord:
    """The operator signs and sends the module call (no owner signatures). APPROVED or SIGNED
    -> SUBMITTED -> CONFIRMED or FAILED."""
    tx, report = _module_tx_of(ctx, record)
    if ctx.operator is None or ctx.operator.address != tx.operator:
        raise NeedsAttention(f"the module call must be signed by the operator {tx.operator}")
    if record.state == S.APPROVED:
        _fresh(ctx, report)
        with _stale_on_refusal(ctx, record):
            drift = check_drift(ctx, report)
            outcome = pf.fetch_call_outcome(ctx.w3, tx.operator, tx.module, tx.data, estimate=False)
            if not outcome.ok:
                raise pf.PreflightRefused(
                    f"the module call would revert now: {outcome.reason}",
                    drift,
                    _lines(ctx, drift),
                )
        record = ctx.repo.transition(record.id, S.APPROVED, S.SIGNED, signatures=[])
        ctx.checkpoint("signed")
    record, receipt = _send_recorded(ctx, record, ctx.operator, tx.module, tx.data, report, pending)
    if receipt is None:
        return record
    return reconcile(ctx, record, receipt, report, via_module=True)


@dataclass(frozen=True, slots=True)
class SentOutcome:
    """What the chain says of a rebalance's recorded transactions."""

    receipt: TxReceipt | None = None  # the one mined
    kind: str = ""  # the mined one's: "cancel" or "rebalance"
    pending: tuple[TxRecord, ...] = ()  # recorded at the newest nonce, none mined (oldest first)
    taken: bool = False  # that nonce was used by a transaction that is not one of ours


def _sent_outcome(ctx: ExecutionContext, record: RebalanceRecord) -> SentOutcome:
    """The receipt of whichever recorded transaction was mined; else those recorded at the
    newest nonce, to send again as signed (a private endpoint or another node may hold them,
    and while their nonce is unused they can still be mined)."""
    txs = ctx.repo.transactions(record.id)

    def mined() -> SentOutcome | None:
        for t in reversed(txs):
            try:
                receipt = ctx.w3.eth.get_transaction_receipt(t.tx_hash)  # type: ignore[arg-type]
            except TransactionNotFound:
                continue
            return SentOutcome(receipt, t.kind)
        return None

    found = mined()
    if found is not None:
        return found
    pending = [t for t in txs if t.status == "PENDING"]
    if not pending:
        return SentOutcome()
    nonce = max(t.nonce for t in pending)
    at_nonce = tuple(t for t in pending if t.nonce == nonce)
    used = ctx.w3.eth.get_transaction_count(to_checksum_address(at_nonce[0].sender), "latest")
    if nonce < used and (found := mined()) is not None:  # mined since the first look
        return found
    if nonce < used:  # the nonce was used, and by none of ours
        for t in pending:
            t.status = "DROPPED"
            ctx.repo.update_transaction(record.id, t)
        return SentOutcome(pending=at_nonce, taken=True)
    return SentOutcome(pending=at_nonce)


def _nonce_taken(
    ctx: ExecutionContext, record: RebalanceRecord, outcome: SentOutcome
) -> RebalanceRecord:
    """Another transaction used the nonce of ours, and ours never ran: a cancelled rebalance
    stays CANCELLED; any other ends FAILED and alerts, since someone else sends from this
    account (a person's matter): nothing more is sent for it."""
    nonce = outcome.pending[0].nonce
    if any(t.kind == "cancel" for t in outcome.pending):
        return _cancelled(ctx, record, f"nonce {nonce} was taken by another transaction")
    text = (
        f"nonce {nonce} of {outcome.pending[0].sender} was used by a transaction lpbot did "
        "not send; nothing more is sent for this rebalance: needs attention"
    )
    record = ctx.repo.transition(record.id, record.state, S.FAILED, error=text)
    ctx.alert("nonce_taken", f"rebalance {record.id}: {text}")
    return record


@_node_down_is_retry_later
def resume_one(ctx: ExecutionContext, record: RebalanceRecord) -> RebalanceRecord:
    """Finish or safely abandon one unfinished rebalance, checking the chain first."""
    if record.state == S.PLANNED:
        # no report was written: nothing was signed; abandon (a new plan starts afresh)
        return ctx.repo.transition(record.id, S.PLANNED, S.EXPIRED, error="interrupted")
    if record.state in (S.SIMULATED, S.APPROVED):
        assert record.report_id is not None
        report = read_report(ctx.reports_dir, record.report_id)
        age = time.time() - float(report["created_at"])
        if age > ctx.report_max_age_seconds or (
            record.safe_nonce is not None
            and ctx.safe_contract.functions.nonce().call() != record.safe_nonce
        ):
            return ctx.repo.transition(record.id, record.state, S.EXPIRED, error="stale")
        return record  # still waiting for approval or for the signers
    assert record.report_id is not None
    if "module_tx" in read_report(ctx.reports_dir, record.report_id):
        return _resume_module(ctx, record)
    tx, report = _safe_tx_of(ctx, record)
    outcome = _sent_outcome(ctx, record)
    if outcome.receipt is not None:
        return _settle(ctx, record, outcome.receipt, outcome.kind, report, via_module=False)
    done = _executed(ctx, "0x" + tx.safe_tx_hash.hex(), int(report["snapshot"]["block"]))
    if done is not None:
        return reconcile(ctx, record, done, report)
    if outcome.taken:
        return _nonce_taken(ctx, record, outcome)
    if any(t.kind == "cancel" for t in outcome.pending):
        return _resume_cancel(ctx, record, ctx.executor, outcome.pending, report, via_module=False)
    if ctx.safe_contract.functions.nonce().call() != tx.nonce:
        return ctx.repo.transition(
            record.id, record.state, S.FAILED, error="Safe nonce moved; this SafeTx can't run"
        )
    if time.time() > int(report["deadline"]) and ctx.w3.eth.get_block("latest")["timestamp"] > int(
        report["deadline"]
    ):
        return ctx.repo.transition(record.id, record.state, S.EXPIRED, error="deadline passed")
    # signed but not mined (or never sent): send the same signed Safe transaction
    return _submit(ctx, record, tx, report, pending=outcome.pending)


def _resume_module(ctx: ExecutionContext, record: RebalanceRecord) -> RebalanceRecord:
    tx, report = _module_tx_of(ctx, record)
    outcome = _sent_outcome(ctx, record)
    if outcome.receipt is not None:
        return _settle(ctx, record, outcome.receipt, outcome.kind, report, via_module=True)
    done = _module_executed(ctx, record, tx, int(report["snapshot"]["block"]))
    if done is not None:
        return reconcile(ctx, record, done, report, via_module=True)
    if outcome.taken:
        return _nonce_taken(ctx, record, outcome)
    if any(t.kind == "cancel" for t in outcome.pending):
        assert ctx.operator is not None
        return _resume_cancel(ctx, record, ctx.operator, outcome.pending, report, via_module=True)
    if ctx.w3.eth.get_block("latest")["timestamp"] > int(report["deadline"]):
        return ctx.repo.transition(record.id, record.state, S.EXPIRED, error="deadline passed")
    return _execute_module(ctx, record, pending=outcome.pending)


def resume(
    ctx: ExecutionContext, token_ids: Collection[int] | None = None
) -> list[RebalanceRecord]:
    """Resume every unfinished rebalance of this context's chain and Safe (with ``token_ids``:
    only those of these NFTs, opens aside; a position's job leaves its neighbours' to their
    own, which follow the NFT they mint). One that must wait (retry later: gas above the
    limit, the node away) or is refused is said so, and the others are still resumed."""
    done = []
    for record in ctx.repo.unfinished():
        if record.chain_id != ctx.chain_id or record.safe.lower() != ctx.safe.lower():
            continue  # another chain's or Safe's: its own context resumes it
        if token_ids is not None and record.kind != "open" and record.token_id not in token_ids:
            continue  # another position's: its own job resumes it
        try:
            done.append(resume_one(ctx, record))
        except RetryLater as exc:
            log.warning("rebalance %d waits: %s", record.id, exc)
            ctx.progress(f"rebalance {record.id}: waits ({exc}); resume again later")
        except (Refused, NeedsAttention) as exc:
            log.error("rebalance %d could not be resumed: %s", record.id, exc)
            ctx.progress(f"rebalance {record.id}: not resumed: {exc}")
    return done


def send_recorded_call(
    ctx: ExecutionContext, log: Any, signer: Signer, to: str, data: bytes
) -> TxReceipt:
    """Send one call outside a rebalance (a Safe owner rotation) the way a rebalance's is
    sent: pre-flighted at ``latest`` before signing and before sending, the gas limit from a
    live estimate plus the margin, a fresh nonce from the store's nonce manager, recorded in
    ``log`` (``SqlTransactionLog``) with its signed bytes before broadcast, replaced while
    stuck, refusals read by meaning. A cancel taking its nonce is a person's matter."""
    outcome = pf.fetch_call_outcome(ctx.w3, signer.address, to, data)
    if not outcome.ok or outcome.gas_estimate is None:
        raise Refused(f"the transaction would revert now: {outcome.reason}")
    gas = pf.gas_limit(outcome.gas_estimate, 0, ctx.gas_margin_bps)
    route = route_of(ctx, swap=False)

    def check(tx: dict[str, Any]) -> None:
        exact = pf.fetch_call_outcome(
            ctx.w3, tx["from"], tx["to"], bytes(tx["data"]), gas=int(tx["gas"]), estimate=False
        )
        if not exact.ok:
            raise Refused(f"the signed transaction would revert now: {exact.reason}")

    submitter = Submitter(
        ctx.w3,
        signer,
        preflight=check,
        nonces=NonceManager(ctx.w3, log),
        confirmations=ctx.confirmations,
        replace_after=ctx.replace_after,
        max_replacements=ctx.max_replacements,
        submit_w3=ctx.submit_w3 if route.private else None,
        public_fallback=route.public_fallback,
        on_progress=ctx.progress,
    )
    sent: list[str] = []

    def on_sent(tx: SentTx) -> None:
        log.record(
            TxRecord(
                tx_hash=tx.hash,
                nonce=tx.nonce,
                sender=signer.address,
                to=tx.to,
                gas_limit=tx.gas,
                max_fee_per_gas=tx.fees.max_fee_per_gas,
                max_priority_fee_per_gas=tx.fees.max_priority_fee_per_gas,
                raw=tx.raw,
                sent_as=tx.kind,
            ),
            claim=tx.fresh,
        )
        sent.append(tx.hash)

    receipt, mined = submitter.send_and_confirm(to, data, gas, on_sent=on_sent)
    log.settle(sent, mined.hash, dict(receipt))
    if mined.kind == "cancel":
        raise NeedsAttention(
            f"the transaction was stuck and cancelled at nonce {mined.nonce}: nothing ran"
        )
    return receipt


ZERO_ADDRESS = "0x0000000000000000000000000000000000000000"


def nft_exists(ctx: ExecutionContext, token_id: int) -> bool:
    """Whether the position manager still has NFT ``token_id`` (a burned one reverts)."""
    npm = ctx.contract("NonfungiblePositionManager")
    try:
        npm.functions.ownerOf(token_id).call()
    except ContractLogicError:
        return False
    return True


@dataclass(frozen=True, slots=True)
class Successor:
    """What the chain says became of a burned NFT: the transaction that burned it, and the
    NFT that transaction minted to the Safe (None: closed without a successor)."""

    burned_in: str
    block: int
    token_id: int | None
    ticks: tuple[int, int] | None


def fetch_successor(ctx: ExecutionContext, token_id: int, since_block: int = 0) -> Successor | None:
    """The burn of ``token_id`` and the NFT its transaction minted to the Safe, read from the
    position manager's ``Transfer`` events; None when the chain shows no burn."""
    npm = ctx.contract("NonfungiblePositionManager")
    transfers = npm.events.Transfer().get_logs(
        fromBlock=since_block, argument_filters={"tokenId": token_id}
    )
    burns = [e for e in transfers if e["args"]["to"] == ZERO_ADDRESS]
    if not burns:
        return None
    tx_hash = burns[-1]["transactionHash"]
    receipt = ctx.w3.eth.get_transaction_receipt(tx_hash)
    minted = [
        e
        for e in npm.events.Transfer().process_receipt(receipt, errors=DISCARD)
        if e["args"]["from"] == ZERO_ADDRESS and e["args"]["to"].lower() == ctx.safe.lower()
    ]
    new = int(minted[0]["args"]["tokenId"]) if minted else None
    ticks = None
    if new is not None:
        p = npm.functions.positions(new).call()
        ticks = (int(p[5]), int(p[6]))
    return Successor("0x" + bytes(tx_hash).hex(), int(receipt["blockNumber"]), new, ticks)

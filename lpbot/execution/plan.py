"""A rebalance decision becomes a ``RebalancePlan``: the exact calls a Safe makes, with minimums.

The plan closes the position (decreaseLiquidity, collect, burn when emptied), swaps to the new
range's ratio through SwapRouter02 and mints the new position, all calls from the Safe that owns
the NFT. Three more kinds go the same way: ``open`` (no position yet: the Safe's capital is
swapped to the range's ratio and minted to the Safe), ``compound`` (the fees owed are
collected, swapped to the range's ratio and added to the same NFT with increaseLiquidity) and
``withdraw`` (all the liquidity decreased and everything owed collected to the Safe: no swap,
no mint, the emptied NFT kept).
Every amount is first computed by the exact core on the pool's snapshot; every minimum is that
amount less the slippage tolerance; every call carries the deadline. Planning is refused
when the pool's spot price is too far from its TWAP (a manipulated pool) or from an external
reference price.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field
from decimal import Decimal
from fractions import Fraction

from eth_utils.address import to_checksum_address
from web3 import Web3

from lpbot.analytics.types import Tick
from lpbot.chain import artifacts
from lpbot.chain.reader import NpmPositionState, PoolSnapshot
from lpbot.errors import Refused
from lpbot.strategy.base import Range
from lpbot.strategy.open import OpenPlan, plan_open
from lpbot.uniswap.position import PositionInfo
from lpbot.uniswap.tick_math import (
    MAX_SQRT_RATIO,
    MAX_TICK,
    MIN_SQRT_RATIO,
    get_sqrt_ratio_at_tick,
)

MAX_UINT128 = 2**128 - 1
BPS = 10_000
# the widest slippage tolerance planned without ``--force``: beyond it a sandwich's take is
# larger than any honest price move between the plan and the send
MAX_SLIPPAGE_BPS = 300


def sandwich_exposure(sqrt_price_x96: int, tick_lower: int, tick_upper: int) -> Fraction:
    """What a sandwich can take from a re-centre into ``[tick_lower, tick_upper]`` at the spot
    ``sqrt_price_x96``, per basis point of slippage, as a share of the position: the take on
    the swap's notional times the most of the position's value the swap can be (exact,
    from ``TickMath.getSqrtRatioAtTick``).

    A price pushed by ``d`` before the batch costs the swap about ``d`` of its notional, and
    moves the ratio of token1 to token0 the mint needs by ``d * k``, ``k = (x / (x - a) +
    b / (b - x)) / 2`` (``x``, ``a``, ``b``: the sqrt prices of the spot and the range's
    ends). The mint's minimums, at the same slippage ``s``, refuse the batch once that passes
    ``s``: the take stops at ``s / k`` of the swap. A narrow range's minimums bind early
    (about 1.5 bps of the swap at 50 bps slippage for +-600 ticks), a full range's not at all
    (the swap's minimum binds: all 50). The swap is at most the larger of the two tokens'
    shares of the range's value at the spot (the position arrives wholly in the other token);
    a spot outside the range needs one token only: all of it swapped, the swap's minimum
    binding."""
    a, b = get_sqrt_ratio_at_tick(tick_lower), get_sqrt_ratio_at_tick(tick_upper)
    x = sqrt_price_x96
    if not a < x < b:
        return Fraction(1)
    k = (Fraction(x, x - a) + Fraction(b, b - x)) / 2
    value0, value1 = x - Fraction(x * x, b), Fraction(x - a)  # per unit of liquidity, in token1
    return max(value0, value1) / (value0 + value1) / k


def mint_exposure(
    sqrt_price_x96: int, sqrt_price_after_x96: int, tick_lower: int, tick_upper: int
) -> Fraction:
    """``sandwich_exposure`` where the mint happens: at the price after the plan's own swap.
    A swap large against the pool's liquidity moves the price (towards the range's middle,
    when the range is off-centre), where the mint's minimums bind later; and a push before the
    swap shifts the price after it by less (by the ratio of the two sqrt prices), so it must
    go further before they bind. The larger of this and the exposure at the spot."""
    at_spot = sandwich_exposure(sqrt_price_x96, tick_lower, tick_upper)
    if sqrt_price_after_x96 <= 0 or sqrt_price_after_x96 == sqrt_price_x96:
        return at_spot
    shift = Fraction(
        min(sqrt_price_x96, sqrt_price_after_x96), max(sqrt_price_x96, sqrt_price_after_x96)
    )
    after = sandwich_exposure(sqrt_price_after_x96, tick_lower, tick_upper) / shift
    return max(at_spot, after)


def _after_impact(
    slippage_bps: int, open_plan: OpenPlan, spot: int, rng: Range, max_sandwich_bps: int | None
) -> int:
    """A derived slippage (``max_sandwich_bps`` given) tightened so that the take stays under
    the bound at the price the mint happens at (``mint_exposure``)."""
    if max_sandwich_bps is None or open_plan.swap is None:
        return slippage_bps
    after = open_plan.swap.sqrt_price_after_x96
    derived = range_slippage_bps(spot, rng.tick_lower, rng.tick_upper, max_sandwich_bps, after)
    return min(slippage_bps, derived)


def _centred(half_width_ticks: int) -> tuple[int, int, int]:
    h = min(max(half_width_ticks, 1), MAX_TICK)
    return get_sqrt_ratio_at_tick(0), -h, h


def sandwich_bound_bps(slippage_bps: int, half_width_ticks: int) -> Fraction:
    """The most a sandwich can take from a re-centre into a range of half-width
    ``half_width_ticks`` around the spot, in bps of the position (``sandwich_exposure``)."""
    return slippage_bps * sandwich_exposure(*_centred(half_width_ticks))


def default_slippage_bps(half_width_ticks: int, max_sandwich_bps: int) -> int:
    """``range_slippage_bps`` of a range of half-width ``half_width_ticks`` around the spot."""
    return range_slippage_bps(*_centred(half_width_ticks), max_sandwich_bps)


def range_slippage_bps(
    sqrt_price_x96: int,
    tick_lower: int,
    tick_upper: int,
    max_sandwich_bps: int,
    sqrt_price_after_x96: int = 0,
) -> int:
    """The slippage of a re-centre into ``[tick_lower, tick_upper]`` at the spot when the
    policy sets none: the widest under which a sandwich takes at most ``max_sandwich_bps`` of
    the position (``sandwich_exposure``), never above ``MAX_SLIPPAGE_BPS``. Wide ranges get
    the tightest (a full range: ``2 * max_sandwich``), narrow ones, whose mint minimums bind
    first, up to the cap; a spot outside the range (one token, all of it swapped, only the
    swap's minimum binding) gets ``max_sandwich`` itself. ``sqrt_price_after_x96``: the price
    after the plan's own swap, where the mint happens (``mint_exposure``)."""
    exposure = mint_exposure(sqrt_price_x96, sqrt_price_after_x96, tick_lower, tick_upper)
    return min(math.floor(max_sandwich_bps / exposure), MAX_SLIPPAGE_BPS)


@dataclass(frozen=True, slots=True)
class Call:
    """One call the Safe makes: target, calldata, and what it is for."""

    to: str
    data: bytes
    label: str
    value: int = 0


@dataclass(frozen=True, slots=True)
class PlanAmounts:
    """Raw token amounts the plan expects (exact core) and the minimums it enforces."""

    decrease0: int
    decrease1: int
    fees0: int
    fees1: int
    decrease_min0: int
    decrease_min1: int
    swap_zero_for_one: bool | None
    swap_in: int
    swap_out: int
    swap_out_min: int
    mint0: int
    mint1: int
    mint_min0: int
    mint_min1: int
    new_liquidity: int
    dust0: int
    dust1: int
    # the swap's sqrtPriceLimitX96: the simulated price after it, moved on by the slippage
    # (``swap_price_limit``); 0 only when there is no swap
    swap_sqrt_price_limit_x96: int = 0


@dataclass(frozen=True, slots=True)
class RebalancePlan:
    """Everything the Safe will do for one rebalance, and what it should come to."""

    idempotency_key: str
    chain_id: int
    safe: str
    pool: str
    position_manager: str
    router: str
    token0: str
    token1: str
    fee: int
    token_id: int
    old_range: tuple[int, int]
    old_liquidity: int
    new_range: tuple[int, int]
    snapshot_block: int
    snapshot_timestamp: int
    sqrt_price_x96: int
    spot_tick: int
    twap_tick: int | None
    twap_deviation_bps: float | None
    deadline: int
    slippage_bps: int
    amounts: PlanAmounts
    calls: tuple[Call, ...] = field(default_factory=tuple)
    kind: str = "rebalance"  # "rebalance", "open", "compound" or "withdraw"
    capital: tuple[int, int] | None = None  # an open's capital (raw), taken from the Safe
    # the second source's price of token0 in token1 (raw units), where it is from, and the
    # spot's distance from it (analytics float)
    reference_price: Decimal | None = None
    reference_source: str = ""
    reference_deviation_bps: float | None = None
    route: str = "multisig"


def _deviation_bps(tick_a: int, tick_b: int) -> float:
    """|price_a / price_b - 1| in basis points, for prices 1.0001**tick (analytics float)."""
    return abs(math.pow(1.0001, tick_a - tick_b) - 1.0) * BPS


def _less(amount: int, bps: int) -> int:
    return amount * (BPS - bps) // BPS


def swap_price_limit(sqrt_price_after_x96: int, zero_for_one: bool, slippage_bps: int) -> int:
    """The swap's ``sqrtPriceLimitX96``: the simulated price after the swap moved a further
    ``slippage_bps`` in the swap's direction (price = sqrt price squared, so the sqrt price
    moves by the square root of 1 -+ slippage). Exact integers; rounded away from the price
    (the looser side, by at most one unit), inside (MIN_SQRT_RATIO, MAX_SQRT_RATIO) as
    ``UniswapV3Pool.swap`` requires. The pool stops there: a price pushed further by others
    leaves part of the input unswapped, and the minimum out then reverts the swap."""
    squared = sqrt_price_after_x96 * sqrt_price_after_x96
    if zero_for_one:  # the price falls
        limit = math.isqrt(squared * (BPS - slippage_bps) // BPS)
        return max(limit, MIN_SQRT_RATIO + 1)
    target = -(-squared * (BPS + slippage_bps) // BPS)
    limit = math.isqrt(target)
    if limit * limit < target:
        limit += 1
    return min(limit, MAX_SQRT_RATIO - 1)


def _check_bounds(slippage_bps: int, deadline_seconds: int) -> None:
    if not 0 <= slippage_bps < BPS:
        raise Refused(f"slippage must be in [0, {BPS}) bps, got {slippage_bps}")
    if deadline_seconds <= 0:
        raise Refused("deadline must be in the future")


def _price_guards(
    snapshot: PoolSnapshot,
    max_twap_deviation_bps: int,
    reference_price: Decimal | None,
    max_reference_deviation_bps: int,
    reference_source: str = "",
) -> tuple[int, int, float, Decimal | None]:
    """(spot tick, TWAP tick, their deviation in bps, the spot's from the reference in bps);
    refused on a manipulated-looking pool."""
    spot = snapshot.slot0.tick
    twap = snapshot.twap_tick()
    if twap is None:
        raise Refused(
            "no TWAP for the pool over the window read (observations too young or "
            "cardinality too small): refusing to plan against an unverified price"
        )
    deviation = _deviation_bps(spot, twap)
    if deviation > max_twap_deviation_bps:
        raise Refused(
            f"spot tick {spot} deviates {deviation:.0f} bps from the TWAP tick {twap} "
            f"(max {max_twap_deviation_bps}): the pool may be manipulated"
        )
    ref_dev: Decimal | None = None
    if reference_price is not None:
        if not reference_price > 0:
            raise Refused(f"the reference price must be > 0, got {reference_price}")
        spot_price = (Decimal(snapshot.slot0.sqrt_price_x96) / Decimal(2**96)) ** 2
        ref_dev = abs(spot_price / reference_price - 1) * BPS
        if ref_dev > max_reference_deviation_bps:
            raise Refused(
                f"spot deviates {ref_dev:.0f} bps from the reference price "
                f"{reference_source or ''} (max {max_reference_deviation_bps}): the pool may be "
                "held off-price"
            )
    return spot, twap, deviation, ref_dev


def _kept_position(
    snapshot: PoolSnapshot,
    token_id: int,
    verb: str,
    slippage_bps: int,
    max_slippage_bps: int,
    deadline_seconds: int,
    max_twap_deviation_bps: int,
    reference_price: Decimal | None,
    max_reference_deviation_bps: int,
    reference_source: str,
) -> tuple[NpmPositionState, tuple[int, int, float, Decimal | None]]:
    """The checks of a plan on an NFT it keeps (a compound, a withdraw): bounds, the slippage
    cap, the position in the snapshot with liquidity to ``verb``, and the price guards."""
    _check_bounds(slippage_bps, deadline_seconds)
    if slippage_bps > max_slippage_bps:
        raise Refused(
            f"slippage {slippage_bps} bps is above {max_slippage_bps} bps: minimums that loose "
            "let a sandwich take that much; pass --force to plan with it anyway"
        )
    pos = snapshot.positions.get(token_id)
    if pos is None:
        raise Refused(f"position {token_id} is not in the snapshot of pool {snapshot.address}")
    if pos.npm.liquidity == 0:
        raise Refused(f"position {token_id} has no liquidity to {verb}")
    guards = _price_guards(
        snapshot,
        max_twap_deviation_bps,
        reference_price,
        max_reference_deviation_bps,
        reference_source,
    )
    return pos, guards


def _amounts(
    open_plan: OpenPlan,
    slippage_bps: int,
    *,
    decrease: tuple[int, int] = (0, 0),
    fees: tuple[int, int] = (0, 0),
) -> PlanAmounts:
    swap = open_plan.swap
    return PlanAmounts(
        decrease0=decrease[0],
        decrease1=decrease[1],
        fees0=fees[0],
        fees1=fees[1],
        decrease_min0=_less(decrease[0], slippage_bps),
        decrease_min1=_less(decrease[1], slippage_bps),
        swap_zero_for_one=swap.zero_for_one if swap else None,
        swap_in=swap.amount_in if swap else 0,
        swap_out=swap.expected_out if swap else 0,
        swap_out_min=_less(swap.expected_out, slippage_bps) if swap else 0,
        mint0=open_plan.amount0,
        mint1=open_plan.amount1,
        mint_min0=_less(open_plan.amount0, slippage_bps),
        mint_min1=_less(open_plan.amount1, slippage_bps),
        new_liquidity=open_plan.liquidity,
        dust0=open_plan.dust0,
        dust1=open_plan.dust1,
        swap_sqrt_price_limit_x96=(
            swap_price_limit(swap.sqrt_price_after_x96, swap.zero_for_one, slippage_bps)
            if swap
            else 0
        ),
    )


def open_idempotency_key(chain_id: int, safe: str, label: str) -> str:
    """One open per (chain, Safe, configured position): a second plan finds the first."""
    return hashlib.sha256(
        f"{chain_id}:{to_checksum_address(safe)}:open:{label}".encode()
    ).hexdigest()


def build_open_plan(
    snapshot: PoolSnapshot,
    *,
    label: str,
    new_range: Range,
    capital: tuple[int, int],
    tokens: tuple[str, str],
    chain_id: int,
    safe: str,
    position_manager: str,
    router: str,
    slippage_bps: int = 50,
    max_sandwich_bps: int | None = None,
    deadline_seconds: int = 1200,
    max_twap_deviation_bps: int = 100,
    reference_price: Decimal | None = None,
    reference_source: str = "",
    max_reference_deviation_bps: int = 200,
    allowances: dict[tuple[str, str], int] | None = None,
) -> RebalancePlan:
    """Plan a new Safe-owned position in ``new_range`` of the pool of ``snapshot`` (whose
    ``tokens`` are token0, token1) with ``capital`` (raw token0, token1) from the Safe: the
    swap to the range's ratio through the pool itself (exact core), exact approvals, and the
    mint to the Safe with minimums and the deadline."""
    _check_bounds(slippage_bps, deadline_seconds)
    if new_range.tick_spacing != snapshot.tick_spacing:
        raise Refused(f"range spacing {new_range.tick_spacing} is not {snapshot.tick_spacing}")
    if capital[0] < 0 or capital[1] < 0 or capital == (0, 0):
        raise Refused(f"capital must be positive, got {capital[0]} and {capital[1]} (raw)")
    spot, twap, deviation, ref_dev = _price_guards(
        snapshot,
        max_twap_deviation_bps,
        reference_price,
        max_reference_deviation_bps,
        reference_source,
    )
    try:
        open_plan = plan_open(snapshot.to_pool(), new_range, capital[0], capital[1])
    except ValueError as exc:
        raise Refused(f"cannot open the range with this capital: {exc}") from exc
    slippage_bps = _after_impact(
        slippage_bps, open_plan, snapshot.slot0.sqrt_price_x96, new_range, max_sandwich_bps
    )
    amounts = _amounts(open_plan, slippage_bps)
    deadline = snapshot.block_timestamp + deadline_seconds
    token0, token1 = to_checksum_address(tokens[0]), to_checksum_address(tokens[1])
    safe = to_checksum_address(safe)
    calls = _encode_calls(
        token_id=None,
        liquidity=0,
        amounts=amounts,
        new_range=new_range,
        token0=token0,
        token1=token1,
        fee=snapshot.fee,
        safe=safe,
        npm=to_checksum_address(position_manager),
        router=to_checksum_address(router),
        deadline=deadline,
        allowances=allowances or {},
    )
    return RebalancePlan(
        idempotency_key=open_idempotency_key(chain_id, safe, label),
        chain_id=chain_id,
        safe=safe,
        pool=snapshot.address,
        position_manager=to_checksum_address(position_manager),
        router=to_checksum_address(router),
        token0=token0,
        token1=token1,
        fee=snapshot.fee,
        token_id=0,
        old_range=(0, 0),
        old_liquidity=0,
        new_range=(new_range.tick_lower, new_range.tick_upper),
        snapshot_block=snapshot.block_number,
        snapshot_timestamp=snapshot.block_timestamp,
        sqrt_price_x96=snapshot.slot0.sqrt_price_x96,
        spot_tick=spot,
        twap_tick=twap,
        twap_deviation_bps=deviation,
        deadline=deadline,
        slippage_bps=slippage_bps,
        amounts=amounts,
        calls=calls,
        kind="open",
        capital=capital,
        reference_price=reference_price,
        reference_source=reference_source,
        reference_deviation_bps=float(ref_dev) if ref_dev is not None else None,
    )


def build_compound_plan(
    snapshot: PoolSnapshot,
    *,
    token_id: int,
    chain_id: int,
    safe: str,
    position_manager: str,
    router: str,
    slippage_bps: int = 50,
    max_sandwich_bps: int | None = None,
    max_slippage_bps: int = MAX_SLIPPAGE_BPS,
    deadline_seconds: int = 1200,
    max_twap_deviation_bps: int = 100,
    reference_price: Decimal | None = None,
    reference_source: str = "",
    max_reference_deviation_bps: int = 200,
    allowances: dict[tuple[str, str], int] | None = None,
    route: str = "multisig",
) -> RebalancePlan:
    """Plan compounding NFT ``token_id`` (owned by ``safe``): collect its fees owed into the
    Safe, swap the part that does not fit the range's ratio through the pool itself (exact
    core, the ticks it crosses included), and add the rest to the same NFT with
    increaseLiquidity; minimums are the simulated amounts less the slippage, with the deadline.

    Only the fees are reinvested: the Safe's own balances are never drawn on. ``route``
    (``multisig`` or ``module``) is part of the idempotency key: a compound the module refuses
    is planned again, in the same block, as a Safe transaction for the owners. The price
    guards and the slippage cap are a rebalance's: its swap goes through the same pool."""
    pos, (spot, twap, deviation, ref_dev) = _kept_position(
        snapshot, token_id, "compound into", slippage_bps, max_slippage_bps, deadline_seconds,
        max_twap_deviation_bps, reference_price, max_reference_deviation_bps, reference_source,
    )  # fmt: skip
    lower, upper = pos.npm.tick_lower, pos.npm.tick_upper
    rng = Range(Tick(lower), Tick(upper), snapshot.tick_spacing)
    fees0, fees1 = snapshot.uncollected_fees(token_id)
    try:
        open_plan = plan_open(snapshot.to_pool(), rng, fees0, fees1)
    except ValueError as exc:
        raise Refused(f"the fees owed cannot be added to the position: {exc}") from exc
    slippage_bps = _after_impact(
        slippage_bps, open_plan, snapshot.slot0.sqrt_price_x96, rng, max_sandwich_bps
    )
    amounts = _amounts(open_plan, slippage_bps, fees=(fees0, fees1))
    deadline = snapshot.block_timestamp + deadline_seconds
    token0, token1 = to_checksum_address(pos.token0), to_checksum_address(pos.token1)
    safe = to_checksum_address(safe)
    calls = _encode_calls(
        token_id=token_id,
        liquidity=pos.npm.liquidity,
        compound=True,
        amounts=amounts,
        new_range=rng,
        token0=token0,
        token1=token1,
        fee=snapshot.fee,
        safe=safe,
        npm=to_checksum_address(position_manager),
        router=to_checksum_address(router),
        deadline=deadline,
        allowances=allowances or {},
    )
    key = hashlib.sha256(
        f"{chain_id}:{safe}:{token_id}:compound:{snapshot.block_number}:{route}".encode()
    ).hexdigest()
    return RebalancePlan(
        idempotency_key=key,
        chain_id=chain_id,
        safe=safe,
        pool=snapshot.address,
        position_manager=to_checksum_address(position_manager),
        router=to_checksum_address(router),
        token0=token0,
        token1=token1,
        fee=snapshot.fee,
        token_id=token_id,
        old_range=(lower, upper),
        old_liquidity=pos.npm.liquidity,
        new_range=(lower, upper),
        snapshot_block=snapshot.block_number,
        snapshot_timestamp=snapshot.block_timestamp,
        sqrt_price_x96=snapshot.slot0.sqrt_price_x96,
        spot_tick=spot,
        twap_tick=twap,
        twap_deviation_bps=deviation,
        deadline=deadline,
        slippage_bps=slippage_bps,
        amounts=amounts,
        calls=calls,
        kind="compound",
        reference_price=reference_price,
        reference_source=reference_source,
        reference_deviation_bps=None if ref_dev is None else float(ref_dev),
        route=route,
    )


def build_withdraw_plan(
    snapshot: PoolSnapshot,
    *,
    token_id: int,
    chain_id: int,
    safe: str,
    position_manager: str,
    router: str,
    slippage_bps: int = 50,
    max_slippage_bps: int = MAX_SLIPPAGE_BPS,
    deadline_seconds: int = 1200,
    max_twap_deviation_bps: int = 100,
    reference_price: Decimal | None = None,
    reference_source: str = "",
    max_reference_deviation_bps: int = 200,
    route: str = "multisig",
) -> RebalancePlan:
    """Plan withdrawing NFT ``token_id`` (owned by ``safe``) to the Safe: decreaseLiquidity of
    all its liquidity, then collect everything owed (the decreased amounts and the fees) to the
    Safe. No swap, no mint; the emptied NFT is kept (never burned).

    The decrease's amounts are the exact core's (``UniswapV3Pool.burn`` on the snapshot), its
    minimums those less the slippage, with the deadline; the price guards are a rebalance's
    (a decrease at a pushed price hands the pusher the difference). ``route`` is part of the
    idempotency key, as for a rebalance."""
    pos, (spot, twap, deviation, ref_dev) = _kept_position(
        snapshot, token_id, "withdraw", slippage_bps, max_slippage_bps, deadline_seconds,
        max_twap_deviation_bps, reference_price, max_reference_deviation_bps, reference_source,
    )  # fmt: skip
    lower, upper = pos.npm.tick_lower, pos.npm.tick_upper
    pool = snapshot.to_pool()
    inside = snapshot.fee_growth_inside(token_id)
    fees0, fees1 = snapshot.uncollected_fees(token_id)
    owner = position_manager
    pool.positions[(owner, lower, upper)] = PositionInfo(pos.npm.liquidity, inside[0], inside[1])
    dec0, dec1 = pool.burn(owner, lower, upper, pos.npm.liquidity)
    amounts = PlanAmounts(
        decrease0=dec0,
        decrease1=dec1,
        fees0=fees0,
        fees1=fees1,
        decrease_min0=_less(dec0, slippage_bps),
        decrease_min1=_less(dec1, slippage_bps),
        swap_zero_for_one=None,
        swap_in=0,
        swap_out=0,
        swap_out_min=0,
        mint0=0,
        mint1=0,
        mint_min0=0,
        mint_min1=0,
        new_liquidity=0,
        dust0=0,
        dust1=0,
    )
    deadline = snapshot.block_timestamp + deadline_seconds
    token0, token1 = to_checksum_address(pos.token0), to_checksum_address(pos.token1)
    safe = to_checksum_address(safe)
    npm = to_checksum_address(position_manager)
    npm_c = Web3().eth.contract(address=npm, abi=artifacts.abi("NonfungiblePositionManager"))

    def data(fn: str, *args: object) -> bytes:
        encoded: str = npm_c.encode_abi(fn_name=fn, args=list(args))
        return bytes.fromhex(encoded[2:])

    liquidity = pos.npm.liquidity
    withdraw = [
        data(
            "decreaseLiquidity",
            (token_id, liquidity, amounts.decrease_min0, amounts.decrease_min1, deadline),
        ),
        data("collect", (token_id, safe, MAX_UINT128, MAX_UINT128)),
    ]
    calls = (
        Call(
            npm,
            data("multicall", withdraw),
            f"withdraw position {token_id}: decreaseLiquidity({liquidity}), collect all to the "
            "Safe (the NFT is kept)",
        ),
    )
    key = hashlib.sha256(
        f"{chain_id}:{safe}:{token_id}:withdraw:{snapshot.block_number}:{route}".encode()
    ).hexdigest()
    return RebalancePlan(
        idempotency_key=key,
        chain_id=chain_id,
        safe=safe,
        pool=snapshot.address,
        position_manager=npm,
        router=to_checksum_address(router),
        token0=token0,
        token1=token1,
        fee=snapshot.fee,
        token_id=token_id,
        old_range=(lower, upper),
        old_liquidity=liquidity,
        new_range=(lower, upper),
        snapshot_block=snapshot.block_number,
        snapshot_timestamp=snapshot.block_timestamp,
        sqrt_price_x96=snapshot.slot0.sqrt_price_x96,
        spot_tick=spot,
        twap_tick=twap,
        twap_deviation_bps=deviation,
        deadline=deadline,
        slippage_bps=slippage_bps,
        amounts=amounts,
        calls=calls,
        kind="withdraw",
        reference_price=reference_price,
        reference_source=reference_source,
        reference_deviation_bps=None if ref_dev is None else float(ref_dev),
        route=route,
    )


def build_rebalance_plan(
    snapshot: PoolSnapshot,
    *,
    token_id: int,
    new_range: Range,
    chain_id: int,
    safe: str,
    position_manager: str,
    router: str,
    slippage_bps: int = 50,
    max_sandwich_bps: int | None = None,
    max_slippage_bps: int = MAX_SLIPPAGE_BPS,
    deadline_seconds: int = 1200,
    max_twap_deviation_bps: int = 100,
    reference_price: Decimal | None = None,
    reference_source: str = "",
    max_reference_deviation_bps: int = 200,
    allowances: dict[tuple[str, str], int] | None = None,
    route: str = "multisig",
) -> RebalancePlan:
    """Plan the rebalance of NFT ``token_id`` (owned by ``safe``) into ``new_range``.

    ``snapshot`` must hold the position (``fetch_pool_state(token_ids=[token_id])``) and a TWAP
    window (``twap_seconds``). ``reference_price`` is an external price of token0 in token1
    (raw units). ``allowances`` maps (token, spender) to the Safe's current allowance; missing
    entries count as zero, so approvals are planned. ``route`` (``multisig`` or ``module``) is
    part of the idempotency key: the same rebalance planned both ways in one block is two plans.
    """
    _check_bounds(slippage_bps, deadline_seconds)
    if slippage_bps > max_slippage_bps:
        raise Refused(
            f"slippage {slippage_bps} bps is above {max_slippage_bps} bps: minimums that loose "
            "let a sandwich take that much; pass --force to plan with it anyway"
        )
    pos = snapshot.positions.get(token_id)
    if pos is None:
        raise Refused(f"position {token_id} is not in the snapshot of pool {snapshot.address}")
    if pos.npm.liquidity == 0:
        raise Refused(f"position {token_id} has no liquidity to rebalance")
    if new_range.tick_spacing != snapshot.tick_spacing:
        raise Refused(f"range spacing {new_range.tick_spacing} is not {snapshot.tick_spacing}")

    spot, twap, deviation, ref_dev = _price_guards(
        snapshot,
        max_twap_deviation_bps,
        reference_price,
        max_reference_deviation_bps,
        reference_source,
    )

    # exact simulation on the snapshot: burn our liquidity, collect, then plan the swap and mint
    lower, upper = pos.npm.tick_lower, pos.npm.tick_upper
    pool = snapshot.to_pool()
    inside = snapshot.fee_growth_inside(token_id)
    fees0, fees1 = snapshot.uncollected_fees(token_id)
    owner = position_manager
    pool.positions[(owner, lower, upper)] = PositionInfo(pos.npm.liquidity, inside[0], inside[1])
    dec0, dec1 = pool.burn(owner, lower, upper, pos.npm.liquidity)
    avail0, avail1 = dec0 + fees0, dec1 + fees1
    try:
        open_plan: OpenPlan = plan_open(pool, new_range, avail0, avail1)
    except ValueError as exc:
        raise Refused(f"cannot open the new range with the position's tokens: {exc}") from exc

    slippage_bps = _after_impact(
        slippage_bps, open_plan, snapshot.slot0.sqrt_price_x96, new_range, max_sandwich_bps
    )
    amounts = _amounts(open_plan, slippage_bps, decrease=(dec0, dec1), fees=(fees0, fees1))
    deadline = snapshot.block_timestamp + deadline_seconds
    pos_token0 = to_checksum_address(pos.token0)
    pos_token1 = to_checksum_address(pos.token1)
    safe = to_checksum_address(safe)
    calls = _encode_calls(
        token_id=token_id,
        liquidity=pos.npm.liquidity,
        amounts=amounts,
        new_range=new_range,
        token0=pos_token0,
        token1=pos_token1,
        fee=snapshot.fee,
        safe=safe,
        npm=to_checksum_address(position_manager),
        router=to_checksum_address(router),
        deadline=deadline,
        allowances=allowances or {},
    )
    key = hashlib.sha256(
        f"{chain_id}:{safe}:{token_id}:{new_range.tick_lower}:{new_range.tick_upper}:"
        f"{snapshot.block_number}:{route}:{slippage_bps}".encode()
    ).hexdigest()
    return RebalancePlan(
        idempotency_key=key,
        chain_id=chain_id,
        safe=safe,
        pool=snapshot.address,
        position_manager=to_checksum_address(position_manager),
        router=to_checksum_address(router),
        token0=pos_token0,
        token1=pos_token1,
        fee=snapshot.fee,
        token_id=token_id,
        old_range=(lower, upper),
        old_liquidity=pos.npm.liquidity,
        new_range=(new_range.tick_lower, new_range.tick_upper),
        snapshot_block=snapshot.block_number,
        snapshot_timestamp=snapshot.block_timestamp,
        sqrt_price_x96=snapshot.slot0.sqrt_price_x96,
        spot_tick=spot,
        twap_tick=twap,
        twap_deviation_bps=deviation,
        deadline=deadline,
        slippage_bps=slippage_bps,
        amounts=amounts,
        calls=calls,
        reference_price=reference_price,
        reference_source=reference_source,
        reference_deviation_bps=None if ref_dev is None else float(ref_dev),
        route=route,
    )


def _encode_calls(
    *,
    token_id: int | None,
    liquidity: int,
    compound: bool = False,
    amounts: PlanAmounts,
    new_range: Range,
    token0: str,
    token1: str,
    fee: int,
    safe: str,
    npm: str,
    router: str,
    deadline: int,
    allowances: dict[tuple[str, str], int],
) -> tuple[Call, ...]:
    w3 = Web3()
    npm_c = w3.eth.contract(
        address=to_checksum_address(npm), abi=artifacts.abi("NonfungiblePositionManager")
    )
    router_c = w3.eth.contract(
        address=to_checksum_address(router), abi=artifacts.abi("SwapRouter02")
    )
    erc20 = w3.eth.contract(abi=artifacts.abi("TestERC20"))

    def data(contract: object, fn: str, *args: object) -> bytes:
        encoded: str = contract.encode_abi(fn_name=fn, args=list(args))  # type: ignore[attr-defined]
        return bytes.fromhex(encoded[2:])

    calls: list[Call] = []
    if token_id is not None and not compound:
        close = [
            data(
                npm_c,
                "decreaseLiquidity",
                (token_id, liquidity, amounts.decrease_min0, amounts.decrease_min1, deadline),
            ),
            data(npm_c, "collect", (token_id, safe, MAX_UINT128, MAX_UINT128)),
            data(npm_c, "burn", token_id),
        ]
        calls.append(
            Call(
                npm,
                data(npm_c, "multicall", close),
                f"close position {token_id}: decreaseLiquidity({liquidity}), collect all, burn",
            )
        )
    elif token_id is not None:  # compound: the fees owed only, into the Safe
        calls.append(
            Call(
                npm,
                data(npm_c, "collect", (token_id, safe, MAX_UINT128, MAX_UINT128)),
                f"collect the fees of position {token_id}",
            )
        )

    def approve(token: str, spender: str, amount: int, what: str) -> None:
        if amount > 0 and allowances.get((token, spender), 0) < amount:
            calls.append(
                Call(token, data(erc20, "approve", spender, amount), f"approve {amount} to {what}")
            )

    if amounts.swap_zero_for_one is not None:
        token_in, token_out = (token0, token1) if amounts.swap_zero_for_one else (token1, token0)
        approve(token_in, router, amounts.swap_in, "SwapRouter02")
        swap_data = data(
            router_c,
            "exactInputSingle",
            (
                token_in,
                token_out,
                fee,
                safe,
                amounts.swap_in,
                amounts.swap_out_min,
                amounts.swap_sqrt_price_limit_x96,
            ),
        )
        calls.append(
            Call(
                router,
                data(router_c, "multicall", deadline, [swap_data]),
                f"swap {amounts.swap_in} in for >= {amounts.swap_out_min} out "
                f"({'token0->token1' if amounts.swap_zero_for_one else 'token1->token0'})",
            )
        )
    approve(token0, npm, amounts.mint0, "NonfungiblePositionManager")
    approve(token1, npm, amounts.mint1, "NonfungiblePositionManager")
    if token_id is not None and compound:
        increase = (
            token_id,
            amounts.mint0,
            amounts.mint1,
            amounts.mint_min0,
            amounts.mint_min1,
            deadline,
        )
        calls.append(
            Call(
                npm,
                data(npm_c, "increaseLiquidity", increase),
                f"increaseLiquidity of position {token_id} by {amounts.new_liquidity}",
            )
        )
        return tuple(calls)
    mint_params = (
        token0,
        token1,
        fee,
        new_range.tick_lower,
        new_range.tick_upper,
        amounts.mint0,
        amounts.mint1,
        amounts.mint_min0,
        amounts.mint_min1,
        safe,
        deadline,
    )
    calls.append(
        Call(
            npm,
            data(npm_c, "mint", mint_params),
            f"mint [{new_range.tick_lower}, {new_range.tick_upper}) liquidity "
            f"{amounts.new_liquidity}",
        )
    )
    return tuple(calls)

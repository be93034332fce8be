"""Pool health (``lpbot.risk.health``): the depth math against a brute-force reference, the
spread against the exact core's quotes, the verdict and its reasons, the ``[health]`` rule's
bad values, and the depth against the deployed pool on the devnet (a swap of the ±1% depth
moves the price 1%)."""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lpbot.config import parse_config
from lpbot.errors import ConfigError
from lpbot.risk.health import (
    HealthRule,
    depth_amounts,
    evaluate_health,
    target_sqrt_price,
)
from lpbot.uniswap.constants import Q96
from lpbot.uniswap.liquidity_amounts import get_amount0_for_liquidity, get_amount1_for_liquidity
from lpbot.uniswap.pool import Pool
from lpbot.uniswap.tick_math import (
    MAX_SQRT_RATIO,
    MIN_SQRT_RATIO,
    get_sqrt_ratio_at_tick,
    get_tick_at_sqrt_ratio,
)
from tests.conftest import Devnet

PROPS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
USD = (Decimal(1), Decimal(3000))  # USDC (token0, 6 decimals) and WETH (token1, 18)
DECIMALS = (6, 18)
ETH_TICK = 196_256  # about 3000 USDC per WETH, in raw WETH per raw USDC


# ------------------------------------------------------------------------- the reference


def _liquidity_at(positions: list[tuple[int, int, int]], tick: int) -> int:
    """The in-range liquidity of tick ``tick`` from the positions themselves (not the pool's
    tick bookkeeping)."""
    return sum(amount for lower, upper, amount in positions if lower <= tick < upper)


def brute_force_depth(
    sqrt_price: int, positions: list[tuple[int, int, int]], target: int
) -> tuple[int, Fraction, int]:
    """Walk one tick at a time from ``sqrt_price`` to ``target``: (the sum of
    LiquidityAmounts.getAmount{0,1}ForLiquidity per tick, each rounded down; the exact amount
    as a fraction; the number of pieces summed)."""
    total, exact, pieces = 0, Fraction(0), 0
    s = sqrt_price
    if target >= sqrt_price:
        while s < target:
            k = get_tick_at_sqrt_ratio(s)
            nxt = min(get_sqrt_ratio_at_tick(k + 1), target)
            liquidity = _liquidity_at(positions, k)
            total += get_amount0_for_liquidity(s, nxt, liquidity)
            exact += Fraction(liquidity * Q96 * (nxt - s), s * nxt)
            pieces += 1
            s = nxt
    else:
        while s > target:
            k = get_tick_at_sqrt_ratio(s)
            if get_sqrt_ratio_at_tick(k) == s:
                k -= 1  # the segment below a tick's price belongs to the tick below
            nxt = max(get_sqrt_ratio_at_tick(k), target)
            liquidity = _liquidity_at(positions, k)
            total += get_amount1_for_liquidity(nxt, s, liquidity)
            exact += Fraction(liquidity * (s - nxt), Q96)
            pieces += 1
            s = nxt
    return total, exact, pieces


@st.composite
def pools(draw: st.DrawFn) -> tuple[Pool, list[tuple[int, int, int]]]:
    """A pool near ``ETH_TICK`` with up to 12 positions around the price (some ending within
    ±2%), sometimes moved by a swap to exactly a tick's price (the pool's tick then one below)."""
    spacing = draw(st.sampled_from([1, 10, 60]))
    fee = {1: 100, 10: 500, 60: 3000}[spacing]
    offset = draw(st.integers(-spacing, spacing))
    pool = Pool(fee, spacing, get_sqrt_ratio_at_tick(ETH_TICK + offset) + draw(st.integers(0, 99)))
    positions: list[tuple[int, int, int]] = []
    centre = ETH_TICK // spacing * spacing
    for _ in range(draw(st.integers(1, 12))):
        lower = centre + draw(st.integers(-60, 40)) * spacing
        upper = lower + draw(st.integers(1, 60)) * spacing
        amount = draw(st.integers(10**12, 10**20))
        pool.mint("lp", lower, upper, amount)
        positions.append((lower, upper, amount))
    if draw(st.booleans()) and pool.liquidity > 0:
        below = (pool.tick // spacing - draw(st.integers(0, 3))) * spacing
        if get_sqrt_ratio_at_tick(below) < pool.sqrt_price_x96:
            pool.swap(True, 10**40, get_sqrt_ratio_at_tick(below))
    return pool, positions


@PROPS
@given(pools(), st.sampled_from([100, 200, -100, -200, 37, -5]))
def test_depth_matches_tick_by_tick_reference(
    drawn: tuple[Pool, list[tuple[int, int, int]]], bps: int
) -> None:
    pool, positions = drawn
    target = target_sqrt_price(pool.sqrt_price_x96, bps)
    (fast,) = depth_amounts(pool.sqrt_price_x96, pool.tick, pool.liquidity, pool.ticks, [target])
    reference, exact, pieces = brute_force_depth(pool.sqrt_price_x96, positions, target)
    # both round down; the segment sums of the fast walk lose less than the per-tick sums
    assert reference <= fast <= exact
    assert exact - reference < pieces + 1


@PROPS
@given(pools())
def test_depth_is_what_a_swap_to_the_target_pays_out(
    drawn: tuple[Pool, list[tuple[int, int, int]]],
) -> None:
    """The exact core's swap to the ±1% price (no fee) pays out the depth, to the wei per
    tick crossed (the swap rounds each step against the trader)."""
    pool, _positions = drawn
    pool.fee = 0
    up, down = (target_sqrt_price(pool.sqrt_price_x96, b) for b in (100, -100))
    depth_up, depth_down = depth_amounts(
        pool.sqrt_price_x96, pool.tick, pool.liquidity, pool.ticks, [up, down]
    )
    buy = pool.quote_swap(False, 10**40, up)
    sell = pool.quote_swap(True, 10**40, down)
    assert buy.sqrt_price_x96 == up and sell.sqrt_price_x96 == down
    assert 0 <= depth_up - (-buy.amount0) <= buy.ticks_crossed + 1
    assert 0 <= depth_down - (-sell.amount1) <= sell.ticks_crossed + 1


def test_target_sqrt_price_is_the_rounded_down_root() -> None:
    s = get_sqrt_ratio_at_tick(ETH_TICK)
    up = target_sqrt_price(s, 100)
    assert up * up <= s * s * 101 // 100 < (up + 1) * (up + 1)
    assert target_sqrt_price(MAX_SQRT_RATIO - 1, 9000) == MAX_SQRT_RATIO
    assert target_sqrt_price(MIN_SQRT_RATIO, -9000) == MIN_SQRT_RATIO
    with pytest.raises(ValueError, match="bps"):
        target_sqrt_price(s, -10_000)


# --------------------------------------------------------------------- health and verdict


def eth_usdc(liquidity: int, *, fee: int = 500, spacing: int = 10) -> Pool:
    """A USDC/WETH pool at about 3000 USDC per WETH: ``liquidity`` in ±5% and 1% of it over
    the full range."""
    pool = Pool(fee, spacing, get_sqrt_ratio_at_tick(ETH_TICK))
    centre = ETH_TICK // spacing * spacing
    pool.mint("lp", centre - 500 // spacing * spacing, centre + 500 // spacing * spacing, liquidity)
    full = 887_272 // spacing * spacing
    pool.mint("lp", -full, full, liquidity // 100)
    return pool


def test_a_deep_five_bps_pool_is_healthy_with_every_check_in_its_reasons() -> None:
    pool = eth_usdc(10**19)
    health = evaluate_health(pool, rule=HealthRule(), decimals=DECIMALS, usd=USD)
    assert health.healthy and health.verdict == "healthy" and not health.problems
    d1, d2 = health.depth(100), health.depth(200)
    # the amounts are the exact core's: token0 up, token1 down, at the marks
    up, down = (target_sqrt_price(pool.sqrt_price_x96, b) for b in (100, -100))
    assert [d1.up0, d1.down1] == depth_amounts(
        pool.sqrt_price_x96, pool.tick, pool.liquidity, pool.ticks, [up, down]
    )
    assert d1.up_usd == Decimal(d1.up0) / 10**6
    assert d1.down_usd == Decimal(d1.down1) * 3000 / 10**18
    assert d1.usd == d1.up_usd + d1.down_usd >= Decimal(500_000)
    assert d2.up0 > d1.up0 and d2.down1 > d1.down1 and d1.complete and d2.complete
    # liquidity flat in sqrt price over ±2%: the first 1% holds about half of the 2%
    assert health.concentration is not None and 0.49 < health.concentration < 0.51
    # the spread: both quotes' average prices, fees included (2 x 5 bps), and a little impact
    spread = health.spread
    assert spread.fee_bps == Decimal(10)
    assert spread.bps is not None and Decimal(10) < spread.bps < Decimal(11)
    buy = pool.quote_swap(False, 10_000 * 10**18 // 3000, MAX_SQRT_RATIO - 1)
    assert spread.buy_price == Fraction(buy.amount1, -buy.amount0)
    assert [r.split(":")[0].split(" ")[0] for r in health.reasons] == ["depth", "spread"]
    assert "healthy: depth ±1%" in health.line()


def test_a_thin_pool_fails_depth_and_a_wide_fee_tier_fails_the_spread() -> None:
    thin = evaluate_health(eth_usdc(10**16), rule=HealthRule(), decimals=DECIMALS, usd=USD)
    assert not thin.healthy
    assert thin.problems[0].startswith("depth within 1%")
    assert any(p.startswith("spread") for p in thin.problems)  # $10k moves a thin pool
    wide = evaluate_health(
        eth_usdc(10**19, fee=3000, spacing=60), rule=HealthRule(), decimals=DECIMALS, usd=USD
    )
    assert not wide.healthy and len(wide.problems) == 1
    assert wide.spread.bps is not None and wide.spread.bps >= 60
    assert "above 30 bps" in wide.problems[0]
    # a looser rule accepts the same pool
    loose = HealthRule(max_spread_bps=Decimal(70))
    assert evaluate_health(
        eth_usdc(10**19, fee=3000, spacing=60), rule=loose, decimals=DECIMALS, usd=USD
    ).healthy


def test_ticks_read_short_of_the_target_make_the_depth_a_lower_bound() -> None:
    pool = eth_usdc(10**19)
    known = (ETH_TICK - 50, ETH_TICK + 50)  # about ±0.5% read
    health = evaluate_health(pool, rule=HealthRule(), decimals=DECIMALS, usd=USD, known=known)
    assert not health.depth(100).complete and not health.depth(200).complete
    assert "(at least" in health.reasons[0]
    far = evaluate_health(
        pool, rule=HealthRule(spread_trade_usd=Decimal(50_000_000)), decimals=DECIMALS,
        usd=USD, known=known,
    )  # fmt: skip
    assert far.spread.bps is None and "past the ticks read" in far.spread.why
    assert not far.healthy


def test_volume_and_fee_apr_from_the_pool_fee_rate() -> None:
    from lpbot.analytics.fees import FeeRate

    pool = eth_usdc(10**19)
    # 1e-12 raw USDC per unit of liquidity per second, no WETH fees
    rate = FeeRate(1e-12, 0.0, 86_400.0)
    health = evaluate_health(pool, rule=HealthRule(), decimals=DECIMALS, usd=USD, fee_rate=rate)
    fees_per_day_usd = 1e-12 / 1e6 * pool.liquidity * 86_400
    assert health.volume_24h_usd == pytest.approx(fees_per_day_usd / 0.0005)
    full_range_unit_usd = 2 * pool.sqrt_price_x96 / Q96 * 3000 / 1e18
    assert health.fee_apr == pytest.approx(1e-12 / 1e6 * 365 * 86_400 / full_range_unit_usd)
    assert evaluate_health(pool, rule=HealthRule(), decimals=DECIMALS, usd=USD).fee_apr is None


# ------------------------------------------------------------------------------- config


BASE = """version = 1
[chains.devnet]
manifest = "m.json"
[[positions]]
name = "eth-usdc"
chain = "devnet"
pool = "USDC/WETH-500"
token_id = 1
[positions.strategy]
kind = "full_range"
"""


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ("min_depth_usd_1pct = -1", "health.min_depth_usd_1pct: must be >= 0"),
        ("max_spread_bps = 0", "health.max_spread_bps: must be > 0"),
        ("max_spread_bps = 20000", "health.max_spread_bps: must be <= 10000"),
        ('max_spread_bps = "wide"', "health.max_spread_bps: Input should be a valid decimal"),
        ('max_spread_bps = "nan"', "health.max_spread_bps: must be a finite number"),
        ("spread_trade_usd = 0", "health.spread_trade_usd: must be > 0"),
        ("min_depth_usd_1pct = true", "health.min_depth_usd_1pct: must be a number"),
        ('on_unhealthy = "panic"', "health.on_unhealthy: must be 'alert' or 'stressed'"),
        ('accept_unhealthy = ["btc"]', "health.accept_unhealthy[0]: no position named 'btc'"),
        ("depth = 1", "health.depth: unknown key"),
    ],
)
def test_bad_health_values_fail_naming_the_key(section: str, message: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_config(BASE + "[health]\n" + section + "\n", base_dir=Path("."))
    assert message in str(err.value)


def test_health_defaults_and_values_as_written() -> None:
    default = parse_config(BASE, base_dir=Path(".")).health.rule()
    assert default == HealthRule(Decimal(500_000), Decimal(30), Decimal(10_000), "alert")
    config = parse_config(
        BASE + '[health]\nmax_spread_bps = 12.5\nmin_depth_usd_1pct = "250000"\n'
        'spread_trade_usd = 5000\non_unhealthy = "stressed"\naccept_unhealthy = ["eth-usdc"]\n',
        base_dir=Path("."),
    )
    rule = config.health.rule()
    assert rule.max_spread_bps == Decimal("12.5") and rule.min_depth_usd_1pct == 250_000
    assert rule.spread_trade_usd == 5000 and rule.on_unhealthy == "stressed"
    assert config.health.accept_unhealthy == ("eth-usdc",)


# ---------------------------------------------------------------------- the deployed pool


@pytest.mark.devnet
@pytest.mark.parametrize("side", ["up", "down"])
def test_a_swap_of_the_depth_on_the_devnet_moves_the_price_one_percent(
    chain: Devnet, side: str
) -> None:
    """The ±1% depth computed from the deployed pool's ticks (read as the monitor reads them),
    taken out by one exact-output swap through SwapRouter02, leaves the pool's price 1% away."""
    from lpbot.chain.reader import PoolReader
    from lpbot.devnet.deploy import GAS, contract
    from lpbot.execution.health import health_at

    m = chain.manifest
    info = m.pool("USDC/WETH-500")
    c = m.contracts
    reader = PoolReader(chain.w3, multicall=c["Multicall3"], tick_lens=c["TickLens"])
    snap = reader.fetch_pool_state(info.address, twap_seconds=(0,))
    marks = _FixedMarks({"USDC": Decimal(1), "WETH": Decimal(3000)})
    health = health_at(
        snap,
        marks,
        symbols=("USDC", "WETH"),
        decimals=(6, 18),
        rule=HealthRule(),  # type: ignore[arg-type]
    )
    d1 = health.depth(100)
    assert d1.complete and d1.up_usd > 1_000_000 and d1.down_usd > 1_000_000
    before = snap.slot0.sqrt_price_x96
    usdc, weth = m.token("USDC").address, m.token("WETH").address
    # up: buy USDC (token0) with WETH; down: buy WETH (token1) with USDC
    token_in, token_out, amount_out = (
        (weth, usdc, d1.up0) if side == "up" else (usdc, weth, d1.down1)
    )
    router = contract(chain.w3, "SwapRouter02", c["SwapRouter02"])
    trader = m.accounts.traders[0]
    params = (token_in, token_out, info.fee, trader, amount_out, 2**255, 0)
    tx = router.functions.exactOutputSingle(params).transact({"from": trader, "gas": GAS})
    receipt = chain.w3.eth.wait_for_transaction_receipt(tx)
    assert receipt["status"] == 1
    after = contract(chain.w3, "UniswapV3Pool", info.address).functions.slot0().call()[0]
    moved = Fraction(after * after, before * before)
    expected = Fraction(101, 100) if side == "up" else Fraction(99, 100)
    print(f"{side}: depth {amount_out} raw, price x {float(moved):.12f}")
    # the swap's own rounding (against the trader, per tick crossed) moves it by a few wei
    assert abs(moved / expected - 1) < Fraction(1, 10**12)


class _FixedMarks:
    """The devnet's deployment prices as marks (the depth's USD only; the amounts are raw)."""

    def __init__(self, usd: dict[str, Decimal]) -> None:
        self._usd = usd

    def usd(self, symbol: str) -> Decimal:
        return self._usd[symbol]

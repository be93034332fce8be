"""What the exact core shows on its own: one LP position along a seeded price path.

A 0.05% USDC/WETH pool is seeded with several market makers' ranges. The LP offers 5,000 USDC
and 5,000 USD of WETH to a +-10% range and deposits what the range takes at that price. Traders
move the price along a seeded geometric Brownian path and trade around it. Every number comes
from ``lpbot.uniswap.Pool``, to the wei.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from decimal import Decimal

from lpbot.analytics.prices import price0_per_1, sqrt_price_x96_from_price, to_units
from lpbot.uniswap import MAX_SQRT_RATIO, MIN_SQRT_RATIO, Pool
from lpbot.uniswap.liquidity_amounts import get_amounts_for_liquidity, get_liquidity_for_amounts
from lpbot.uniswap.position import fees_owed
from lpbot.uniswap.tick_math import get_sqrt_ratio_at_tick, get_tick_at_sqrt_ratio

USDC_DECIMALS = 6
WETH_DECIMALS = 18
LP = "lp"


@dataclass(frozen=True, slots=True)
class Row:
    hour: int
    price: Decimal
    tick: int
    in_range: bool
    amount0: int
    amount1: int
    fees0: int
    fees1: int
    value_usd: Decimal
    hold_usd: Decimal


def _snap(tick: int, spacing: int) -> int:
    return tick // spacing * spacing


def _tick_for_usd_price(usd_per_eth: Decimal) -> int:
    # token0 = USDC, token1 = WETH: the pool's price is WETH per USDC
    return get_tick_at_sqrt_ratio(
        sqrt_price_x96_from_price(Decimal(1) / usd_per_eth, USDC_DECIMALS, WETH_DECIMALS)
    )


def _usd(pool: Pool, amount0: int, amount1: int) -> Decimal:
    eth = price0_per_1(pool.sqrt_price_x96, USDC_DECIMALS, WETH_DECIMALS)
    return to_units(amount0, USDC_DECIMALS) + to_units(amount1, WETH_DECIMALS) * eth


def run(hours: int = 24, seed: int = 7, vol: float = 0.8) -> list[Row]:
    """Simulate ``hours`` of trading and return the LP's position hour by hour."""
    rng = random.Random(seed)
    start_price = Decimal(3000)
    pool = Pool(500, 10, sqrt_price_x96_from_price(1 / start_price, USDC_DECIMALS, WETH_DECIMALS))
    spacing = pool.tick_spacing

    # market makers: nested ranges, more liquidity near the price
    for width_pct, depth_usd in ((2, 4_000_000), (5, 6_000_000), (15, 8_000_000), (50, 5_000_000)):
        lower = _snap(_tick_for_usd_price(start_price * (1 + Decimal(width_pct) / 100)), spacing)
        upper = _snap(_tick_for_usd_price(start_price * (1 - Decimal(width_pct) / 100)), spacing)
        amount0 = depth_usd // 2 * 10**USDC_DECIMALS
        amount1 = int(Decimal(depth_usd // 2) / start_price * 10**WETH_DECIMALS)
        liquidity = get_liquidity_for_amounts(
            pool.sqrt_price_x96,
            get_sqrt_ratio_at_tick(lower),
            get_sqrt_ratio_at_tick(upper),
            amount0,
            amount1,
        )
        pool.mint(f"mm{width_pct}", lower, upper, liquidity)

    # the LP: at most 5,000 USDC and 5,000 USD of WETH; the range's ratio decides what is used
    lp_lower = _snap(_tick_for_usd_price(start_price * Decimal("1.10")), spacing)
    lp_upper = _snap(_tick_for_usd_price(start_price * Decimal("0.90")), spacing)
    sqrt_lower, sqrt_upper = get_sqrt_ratio_at_tick(lp_lower), get_sqrt_ratio_at_tick(lp_upper)
    lp_liquidity = get_liquidity_for_amounts(
        pool.sqrt_price_x96,
        sqrt_lower,
        sqrt_upper,
        5_000 * 10**6,
        int(Decimal(5000) / start_price * 10**18),
    )
    held0, held1 = pool.mint(LP, lp_lower, lp_upper, lp_liquidity)

    rows: list[Row] = []
    price: float = float(start_price)
    sigma_hour = vol / (365 * 24) ** 0.5
    for hour in range(hours + 1):
        if hour > 0:
            pool.block_timestamp += 3600
            price *= pow(2.718281828459045, rng.gauss(-0.5 * sigma_hour**2, sigma_hour))
            # uninformed flow around the price, then arbitrage to the new price
            for _ in range(20):
                usd = Decimal(int(rng.lognormvariate(8.5, 1.2)))
                if rng.random() < 0.5:
                    pool.swap(True, int(usd * 10**USDC_DECIMALS), MIN_SQRT_RATIO + 1)
                else:
                    eth = usd / Decimal(price)
                    pool.swap(False, int(eth * 10**WETH_DECIMALS), MAX_SQRT_RATIO - 1)
            target = sqrt_price_x96_from_price(1 / Decimal(price), USDC_DECIMALS, WETH_DECIMALS)
            if target != pool.sqrt_price_x96:
                zero_for_one = target < pool.sqrt_price_x96
                pool.swap(zero_for_one, 10**40, target)  # up to the target price

        position = pool.position(LP, lp_lower, lp_upper)
        amount0, amount1 = get_amounts_for_liquidity(
            pool.sqrt_price_x96, sqrt_lower, sqrt_upper, position.liquidity
        )
        inside0, inside1 = pool.fee_growth_inside(lp_lower, lp_upper)
        fees0, fees1 = fees_owed(
            position.liquidity,
            inside0,
            inside1,
            position.fee_growth_inside0_last_x128,
            position.fee_growth_inside1_last_x128,
        )
        fees0 += position.tokens_owed0
        fees1 += position.tokens_owed1
        rows.append(
            Row(
                hour=hour,
                price=price0_per_1(pool.sqrt_price_x96, USDC_DECIMALS, WETH_DECIMALS),
                tick=pool.tick,
                in_range=lp_lower <= pool.tick < lp_upper,
                amount0=amount0,
                amount1=amount1,
                fees0=fees0,
                fees1=fees1,
                value_usd=_usd(pool, amount0 + fees0, amount1 + fees1),
                hold_usd=_usd(pool, held0, held1),
            )
        )
    return rows


def render(rows: list[Row]) -> str:
    """The rows as a fixed-width table."""
    head = (
        f"{'hour':>4} {'ETH/USD':>10} {'tick':>8} {'range':>5} {'USDC':>12} {'WETH':>10} "
        f"{'fees USDC':>10} {'fees WETH':>10} {'LP value $':>12} {'hold $':>12} {'LP-hold $':>10}"
    )
    lines = [head, "-" * len(head)]
    for r in rows:
        lines.append(
            f"{r.hour:>4} {r.price:>10.2f} {r.tick:>8} {'in' if r.in_range else 'OUT':>5} "
            f"{to_units(r.amount0, USDC_DECIMALS):>12.2f} "
            f"{to_units(r.amount1, WETH_DECIMALS):>10.5f} "
            f"{to_units(r.fees0, USDC_DECIMALS):>10.4f} {to_units(r.fees1, WETH_DECIMALS):>10.6f} "
            f"{r.value_usd:>12.2f} {r.hold_usd:>12.2f} {r.value_usd - r.hold_usd:>10.2f}"
        )
    return "\n".join(lines)

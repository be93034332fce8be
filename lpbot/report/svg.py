"""A small SVG chart: the pool's liquidity around the price, the old and new ranges, the price.

Plotted in tick space (a tick is a 0.01% price step), labelled in human prices. Analytics
floats only.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from html import escape


def liquidity_profile(
    ticks_net: Mapping[int, int], active_liquidity: int, current_tick: int
) -> list[tuple[int, int]]:
    """(tick, liquidity from that tick up to the next) for the initialized ticks known."""
    points = sorted(ticks_net)
    if not points:
        return []
    # walk left from the current tick to recover the liquidity at the lowest known tick
    below = [t for t in points if t <= current_tick]
    liquidity = active_liquidity
    for t in reversed(below):
        liquidity -= ticks_net[t]
    profile = []
    for t in points:
        liquidity += ticks_net[t]
        profile.append((t, liquidity))
    return profile


def range_chart(
    *,
    profile: list[tuple[int, int]],
    current_tick: int,
    old_range: tuple[int, int],
    new_range: tuple[int, int],
    price_label: Callable[[int], str],
    width: int = 720,
    height: int = 260,
) -> str:
    """An inline SVG: liquidity bars, the old range (red), the new range (green), the price."""
    lo = min([old_range[0], new_range[0], current_tick, *[t for t, _ in profile]])
    hi = max([old_range[1], new_range[1], current_tick, *[t for t, _ in profile]])
    span = max(hi - lo, 1)
    lo -= span // 10
    hi += span // 10
    pad_l, pad_b, pad_t = 10, 40, 20
    plot_w, plot_h = width - 2 * pad_l, height - pad_b - pad_t
    max_l = max([liq for _, liq in profile] + [1])

    def x(t: int) -> float:
        return pad_l + (t - lo) / (hi - lo) * plot_w

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="11">',
        f'<rect x="0" y="0" width="{width}" height="{height}" fill="white"/>',
    ]
    for (t, liq), nxt in zip(profile, [*profile[1:], (hi, 0)], strict=True):
        a, b = max(t, lo), min(nxt[0], hi)
        if b <= a or liq <= 0:
            continue
        h = liq / max_l * plot_h
        parts.append(
            f'<rect x="{x(a):.1f}" y="{pad_t + plot_h - h:.1f}" width="{x(b) - x(a):.1f}" '
            f'height="{h:.1f}" fill="#9db4d6"/>'
        )
    for (a, b), colour, label in ((old_range, "#d9534f", "old"), (new_range, "#2e8b57", "new")):
        parts.append(
            f'<rect x="{x(a):.1f}" y="{pad_t}" width="{x(b) - x(a):.1f}" height="{plot_h}" '
            f'fill="{colour}" fill-opacity="0.15" stroke="{colour}" stroke-width="1.5"/>'
        )
        parts.append(
            f'<text x="{x(a) + 3:.1f}" y="{pad_t + 12}" fill="{colour}">{label} range</text>'
        )
    cx = x(current_tick)
    parts.append(
        f'<line x1="{cx:.1f}" y1="{pad_t - 5}" x2="{cx:.1f}" y2="{pad_t + plot_h}" '
        f'stroke="black" stroke-width="2"/>'
    )
    parts.append(
        f'<text x="{cx + 4:.1f}" y="{pad_t - 6}">price {escape(price_label(current_tick))}</text>'
    )
    for t in (lo, (lo + hi) // 2, hi):
        parts.append(
            f'<text x="{x(t):.1f}" y="{height - 12}" text-anchor="middle">'
            f"{escape(price_label(t))}</text>"
        )
    parts.append("</svg>")
    return "\n".join(parts)

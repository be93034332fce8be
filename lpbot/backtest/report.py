"""A backtest's report: a self-contained HTML page with inline SVG charts, and a JSON summary.

The charts are drawn here (no plotting library): price with the bot's range over time, net value
against the benchmarks, and the P&L breakdown. Nothing is fetched when the page is opened.
"""

from __future__ import annotations

import html
import json
import math
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from lpbot.analytics.types import FloatArray
from lpbot.backtest.ledger import BacktestResult

W, H, PAD_L, PAD_R, PAD_T, PAD_B = 900, 280, 70, 150, 30, 40
COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#d62728", "#7f7f7f")


def _fmt_time(t: float) -> str:
    return datetime.fromtimestamp(t, tz=UTC).strftime("%Y-%m-%d %H:%M")


def _scale(lo: float, hi: float, a: float, b: float) -> tuple[float, float]:
    if not (math.isfinite(lo) and math.isfinite(hi)) or hi <= lo:
        hi, lo = (lo + 1.0, lo - 1.0) if math.isfinite(lo) else (1.0, 0.0)
    k = (b - a) / (hi - lo)
    return k, a - k * lo


def _points(x: FloatArray, y: FloatArray, kx: float, bx: float, ky: float, by: float) -> str:
    ok = np.isfinite(y)
    step = max(1, int(ok.sum() // 1500))  # at most ~1500 points a line
    xs, ys = x[ok][::step], y[ok][::step]
    return " ".join(f"{kx * a + bx:.1f},{ky * b + by:.1f}" for a, b in zip(xs, ys, strict=True))


def line_chart(
    title: str,
    t: FloatArray,
    lines: Sequence[tuple[str, FloatArray]],
    band: tuple[FloatArray, FloatArray] | None = None,
    unit: str = "",
    marks: Sequence[tuple[float, str]] = (),
    y_label: str = "",
) -> str:
    """An SVG line chart over time with labelled axes; ``band`` shades a (lower, upper) range,
    ``marks`` are (time, label) vertical lines (the bot's actions)."""
    values = [v[np.isfinite(v)] for _, v in lines]
    if band is not None:
        values += [b[np.isfinite(b)] for b in band]
    finite = np.concatenate([v for v in values if v.size]) if any(v.size for v in values) else None
    lo = float(finite.min()) if finite is not None else 0.0
    hi = float(finite.max()) if finite is not None else 1.0
    pad = (hi - lo) * 0.05 or abs(hi) * 0.05 or 1.0
    lo, hi = lo - pad, hi + pad
    kx, bx = _scale(float(t[0]), float(t[-1]), PAD_L, W - PAD_R)
    ky, by = _scale(lo, hi, H - PAD_B, PAD_T)
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" '
        f'viewBox="0 0 {W} {H}" role="img" aria-label="{html.escape(title)}">',
        f'<text x="{PAD_L}" y="18" font-size="14" font-weight="bold">{html.escape(title)}</text>',
        f'<rect x="{PAD_L}" y="{PAD_T}" width="{W - PAD_L - PAD_R}" '
        f'height="{H - PAD_T - PAD_B}" fill="none" stroke="#ccc"/>',
    ]
    for i in range(5):
        v = lo + (hi - lo) * i / 4
        y = ky * v + by
        out.append(
            f'<line x1="{PAD_L}" x2="{W - PAD_R}" y1="{y:.1f}" y2="{y:.1f}" stroke="#eee"/>'
            f'<text x="{PAD_L - 6}" y="{y + 4:.1f}" font-size="11" text-anchor="end">'
            f"{v:,.4g}{html.escape(unit)}</text>"
        )
    for i in range(5):  # the time axis: five labelled ticks
        tt = float(t[0]) + (float(t[-1]) - float(t[0])) * i / 4
        x = kx * tt + bx
        anchor = "start" if i == 0 else "end" if i == 4 else "middle"
        out.append(
            f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{H - PAD_B}" y2="{H - PAD_B + 4}" '
            f'stroke="#333"/><text x="{x:.1f}" y="{H - PAD_B + 16}" font-size="11" '
            f'text-anchor="{anchor}">{_fmt_time(tt)}</text>'
        )
    out.append(
        f'<line x1="{PAD_L}" x2="{W - PAD_R}" y1="{H - PAD_B}" y2="{H - PAD_B}" stroke="#333"/>'
        f'<line x1="{PAD_L}" x2="{PAD_L}" y1="{PAD_T}" y2="{H - PAD_B}" stroke="#333"/>'
        f'<text x="{(PAD_L + W - PAD_R) / 2:.0f}" y="{H - 4}" font-size="11" '
        'text-anchor="middle">time (UTC)</text>'
    )
    if y_label:
        out.append(
            f'<text x="12" y="{(PAD_T + H - PAD_B) / 2:.0f}" font-size="11" '
            f'text-anchor="middle" transform="rotate(-90 12 {(PAD_T + H - PAD_B) / 2:.0f})">'
            f"{html.escape(y_label)}</text>"
        )
    for when, label in marks:
        x = kx * when + bx
        out.append(
            f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{PAD_T}" y2="{H - PAD_B}" stroke="#d62728" '
            f'stroke-dasharray="3,3" stroke-width="1"><title>{html.escape(label)}</title></line>'
        )
    if band is not None:
        lower, upper = band
        ok = np.isfinite(lower) & np.isfinite(upper)
        if ok.any():
            top = _points(t[ok], upper[ok], kx, bx, ky, by).split()
            bottom = _points(t[ok], lower[ok], kx, bx, ky, by).split()
            poly = " ".join(top + bottom[::-1])
            out.append(
                f'<polygon points="{poly}" fill="#2ca02c" fill-opacity="0.15" stroke="none"/>'
            )
    for i, (name, series) in enumerate(lines):
        color = COLORS[i % len(COLORS)]
        out.append(
            f'<polyline fill="none" stroke="{color}" stroke-width="1.5" '
            f'points="{_points(t, series, kx, bx, ky, by)}"/>'
            f'<rect x="{W - PAD_R + 10}" y="{PAD_T + 18 * i}" width="12" height="3" '
            f'fill="{color}"/><text x="{W - PAD_R + 26}" y="{PAD_T + 18 * i + 5}" '
            f'font-size="11">{html.escape(name)}</text>'
        )
    if marks:
        y = PAD_T + 18 * (len(lines) + (band is not None))
        out.append(
            f'<line x1="{W - PAD_R + 10}" x2="{W - PAD_R + 22}" y1="{y + 1}" y2="{y + 1}" '
            f'stroke="#d62728" stroke-dasharray="3,3"/><text x="{W - PAD_R + 26}" y="{y + 5}" '
            'font-size="11">rebalance</text>'
        )
    if band is not None:
        y = PAD_T + 18 * len(lines)
        out.append(
            f'<rect x="{W - PAD_R + 10}" y="{y - 4}" width="12" height="10" fill="#2ca02c" '
            f'fill-opacity="0.15"/><text x="{W - PAD_R + 26}" y="{y + 5}" font-size="11">'
            "bot's range</text>"
        )
    out.append("</svg>")
    return "".join(out)


def bar_chart(title: str, items: Sequence[tuple[str, float]], unit: str = "$") -> str:
    """A horizontal SVG bar chart of signed values."""
    height = PAD_T + 26 * len(items) + 20
    lo = min(0.0, *(v for _, v in items)) if items else 0.0
    hi = max(0.0, *(v for _, v in items)) if items else 1.0
    kx, bx = _scale(lo, hi, 220, W - 120)
    zero = bx
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{height}" '
        f'viewBox="0 0 {W} {height}" role="img" aria-label="{html.escape(title)}">',
        f'<text x="10" y="18" font-size="14" font-weight="bold">{html.escape(title)}</text>',
    ]
    for i, (name, v) in enumerate(items):
        y = PAD_T + 26 * i
        x1, x2 = sorted((zero, kx * v + bx))
        color = "#2ca02c" if v >= 0 else "#d62728"
        out.append(
            f'<text x="210" y="{y + 14}" font-size="12" text-anchor="end">{html.escape(name)}'
            f'</text><rect x="{x1:.1f}" y="{y + 2}" width="{max(x2 - x1, 0.5):.1f}" '
            f'height="16" fill="{color}"/><text x="{max(x2, zero) + 6:.1f}" y="{y + 14}" '
            f'font-size="12">{unit}{v:,.2f}</text>'
        )
    out.append(
        f'<line x1="{zero:.1f}" x2="{zero:.1f}" y1="{PAD_T}" y2="{height - 10}" stroke="#333"/>'
    )
    out.append("</svg>")
    return "".join(out)


def _table(rows: Sequence[tuple[str, str]]) -> str:
    body = "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>" for k, v in rows)
    return f"<table>{body}</table>"


def render_html(result: BacktestResult, comparison: dict[str, Any] | None = None) -> str:
    """The report page for one run (and, when given, an engine comparison)."""
    s, m, b = result.series, result.metrics, result.breakdown
    pool = result.pool
    name = f"{pool.get('symbol0') or 'token0'}/{pool.get('symbol1') or 'token1'}"
    fee = pool.get("fee", 0)
    title = f"lpbot backtest: {name} {fee / 10_000:g}% ({result.engine} engine)"
    quote = pool.get("symbol1") if result.config.get("quote_token") == 1 else pool.get("symbol0")
    volatile = pool.get("symbol0") if result.config.get("quote_token") == 1 else pool.get("symbol1")
    vol_name, quote_name = volatile or "volatile token", quote or "quote token"
    quote_is_1 = result.config.get("quote_token") == 1
    price, lower, upper = s.price, s.lower, s.upper
    if not quote_is_1:  # show the volatile token's price in the quote token
        with np.errstate(divide="ignore"):
            price, lower, upper = 1.0 / s.price, 1.0 / s.upper, 1.0 / s.lower
    marks = [(float(a.timestamp), f"{a.kind} {_fmt_time(a.timestamp)}: {a.reason}")
             for a in result.actions
             if a.kind in ("rebalance", "withdraw", "reenter")]  # fmt: skip
    costs = [(k.replace("_", " "), -v) for k, v in m.costs_usd.items()]
    charts = [
        line_chart(
            f"Price of {vol_name} in {quote_name}, the bot's range and its rebalances",
            s.t,
            [("price", price)],
            band=(lower, upper),
            marks=marks,
            y_label=f"{quote_name} per {vol_name}",
        ),
        line_chart(
            "Net value against holding and a passive full-range position (USD)",
            s.t,
            [
                ("lpbot (net of costs)", s.value),
                ("hold initial tokens", s.hold),
                ("hold 50/50", s.fifty),
                ("passive full range", s.full_range),
            ],
            marks=marks,
            y_label="USD",
        ),
        bar_chart(
            "P&L breakdown (USD)",
            [
                ("price move", b.price),
                ("impermanent loss", b.impermanent_loss),
                ("fees", b.fees),
                ("swap fees and impact", -b.swap_costs),
                ("hedge P&L (net of its fees)", b.hedge_pnl),
                ("funding", b.funding),
                ("gas", -b.gas),
                ("slippage", -b.slippage),
                ("total", b.total),
            ],
        ),
        bar_chart("Costs by kind (USD)", costs),
    ]

    def ratio(v: float | None) -> str:
        return "n/a (too few periods or no variation)" if v is None else f"{v:.2f}"

    period = (
        f"{m.period_seconds / 3600:g} h"
        if m.period_seconds >= 3600
        else (f"{m.period_seconds:g} s")
    )
    metrics = _table(
        [
            (
                "period",
                f"{_fmt_time(float(s.t[0]))} to {_fmt_time(float(s.t[-1]))} ({m.days:.2f} days)",
            ),
            ("initial / final value", f"${b.initial_usd:,.2f} / ${b.final_usd:,.2f}"),
            ("net return / APR", f"{m.net_return:+.3%} / {m.apr:+.2%}"),
            *(
                [
                    (
                        "RUINED",
                        f"the value fell to zero at {_fmt_time(m.ruined_at)}; the run "
                        "stopped there",
                    )
                ]
                if m.ruined_at is not None
                else []
            ),
            ("LP minus hold (net of costs)", f"{m.lp_vs_hold:+.3%} (hold {m.hold_return:+.3%})"),
            ("LP minus 50/50", f"{m.lp_vs_fifty:+.3%} (50/50 {m.fifty_return:+.3%})"),
            (
                "LP minus passive full range",
                f"{m.lp_vs_full_range:+.3%} (full range {m.full_range_return:+.3%}, after its "
                "own opening costs)",
            ),
            ("max drawdown", f"{m.max_drawdown:.2%}"),
            (f"Sharpe (annualised, {period} log returns)", ratio(m.sharpe)),
            (f"Sortino (annualised, {period} log returns)", ratio(m.sortino)),
            ("time in range", f"{m.time_in_range:.1%}"),
            (
                "rebalances / compounds / decisions",
                f"{m.rebalances} / {m.compounds} / {m.decisions}",
            ),
            ("turnover (swap notional / capital)", f"{m.turnover:.2f}x"),
            *((f"cost: {k.replace('_', ' ')}", f"${v:,.2f}") for k, v in m.costs_usd.items()),
            *(
                (f"default: {k.replace('_', ' ')}", str(v))
                for k, v in result.notes.get("defaults", {}).items()
            ),
        ]
    )
    extra = ""
    if comparison:
        extra = "<h2>Engine comparison</h2>" + _table(
            [(k, f"{v:.6g}" if isinstance(v, float) else str(v)) for k, v in comparison.items()]
        )
    actions = "".join(
        f"<tr><td>{_fmt_time(a.timestamp)}</td><td>{a.kind}</td><td>[{a.tick_lower}, "
        f"{a.tick_upper})</td><td>{a.gas_usd:,.2f}</td><td>{a.swap_fee_usd:,.2f}</td>"
        f"<td>{html.escape(a.reason)}</td></tr>"
        for a in result.actions[:500]
    )
    config = html.escape(json.dumps(result.config, indent=1, default=str))
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 24px; color: #222; }}
table {{ border-collapse: collapse; margin: 8px 0 16px; }}
th, td {{ border: 1px solid #ddd; padding: 4px 8px; text-align: left; font-size: 13px; }}
th {{ background: #f6f6f6; }}
pre {{ background: #f6f6f6; padding: 8px; font-size: 12px; }}
</style></head><body>
<h1>{html.escape(title)}</h1>
<h2>Assumed marks</h2>
<ul>{"".join(f"<li>{html.escape(a)}</li>" for a in assumptions(result))}</ul>
{metrics}
{"".join(f"<div>{c}</div>" for c in charts)}
{extra}
<h2>Actions</h2>
<table><tr><th>time</th><th>action</th><th>range</th><th>gas $</th><th>swap fee $</th>
<th>reason</th></tr>{actions}</table>
<h2>Configuration</h2><pre>{config}</pre>
</body></html>
"""


def assumptions(result: BacktestResult) -> list[str]:
    """The USD marks the run assumed rather than read from its data: the quote token's (the
    data has pool prices only, no USD mark of either token) and a typical native-token price
    where the pool holds no WETH and the data no series."""
    pool, cfg = result.pool, result.config
    quote_is_1 = cfg.get("quote_token") == 1
    quote = (pool.get("symbol1") if quote_is_1 else pool.get("symbol0")) or "the quote token"
    q = float(cfg.get("quote_usd", 1.0))
    out = [
        f"{quote} marked at ${q:,.4g} for the whole run (quote_usd"
        f"{', the default' if q == 1.0 else ', given'}): the data holds no USD mark for it, so "
        f"every USD figure assumes it; a depeg of {quote} is not in these numbers"
    ]
    native = result.notes.get("defaults", {}).get("native_usd", "")
    if "typical" in native:
        out.append(f"gas priced with the native token at {native}")
    return out


def write_report(
    result: BacktestResult,
    html_path: str | Path | None = None,
    json_path: str | Path | None = None,
    comparison: dict[str, Any] | None = None,
) -> None:
    """Write the HTML page and/or the JSON summary."""
    if html_path is not None:
        Path(html_path).write_text(render_html(result, comparison))
    if json_path is not None:
        summary = result.summary()
        summary["assumptions"] = assumptions(result)
        if comparison:
            summary["comparison"] = comparison
        Path(json_path).write_text(json.dumps(summary, indent=2, default=str) + "\n")

"""The crash scenario: the same LP through a crash and a liquidation cascade, with the market
regime and without it.

``crash_comparison`` draws ``synthetic.crash_minutes`` (minute bars and the perp's funding, open
interest and liquidations), runs the bars engine on it twice with the same strategy, policy and
costs, once with ``BacktestConfig.risk`` off and once on, and returns both results with the
regime's transitions. ``render`` prints max drawdown, fees, net return and net vs hold side by
side, then each regime change with its reasons, in minutes from the crash's start.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from lpbot.backtest.config import BacktestConfig, StrategyConfig
from lpbot.backtest.ledger import BacktestResult
from lpbot.backtest.study import bars_of
from lpbot.backtest.synthetic import CrashPath, crash_minutes
from lpbot.backtest.vector import run_bars
from lpbot.config import RiskConfig


@dataclass(frozen=True)
class CrashComparison:
    path: CrashPath
    without: BacktestResult | None
    with_regime: BacktestResult | None
    decision_interval_seconds: int

    def rows(self) -> list[tuple[str, BacktestResult]]:
        out = []
        if self.without is not None:
            out.append(("LP without the regime", self.without))
        if self.with_regime is not None:
            out.append(("LP with the regime", self.with_regime))
        return out

    def summary(self) -> dict[str, Any]:
        """JSON-ready: the scenario and each run's figures and the regime's transitions."""
        p = self.path
        runs = {}
        for name, r in (("without", self.without), ("with_regime", self.with_regime)):
            if r is None:
                continue
            m = r.metrics
            runs[name] = {
                "max_drawdown": m.max_drawdown,
                "fees_usd": r.breakdown.fees,
                "net_return": m.net_return,
                "hold_return": m.hold_return,
                "net_vs_hold": m.lp_vs_hold,
                "gas_usd": r.breakdown.gas,
                "rebalances": m.rebalances,
                "actions": [
                    {"t": a.timestamp, "kind": a.kind, "reason": a.reason} for a in r.actions
                ],
                "regime": r.notes.get("regime"),
            }
        return {
            "scenario": {
                "fall": p.fall,
                "crash_start": p.crash_start,
                "crash_end": p.crash_end,
                "minutes": len(p.minutes),
                "decision_interval_seconds": self.decision_interval_seconds,
            },
            "runs": runs,
        }


def crash_comparison(
    *,
    days: int = 4,
    seed: int = 7,
    fall: float = 0.35,
    crash_at_hours: float = 36.0,
    crash_hours: float = 4.0,
    half_width_pct: float = 5.0,
    decision_interval_seconds: int = 300,
    chain: str = "arbitrum",
    capital_usd: float = 10_000.0,
    risk: RiskConfig | None = None,
    runs: str = "both",
) -> CrashComparison:
    """Both runs on one crash path (module docstring); ``runs``: ``"both"``, ``"on"`` (with the
    regime only) or ``"off"``. ``risk``: the ``[risk]`` settings (default: its defaults); the
    run with the regime uses its thresholds and actions even when its ``enabled`` is false (that
    switch is the daemon's)."""
    if runs not in ("both", "on", "off"):
        raise ValueError(f"runs must be both, on or off, got {runs!r}")
    path = crash_minutes(
        days, seed=seed, fall=fall, crash_at_hours=crash_at_hours, crash_hours=crash_hours
    )
    bars = bars_of(path.minutes, 60)
    base = BacktestConfig(
        strategy=StrategyConfig(kind="fixed", params={"half_width_pct": half_width_pct}),
        decision_interval_seconds=decision_interval_seconds,
        chain=chain,
        capital_usd=capital_usd,
        label="crash",
    )
    without = with_regime = None
    if runs in ("both", "off"):
        without = run_bars(bars, base, perp=path.perp)
    if runs in ("both", "on"):
        settings = risk if risk is not None else RiskConfig()
        settings = settings.model_copy(update={"enabled": True})
        config = base.model_copy(update={"risk": settings})
        with_regime = run_bars(bars, config, perp=path.perp)
    return CrashComparison(path, without, with_regime, decision_interval_seconds)


def render(c: CrashComparison) -> str:
    """The comparison as text (module docstring)."""
    p = c.path
    hours = (p.crash_end - p.crash_start) / 3600
    start_h = (p.crash_start - int(p.minutes.ts[0])) / 3600
    lines = [
        f"crash: the volatile token falls {p.fall:.0%} over {hours:g} h from hour {start_h:g}, "
        f"with a liquidation cascade; {len(p.minutes) / 1440:g} days of minute bars, a "
        f"decision every {c.decision_interval_seconds} s",
        "",
        f"{'':24}{'max drawdown':>14}{'fees':>12}{'net':>10}{'hold':>10}{'net vs hold':>13}",
    ]
    for name, r in c.rows():
        m = r.metrics
        lines.append(
            f"{name:24}{m.max_drawdown:>14.2%}{r.breakdown.fees:>12,.2f}{m.net_return:>10.2%}"
            f"{m.hold_return:>10.2%}{m.lp_vs_hold:>13.2%}"
        )
    if c.with_regime is not None:
        notes = c.with_regime.notes.get("regime") or {}
        lines += ["", "regime and its actions (minutes from the crash's start):"]
        events: list[tuple[int, int, list[str]]] = []
        for t in notes.get("transitions", []):
            events.append((int(t["t"]), 0, [str(t["level"])] + [f"  {r}" for r in t["reasons"]]))
        for a in c.with_regime.actions:
            if a.kind in ("withdraw", "reenter"):
                what = "withdraw to tokens" if a.kind == "withdraw" else "re-enter the pool"
                events.append((a.timestamp, 1, [f"-> {what}"]))
        for t, _order, text in sorted(events, key=lambda e: (e[0], e[1])):
            lines.append(f"  {(t - p.crash_start) / 60:+7.0f}  {text[0]}")
            lines += [f"           {more.strip()}" for more in text[1:]]
    return "\n".join(lines) + "\n"

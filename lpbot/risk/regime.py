"""The market regime: normal, elevated or stressed, from market and position signals (pure).

Each monitor tick (and each decision bar of a backtest) measures ``RegimeInputs``: realised
volatility over 5 and 30 minutes against a baseline, the position's 1/5/30-minute VaR as a
percent of its value, the price's distance from the pool's TWAP, the pool's swap volume against
its baseline, the perp's funding rate, open-interest change and liquidations against their
baseline, and the hedge's distance to liquidation. Any of them may be None (the venue does not
give it, or there is no hedge); a missing signal counts for nothing.

``RegimeInputs.signals`` turns the inputs into the signals of ``SIGNALS`` (ratios, percents,
basis points). Each signal has an *enter* threshold per level (``RegimeConfig.elevated`` and
``.stressed``; None: that signal never drives that level). For every signal but the hedge's
liquidation distance higher is worse; the distance is worse when lower.

Hysteresis (``RegimeTracker.update``), so that a signal wandering around a threshold does not
flap the regime:

- *enter*: the regime rises, at once, to the worst level any signal reaches by its enter
  threshold;
- *exit*: a signal still holds a level while it is past that level's *exit* threshold, the enter
  one times ``exit_fraction`` (divided by it for the liquidation distance, whose worse is lower);
  the regime falls to the worst level still held only after every signal has been below the
  current level's exit thresholds for ``min_dwell_seconds`` without a break. A fall to normal
  from stressed goes straight down when nothing holds elevated either;
- *missing*: a market signal that held the level at its last reading and then has none (the
  venue stops answering in a crash) still holds it: no reading is no evidence of calm. The calm
  timer starts only once it is read again below its exit threshold. The position's VaR and the
  hedge's liquidation distance are not held so: without a reading there is no position (it was
  withdrawn, the hedge flattened) and so no risk to measure.

The state (``RegimeState``: level, since, reasons, and the calm timer) is plain JSON through
``to_dict`` / ``from_dict``, so a daemon can persist it and resume where it was. Reasons are one
line per signal that drove the level, with its value and threshold. Float, analytics; no I/O.

Use, on each monitor tick (``[risk]`` of lpbot.toml is ``lpbot.config.RiskConfig``)::

    tracker = RegimeTracker(risk.regime_config(), RegimeState.from_dict(saved))  # or no state
    inputs = measure_inputs(history, now, var=estimates, position_usd=value,
                            twap=pool_twap, price=pool_price, perp=fetch_perp_stress(...),
                            hedge_liquidation_distance_pct=hedge_liquidation_distance_pct(...))
    state = tracker.update(inputs, now)           # state.level, state.since, state.reasons
    todo = risk.actions().for_level(state.level)  # lpbot.risk.actions: what the level asks for
    save(state.to_dict())

and run the monitor every ``risk.stress_monitor_seconds`` while ``state.level`` is not normal.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import IntEnum
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # reading a configuration loads this module: no numpy at import
    from collections.abc import Sequence

    from lpbot.analytics.types import FloatArray, PriceHistory
    from lpbot.analytics.var import VarEstimate


class Level(IntEnum):
    """The regime's levels, ordered: a higher value is a worse market."""

    NORMAL = 0
    ELEVATED = 1
    STRESSED = 2

    @property
    def label(self) -> str:
        return self.name.lower()

    @classmethod
    def parse(cls, text: str) -> Level:
        try:
            return cls[text.upper()]
        except KeyError:
            raise ValueError(
                f"unknown regime level {text!r}: normal, elevated or stressed"
            ) from None


@dataclass(frozen=True, slots=True)
class SignalSpec:
    """One signal: its name (the config key), what it measures, its unit, which way is worse,
    and its default enter thresholds for elevated and stressed."""

    name: str
    label: str
    unit: str
    higher_is_worse: bool
    elevated: float | None
    stressed: float | None


SIGNALS: tuple[SignalSpec, ...] = (
    SignalSpec("vol_5m_ratio", "5-minute realised volatility / baseline", "x", True, 2.5, 5.0),
    SignalSpec("vol_30m_ratio", "30-minute realised volatility / baseline", "x", True, 2.0, 3.5),
    SignalSpec("var_1m_pct", "1-minute VaR, % of the position", "%", True, 1.0, 2.0),
    SignalSpec("var_5m_pct", "5-minute VaR, % of the position", "%", True, 2.0, 4.0),
    SignalSpec("var_30m_pct", "30-minute VaR, % of the position", "%", True, 5.0, 10.0),
    SignalSpec("twap_deviation_bps", "price's distance from the pool's TWAP", "bps", True,
               100.0, 300.0),
    SignalSpec("volume_ratio", "pool swap volume / baseline", "x", True, 3.0, 8.0),
    SignalSpec("funding_bps_8h", "perp funding rate (either sign), per 8 h", "bps", True,
               5.0, 15.0),
    SignalSpec("open_interest_change_pct", "perp open-interest change (either way)", "%", True,
               5.0, 12.0),
    SignalSpec("liquidation_ratio", "perp liquidations / baseline", "x", True, 5.0, 20.0),
    SignalSpec("hedge_liquidation_distance_pct", "hedge's distance to its liquidation price",
               "%", False, 30.0, 15.0),
)  # fmt: skip
SIGNAL_BY_NAME: dict[str, SignalSpec] = {s.name: s for s in SIGNALS}
# the market's signals; the others measure the position and the hedge, and have no reading once
# the liquidity is withdrawn or the hedge flattened
POSITION_SIGNALS = frozenset({"var_1m_pct", "var_5m_pct", "var_30m_pct",
                              "hedge_liquidation_distance_pct"})  # fmt: skip
MARKET_SIGNALS = frozenset(SIGNAL_BY_NAME) - POSITION_SIGNALS


@dataclass(frozen=True, slots=True)
class RegimeInputs:
    """What one evaluation measures; None where it is not available (module docstring).

    Volatilities are of log-returns, in any one unit (per sqrt(second) from
    ``realised_volatility``): only their ratio to ``vol_baseline`` counts. ``var_*_pct``: VaR
    (``analytics.var``) as a percent of the position's value. ``twap_deviation_bps``: signed or
    not, ``(price / twap - 1) * 1e4``. ``volume_usd`` and ``liquidations_usd`` over the same
    window as their baselines. ``funding_rate_8h``: a fraction per 8 hours (0.0001 = 1 bp).
    ``open_interest_change_pct``: the perp's open interest now against a window ago, in percent.
    ``hedge_liquidation_distance_pct``: how far the mark may move before the hedge's
    liquidation price, in percent of the mark.
    """

    vol_5m: float | None = None
    vol_30m: float | None = None
    vol_baseline: float | None = None
    var_1m_pct: float | None = None
    var_5m_pct: float | None = None
    var_30m_pct: float | None = None
    twap_deviation_bps: float | None = None
    volume_usd: float | None = None
    volume_baseline_usd: float | None = None
    funding_rate_8h: float | None = None
    open_interest_change_pct: float | None = None
    liquidations_usd: float | None = None
    liquidations_baseline_usd: float | None = None
    hedge_liquidation_distance_pct: float | None = None

    def signals(self) -> dict[str, float]:
        """The signals of ``SIGNALS`` these inputs give (those that are available and finite)."""
        out: dict[str, float | None] = {
            "vol_5m_ratio": _ratio(self.vol_5m, self.vol_baseline),
            "vol_30m_ratio": _ratio(self.vol_30m, self.vol_baseline),
            "var_1m_pct": self.var_1m_pct,
            "var_5m_pct": self.var_5m_pct,
            "var_30m_pct": self.var_30m_pct,
            "twap_deviation_bps": _abs(self.twap_deviation_bps),
            "volume_ratio": _ratio(self.volume_usd, self.volume_baseline_usd),
            "funding_bps_8h": _abs(
                None if self.funding_rate_8h is None else self.funding_rate_8h * 1e4
            ),
            "open_interest_change_pct": _abs(self.open_interest_change_pct),
            "liquidation_ratio": _ratio(self.liquidations_usd, self.liquidations_baseline_usd),
            "hedge_liquidation_distance_pct": self.hedge_liquidation_distance_pct,
        }
        return {k: v for k, v in out.items() if v is not None and math.isfinite(v)}


def _ratio(value: float | None, baseline: float | None) -> float | None:
    if value is None or baseline is None or not baseline > 0:
        return None
    return value / baseline


def _abs(value: float | None) -> float | None:
    return None if value is None else abs(value)


def _default(level: str) -> dict[str, float | None]:
    return {s.name: getattr(s, level) for s in SIGNALS}


@dataclass(frozen=True)
class RegimeConfig:
    """Enter thresholds per signal and level, the exit fraction and the minimum calm time.

    ``elevated`` and ``stressed`` map a signal's name (``SIGNALS``) to its enter threshold, None
    to leave that signal out of that level; a signal not named keeps its default. A stressed
    threshold must be at least as severe as the elevated one (higher, or lower for the
    liquidation distance). ``exit_fraction`` in (0, 1]: 1 leaves at the enter threshold itself.
    Contradictions raise ``ValueError`` naming the key (``stressed.<signal>``, ...).
    """

    elevated: Mapping[str, float | None] = field(default_factory=lambda: _default("elevated"))
    stressed: Mapping[str, float | None] = field(default_factory=lambda: _default("stressed"))
    exit_fraction: float = 0.7
    min_dwell_seconds: float = 900.0

    def __post_init__(self) -> None:
        problems = config_problems(
            self.elevated, self.stressed, self.exit_fraction, self.min_dwell_seconds
        )
        if problems:
            raise ValueError("; ".join(problems))
        object.__setattr__(self, "elevated", {**_default("elevated"), **self.elevated})
        object.__setattr__(self, "stressed", {**_default("stressed"), **self.stressed})

    def enter(self, name: str, level: Level) -> float | None:
        """The enter threshold of signal ``name`` for ``level`` (elevated or stressed)."""
        table = self.stressed if level is Level.STRESSED else self.elevated
        return table.get(name)

    def exit(self, name: str, level: Level) -> float | None:
        """The exit threshold: the enter one times ``exit_fraction`` (divided, when lower is
        worse)."""
        t = self.enter(name, level)
        if t is None:
            return None
        f = self.exit_fraction
        return t * f if SIGNAL_BY_NAME[name].higher_is_worse else t / f


def config_problems(
    elevated: Mapping[str, float | None],
    stressed: Mapping[str, float | None],
    exit_fraction: float,
    min_dwell_seconds: float,
) -> list[str]:
    """Every contradiction in a regime configuration, one line each naming its key
    (``elevated.<signal>``, ``stressed.<signal>``, ``exit_fraction``, ``min_dwell_seconds``)."""
    problems: list[str] = []
    for level, table in (("elevated", elevated), ("stressed", stressed)):
        for name, value in table.items():
            if name not in SIGNAL_BY_NAME:
                problems.append(
                    f"{level}.{name}: unknown signal; known: {', '.join(SIGNAL_BY_NAME)}"
                )
            elif value is not None and not (math.isfinite(value) and value > 0):
                problems.append(f"{level}.{name}: must be a number > 0 (or off), got {value}")
    if not (math.isfinite(exit_fraction) and 0 < exit_fraction <= 1):
        problems.append(f"exit_fraction: must be in (0, 1], got {exit_fraction}")
    if not (math.isfinite(min_dwell_seconds) and min_dwell_seconds >= 0):
        problems.append(f"min_dwell_seconds: must be >= 0, got {min_dwell_seconds}")
    if problems:
        return problems
    for spec in SIGNALS:
        e = elevated.get(spec.name, spec.elevated)
        s = stressed.get(spec.name, spec.stressed)
        if e is None or s is None:
            continue
        if spec.higher_is_worse and s < e:
            problems.append(
                f"stressed.{spec.name}: {s:g} is looser than elevated.{spec.name} {e:g} "
                "(stressed must be at least as high)"
            )
        elif not spec.higher_is_worse and s > e:
            problems.append(
                f"stressed.{spec.name}: {s:g} is looser than elevated.{spec.name} {e:g} "
                "(a liquidation distance is worse when lower: stressed must be at most it)"
            )
    return problems


def _past(value: float, threshold: float | None, higher_is_worse: bool) -> bool:
    if threshold is None:
        return False
    return value >= threshold if higher_is_worse else value <= threshold


def _fmt(value: float, unit: str) -> str:
    if unit == "x":
        return f"{value:.2f}x"
    if unit == "%":
        return f"{value:.2f}%"
    return f"{value:.1f} {unit}"


@dataclass(frozen=True, slots=True)
class RegimeState:
    """The regime after an evaluation (module docstring). Times are unix seconds.

    ``since``: when the current level was entered. ``reasons``: one line per signal that drove
    it (empty when normal), or the calm timer's progress when none still does. ``calm_since``:
    when every signal fell below the current level's exit thresholds (None: one still holds it);
    ``calm_target``: the worst level a signal held since then, where the regime falls to.
    ``holding``: the signals past the level's exit threshold at their last reading (a missing
    one among them still holds the level).
    """

    level: Level = Level.NORMAL
    since: float = 0.0
    reasons: tuple[str, ...] = ()
    calm_since: float | None = None
    calm_target: Level | None = None
    updated_at: float | None = None
    holding: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON types (``from_dict`` reads it back)."""
        return {
            "level": self.level.label,
            "since": self.since,
            "reasons": list(self.reasons),
            "calm_since": self.calm_since,
            "calm_target": None if self.calm_target is None else self.calm_target.label,
            "updated_at": self.updated_at,
            "holding": list(self.holding),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RegimeState:
        """The state ``to_dict`` wrote; ``ValueError`` ("not a regime state") on anything else,
        a time that is not a finite number included."""

        def seconds(value: Any) -> float:
            t = float(value)
            if not math.isfinite(t):
                raise ValueError(f"a time must be a finite number, got {value!r}")
            return t

        def texts(value: Any) -> tuple[str, ...]:
            if not isinstance(value, list | tuple):
                raise TypeError(f"expected a list, got {value!r}")
            return tuple(str(v) for v in value)

        try:
            if not isinstance(data, Mapping):
                raise TypeError(f"expected an object, got {type(data).__name__}")
            target = data.get("calm_target")
            calm = data.get("calm_since")
            updated = data.get("updated_at")
            return cls(
                level=Level.parse(str(data["level"])),
                since=seconds(data["since"]),
                reasons=texts(data.get("reasons", ())),
                calm_since=None if calm is None else seconds(calm),
                calm_target=None if target is None else Level.parse(str(target)),
                updated_at=None if updated is None else seconds(updated),
                holding=texts(data.get("holding", ())),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"not a regime state: {exc}") from exc


def classify(
    config: RegimeConfig, signals: Mapping[str, float], *, exit: bool = False
) -> tuple[Level, dict[Level, list[str]]]:
    """The worst level the signals reach by their enter (or, ``exit``, exit) thresholds, and for
    each level the lines of the signals at or past it."""
    worst = Level.NORMAL
    lines: dict[Level, list[str]] = {Level.ELEVATED: [], Level.STRESSED: []}
    for name, value in signals.items():
        spec = SIGNAL_BY_NAME.get(name)
        if spec is None:
            continue
        for level in (Level.STRESSED, Level.ELEVATED):
            t = config.exit(name, level) if exit else config.enter(name, level)
            if t is not None and _past(value, t, spec.higher_is_worse):
                worst = max(worst, level)
                cmp = ">=" if spec.higher_is_worse else "<="
                what = "exit" if exit else level.label
                lines[level].append(
                    f"{spec.label}: {_fmt(value, spec.unit)} {cmp} {_fmt(t, spec.unit)} ({what})"
                )
                break
    return worst, lines


class RegimeTracker:
    """The regime with hysteresis over successive evaluations (module docstring).

    ``update(inputs, now)`` returns the new state; ``state`` is the last one. Build it with a
    persisted state to resume (``RegimeState.from_dict``).
    """

    def __init__(self, config: RegimeConfig, state: RegimeState | None = None) -> None:
        self.config = config
        self.state = state if state is not None else RegimeState()

    def update(self, inputs: RegimeInputs | Mapping[str, float], now: float) -> RegimeState:
        """Evaluate at ``now`` (unix seconds, not before the last update). ``inputs``: the
        measurements, or the signals themselves by name (a NaN one is no reading)."""
        prev = self.state
        if not math.isfinite(now):
            raise ValueError(f"regime update time must be finite, got {now}")
        if prev.updated_at is not None and now < prev.updated_at:
            raise ValueError(f"regime update at {now} is before the last one at {prev.updated_at}")
        given = inputs.signals() if isinstance(inputs, RegimeInputs) else inputs
        # a NaN or infinite value is no reading (as a None in ``RegimeInputs``), never calm
        signals = {k: v for k, v in given.items() if v is not None and math.isfinite(v)}
        entered, enter_lines = classify(self.config, signals)
        held, exit_lines = classify(self.config, signals, exit=True)
        level = prev.level
        if entered > level:  # rises at once
            lines = enter_lines[entered]
            holding = _holding(self.config, signals, entered)
            self.state = RegimeState(entered, now, tuple(lines), None, None, now, holding)
            return self.state
        if level is Level.NORMAL:
            self.state = RegimeState(Level.NORMAL, prev.since, (), None, None, now)
            return self.state
        # a market signal that held the level at its last reading and has none now still holds
        # it; a position's signal without a reading has no position left to measure
        missing = tuple(n for n in prev.holding if n not in signals and n in MARKET_SIGNALS)
        if held >= level or missing:  # a signal still holds the level: no calm
            # each signal's line: past its enter threshold, else past its exit one
            by_signal = {line.split(":")[0]: line for line in exit_lines[level]}
            by_signal.update({line.split(":")[0]: line for line in enter_lines[level]})
            for name in missing:
                label = SIGNAL_BY_NAME[name].label
                by_signal[label] = f"{label}: no reading since it held {level.label}"
            reasons = tuple(by_signal.values()) or prev.reasons
            holding = _holding(self.config, signals, level) + missing
            self.state = RegimeState(level, prev.since, reasons, None, None, now, holding)
            return self.state
        calm_since = prev.calm_since if prev.calm_since is not None else now
        target = max(held, prev.calm_target) if prev.calm_target is not None else held
        dwell = self.config.min_dwell_seconds
        if now - calm_since >= dwell:
            lines = exit_lines[target] if target is not Level.NORMAL else []
            holding = _holding(self.config, signals, target) if target is not Level.NORMAL else ()
            self.state = RegimeState(target, now, tuple(lines), None, None, now, holding)
            return self.state
        reasons = (
            f"every signal below its {level.label} exit threshold for {now - calm_since:.0f} s "
            f"of {dwell:.0f} s",
        )
        self.state = RegimeState(level, prev.since, reasons, calm_since, target, now)
        return self.state


def _holding(config: RegimeConfig, signals: Mapping[str, float], level: Level) -> tuple[str, ...]:
    """The signals at or past ``level``'s exit threshold (or a worse level's)."""
    out = []
    for name, value in signals.items():
        spec = SIGNAL_BY_NAME.get(name)
        if spec is None:
            continue
        levels = (lv for lv in Level if lv >= level and lv is not Level.NORMAL)
        if any(_past(value, config.exit(name, lv), spec.higher_is_worse) for lv in levels):
            out.append(name)
    return tuple(out)


# ------------------------------------------------------------------------ measuring inputs


def realised_volatility(
    times: FloatArray, prices: FloatArray, now: float, window_seconds: float
) -> float | None:
    """Realised volatility of log-returns over the ``window_seconds`` up to ``now``, per
    sqrt(second): ``sqrt(sum r**2 / window)`` over the returns between the prices in the window
    (the last price before it included). None with fewer than two prices."""
    import numpy as np

    lo = int(np.searchsorted(times, now - window_seconds, side="right")) - 1
    hi = int(np.searchsorted(times, now, side="right"))
    lo = max(lo, 0)
    if hi - lo < 2:
        return None
    r = np.diff(np.log(prices[lo:hi]))
    span = float(times[hi - 1] - times[lo])
    if not span > 0:
        return None
    return math.sqrt(float(np.sum(r * r)) / span)


def twap_deviation_bps(price: float, twap: float) -> float:
    """The price's distance from its TWAP, ``(price / twap - 1) * 1e4`` (signed)."""
    if not (price > 0 and twap > 0):
        raise ValueError(f"prices must be > 0, got {price} and {twap}")
    return (price / twap - 1.0) * 1e4


def hedge_liquidation_distance_pct(mark: float, liquidation_price: float | None) -> float | None:
    """How far the mark may move before the hedge's liquidation price, in percent of the mark
    (``|liquidation - mark| / mark * 100``); None without a position or a liquidation price."""
    if liquidation_price is None or not liquidation_price > 0 or not mark > 0:
        return None
    return abs(liquidation_price - mark) / mark * 100.0


def measure_inputs(
    history: PriceHistory,
    now: float,
    *,
    baseline_seconds: float = 86_400.0,
    var: Sequence[VarEstimate] = (),
    position_usd: float | None = None,
    price: float | None = None,
    twap: float | None = None,
    volume_usd: float | None = None,
    volume_baseline_usd: float | None = None,
    perp: Any = None,
    hedge_liquidation_distance_pct: float | None = None,
) -> RegimeInputs:
    """``RegimeInputs`` from what a monitor tick has: the pool's price ``history`` (realised
    volatility over 5 and 30 minutes, and over ``baseline_seconds`` for the baseline, by
    ``realised_volatility``), the position's VaR estimates (``analytics.var``; per horizon of 1,
    5 and 30 minutes the larger of the historical and the parametric figure, as a percent of
    ``position_usd``), the pool's ``price`` and ``twap``, its swap volume and baseline, the perp's
    ``PerpStress`` (``lpbot.hedge.stress``; anything with its ``regime_inputs()``), and the
    hedge's liquidation distance. Whatever is not given stays None."""
    t, p = history.timestamps, history.prices
    var_pct: dict[float, float] = {}
    if position_usd is not None and position_usd > 0:
        for e in var:
            worst = max(e.parametric_usd, e.historical_usd or 0.0)
            var_pct[e.horizon_seconds] = worst / position_usd * 100.0
    perp_fields: dict[str, float | None] = perp.regime_inputs() if perp is not None else {}
    return RegimeInputs(
        vol_5m=realised_volatility(t, p, now, 300.0),
        vol_30m=realised_volatility(t, p, now, 1800.0),
        vol_baseline=realised_volatility(t, p, now, baseline_seconds),
        var_1m_pct=var_pct.get(60.0),
        var_5m_pct=var_pct.get(300.0),
        var_30m_pct=var_pct.get(1800.0),
        twap_deviation_bps=(
            twap_deviation_bps(price, twap) if price is not None and twap is not None else None
        ),
        volume_usd=volume_usd,
        volume_baseline_usd=volume_baseline_usd,
        funding_rate_8h=perp_fields.get("funding_rate_8h"),
        open_interest_change_pct=perp_fields.get("open_interest_change_pct"),
        liquidations_usd=perp_fields.get("liquidations_usd"),
        liquidations_baseline_usd=perp_fields.get("liquidations_baseline_usd"),
        hedge_liquidation_distance_pct=hedge_liquidation_distance_pct,
    )

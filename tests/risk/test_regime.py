"""The regime: levels by threshold, hysteresis (enter at once, leave after a calm dwell),
reasons, and a state that persists and resumes."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lpbot.risk.regime import (
    Level,
    RegimeConfig,
    RegimeInputs,
    RegimeState,
    RegimeTracker,
    config_problems,
    realised_volatility,
)

CONFIG = RegimeConfig(exit_fraction=0.7, min_dwell_seconds=600)


def vol(ratio: float) -> RegimeInputs:
    return RegimeInputs(vol_5m=ratio, vol_baseline=1.0)


def test_a_signal_past_a_threshold_raises_the_regime_at_once_with_its_reason() -> None:
    tracker = RegimeTracker(CONFIG)
    assert tracker.update(vol(1.0), 0).level is Level.NORMAL
    s = tracker.update(vol(2.6), 60)  # elevated enters at 2.5
    assert (s.level, s.since) == (Level.ELEVATED, 60)
    assert s.reasons == ("5-minute realised volatility / baseline: 2.60x >= 2.50x (elevated)",)
    s = tracker.update(RegimeInputs(vol_5m=2.6, vol_baseline=1.0, liquidations_usd=2.1e6,
                                    liquidations_baseline_usd=1e5), 120)  # fmt: skip
    assert s.level is Level.STRESSED  # liquidations 21x >= 20x
    assert s.reasons == ("perp liquidations / baseline: 21.00x >= 20.00x (stressed)",)


def test_the_regime_leaves_only_after_every_signal_is_below_exit_for_the_dwell() -> None:
    tracker = RegimeTracker(CONFIG)
    tracker.update(vol(5.5), 0)  # stressed (5.0)
    # 3.6 is below stressed's enter (5.0) but above its exit (3.5): stays, no calm timer
    s = tracker.update(vol(3.6), 60)
    assert (s.level, s.calm_since) == (Level.STRESSED, None)
    assert s.reasons == ("5-minute realised volatility / baseline: 3.60x >= 3.50x (exit)",)
    s = tracker.update(vol(3.0), 120)  # below the stressed exit, above elevated's (1.75)
    assert (s.level, s.calm_since, s.calm_target) == (Level.STRESSED, 120, Level.ELEVATED)
    s = tracker.update(vol(3.0), 719)
    assert s.level is Level.STRESSED  # 599 s of calm
    s = tracker.update(vol(3.0), 720)  # 600 s: falls to the level a signal still holds
    assert (s.level, s.since) == (Level.ELEVATED, 720)
    assert s.reasons == ("5-minute realised volatility / baseline: 3.00x >= 1.75x (exit)",)
    s = tracker.update(vol(1.0), 780)
    assert s.level is Level.ELEVATED and s.calm_since == 780
    s = tracker.update(vol(1.8), 900)  # back above the exit threshold: the calm timer restarts
    assert s.level is Level.ELEVATED and s.calm_since is None
    tracker.update(vol(1.0), 960)
    assert tracker.update(vol(1.0), 1559).level is Level.ELEVATED
    s = tracker.update(vol(1.0), 1560)
    assert (s.level, s.since, s.reasons) == (Level.NORMAL, 1560, ())


def test_stressed_goes_straight_to_normal_when_nothing_holds_elevated() -> None:
    tracker = RegimeTracker(CONFIG)
    tracker.update(vol(6.0), 0)
    tracker.update(vol(1.0), 60)
    assert tracker.update(vol(1.0), 660).level is Level.NORMAL


def test_the_liquidation_distance_is_worse_when_lower() -> None:
    tracker = RegimeTracker(CONFIG)
    s = tracker.update(RegimeInputs(hedge_liquidation_distance_pct=12.0), 0)
    assert s.level is Level.STRESSED
    assert s.reasons == ("hedge's distance to its liquidation price: 12.00% <= 15.00% (stressed)",)
    # the exit is the enter divided by the fraction: 15 / 0.7 = 21.4%
    s = tracker.update(RegimeInputs(hedge_liquidation_distance_pct=20.0), 60)
    assert s.calm_since is None
    s = tracker.update(RegimeInputs(hedge_liquidation_distance_pct=22.0), 120)
    assert s.calm_since == 120


def test_missing_signals_count_for_nothing() -> None:
    inputs = RegimeInputs(vol_5m=9.0, vol_baseline=None, volume_usd=1e9, funding_rate_8h=None)
    assert inputs.signals() == {}
    assert RegimeTracker(CONFIG).update(inputs, 0).level is Level.NORMAL
    signals = RegimeInputs(funding_rate_8h=-0.002, open_interest_change_pct=-15.0).signals()
    assert signals == {"funding_bps_8h": 20.0, "open_interest_change_pct": 15.0}


def test_a_signal_that_held_the_level_and_goes_missing_is_not_taken_as_calm() -> None:
    # stressed by a liquidation cascade; then the venue stops answering (the signal is None,
    # as in a crash): no reading is no evidence of calm, so the level holds, saying why
    cascade = RegimeInputs(vol_5m=1.0, vol_baseline=1.0, liquidations_usd=3e6,
                           liquidations_baseline_usd=1e5)  # fmt: skip
    tracker = RegimeTracker(CONFIG)
    assert tracker.update(cascade, 0).level is Level.STRESSED
    for now in (60, 600, 1200, 3600):
        s = tracker.update(vol(1.0), now)  # the other signals calm, liquidations unknown
        assert (s.level, s.calm_since) == (Level.STRESSED, None)
    assert s.reasons == ("perp liquidations / baseline: no reading since it held stressed",)
    # the state keeps which signals hold the level, across a restart
    tracker = RegimeTracker(CONFIG, RegimeState.from_dict(json.loads(json.dumps(s.to_dict()))))
    assert tracker.update(vol(1.0), 3660).level is Level.STRESSED
    # read again and calm: the calm timer starts then, and the level falls after the dwell
    calm = RegimeInputs(vol_5m=1.0, vol_baseline=1.0, liquidations_usd=1e5,
                        liquidations_baseline_usd=1e5)  # fmt: skip
    assert tracker.update(calm, 3720).calm_since == 3720
    assert tracker.update(vol(1.0), 4320).level is Level.NORMAL
    # a signal whose last reading was calm counts for nothing when missing
    tracker = RegimeTracker(CONFIG)
    tracker.update(vol(6.0), 0)
    assert tracker.update(RegimeInputs(), 60).calm_since is None  # vol held it: unknown
    assert tracker.update(vol(1.0), 120).calm_since == 120
    assert tracker.update(RegimeInputs(), 720).level is Level.NORMAL


def test_the_state_persists_as_json_and_resumes() -> None:
    a = RegimeTracker(CONFIG)
    a.update(vol(5.5), 0)
    a.update(vol(1.0), 100)
    saved = json.dumps(a.state.to_dict())
    b = RegimeTracker(CONFIG, RegimeState.from_dict(json.loads(saved)))
    assert b.state == a.state
    assert b.update(vol(1.0), 699).level is Level.STRESSED
    assert b.update(vol(1.0), 700).level is Level.NORMAL
    with pytest.raises(ValueError, match="before the last one"):
        b.update(vol(1.0), 10)
    with pytest.raises(ValueError, match="unknown regime level"):
        RegimeState.from_dict({"level": "panic", "since": 0})


def test_contradicting_thresholds_are_refused_with_the_key_named() -> None:
    with pytest.raises(ValueError, match=r"stressed.vol_5m_ratio: 2 is looser than elevated"):
        RegimeConfig(elevated={"vol_5m_ratio": 3.0}, stressed={"vol_5m_ratio": 2.0})
    problems = config_problems({"hedge_liquidation_distance_pct": 10.0}, {"nope": 1.0}, 1.5, -1.0)
    assert [p.split(":")[0] for p in problems] == [
        "stressed.nope", "exit_fraction", "min_dwell_seconds",
    ]  # fmt: skip
    assert config_problems({"hedge_liquidation_distance_pct": 10.0}, {}, 0.5, 0) == [
        "stressed.hedge_liquidation_distance_pct: 15 is looser than "
        "elevated.hedge_liquidation_distance_pct 10 (a liquidation distance is worse when "
        "lower: stressed must be at most it)"
    ]
    # a level switched off for a signal is no contradiction
    RegimeConfig(elevated={"vol_5m_ratio": None}, stressed={"vol_5m_ratio": 2.0})


@settings(max_examples=60, deadline=None)
@given(
    threshold=st.floats(1.2, 10.0),
    amplitude=st.floats(0.0, 0.25),
    n=st.integers(10, 200),
    step=st.integers(1, 120),
)
def test_a_signal_oscillating_around_a_threshold_does_not_flap(
    threshold: float, amplitude: float, n: int, step: int
) -> None:
    # within 25% around the enter threshold, the exit (70% of it) is never reached: the regime
    # enters once and stays, however often the signal crosses the threshold
    config = RegimeConfig(elevated={"vol_5m_ratio": threshold}, stressed={"vol_5m_ratio": None},
                          exit_fraction=0.7, min_dwell_seconds=0)  # fmt: skip
    tracker = RegimeTracker(config)
    values = threshold * (1.0 + amplitude * np.sin(np.arange(n) * 1.3))
    values[0] = threshold  # the first one enters
    changes = 0
    last = Level.NORMAL
    for i, v in enumerate(values):
        level = tracker.update(vol(float(v)), i * step).level
        changes += level is not last
        last = level
    assert changes == 1 and last is Level.ELEVATED


@settings(max_examples=60, deadline=None)
@given(
    values=st.lists(st.floats(0.0, 8.0), min_size=1, max_size=80),
    dwell=st.integers(0, 600),
    step=st.integers(1, 300),
)
def test_the_regime_never_falls_before_the_dwell_nor_sits_below_a_signal(
    values: list[float], dwell: int, step: int
) -> None:
    config = RegimeConfig(exit_fraction=0.7, min_dwell_seconds=dwell)
    tracker = RegimeTracker(config)
    prev = tracker.state
    for i, v in enumerate(values):
        now = i * step
        s = tracker.update(vol(v), now)
        entered = Level.STRESSED if v >= 5.0 else Level.ELEVATED if v >= 2.5 else Level.NORMAL
        assert s.level >= entered  # at least what the signal enters
        if s.level < prev.level:  # a fall: after a calm of at least the dwell
            calm_since = now if prev.calm_since is None else prev.calm_since
            assert now - calm_since >= dwell
            assert v < 0.7 * (5.0 if prev.level is Level.STRESSED else 2.5)
        prev = s


def test_realised_volatility_over_a_window() -> None:
    t = np.arange(0.0, 3600.0, 60.0)
    p = np.exp(np.where(np.arange(t.size) % 2 == 0, 0.0, 0.01))  # +-1% every minute
    sigma = realised_volatility(t, p, now=t[-1], window_seconds=300)
    assert sigma == pytest.approx(0.01 / 60**0.5)
    assert realised_volatility(t[:1], p[:1], now=0.0, window_seconds=300) is None


def test_measuring_a_monitor_ticks_inputs() -> None:
    from lpbot.analytics.types import PriceHistory
    from lpbot.analytics.var import VarEstimate
    from lpbot.hedge.stress import PerpStress
    from lpbot.risk.regime import hedge_liquidation_distance_pct, measure_inputs

    t = np.arange(0.0, 86_400.0 + 60, 60.0)
    moves = np.where(np.arange(t.size) % 2 == 0, 0.001, -0.001)  # +-0.1% a minute all day
    moves[-5:] = -0.01  # then -1% a minute for the last 5 minutes
    history = PriceHistory(t, 3000.0 * np.exp(np.cumsum(moves)))
    var = (
        VarEstimate(60.0, 0.99, None, 150.0, 140.0, 0, 1e-4),
        VarEstimate(300.0, 0.99, 420.0, 300.0, 290.0, 40, 1e-4),
    )
    perp = PerpStress(0, funding_rate_8h=-0.002, open_interest_change_pct=-9.0,
                      liquidations_usd=5e6, liquidations_baseline_usd=1e5)  # fmt: skip
    inputs = measure_inputs(
        history, float(t[-1]), var=var, position_usd=10_000.0, price=2850.0, twap=3000.0,
        perp=perp, hedge_liquidation_distance_pct=hedge_liquidation_distance_pct(2850.0, 3420.0),
    )  # fmt: skip
    assert inputs.vol_5m == pytest.approx(0.01 / 60**0.5)
    assert inputs.vol_baseline is not None and inputs.vol_baseline < 0.0015 / 60**0.5
    assert (inputs.var_1m_pct, inputs.var_5m_pct, inputs.var_30m_pct) == (1.5, 4.2, None)
    assert inputs.twap_deviation_bps == pytest.approx(-500.0)
    assert inputs.hedge_liquidation_distance_pct == pytest.approx(20.0)
    assert inputs.liquidations_usd == 5e6 and inputs.funding_rate_8h == -0.002
    state = RegimeTracker(CONFIG).update(inputs, float(t[-1]))
    assert state.level is Level.STRESSED
    assert (
        len(state.reasons) == 6
    )  # 5- and 30-minute vol, 5-minute VaR, TWAP, funding, liquidations
    assert hedge_liquidation_distance_pct(2850.0, None) is None


@pytest.mark.parametrize(
    "saved",
    [
        ["stressed", 0],  # not an object
        "stressed",
        {"level": "stressed", "since": "nan"},
        {"level": "stressed", "since": 0, "calm_since": "inf"},
        {"level": "stressed", "since": 0, "updated_at": "later"},
        {"level": "stressed", "since": 0, "reasons": 5},
    ],
)
def test_a_saved_state_that_is_not_one_is_a_value_error(saved: object) -> None:
    # a daemon resuming from a corrupt row gets one error it can report, never a state with
    # NaN times (which would hold or drop the level for ever) or an AttributeError
    with pytest.raises(ValueError, match="not a regime state"):
        RegimeState.from_dict(saved)  # type: ignore[arg-type]


def test_a_nan_signal_or_time_is_no_reading_not_calm() -> None:
    tracker = RegimeTracker(CONFIG)
    tracker.update({"vol_5m_ratio": 6.0}, 0)
    for now in (60, 700, 1400):  # a broken feed's NaN: no reading, the level holds
        assert tracker.update({"vol_5m_ratio": float("nan")}, now).level is Level.STRESSED
    with pytest.raises(ValueError, match="finite"):
        tracker.update({"vol_5m_ratio": 1.0}, float("nan"))


def test_a_position_signal_gone_with_the_position_is_calm() -> None:
    # stressed by the position's VaR or the hedge's liquidation distance: the withdrawal or the
    # flattened hedge takes the position away, and with it the reading; that is the risk gone,
    # not a feed down, so the regime leaves after the dwell (else it would never re-enter)
    for held in ({"var_5m_pct": 5.0}, {"hedge_liquidation_distance_pct": 10.0}):
        tracker = RegimeTracker(CONFIG)
        assert tracker.update({**held, "vol_5m_ratio": 1.0}, 0).level is Level.STRESSED
        assert tracker.update({"vol_5m_ratio": 1.0}, 60).calm_since == 60
        assert tracker.update({"vol_5m_ratio": 1.0}, 660).level is Level.NORMAL

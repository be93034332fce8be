"""The [risk] section: its defaults are the regime's, contradictions are refused by key, and
`config check` names the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from lpbot.cli import main
from lpbot.config import EXAMPLE_TOML, parse_config
from lpbot.errors import ConfigError
from lpbot.risk.actions import RegimeActions
from lpbot.risk.regime import SIGNALS, Level, RegimeConfig


def test_the_example_holds_the_regime_defaults() -> None:
    risk = parse_config(EXAMPLE_TOML).risk
    regime = risk.regime_config()
    default = RegimeConfig()
    for spec in SIGNALS:  # the template writes out the same thresholds the regime defaults to
        assert regime.enter(spec.name, Level.ELEVATED) == spec.elevated
        assert regime.enter(spec.name, Level.STRESSED) == spec.stressed
    assert (regime.exit_fraction, regime.min_dwell_seconds) == (
        default.exit_fraction, default.min_dwell_seconds,
    )  # fmt: skip
    assert risk.actions() == RegimeActions(2.0, 0.5, "withdraw", "resize")
    assert risk.stress_monitor_seconds == 60
    assert risk.actions().for_level(Level.STRESSED).liquidity == "withdraw"


def test_a_signal_can_be_switched_off_for_one_level() -> None:
    risk = parse_config(EXAMPLE_TOML.replace(
        'funding_bps_8h = 5.0', 'funding_bps_8h = "off"')).risk  # fmt: skip
    assert risk.regime_config().enter("funding_bps_8h", Level.ELEVATED) is None
    assert risk.regime_config().enter("funding_bps_8h", Level.STRESSED) == 15.0


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("vol_5m_ratio = 5.0", "vol_5m_ratio = 2.0",
         "risk.stressed.vol_5m_ratio: 2 is looser than elevated.vol_5m_ratio 2.5"),
        ("hedge_liquidation_distance_pct = 15", "hedge_liquidation_distance_pct = 40",
         "risk.stressed.hedge_liquidation_distance_pct: 40 is looser than"),
        ("exit_fraction = 0.7", "exit_fraction = 1.2", "risk.exit_fraction: must be <= 1"),
        ("exit_fraction = 0.7", "exit_fraction = 0", "risk.exit_fraction: must be > 0"),
        ("min_dwell_seconds = 900", "min_dwell_seconds = -1", "risk.min_dwell_seconds"),
        ("widen_factor = 2.0", "widen_factor = 0.5", "risk.elevated.widen_factor: must be >= 1"),
        ("hedge_band_factor = 0.5", "hedge_band_factor = 2",
         "risk.elevated.hedge_band_factor: must be <= 1"),
        ('action = "withdraw"', 'action = "panic"', "risk.stressed.action"),
        ('hedge = "resize"', 'hedge = "sell"', "risk.stressed.hedge"),
        ("stress_monitor_seconds = 60", "stress_monitor_seconds = 0",
         "risk.stress_monitor_seconds: must be > 0"),
        ("volume_ratio = 3.0", "volume_ratio = -3.0", "risk.elevated.volume_ratio"),
    ],
)  # fmt: skip
def test_contradicting_or_bad_risk_settings_are_refused_by_key(
    old: str, new: str, message: str
) -> None:
    assert old in EXAMPLE_TOML
    assert message in _errors_of(EXAMPLE_TOML.replace(old, new, 1))


def _errors_of(text: str) -> str:
    with pytest.raises(ConfigError) as exc:
        parse_config(text)
    return str(exc.value)


def test_an_unknown_risk_key_is_refused() -> None:
    text = EXAMPLE_TOML.replace("[risk.elevated]", "[risk.elevated]\nvolatility = 2", 1)
    assert "risk.elevated.volatility" in _errors_of(text)


def test_config_check_names_the_contradicting_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "lpbot.toml"
    path.write_text(EXAMPLE_TOML.replace("liquidation_ratio = 20.0", "liquidation_ratio = 4.0"))
    assert main(["config", "check", "--config", str(path)]) != 0
    err = capsys.readouterr().err
    assert "risk.stressed.liquidation_ratio: 4 is looser than elevated.liquidation_ratio 5" in err


def test_the_template_states_the_liquidation_distances_exit_as_the_regime_computes_it() -> None:
    # the distance is worse when lower: its exit is the enter threshold divided by the
    # fraction, 15% / 0.7 = 21.4%, i.e. 143% of it (not 130%, which is 1 + (1 - 0.7))
    import re

    regime = parse_config(EXAMPLE_TOML).risk.regime_config()
    name = "hedge_liquidation_distance_pct"
    ratio = regime.exit(name, Level.STRESSED) / regime.enter(name, Level.STRESSED)  # type: ignore[operator]
    stated = re.search(r"above (\d+)% for the liquidation distance", EXAMPLE_TOML)
    assert stated is not None and int(stated.group(1)) == round(ratio * 100) == 143

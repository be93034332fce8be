"""Both engines run the same market regime on a devnet market's history: the same changes at
the same times, the same withdrawals and re-entries, and a ledger that explains each run."""

from __future__ import annotations

import pytest

from lpbot.backtest.bars import bars_from_events
from lpbot.backtest.dataset import Dataset
from lpbot.backtest.exact import run_exact
from lpbot.backtest.vector import run_bars
from lpbot.config import RiskConfig, RiskElevatedConfig, RiskStressedConfig
from lpbot.risk.regime import SIGNALS
from tests.backtest.test_engines import CONFIG

pytestmark = pytest.mark.devnet

OFF = {s.name: None for s in SIGNALS}
# the devnet market jumps on the hour: a jump is a 30-minute volatility spike against the day's
RISK = RiskConfig(
    elevated=RiskElevatedConfig(**{**OFF, "vol_30m_ratio": 2.0}),
    stressed=RiskStressedConfig(**{**OFF, "vol_30m_ratio": 2.5}),
)


def test_both_engines_run_the_same_regime_and_actions(market: Dataset) -> None:
    config = CONFIG.model_copy(update={"risk": RISK})
    exact = run_exact(market, config)
    bars = run_bars(bars_from_events(market), config)
    ex, br = exact.notes["regime"], bars.notes["regime"]
    assert ex["transitions"], "the devnet market never stressed the regime"
    assert [(t["t"], t["level"]) for t in ex["transitions"]] == [
        (t["t"], t["level"]) for t in br["transitions"]
    ]
    assert ex["withdrawals"] == br["withdrawals"] >= 1
    kinds = ("withdraw", "reenter")
    assert [(a.kind, a.timestamp) for a in exact.actions if a.kind in kinds] == [
        (a.kind, a.timestamp) for a in bars.actions if a.kind in kinds
    ]
    for result in (exact, bars):  # the ledger explains the run (``finish`` checks it)
        b = result.breakdown
        assert b.total == pytest.approx(b.final_usd - b.initial_usd, abs=1e-6)
    # no regime, or one that never changes, is the run as it was
    silent = RiskConfig(elevated=RiskElevatedConfig(**OFF), stressed=RiskStressedConfig(**OFF))
    quiet = run_exact(market, CONFIG.model_copy(update={"risk": silent}))
    plain = run_exact(market, CONFIG)
    assert quiet.metrics == plain.metrics and quiet.actions == plain.actions

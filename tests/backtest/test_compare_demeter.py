"""lpbot's bars engine against zelos-demeter on a 7-day synthetic set in demeter-fetch's layout:
a fixed range agrees to 1e-6 and an hourly re-centre rebalances at the same times into the same
ranges."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from lpbot.backtest.compare_demeter import build_dataset, compare

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("demeter") is None,
    reason='zelos-demeter is not installed (pip install -e ".[compare]")',
)


def test_lpbot_and_demeter_agree_on_a_week(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))  # demeter caches loaded data under ~/.demeter
    ds = build_dataset(tmp_path / "csv", days=7, seed=7)
    ours, theirs, ours_rc, theirs_rc = compare(ds, isolate=False)
    assert (ours.engine, theirs.engine, ours.mode, ours_rc.mode) == (
        "lpbot", "demeter", "fixed", "recentre",
    )  # fmt: skip
    assert ours.fees_usd > 50  # the range earned, and the price stayed inside it
    assert theirs.fees0 == pytest.approx(ours.fees0, rel=1e-6)
    assert theirs.fees1 == pytest.approx(ours.fees1, rel=1e-6)
    assert theirs.final_usd == pytest.approx(ours.final_usd, rel=1e-6)
    assert theirs.il_usd == pytest.approx(ours.il_usd, rel=1e-6)
    assert ours.rebalances == theirs.rebalances == []
    assert len(ours_rc.rebalances) >= 2
    assert ours_rc.rebalances == theirs_rc.rebalances  # same times, same ranges

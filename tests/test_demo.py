"""The README's first command, shortened: the managed-LP cycle on a private devnet."""

from __future__ import annotations

from pathlib import Path

import pytest

from lpbot import demo

pytestmark = pytest.mark.devnet


def test_the_demo_rebalances_through_the_safe_and_keeps_the_hedge_in_its_band(
    tmp_path: Path,
) -> None:
    lines: list[str] = []
    result = demo.run(days=2, seed=11, out=lines.append, workdir=tmp_path)
    assert result.rebalances >= 1
    assert len(result.reports) == result.rebalances  # every execution had its dry-run report
    assert result.fees_usd > 0
    assert result.gas_usd > 0
    # the hedge stays within its band (0.1 ETH, or 5% of the LP delta) after every sync
    assert result.max_abs_net_delta <= 0.25
    assert any("2 Safe signatures" in line for line in lines)
    assert (tmp_path / "lpbot.db").exists()


def test_the_demo_can_rebalance_through_the_module(tmp_path: Path) -> None:
    lines: list[str] = []
    result = demo.run(days=2, seed=11, out=lines.append, workdir=tmp_path, via="module")
    assert result.rebalances >= 1
    assert any("the module's operator key" in line for line in lines)

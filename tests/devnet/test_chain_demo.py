"""The README's first command, shortened: a real position followed on a private devnet."""

from __future__ import annotations

from decimal import Decimal

import pytest

from lpbot import chain_demo

pytestmark = pytest.mark.devnet


def test_demo_opens_a_position_and_tracks_it_to_the_wei() -> None:
    lines: list[str] = []
    steps = chain_demo.run(hours=3, seed=1, out=lines.append)
    assert len(steps) == 4
    first, last = steps[0], steps[-1]
    # at open, the position is worth what was paid for it, less the rounding in the pool's
    # favour (mint rounds up, the principal rounds down: at most 1 unit of each token)
    assert 0 <= first.hold_usd - first.value_usd < Decimal("0.000002")
    assert first.fees0 == first.fees1 == 0
    # trades around the price pay the position fees, and the last step's block is later
    assert last.fees0 > 0 or last.fees1 > 0
    assert last.block > first.block
    assert any("equal to the wei" in line for line in lines)

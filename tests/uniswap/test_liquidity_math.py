"""LiquidityMath.addDelta against Uniswap/v3-core test/LiquidityMath.spec.ts."""

from __future__ import annotations

import pytest

from lpbot.uniswap.errors import UniswapRevert
from lpbot.uniswap.liquidity_math import add_delta


def test_add_delta():
    assert add_delta(1, 0) == 1
    assert add_delta(1, -1) == 0
    assert add_delta(1, 1) == 2
    assert add_delta(2**128 - 1, 0) == 2**128 - 1
    assert add_delta(2**127, -(2**127)) == 0


def test_add_delta_overflow_la():
    # '2**128-15 + 15 overflows'
    with pytest.raises(UniswapRevert) as exc:
        add_delta(2**128 - 15, 15)
    assert exc.value.reason == "LA"


@pytest.mark.parametrize(("x", "y"), [(0, -1), (3, -4)])
def test_add_delta_underflow_ls(x, y):
    # '0 + -1 underflows' / '3 + -4 underflows'
    with pytest.raises(UniswapRevert) as exc:
        add_delta(x, y)
    assert exc.value.reason == "LS"

"""Position.update (v3-core Position.sol): 'NP', fee crediting, uint128 wrap of tokens owed."""

from __future__ import annotations

import pytest

from lpbot.uniswap import position as position_lib
from lpbot.uniswap.errors import UniswapRevert
from lpbot.uniswap.position import PositionInfo
from tests.uniswap.uniswap_testlib import MAX_UINT128, Q128


def test_poke_of_empty_position_reverts_np():
    info = PositionInfo()
    with pytest.raises(UniswapRevert) as exc:
        position_lib.update(info, 0, 5, 5)
    assert exc.value.reason == "NP"
    assert info == PositionInfo()


def test_update_credits_fees_and_records_growth():
    info = PositionInfo(liquidity=10)
    position_lib.update(info, 0, 3 * Q128, Q128 // 2)
    # mulDiv(growth delta, liquidity, 2**128)
    assert info == PositionInfo(10, 3 * Q128, Q128 // 2, 30, 5)
    position_lib.update(info, 5, 4 * Q128, Q128 // 2)
    # fees are credited on the old liquidity (10), then the liquidity changes
    assert info == PositionInfo(15, 4 * Q128, Q128 // 2, 40, 5)


def test_update_wraps_growth_difference():
    info = PositionInfo(liquidity=1, fee_growth_inside0_last_x128=2**256 - Q128)
    position_lib.update(info, 0, Q128, 0)
    assert info.tokens_owed0 == 2  # (Q128 - (2**256 - Q128)) mod 2**256 = 2 * Q128


def test_tokens_owed_wrap_at_uint128():
    info = PositionInfo(liquidity=1, tokens_owed0=MAX_UINT128)
    position_lib.update(info, 0, 2 * Q128, 0)
    assert info.tokens_owed0 == 1  # (2**128 - 1 + 2) mod 2**128


def test_burn_more_than_position_reverts_ls():
    info = PositionInfo(liquidity=3)
    with pytest.raises(UniswapRevert) as exc:
        position_lib.update(info, -4, 0, 0)
    assert exc.value.reason == "LS"
    assert info == PositionInfo(liquidity=3)


def test_fees_owed_truncates_to_uint128():
    # uint128(FullMath.mulDiv(...)): 1e18 * (2**256 - 1) / 2**128 = 1e18 * 2**128 - 1
    assert position_lib.fees_owed(10**18, 2**256 - 1, 0, 0, 0) == (MAX_UINT128, 0)
    # (2**256 - 1) * (2**128 - 1) // 2**128 = 2**256 - 2**128 - 1
    assert position_lib.fees_owed(2**128 - 1, 0, 2**256 - 1, 0, 0) == (0, MAX_UINT128)
    assert position_lib.fees_owed(1, 0, 0, 5, 0) == ((2**256 - 5) >> 128, 0)

// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {RebalanceFixture} from "./utils/RebalanceFixture.sol";
import {LPRebalanceModule, RebalanceMath} from "../src/LPRebalanceModule.sol";
import {IPositionManager, IV3SwapRouter} from "../src/interfaces/IUniswapV3.sol";
import {PriceFeed} from "../src/PriceFeed.sol";

/// @dev Exposes the module's feeds'-tick search.
contract AnchorTickHarness is LPRebalanceModule {
    constructor(address safe_, IPositionManager npm_, IV3SwapRouter router_) LPRebalanceModule(safe_, npm_, router_) {}

    function tickOf(uint256 num, uint256 den) external pure returns (int24) {
        return _anchorTick(num, den, RebalanceMath.MIN_TICK, RebalanceMath.MAX_TICK - 1);
    }
}

/// @notice The feeds' tick of a price anchor against a reference computation:
///         the largest tick t whose OracleLibrary X128 ratio,
///         floor(getSqrtRatioAtTick(t)**2 / 2**64), does not exceed
///         floor(num * 2**128 / den) (FullMath.mulDiv, an independent path from
///         the module's 512-bit comparison), clamped to [MIN_TICK, MAX_TICK - 1].
contract LPRebalanceModuleAnchorTest is RebalanceFixture {
    AnchorTickHarness internal harness;

    function setUp() public {
        _setUpRebalance();
        harness = new AnchorTickHarness(address(safe), IPositionManager(address(npm)), IV3SwapRouter(address(router)));
    }

    function _ratioX128(int24 tick) internal pure returns (uint256) {
        uint256 s = RebalanceMath.getSqrtRatioAtTick(tick);
        return RebalanceMath.mulDiv(s, s, 1 << 64);
    }

    function _reference(uint256 num, uint256 den) internal pure returns (int24) {
        int24 maxTick = RebalanceMath.MAX_TICK - 1;
        if (num >> 128 >= den) return maxTick; // price >= 2**128: above every tick
        uint256 r = RebalanceMath.mulDiv(num, 1 << 128, den);
        if (_ratioX128(RebalanceMath.MIN_TICK) > r) return RebalanceMath.MIN_TICK;
        // ln(1.0001) ~ 1/10000.5: a first guess from the bit length, then step to the bracket.
        int24 t = 0;
        int256 lo = RebalanceMath.MIN_TICK;
        int256 hi = maxTick;
        while (lo < hi) {
            int256 mid = (lo + hi + 1) / 2;
            if (mid < 0 && (lo + hi + 1) % 2 != 0) mid -= 1; // floor division
            if (_ratioX128(int24(mid)) <= r) lo = mid;
            else hi = mid - 1;
        }
        t = int24(lo);
        return t;
    }

    function testFuzz_anchorTick_matchesReference(uint256 num, uint256 den) public view {
        num = bound(num, 1, type(uint128).max * uint256(1e38));
        den = bound(den, 1, type(uint128).max * uint256(1e38));
        int24 t = harness.tickOf(num, den);
        vm.assertEq(int256(t), int256(_reference(num, den)));
        // The bracket, checked on its own.
        if (num >> 128 < den) {
            uint256 r = RebalanceMath.mulDiv(num, 1 << 128, den);
            if (t > RebalanceMath.MIN_TICK) vm.assertLe(_ratioX128(t), r);
            if (t < RebalanceMath.MAX_TICK - 1) vm.assertGt(_ratioX128(t + 1), r);
        }
    }

    /// @dev Prices near a tick's own ratio (the boundary cases of the rounding).
    function testFuzz_anchorTick_atTickRatios(int24 tick, uint256 den, int8 nudge) public view {
        tick = int24(int256(bound(uint256(int256(tick) + 887272), 1, 2 * 887272 - 2)) - 887272);
        den = bound(den, 1, 1e30);
        uint256 r = _ratioX128(tick);
        // num/den = ratio/2**128 exactly when num = ratio * den / 2**128 is whole; nudge around it.
        uint256 num = RebalanceMath.mulDiv(r, den, 1 << 128);
        int256 n = int256(num) + int256(nudge);
        if (n < 1) n = 1;
        vm.assertEq(int256(harness.tickOf(uint256(n), den)), int256(_reference(uint256(n), den)));
    }

    /// @dev The same USD prices from feeds of other decimals give the same tick
    ///      (both tokens have 18 decimals here).
    function testFuzz_anchorTick_feedDecimalsCancel(uint256 a0, uint256 a1, uint8 k0, uint8 k1) public {
        a0 = bound(a0, 1, 1e20);
        a1 = bound(a1, 1, 1e20);
        k0 = uint8(bound(k0, 0, 10));
        k1 = uint8(bound(k1, 0, 10));
        PriceFeed f0 = new PriceFeed(8 + k0, "A / USD", int256(a0 * 10 ** k0));
        PriceFeed f1 = new PriceFeed(8 + k1, "B / USD", int256(a1 * 10 ** k1));
        vm.prank(address(safe));
        module.setAnchor(address(token0), address(token1), FEE, address(f0), address(f1), 1 hours, 100);
        vm.assertEq(int256(module.anchorTick(address(pool))), int256(_reference(a0, a1)));
    }
}

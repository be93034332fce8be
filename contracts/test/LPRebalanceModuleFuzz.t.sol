// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {RebalanceFixture} from "./utils/RebalanceFixture.sol";
import {IUniswapV3Pool} from "./utils/Interfaces.sol";
import {TestERC20} from "../src/TestERC20.sol";
import {LPRebalanceModule, RebalanceMath} from "../src/LPRebalanceModule.sol";
import {IPositionManager, IV3SwapRouter} from "../src/interfaces/IUniswapV3.sol";

/// @notice Fuzz tests: whatever the operator sends (random selectors and
///         calldata, recipients, tokens, pools, amounts, ticks), no token and no
///         position NFT leaves the Safe for anyone else, and every refusal is
///         the module's named error.
contract LPRebalanceModuleFuzzTest is RebalanceFixture {
    TestERC20 internal other;
    address internal pool500;
    address internal uninitializedPool;
    address[] internal watched;

    function setUp() public {
        _setUpRebalance();
        other = new TestERC20("Other", "OTH", 18);
        other.mint(address(safe), 1_000e18);
        // Pools that exist but are not allow-listed.
        pool500 = factory.createPool(address(token0), address(token1), 500);
        IUniswapV3Pool(pool500).initialize(PRICE_ONE);
        factory.createPool(address(token0), address(other), FEE);
        uninitializedPool = factory.createPool(address(token1), address(other), 500);
        // Idle tokens in the Safe, so that some fuzzed swaps and mints succeed.
        token0.mint(address(safe), 500e18);
        token1.mint(address(safe), 500e18);

        watched.push(operator);
        watched.push(outsider);
        watched.push(address(module));
        watched.push(address(router));
        watched.push(address(npm));
        watched.push(vm.addr(OWNER_KEY_A));
        watched.push(address(1));
        watched.push(address(2));
    }

    // ------------------------------------------------------------ helpers --

    struct Snapshot {
        uint256[] balances; // watched x {token0, token1, other}
        uint256 safeNfts;
    }

    function _snapshot(address extra) internal view returns (Snapshot memory s) {
        s.balances = new uint256[]((watched.length + 1) * 3);
        for (uint256 i = 0; i <= watched.length; ++i) {
            address who = i < watched.length ? watched[i] : extra;
            s.balances[3 * i] = token0.balanceOf(who);
            s.balances[3 * i + 1] = token1.balanceOf(who);
            s.balances[3 * i + 2] = other.balanceOf(who);
        }
        s.safeNfts = npm.balanceOf(address(safe));
    }

    /// @dev No watched account (nor `extra`, unless it is the Safe or the pool)
    ///      gained a token, the Safe's first position is still the Safe's, and
    ///      every position NFT the Safe gained is the Safe's.
    function _assertNothingLeft(Snapshot memory before, address extra) internal view {
        Snapshot memory afterwards = _snapshot(extra);
        bool skipExtra = extra == address(safe) || extra == address(pool) || extra == pool500;
        uint256 n = skipExtra ? watched.length * 3 : afterwards.balances.length;
        for (uint256 i = 0; i < n; ++i) {
            vm.assertLe(afterwards.balances[i], before.balances[i], "an outsider gained tokens");
        }
        // A position can leave the Safe only by being burned, which needs it empty.
        try npm.ownerOf(safeTokenId) returns (address owner) {
            vm.assertEq(owner, address(safe));
        } catch {
            vm.assertLe(afterwards.safeNfts, before.safeNfts);
        }
        vm.assertEq(npm.balanceOf(operator), 0);
        vm.assertEq(npm.balanceOf(outsider), 0);
        vm.assertEq(npm.balanceOf(address(module)), 0);
        vm.assertEq(npm.getApproved(safeTokenId), address(0));
        vm.assertEq(token0.allowance(address(safe), operator), 0);
        vm.assertEq(token0.allowance(address(safe), outsider), 0);
    }

    /// @dev The revert data is one of the module's own errors.
    function _assertNamedError(bytes memory err) internal pure {
        vm.assertGe(err.length, 4, "revert without a named error");
        bytes4 sel = bytes4(err);
        vm.assertTrue(
            sel == LPRebalanceModule.NotOperator.selector || sel == LPRebalanceModule.NotSafe.selector
                || sel == LPRebalanceModule.InvalidConfig.selector || sel == LPRebalanceModule.UnknownPool.selector
                || sel == LPRebalanceModule.SelectorNotAllowed.selector
                || sel == LPRebalanceModule.InvalidCalldataLength.selector
                || sel == LPRebalanceModule.RecipientNotSafe.selector
                || sel == LPRebalanceModule.PoolNotAllowed.selector
                || sel == LPRebalanceModule.PositionNotOwnedBySafe.selector
                || sel == LPRebalanceModule.SpenderNotAllowed.selector
                || sel == LPRebalanceModule.TokenNotAllowed.selector || sel == LPRebalanceModule.PriceDeviates.selector
                || sel == LPRebalanceModule.TwapUnavailable.selector
                || sel == LPRebalanceModule.TooManyRebalances.selector || sel == LPRebalanceModule.TooSoon.selector
                || sel == LPRebalanceModule.SwapTooLarge.selector || sel == LPRebalanceModule.ZeroAmountIn.selector
                || sel == LPRebalanceModule.DeadlineExpired.selector || sel == LPRebalanceModule.CallFailed.selector
                || sel == LPRebalanceModule.DeadlineTooFar.selector || sel == LPRebalanceModule.RangeOffTwap.selector
                || sel == LPRebalanceModule.RangeTooNarrow.selector || sel == LPRebalanceModule.MinimumTooLow.selector
                || sel == LPRebalanceModule.CallLossBudgetExceeded.selector
                || sel == LPRebalanceModule.DayLossBudgetExceeded.selector,
            "unexpected revert"
        );
    }

    function _pick(uint256 seed, address random) internal view returns (address) {
        uint256 k = seed % 10;
        if (k < 3) return address(safe);
        if (k == 3) return operator;
        if (k == 4) return outsider;
        if (k == 5) return address(router);
        if (k == 6) return address(npm);
        if (k == 7) return address(uint160(seed % 3)); // 0, 1 (router: msg.sender), 2 (router: itself)
        if (k == 8) return address(module);
        return random;
    }

    function _token(uint256 seed, address random) internal view returns (address) {
        uint256 k = seed % 6;
        if (k < 2) return address(token0);
        if (k < 4) return address(token1);
        if (k == 4) return address(other);
        return random;
    }

    function _fee(uint256 seed, uint24 random) internal pure returns (uint24) {
        uint256 k = seed % 4;
        if (k < 2) return FEE;
        if (k == 2) return 500;
        return random;
    }

    function _tick(uint256 seed) internal pure returns (int24) {
        return int24(int256(bound(seed, 0, 2 * 887220 / 60))) * 60 - 887220;
    }

    /// @dev One operator call built from fuzzed parts: selector chosen by `kind`.
    function _buildCall(
        uint256 kind,
        address recipient,
        address tokenA,
        address tokenB,
        uint24 fee,
        uint256 amount,
        uint256 seed
    ) internal view returns (bytes memory) {
        uint256 tokenId = seed % 3 == 0 ? safeTokenId : (seed % 3 == 1 ? lpTokenId : seed);
        kind = kind % 8;
        if (kind == 0) {
            return abi.encodeCall(
                LPRebalanceModule.decreaseLiquidity,
                (IPositionManager.DecreaseLiquidityParams(tokenId, uint128(amount), 0, 0, block.timestamp))
            );
        }
        if (kind == 1) {
            return abi.encodeCall(
                LPRebalanceModule.collect,
                (IPositionManager.CollectParams(tokenId, recipient, type(uint128).max, type(uint128).max))
            );
        }
        if (kind == 2) return abi.encodeCall(LPRebalanceModule.burn, (tokenId));
        if (kind == 3) {
            int24 a = _tick(seed);
            int24 b = _tick(seed >> 64);
            (int24 lower, int24 upper) = a < b ? (a, b) : (b, a == b ? a + 60 : a);
            return abi.encodeCall(
                LPRebalanceModule.mint,
                (IPositionManager.MintParams(
                        tokenA, tokenB, fee, lower, upper, amount, amount, 0, 0, recipient, block.timestamp
                    ))
            );
        }
        if (kind == 4) {
            return abi.encodeCall(
                LPRebalanceModule.increaseLiquidity,
                (IPositionManager.IncreaseLiquidityParams(tokenId, amount, amount, 0, 0, block.timestamp))
            );
        }
        if (kind == 5) {
            return abi.encodeCall(
                LPRebalanceModule.swapExactInputSingle,
                (IV3SwapRouter.ExactInputSingleParams(tokenA, tokenB, fee, recipient, amount, 0, 0), block.timestamp)
            );
        }
        if (kind == 6) return abi.encodeCall(LPRebalanceModule.approve, (tokenA, recipient, amount));
        return abi.encodePacked(bytes4(uint32(seed)), amount, recipient);
    }

    // -------------------------------------------------------- properties --

    function testFuzz_OperatorCallsNeverMoveAssetsOut(
        uint256 kind,
        uint256 recipientSeed,
        address randomAddress,
        uint256 tokenSeed,
        uint24 randomFee,
        uint256 amount,
        uint256 seed
    ) public {
        address recipient = _pick(recipientSeed, randomAddress);
        address tokenA = _token(tokenSeed, randomAddress);
        address tokenB = _token(tokenSeed >> 8, randomAddress);
        uint24 fee = _fee(tokenSeed >> 16, randomFee);
        amount = seed % 4 == 0 ? amount : bound(amount, 0, 600e18);
        bytes memory data = _buildCall(kind, recipient, tokenA, tokenB, fee, amount, seed);

        Snapshot memory before = _snapshot(recipient);
        vm.prank(operator);
        (bool ok, bytes memory ret) = address(module).call(data);
        // Kind 7 is a random selector with random arguments: Solidity's decoder
        // refuses arguments out of their type's range without data.
        if (!ok && (kind % 8 != 7 || ret.length > 0)) _assertNamedError(ret);
        _assertNothingLeft(before, recipient);
    }

    function testFuzz_BatchesOfOperatorCallsNeverMoveAssetsOut(uint256[4] calldata kinds, uint256 seed, address random)
        public
    {
        bytes[] memory calls = new bytes[](4);
        for (uint256 i = 0; i < 4; ++i) {
            uint256 s = uint256(keccak256(abi.encode(seed, i)));
            calls[i] = _buildCall(
                kinds[i],
                _pick(s, random),
                _token(s >> 8, random),
                _token(s >> 16, random),
                _fee(s >> 24, 3000),
                bound(s >> 32, 1, 300e18),
                s >> 40
            );
        }
        Snapshot memory before = _snapshot(random);
        vm.prank(operator);
        try module.execute(calls) {}
        catch (bytes memory err) {
            _assertNamedError(err);
        }
        _assertNothingLeft(before, random);
    }

    function testFuzz_RandomCalldataNeverMovesAssetsOut(bytes calldata data) public {
        Snapshot memory before = _snapshot(address(0));
        vm.prank(operator);
        (bool ok, bytes memory ret) = address(module).call(data);
        if (!ok && ret.length > 0) _assertNamedError(ret);
        bytes[] memory calls = new bytes[](1);
        calls[0] = data;
        vm.prank(operator);
        try module.execute(calls) {}
        catch (bytes memory err) {
            // The ABI decoder refuses malformed arguments without data.
            if (err.length > 0) _assertNamedError(err);
        }
        _assertNothingLeft(before, address(0));
    }

    function testFuzz_RevertWhen_CallerNotOperator(address caller, bytes calldata data) public {
        vm.assume(caller != operator);
        Snapshot memory before = _snapshot(caller);
        bytes4 sel = bytes4(data.length >= 4 ? data[:4] : data);
        vm.prank(caller);
        (bool ok, bytes memory ret) = address(module).call(data);
        // Only the Safe's configuration functions and views answer anyone else.
        if (caller != address(safe)) {
            bool isView = sel == module.operator.selector || sel == module.safe.selector
                || sel == module.allowedPool.selector || sel == module.poolFor.selector
                || sel == module.allowedPoolsWithToken.selector || sel == module.factory.selector
                || sel == module.positionManager.selector || sel == module.swapRouter.selector
                || sel == module.twapWindow.selector || sel == module.maxPriceDeviationBps.selector
                || sel == module.maxSwapShareBps.selector || sel == module.maxRebalancesPerDay.selector
                || sel == module.minRebalanceInterval.selector || sel == module.lastRebalanceAt.selector
                || sel == module.rebalanceCount.selector || sel == module.window.selector
                || sel == module.paused.selector || sel == module.maxObservationAge.selector
                || sel == module.lossBudgetPerCallBps.selector || sel == module.lossBudgetPerDayBps.selector
                || sel == module.slippageBps.selector || sel == module.minRangeWidth.selector
                || sel == module.maxDeadlineHorizon.selector || sel == module.LOSS_UNITS_PER_BPS.selector
                || sel == module.MAX_REBALANCES_PER_DAY.selector || sel == module.DEFAULT_TWAP_WINDOW.selector;
            if (!isView) vm.assertFalse(ok, "a non-operator call succeeded");
        }
        if (!ok && ret.length > 0) {
            bytes4 err = bytes4(ret);
            vm.assertTrue(
                err == LPRebalanceModule.NotOperator.selector || err == LPRebalanceModule.NotSafe.selector
                    || err == LPRebalanceModule.SelectorNotAllowed.selector
                    || err == LPRebalanceModule.InvalidConfig.selector || err == LPRebalanceModule.UnknownPool.selector
                    || err == LPRebalanceModule.NotSafeOrOwner.selector
            );
        }
        if (caller != address(safe)) vm.assertEq(module.operator(), operator);
        _assertNothingLeft(before, caller);
    }

    function testFuzz_RevertWhen_RecipientNotSafe(address recipient, uint256 amount, uint8 which) public {
        vm.assume(recipient != address(safe));
        amount = bound(amount, 1, 100e18);
        bytes memory data;
        if (which % 3 == 0) {
            data = abi.encodeCall(
                LPRebalanceModule.collect,
                (IPositionManager.CollectParams(safeTokenId, recipient, uint128(amount), uint128(amount)))
            );
        } else if (which % 3 == 1) {
            IPositionManager.MintParams memory p = _moduleMintParams(-600, 600, amount, amount);
            p.recipient = recipient;
            data = abi.encodeCall(LPRebalanceModule.mint, (p));
        } else {
            IV3SwapRouter.ExactInputSingleParams memory p = _swapParams(which % 2 == 0, amount);
            p.recipient = recipient;
            data = abi.encodeCall(LPRebalanceModule.swapExactInputSingle, (p, block.timestamp));
        }
        vm.prank(operator);
        (bool ok, bytes memory ret) = address(module).call(data);
        vm.assertFalse(ok);
        vm.assertEq(ret, abi.encodeWithSelector(LPRebalanceModule.RecipientNotSafe.selector, recipient));
    }

    function testFuzz_RevertWhen_SpenderNotAllowed(address token, address spender, uint256 amount) public {
        vm.assume(spender != address(npm) && spender != address(router));
        vm.expectRevert(abi.encodeWithSelector(LPRebalanceModule.SpenderNotAllowed.selector, spender));
        vm.prank(operator);
        module.approve(token, spender, amount);
    }

    function testFuzz_RevertWhen_PoolNotAllowed(address tokenA, address tokenB, uint24 fee, uint256 amount) public {
        (address t0, address t1) = tokenA < tokenB ? (tokenA, tokenB) : (tokenB, tokenA);
        vm.assume(!(t0 == address(token0) && t1 == address(token1) && fee == FEE));
        amount = bound(amount, 1, 100e18);
        IV3SwapRouter.ExactInputSingleParams memory p = _swapParams(true, amount);
        (p.tokenIn, p.tokenOut, p.fee) = (tokenA, tokenB, fee);
        vm.expectRevert(abi.encodeWithSelector(LPRebalanceModule.PoolNotAllowed.selector, factory.getPool(t0, t1, fee)));
        vm.prank(operator);
        module.swapExactInputSingle(p, block.timestamp);
    }

    /// @dev The swap share rule, exactly: ceil(amountIn * 10_000 / holdings) <= maxSwapShareBps.
    function testFuzz_swapShareLimit(uint256 amountIn, bool zeroForOne) public {
        amountIn = bound(amountIn, 1, 1_200e18);
        uint256 holdings = 1_000e18; // 500 + 500, at TWAP price 1
        uint256 share = amountIn > holdings ? type(uint256).max : (amountIn * 10_000 + holdings - 1) / holdings;
        Snapshot memory before = _snapshot(address(0));
        vm.prank(operator);
        try module.swapExactInputSingle(_swapParams(zeroForOne, amountIn), block.timestamp) {
            vm.assertLe(share, MAX_SWAP_SHARE);
        } catch (bytes memory err) {
            vm.assertEq(err, abi.encodeWithSelector(LPRebalanceModule.SwapTooLarge.selector, share, MAX_SWAP_SHARE));
        }
        _assertNothingLeft(before, address(0));
    }

    /// @dev After an outside trade of any size, liquidity moves only while
    ///      |spot tick - TWAP tick| <= maxPriceDeviationBps.
    function testFuzz_priceCheck_followsSpotTwapDistance(uint256 pushAmount, bool up) public {
        pushAmount = bound(pushAmount, 1e18, 40_000e18);
        _traderSwap(!up, pushAmount);
        int24 spot = _spotTick();
        int24 twap = _twapTick();
        uint256 distance = spot > twap ? uint256(int256(spot - twap)) : uint256(int256(twap - spot));
        vm.prank(operator);
        try module.decreaseLiquidity(_decreaseParams(safeTokenId, 1e18)) {
            vm.assertLe(distance, MAX_DEVIATION);
        } catch (bytes memory err) {
            vm.assertGt(distance, MAX_DEVIATION);
            vm.assertEq(
                err, abi.encodeWithSelector(LPRebalanceModule.PriceDeviates.selector, address(pool), spot, twap)
            );
        }
    }

    /// @dev Rate limits against a model: at most MAX_PER_DAY in any 24 hours
    ///      (a sliding window), and MIN_INTERVAL between rebalances.
    function testFuzz_rateLimits_matchModel(uint32[8] calldata gaps) public {
        token0.mint(address(safe), 100e18);
        token1.mint(address(safe), 100e18);
        uint256[8] memory at;
        uint256 n = 0;
        for (uint256 i = 0; i < gaps.length; ++i) {
            vm.warp(block.timestamp + bound(gaps[i], 0, 12 hours));
            uint256 inWindow = 0;
            for (uint256 j = 0; j < n; ++j) {
                if (at[j] + 1 days > block.timestamp) ++inWindow;
            }
            bool tooSoon = n != 0 && block.timestamp < at[n - 1] + MIN_INTERVAL;
            bool allowed = !tooSoon && inWindow < MAX_PER_DAY;
            vm.prank(operator);
            try module.swapExactInputSingle(_swapParams(i % 2 == 0, 1e18), block.timestamp) {
                vm.assertTrue(allowed, "rebalance allowed beyond the limits");
                at[n++] = block.timestamp;
                ++inWindow;
            } catch (bytes memory err) {
                vm.assertFalse(allowed, "rebalance refused within the limits");
                bytes4 sel = bytes4(err);
                vm.assertTrue(
                    tooSoon
                        ? sel == LPRebalanceModule.TooSoon.selector
                        : sel == LPRebalanceModule.TooManyRebalances.selector
                );
            }
            vm.assertEq(uint256(_inWindow()), inWindow);
        }
    }

    /// @dev TickMath port against the real pool: initializing at
    ///      getSqrtRatioAtTick(t) gives tick t, one wei less gives t - 1.
    function testFuzz_getSqrtRatioAtTick_matchesPool(int24 tick) public {
        tick = int24(int256(bound(uint256(int256(tick) + 887272), 1, 2 * 887272 - 1))) - 887272;
        uint160 sqrtP = RebalanceMath.getSqrtRatioAtTick(tick);
        IUniswapV3Pool fresh = IUniswapV3Pool(uninitializedPool);
        uint256 snap = vm.snapshotState();
        fresh.initialize(sqrtP);
        (, int24 got,,,,,) = fresh.slot0();
        vm.assertEq(int256(got), int256(tick));
        vm.revertToState(snap);
        fresh.initialize(sqrtP - 1);
        (, got,,,,,) = fresh.slot0();
        vm.assertEq(int256(got), int256(tick) - 1);
    }

    /// @dev LiquidityAmounts port against the real position manager and pool:
    ///      mint computes its liquidity with getLiquidityForAmounts at the pool
    ///      price, and a decrease returns exactly getAmountsForLiquidity (both
    ///      round down).
    function testFuzz_liquidityAmounts_matchPositionManager(
        int24 center,
        uint24 halfWidth,
        uint256 amount0,
        uint256 amount1,
        bool pushUp,
        uint256 push
    ) public {
        _traderSwap(!pushUp, bound(push, 1, 200_000e18));
        int24 lower = (int24(int256(bound(uint256(int256(center) + 3000), 0, 6000))) - 3000) / SPACING * SPACING;
        int24 upper = lower + int24(int256(bound(halfWidth, 1, 100))) * SPACING;
        amount0 = bound(amount0, 0, 400e18);
        amount1 = bound(amount1, 0, 400e18);
        uint160 sqrtP = _sqrtPrice();
        uint128 expected = RebalanceMath.getLiquidityForAmounts(sqrtP, lower, upper, amount0, amount1);
        vm.assume(expected > 1);
        token0.mint(address(safe), amount0);
        token1.mint(address(safe), amount1);
        uint256 tokenId;
        uint128 liquidity;
        vm.prank(address(safe));
        try npm.mint(_mintParams(lower, upper, amount0, amount1)) returns (uint256 id, uint128 l, uint256, uint256) {
            (tokenId, liquidity) = (id, l);
        } catch {
            // v3-periphery's toUint128 reverts where one side's liquidity overflows (a
            // price a hair above the lower tick); the port caps it and takes the other side.
            return;
        }
        vm.assertEq(uint256(liquidity), uint256(expected), "getLiquidityForAmounts");

        (uint256 e0, uint256 e1) = RebalanceMath.getAmountsForLiquidity(sqrtP, lower, upper, liquidity / 2);
        vm.prank(address(safe));
        (uint256 a0, uint256 a1) =
            IPositionManager(address(npm)).decreaseLiquidity(_decreaseParams(tokenId, liquidity / 2));
        vm.assertEq(a0, e0, "getAmountsForLiquidity amount0");
        vm.assertEq(a1, e1, "getAmountsForLiquidity amount1");
    }
}

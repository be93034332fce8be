// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {RebalanceFixture} from "./utils/RebalanceFixture.sol";
import {ISafe} from "./utils/Interfaces.sol";
import {LPRebalanceModule, RebalanceMath} from "../src/LPRebalanceModule.sol";
import {IPositionManager, IV3SwapRouter} from "../src/interfaces/IUniswapV3.sol";
import {PriceFeed} from "../src/PriceFeed.sol";
import {TestERC20} from "../src/TestERC20.sol";

interface IPriceFeedUpdate {
    function updateAnswer(int256 answer) external;
}

/// @notice The ways a stolen or colluding operator key, working with a trader
///         who moves the pool, could take value from the Safe through the
///         module, each written as the attack and shown to revert by name.
///         The module is configured as the devnet configures it: 6 rebalances
///         in any 24 hours, 10 minutes apart, swaps of at most 60%, spot within
///         150 ticks of a 30-minute TWAP, a loss budget of 50 bps per call and
///         150 bps per 24 hours, minimums within 1% of the TWAP amounts, ranges
///         at least 120 ticks wide, deadlines at most 1 hour ahead.
contract LPRebalanceModuleAttackTest is RebalanceFixture {
    uint16 internal constant PER_DAY = 6;
    uint32 internal constant INTERVAL = 10 minutes;
    uint16 internal constant DEVIATION = 150;
    uint16 internal constant CALL_BUDGET = 50;
    uint16 internal constant DAY_BUDGET = 150;
    uint16 internal constant SLIPPAGE = 100;
    uint24 internal constant MIN_WIDTH = 120;

    function setUp() public {
        _setUpRebalance();
        vm.startPrank(address(safe));
        module.setLimits(PER_DAY, INTERVAL, 6_000);
        module.setPriceCheck(TWAP_WINDOW, DEVIATION, MAX_OBSERVATION_AGE);
        module.setLossBudget(CALL_BUDGET, DAY_BUDGET);
        module.setBounds(SLIPPAGE, MIN_WIDTH, DEADLINE_HORIZON);
        vm.stopPrank();
        token0.mint(address(safe), 1_000e18);
        token1.mint(address(safe), 1_000e18);
    }

    // ------------------------------------------------------------ helpers --

    function _pushTo(int24 tick) internal {
        _traderMovePriceTo(RebalanceMath.getSqrtRatioAtTick(tick));
    }

    /// @dev Minimums no lower than the module requires (what an honest bot sends).
    function _honestSwap(bool zeroForOne, uint256 amountIn)
        internal
        view
        returns (IV3SwapRouter.ExactInputSingleParams memory p)
    {
        p = _swapParams(zeroForOne, amountIn);
        (address base, address quote) =
            zeroForOne ? (address(token0), address(token1)) : (address(token1), address(token0));
        uint256 expected = RebalanceMath.getQuoteAtTick(_twapTick(), uint128(amountIn), base, quote);
        p.amountOutMinimum = expected - expected * SLIPPAGE / 10_000;
    }

    function _looseMinimums() internal {
        vm.prank(address(safe));
        module.setBounds(10_000, MIN_WIDTH, DEADLINE_HORIZON);
    }

    // ------------------------------------------------ one-sided mint (1) --

    /// @dev The trader pushes the price to TWAP+145 ticks; the operator mints a
    ///      one-sided range between the TWAP and the spot with all of the Safe's
    ///      token1 and zero minimums, for the trader to sell back through.
    function test_attack_oneSidedMintAboveTwap_reverts() public {
        _pushTo(145);
        vm.assertEq(int256(_twapTick()), 0);
        IPositionManager.MintParams memory p = _moduleMintParams(60, 120, 0, token1.balanceOf(address(safe)));
        vm.expectRevert(
            abi.encodeWithSelector(LPRebalanceModule.RangeOffTwap.selector, int24(60), int24(120), int24(0))
        );
        vm.prank(operator);
        module.mint(p);

        // Even with minimums left loose by the owners, the range must hold the TWAP.
        _looseMinimums();
        vm.expectRevert(
            abi.encodeWithSelector(LPRebalanceModule.RangeOffTwap.selector, int24(60), int24(120), int24(0))
        );
        vm.prank(operator);
        module.mint(p);
        vm.assertEq(npm.balanceOf(address(safe)), 1);
    }

    /// @dev A mint is a trade too: a range that holds the TWAP but is filled at a
    ///      pushed spot is charged its loss at the TWAP, and refused over budget.
    function test_attack_mintAtPushedSpot_isChargedToTheBudget() public {
        _looseMinimums();
        _pushTo(140);
        IPositionManager.MintParams memory p = _moduleMintParams(-60, 180, 1_000e18, 1_000e18);
        uint256 snap = vm.snapshotState();
        vm.prank(operator);
        module.mint(p);
        (, uint256 charged) = module.window();
        vm.assertGt(charged, 0, "the deposit at a pushed spot is charged");
        vm.revertToState(snap);
        uint16 below = uint16(charged / module.LOSS_UNITS_PER_BPS()); // whole bps, under the charge
        vm.prank(address(safe));
        module.setLossBudget(below, DAY_BUDGET);
        vm.expectPartialRevert(LPRebalanceModule.CallLossBudgetExceeded.selector);
        vm.prank(operator);
        module.mint(p);
    }

    function test_attack_zeroMinimumMint_reverts() public {
        vm.expectPartialRevert(LPRebalanceModule.MinimumTooLow.selector);
        vm.prank(operator);
        (bool ok,) =
            address(module).call(abi.encodeCall(LPRebalanceModule.mint, (_moduleMintParams(-600, 600, 500e18, 500e18))));
        ok;
    }

    function test_attack_narrowRange_reverts() public {
        _looseMinimums();
        vm.expectRevert(
            abi.encodeWithSelector(LPRebalanceModule.RangeTooNarrow.selector, int24(0), int24(60), uint256(MIN_WIDTH))
        );
        vm.prank(operator);
        module.mint(_moduleMintParams(0, 60, 100e18, 100e18));
    }

    // --------------------------------------------- swaps off the TWAP (2) --

    /// @dev The trader pushes token0 down 145 ticks (inside the 150-tick
    ///      deviation bound); the operator sells 60% of holdings into it.
    function test_attack_swapAtPushedPrice_zeroMinimum_reverts() public {
        _pushTo(-145);
        vm.expectPartialRevert(LPRebalanceModule.MinimumTooLow.selector);
        vm.prank(operator);
        (bool ok,) = address(module)
            .call(
                abi.encodeCall(LPRebalanceModule.swapExactInputSingle, (_swapParams(true, 1_200e18), block.timestamp))
            );
        ok;
    }

    function test_attack_swapAtPushedPrice_exceedsCallBudget() public {
        _looseMinimums();
        _pushTo(-145);
        vm.expectPartialRevert(LPRebalanceModule.CallLossBudgetExceeded.selector);
        vm.prank(operator);
        (bool ok,) = address(module)
            .call(
                abi.encodeCall(LPRebalanceModule.swapExactInputSingle, (_swapParams(true, 1_200e18), block.timestamp))
            );
        ok;
        (uint256 count, uint256 loss) = module.window();
        vm.assertEq(count, 0);
        vm.assertEq(loss, 0);
    }

    /// @dev Rebalance after rebalance, each within the per-call budget, stop at the 24-hour budget.
    function test_attack_repeatedLossyRebalances_stopAtDayBudget() public {
        _looseMinimums();
        uint256 start = block.timestamp;
        uint256 before = token0.balanceOf(address(safe)) + token1.balanceOf(address(safe));
        bool stopped = false;
        for (uint256 i = 0; i < PER_DAY; ++i) {
            bool zeroForOne = i % 2 == 0;
            _pushTo(zeroForOne ? int24(-100) : int24(100));
            vm.prank(operator);
            try module.swapExactInputSingle(_swapParams(zeroForOne, 500e18), block.timestamp) {}
            catch (bytes memory err) {
                vm.assertEq(bytes4(err), LPRebalanceModule.DayLossBudgetExceeded.selector);
                stopped = true;
                break;
            }
            _pushTo(0);
            vm.warp(block.timestamp + INTERVAL);
            _pushTo(0);
        }
        vm.assertTrue(stopped, "the day budget never stopped the drain");
        (, uint256 loss) = module.window();
        vm.assertLe(loss, uint256(DAY_BUDGET) * module.LOSS_UNITS_PER_BPS());
        // At price 1 the Safe lost no more than the budget (of ~2000 held, ~3000 counted with the position).
        uint256 after_ = token0.balanceOf(address(safe)) + token1.balanceOf(address(safe));
        vm.assertLe(before - after_, 2_000e18 * uint256(DAY_BUDGET) / 10_000 + 1e18);
        // 24 hours after the first loss the budget is free again.
        vm.warp(start + 1 days + uint256(PER_DAY) * INTERVAL);
        (, loss) = module.window();
        vm.assertEq(loss, 0);
    }

    // ------------------------------------- a push against a lagging TWAP --

    /// @dev The market moves and the pool follows to +140 ticks; a minute later
    ///      the 30-minute TWAP still lags near 0. In the operator's block the
    ///      trader pushes spot to -10 (within the deviation bound of the TWAP),
    ///      the operator sells token0 there, and the trader trades the pool back
    ///      to the market: at the TWAP the swap looks nearly fair, at the price
    ///      the pool held before the push it loses ~150 bps of what it sells.
    function test_attack_inBlockPushAgainstLaggingTwap_swapIsCharged() public {
        _looseMinimums();
        _pushTo(140);
        vm.warp(block.timestamp + 1 minutes);
        int24 twap = _twapTick();
        vm.assertTrue(twap < 10, "the TWAP lags the market");
        _pushTo(-10);
        uint256 value = token1.balanceOf(address(safe))
            + RebalanceMath.getQuoteAtTick(
                twap, uint128(token0.balanceOf(address(safe))), address(token0), address(token1)
            );
        uint256 amountIn = 400e18;
        vm.prank(operator);
        uint256 out = module.swapExactInputSingle(_swapParams(true, amountIn), block.timestamp);
        (, uint256 units) = module.window();
        uint256 atMarket = RebalanceMath.getQuoteAtTick(140, uint128(amountIn), address(token0), address(token1));
        vm.assertGt(atMarket - out, amountIn / 100, "sold >1% under the market");
        vm.assertGe(units * value / 1e8, atMarket - out, "the loss at the pre-push price is charged");
    }

    /// @dev The same push, then a mint of the Safe's tokens on a range around
    ///      the lagging TWAP (no swap-share cap applies): the trader's trade back
    ///      to the market sells the position's token0 far under it.
    function test_attack_inBlockPushAgainstLaggingTwap_mintIsCharged() public {
        _looseMinimums();
        _pushTo(140);
        vm.warp(block.timestamp + 1 minutes);
        int24 twap = _twapTick();
        _pushTo(-10);
        uint256 value = token1.balanceOf(address(safe))
            + RebalanceMath.getQuoteAtTick(
                twap, uint128(token0.balanceOf(address(safe))), address(token0), address(token1)
            );
        vm.prank(operator);
        (, uint128 liquidity, uint256 used0, uint256 used1) = module.mint(_moduleMintParams(-60, 60, 500e18, 500e18));
        (, uint256 units) = module.window();
        // The trader's trade back to the market leaves the position all in token1.
        (uint256 back0, uint256 back1) =
            RebalanceMath.getAmountsForLiquidity(RebalanceMath.getSqrtRatioAtTick(140), -60, 60, liquidity);
        uint256 given = used1 + RebalanceMath.getQuoteAtTick(140, uint128(used0), address(token0), address(token1));
        uint256 got = back1 + RebalanceMath.getQuoteAtTick(140, uint128(back0), address(token0), address(token1));
        vm.assertGt(given - got, 2e18, "the position sold under the market");
        vm.assertGe(units * value / 1e8, given - got, "the loss at the pre-push price is charged");
    }

    /// @dev What remains (README): a price held off the market for a TWAP window
    ///      moves both references. The trader holds the pool 1,000 ticks up for
    ///      30 minutes; the operator mints 1,000 of the Safe's token1 on a range
    ///      just holding the held TWAP, charged under 1 bp, and the trader's trade
    ///      back to the market buys it all for token0 at ~9.6% under its worth:
    ///      7.7% of the deposit, about 90 of the Safe's ~4,000 (most of a 3% day
    ///      budget) in one uncharged call, repeatable at every rebalance.
    /// @dev On a pool without an anchor a price held off the market for a whole
    ///      TWAP window moves the reference: the module sees a fair deposit
    ///      where it loses over 7.5% (the README's "What remains").
    function test_heldPrice_unanchoredPool_movesTheReference_lossBeyondTheBudget() public {
        _looseMinimums();
        _pushTo(1_000);
        vm.warp(block.timestamp + TWAP_WINDOW);
        vm.assertEq(int256(_twapTick()), 1_000);
        vm.prank(operator);
        (, uint128 liquidity, uint256 used0, uint256 used1) =
            module.mint(_moduleMintParams(900, 1_020, 1_000e18, 1_000e18));
        (, uint256 units) = module.window();
        vm.assertLe(units, module.LOSS_UNITS_PER_BPS(), "under 1 bp: a fair deposit at the held price");
        // Back at the market (tick 0) the position holds only token0.
        (uint256 back0, uint256 back1) =
            RebalanceMath.getAmountsForLiquidity(RebalanceMath.getSqrtRatioAtTick(0), 900, 1_020, liquidity);
        vm.assertEq(back1, 0);
        uint256 lost = used0 + used1 - back0; // at price 1
        vm.assertGt(lost * 10_000 / (used0 + used1), 750, "over 7.5% of the deposit, uncharged");
    }

    // ------------------------------------------- held price: the anchor --

    uint32 internal constant FEED_MAX_AGE = 1 hours;
    uint24 internal constant ANCHOR_DEVIATION = 50;

    /// @dev USD feeds (8 decimals, as Chainlink's) of both tokens at 1 USD, the
    ///      market price; the pool anchored to them.
    function _anchor() internal returns (PriceFeed feed0, PriceFeed feed1) {
        feed0 = new PriceFeed(8, "TKA / USD", 1e8);
        feed1 = new PriceFeed(8, "TKB / USD", 1e8);
        vm.expectEmit(true, true, true, true, address(module));
        emit LPRebalanceModule.AnchorSet(address(pool), address(feed0), address(feed1), FEED_MAX_AGE, ANCHOR_DEVIATION);
        vm.prank(address(safe));
        module.setAnchor(
            address(token1), address(token0), FEE, address(feed1), address(feed0), FEED_MAX_AGE, ANCHOR_DEVIATION
        );
        (address f0, uint32 maxAge, uint24 maxDeviation, int8 exp, address f1) = module.anchorOf(address(pool));
        vm.assertEq(f0, address(feed0), "feeds sorted with the tokens");
        vm.assertEq(f1, address(feed1));
        vm.assertEq(uint256(maxAge), FEED_MAX_AGE);
        vm.assertEq(uint256(maxDeviation), ANCHOR_DEVIATION);
        vm.assertEq(int256(exp), 0);
    }

    /// @dev The held-price attack above, on a pool anchored to feeds that track
    ///      the market: the TWAP (and the pre-block tick) sit 1_000 ticks off
    ///      the feeds' tick 0, so the mint, a swap and an increase are refused.
    function test_attack_heldPrice_anchoredPool_reverts() public {
        (PriceFeed feed0, PriceFeed feed1) = _anchor();
        _looseMinimums();
        _pushTo(1_000);
        vm.warp(block.timestamp + TWAP_WINDOW);
        feed0.updateAnswer(1e8);
        feed1.updateAnswer(1e8);
        vm.assertEq(int256(_twapTick()), 1_000);
        IPositionManager.MintParams memory m = _moduleMintParams(900, 1_020, 1_000e18, 1_000e18);
        bytes memory deviates = abi.encodeWithSelector(
            LPRebalanceModule.AnchorDeviates.selector, address(pool), int24(0), int24(1_000), int24(1_000)
        );
        vm.expectRevert(deviates);
        vm.prank(operator);
        module.mint(m);
        IV3SwapRouter.ExactInputSingleParams memory s = _swapParams(false, 100e18);
        vm.expectRevert(deviates);
        vm.prank(operator);
        module.swapExactInputSingle(s, block.timestamp);
        IPositionManager.IncreaseLiquidityParams memory inc = _increaseParams(safeTokenId, 100e18, 100e18);
        vm.expectRevert(deviates);
        vm.prank(operator);
        module.increaseLiquidity(inc);
        (uint256 count, uint256 units) = module.window();
        vm.assertEq(count, 0);
        vm.assertEq(units, 0);
    }

    /// @dev Pushing one block earlier moves the pre-block tick with the spot;
    ///      the feeds do not move, so the push is refused all the same.
    function test_attack_pushOneBlockEarlier_anchoredPool_reverts() public {
        _anchor();
        _pushTo(140);
        vm.roll(block.number + 1);
        vm.warp(block.timestamp + 12);
        IV3SwapRouter.ExactInputSingleParams memory s = _swapParams(false, 100e18);
        vm.expectRevert(
            abi.encodeWithSelector(
                LPRebalanceModule.AnchorDeviates.selector, address(pool), int24(0), _twapTick(), int24(140)
            )
        );
        vm.prank(operator);
        module.swapExactInputSingle(s, block.timestamp);
    }

    /// @dev A price held within the anchor's deviation: the deposit is valued at
    ///      the feeds' price too, and the larger shortfall is charged, exactly.
    function test_heldPrice_withinTheAnchor_chargedAtTheFeedsPrice() public {
        (PriceFeed feed0, PriceFeed feed1) = _anchor();
        _looseMinimums();
        _pushTo(40);
        vm.warp(block.timestamp + TWAP_WINDOW);
        feed0.updateAnswer(1e8);
        feed1.updateAnswer(1e8);
        vm.assertEq(int256(_twapTick()), 40);
        uint256 value = token1.balanceOf(address(safe))
            + RebalanceMath.getQuoteAtTick(
                40, uint128(token0.balanceOf(address(safe))), address(token0), address(token1)
            );
        vm.prank(operator);
        (, uint128 liquidity, uint256 used0, uint256 used1) =
            module.mint(_moduleMintParams(-60, 120, 1_000e18, 1_000e18));
        (uint256 back0, uint256 back1) =
            RebalanceMath.getAmountsForLiquidity(RebalanceMath.getSqrtRatioAtTick(0), -60, 120, liquidity);
        uint256 lost = used0 + used1 - back0 - back1; // at the feeds' price 1 (tick 0)
        vm.assertGt(lost, 0);
        (, uint256 units) = module.window();
        vm.assertEq(units, RebalanceMath.mulDivRoundingUp(lost, 1e8, value), "charged at the feeds' price");
        vm.assertLe(units, uint256(CALL_BUDGET) * module.LOSS_UNITS_PER_BPS());
    }

    /// @dev The deviation bound is inclusive: 50 ticks off the feeds' tick pass, 51 do not.
    function test_anchorDeviation_exactAtTheBoundary() public {
        _anchor();
        IV3SwapRouter.ExactInputSingleParams memory s = _honestSwap(true, 1e18);
        int24[4] memory ticks = [int24(50), int24(-50), int24(51), int24(-51)];
        for (uint256 i = 0; i < 4; ++i) {
            uint256 snap = vm.snapshotState();
            _pushTo(ticks[i]);
            vm.warp(block.timestamp + TWAP_WINDOW);
            vm.roll(block.number + 1);
            IPriceFeedUpdate(_feedOf(0)).updateAnswer(1e8);
            IPriceFeedUpdate(_feedOf(1)).updateAnswer(1e8);
            vm.assertEq(int256(_twapTick()), ticks[i]);
            s.amountOutMinimum = 0;
            vm.prank(address(safe));
            module.setBounds(10_000, MIN_WIDTH, DEADLINE_HORIZON);
            if (i >= 2) {
                vm.expectRevert(
                    abi.encodeWithSelector(
                        LPRebalanceModule.AnchorDeviates.selector, address(pool), int24(0), ticks[i], ticks[i]
                    )
                );
            }
            vm.prank(operator);
            module.swapExactInputSingle(s, block.timestamp);
            vm.revertToState(snap);
        }
    }

    function _feedOf(uint256 i) internal view returns (address f) {
        (address f0,,,, address f1) = module.anchorOf(address(pool));
        return i == 0 ? f0 : f1;
    }

    function test_anchor_staleOrNonPositiveFeed_refused() public {
        (PriceFeed feed0, PriceFeed feed1) = _anchor();
        uint256 updatedAt = block.timestamp;
        vm.warp(block.timestamp + FEED_MAX_AGE);
        feed1.updateAnswer(1e8);
        // Exactly maxAge old is still fresh; one second more is stale.
        uint256 snap = vm.snapshotState();
        IV3SwapRouter.ExactInputSingleParams memory s = _honestSwap(true, 1e18);
        vm.prank(operator);
        module.swapExactInputSingle(s, block.timestamp);
        vm.revertToState(snap);
        vm.warp(block.timestamp + 1);
        s = _honestSwap(true, 1e18);
        vm.expectRevert(
            abi.encodeWithSelector(LPRebalanceModule.FeedStale.selector, address(feed0), updatedAt, FEED_MAX_AGE)
        );
        vm.prank(operator);
        module.swapExactInputSingle(s, block.timestamp);
        // A real aggregator may answer 0 or less (PriceFeed refuses to record
        // it, so the test writes its storage).
        feed0.updateAnswer(1e8);
        // Round storage of PriceFeed: mapping `rounds` at slot 2, answer first.
        bytes32 slot = keccak256(abi.encode(uint256(feed1.latestRound()), uint256(2)));
        for (uint256 k = 0; k < 2; ++k) {
            int256 bad = k == 0 ? int256(0) : int256(-1);
            vm.store(address(feed1), slot, bytes32(uint256(bad)));
            vm.expectRevert(abi.encodeWithSelector(LPRebalanceModule.FeedAnswerInvalid.selector, address(feed1), bad));
            vm.prank(operator);
            module.swapExactInputSingle(s, block.timestamp);
        }
        feed1.updateAnswer(1e8);
        vm.prank(operator);
        module.swapExactInputSingle(s, block.timestamp);
    }

    function test_setAnchor_onlySafe_removable_andChecked() public {
        PriceFeed feed = new PriceFeed(8, "TKA / USD", 1e8);
        vm.expectRevert(LPRebalanceModule.NotSafe.selector);
        vm.prank(operator);
        module.setAnchor(address(token0), address(token1), FEE, address(feed), address(0), 1 hours, 50);
        vm.startPrank(address(safe));
        vm.expectRevert(LPRebalanceModule.InvalidConfig.selector);
        module.setAnchor(address(token0), address(token1), FEE, address(feed), address(0), 0, 50);
        vm.expectRevert(LPRebalanceModule.InvalidConfig.selector);
        module.setAnchor(address(token0), address(token1), FEE, outsider, address(0), 1 hours, 50);
        vm.expectRevert(
            abi.encodeWithSelector(LPRebalanceModule.UnknownPool.selector, address(token0), address(token1), uint24(1))
        );
        module.setAnchor(address(token0), address(token1), 1, address(feed), address(0), 1 hours, 50);
        // token1 is "the unit" (1 USD): no feed.
        module.setAnchor(address(token0), address(token1), FEE, address(feed), address(0), 1 hours, 50);
        vm.assertEq(int256(module.anchorTick(address(pool))), 0);
        vm.expectEmit(true, true, true, true, address(module));
        emit LPRebalanceModule.AnchorSet(address(pool), address(0), address(0), 0, 0);
        module.setAnchor(address(token0), address(token1), FEE, address(0), address(0), 0, 0);
        vm.stopPrank();
        (, uint32 maxAge,,,) = module.anchorOf(address(pool));
        vm.assertEq(uint256(maxAge), 0, "removed: the pool behaves as without an anchor");
    }

    /// @dev A real market's decimals: USDC (6) and WETH (18), Chainlink-style
    ///      feeds of 8 decimals at 1 USD and 3000 USD. The feeds' tick is
    ///      floor(log_1.0001(price)), computed to 60 digits: 196256 (USDC as
    ///      token0) or -196257 (WETH as token0).
    function test_anchorTick_usdcWeth_decimals() public {
        TestERC20 usdc = new TestERC20("USD Coin", "USDC", 6);
        TestERC20 wethT = new TestERC20("Wrapped Ether", "WETH", 18);
        address p = factory.createPool(address(usdc), address(wethT), 500);
        PriceFeed usdcFeed = new PriceFeed(8, "USDC / USD", 1e8);
        PriceFeed ethFeed = new PriceFeed(8, "ETH / USD", 3000e8);
        vm.prank(address(safe));
        module.setAnchor(address(usdc), address(wethT), 500, address(usdcFeed), address(ethFeed), 1 hours, 50);
        int24 expected = address(usdc) < address(wethT) ? int24(196256) : int24(-196257);
        vm.assertEq(int256(module.anchorTick(p)), int256(expected));
        // The same price from feeds of other decimals gives the same tick.
        PriceFeed usdcFeed18 = new PriceFeed(18, "USDC / USD", 1e18);
        vm.prank(address(safe));
        module.setAnchor(address(usdc), address(wethT), 500, address(usdcFeed18), address(ethFeed), 1 hours, 50);
        vm.assertEq(int256(module.anchorTick(p)), int256(expected));
        // USDC as the unit (no feed): the same.
        vm.prank(address(safe));
        module.setAnchor(address(usdc), address(wethT), 500, address(0), address(ethFeed), 1 hours, 50);
        vm.assertEq(int256(module.anchorTick(p)), int256(expected));
    }

    // ----------------------------------------- decrease / collect (2, 3) --

    function test_attack_pullLiquidityRepeatedly_rateLimited() public {
        _looseMinimums();
        IPositionManager.DecreaseLiquidityParams memory d = _decreaseParams(safeTokenId, _liquidity(safeTokenId) / 4);
        vm.prank(operator);
        module.decreaseLiquidity(d);
        vm.expectRevert(abi.encodeWithSelector(LPRebalanceModule.TooSoon.selector, block.timestamp + INTERVAL));
        vm.prank(operator);
        module.decreaseLiquidity(d);
        // Collect moves only what is owed into the Safe; it is never refused for rate.
        vm.prank(operator);
        module.collect(_collectParams(safeTokenId));
    }

    function test_attack_zeroMinimumDecrease_reverts() public {
        bytes memory data = abi.encodeCall(
            LPRebalanceModule.decreaseLiquidity, (_decreaseParams(safeTokenId, _liquidity(safeTokenId)))
        );
        vm.expectPartialRevert(LPRebalanceModule.MinimumTooLow.selector);
        vm.prank(operator);
        (bool ok,) = address(module).call(data);
        ok;
    }

    /// @dev The devnet's old limits fitted 12 rebalances in 110 minutes around midnight UTC.
    function test_attack_twelveRebalancesAroundMidnight_reverts() public {
        vm.warp((block.timestamp / 1 days + 1) * 1 days - 55 minutes);
        for (uint256 i = 0; i < PER_DAY; ++i) {
            IV3SwapRouter.ExactInputSingleParams memory s = _honestSwap(i % 2 == 0, 10e18);
            vm.prank(operator);
            module.swapExactInputSingle(s, block.timestamp);
            vm.warp(block.timestamp + INTERVAL);
        }
        vm.assertLt(block.timestamp % 1 days, 1 hours); // past midnight
        IV3SwapRouter.ExactInputSingleParams memory p = _honestSwap(true, 10e18);
        vm.expectRevert(abi.encodeWithSelector(LPRebalanceModule.TooManyRebalances.selector, PER_DAY, PER_DAY));
        vm.prank(operator);
        module.swapExactInputSingle(p, block.timestamp);
    }

    // ------------------------------------------------ deadlines, oracle (3) --

    function test_attack_swapWithoutUsefulDeadline_reverts() public {
        // (parameters are built before each prank: building them reads the pool)
        IV3SwapRouter.ExactInputSingleParams memory p = _honestSwap(true, 10e18);
        uint256 latest = block.timestamp + DEADLINE_HORIZON;
        vm.expectRevert(abi.encodeWithSelector(LPRebalanceModule.DeadlineTooFar.selector, type(uint256).max, latest));
        vm.prank(operator);
        module.swapExactInputSingle(p, type(uint256).max);
        vm.expectRevert(abi.encodeWithSelector(LPRebalanceModule.DeadlineExpired.selector, block.timestamp - 1));
        vm.prank(operator);
        module.swapExactInputSingle(p, block.timestamp - 1);
        vm.prank(operator);
        module.swapExactInputSingle(p, latest);
    }

    /// @dev Selling token0 at a spot above the TWAP is a gain at the TWAP but a
    ///      loss (the fee) at the price the pool holds: the larger is charged,
    ///      whether the oracle is fresh or stale (no observation for longer than
    ///      maxObservationAge, where that price is the spot too).
    function test_staleOracle_chargesTheLargerOfSpotAndTwap() public {
        _looseMinimums();
        _pushTo(100);
        vm.warp(block.timestamp + 20 minutes); // TWAP ~ 66, latest observation 20 minutes old
        int24 twap = _twapTick();
        vm.assertGt(int256(twap), 50);
        uint256 snap = vm.snapshotState();
        vm.prank(address(safe));
        module.setPriceCheck(TWAP_WINDOW, DEVIATION, 1 hours); // fresh enough
        vm.prank(operator);
        module.swapExactInputSingle(_swapParams(true, 100e18), block.timestamp);
        (, uint256 freshLoss) = module.window();
        vm.assertGt(freshLoss, 0, "valued at the pool's price too");
        vm.revertToState(snap);
        vm.prank(operator);
        module.swapExactInputSingle(_swapParams(true, 100e18), block.timestamp);
        (, uint256 staleLoss) = module.window();
        vm.assertEq(staleLoss, freshLoss, "a stale oracle is valued at spot too");
    }

    // ----------------------------------------------------- owner controls (4) --

    function test_anySingleOwnerPausesAtOnce_onlyTheSafeUnpauses() public {
        address ownerA = vm.addr(OWNER_KEY_A);
        vm.expectRevert(abi.encodeWithSelector(LPRebalanceModule.NotSafeOrOwner.selector, outsider));
        vm.prank(outsider);
        module.pause();
        vm.expectRevert(abi.encodeWithSelector(LPRebalanceModule.NotSafeOrOwner.selector, operator));
        vm.prank(operator);
        module.pause();

        vm.expectEmit(true, false, false, false, address(module));
        emit LPRebalanceModule.Paused(ownerA);
        vm.prank(ownerA);
        module.pause();
        vm.assertTrue(module.paused());
        IV3SwapRouter.ExactInputSingleParams memory p = _honestSwap(true, 10e18);
        vm.expectRevert(LPRebalanceModule.IsPaused.selector);
        vm.prank(operator);
        module.swapExactInputSingle(p, block.timestamp);
        vm.expectRevert(LPRebalanceModule.IsPaused.selector);
        vm.prank(operator);
        module.approve(address(token0), address(router), 0);

        // One owner cannot undo it; the Safe's threshold can.
        vm.expectRevert(LPRebalanceModule.NotSafe.selector);
        vm.prank(ownerA);
        module.unpause();
        vm.assertTrue(_execSafeTx(address(module), abi.encodeCall(LPRebalanceModule.unpause, ()), OP_CALL));
        vm.assertFalse(module.paused());
        vm.prank(operator);
        module.swapExactInputSingle(p, block.timestamp);
    }

    function test_ownersSetBudgets_andRotateOperator() public {
        vm.expectRevert(LPRebalanceModule.InvalidConfig.selector);
        vm.prank(address(safe));
        module.setLossBudget(200, 100); // per call above per day
        vm.expectEmit(true, true, false, false, address(module));
        emit LPRebalanceModule.LossBudgetSet(10, 20);
        vm.prank(address(safe));
        module.setLossBudget(10, 20);
        vm.assertEq(uint256(module.lossBudgetPerCallBps()), 10);
        vm.assertEq(uint256(module.lossBudgetPerDayBps()), 20);

        address next = makeAddr("nextOperator");
        vm.assertTrue(_execSafeTx(address(module), abi.encodeCall(LPRebalanceModule.setOperator, (next)), OP_CALL));
        IV3SwapRouter.ExactInputSingleParams memory p = _honestSwap(true, 10e18);
        vm.expectRevert(LPRebalanceModule.NotOperator.selector);
        vm.prank(operator);
        module.swapExactInputSingle(p, block.timestamp);
        vm.prank(next);
        module.swapExactInputSingle(p, block.timestamp);
    }

    /// @dev An honest rebalance at the TWAP fits the budget: decrease, collect, swap, mint, burn.
    function test_honestRebalance_fitsTheBudget() public {
        uint128 liquidity = _liquidity(safeTokenId);
        IPositionManager.DecreaseLiquidityParams memory d = _decreaseParams(safeTokenId, liquidity);
        (uint256 e0, uint256 e1) = _amountsAtTwap(SAFE_LOWER, SAFE_UPPER, liquidity);
        d.amount0Min = e0 - e0 * SLIPPAGE / 10_000;
        d.amount1Min = e1 - e1 * SLIPPAGE / 10_000;
        IPositionManager.MintParams memory m = _moduleMintParams(-1200, 1200, 1_500e18, 1_500e18);
        m.amount0Min = 1_485e18;
        m.amount1Min = 1_485e18;
        bytes[] memory calls = new bytes[](5);
        calls[0] = abi.encodeCall(LPRebalanceModule.decreaseLiquidity, (d));
        calls[1] = abi.encodeCall(LPRebalanceModule.collect, (_collectParams(safeTokenId)));
        calls[2] = abi.encodeCall(LPRebalanceModule.swapExactInputSingle, (_honestSwap(true, 20e18), block.timestamp));
        calls[3] = abi.encodeCall(LPRebalanceModule.mint, (m));
        calls[4] = abi.encodeCall(LPRebalanceModule.burn, (safeTokenId));
        vm.prank(operator);
        module.execute(calls);
        (uint256 count, uint256 loss) = module.window();
        vm.assertEq(count, 1);
        vm.assertGt(loss, 0); // the swap fee
        vm.assertLe(loss, 40 * module.LOSS_UNITS_PER_BPS());
    }

    function _amountsAtTwap(int24 lower, int24 upper, uint128 liquidity) internal view returns (uint256, uint256) {
        (uint256 a0, uint256 a1) = _amountsAt(RebalanceMath.getSqrtRatioAtTick(_twapTick()), lower, upper, liquidity);
        return (a0, a1);
    }

    function _amountsAt(uint160 sqrtP, int24 lower, int24 upper, uint128 liquidity)
        internal
        pure
        returns (uint256 a0, uint256 a1)
    {
        uint160 sa = RebalanceMath.getSqrtRatioAtTick(lower);
        uint160 sb = RebalanceMath.getSqrtRatioAtTick(upper);
        if (sqrtP <= sa) {
            a0 = RebalanceMath.mulDiv(uint256(liquidity) << 96, sb - sa, sb) / sa;
        } else if (sqrtP < sb) {
            a0 = RebalanceMath.mulDiv(uint256(liquidity) << 96, sb - sqrtP, sb) / sqrtP;
            a1 = RebalanceMath.mulDiv(liquidity, sqrtP - sa, 1 << 96);
        } else {
            a1 = RebalanceMath.mulDiv(liquidity, sb - sa, 1 << 96);
        }
    }
}

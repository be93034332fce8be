// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {Vm} from "./utils/Vm.sol";
import {RebalanceFixture} from "./utils/RebalanceFixture.sol";
import {ISafe, IUniswapV3Pool} from "./utils/Interfaces.sol";
import {TestERC20} from "../src/TestERC20.sol";
import {LPRebalanceModule, RebalanceMath} from "../src/LPRebalanceModule.sol";
import {IPositionManager, IV3SwapRouter} from "../src/interfaces/IUniswapV3.sol";

/// @notice Unit tests of LPRebalanceModule: each allowed operator call, each
///         refused one, the limits, the price check and the configuration,
///         against the official Uniswap V3 and Safe 1.4.1 bytecode.
contract LPRebalanceModuleTest is RebalanceFixture {
    function setUp() public {
        _setUpRebalance();
    }

    function _expectRevertCallFailed(string memory reason) internal {
        vm.expectRevert(
            abi.encodeWithSelector(
                LPRebalanceModule.CallFailed.selector, abi.encodeWithSignature("Error(string)", reason)
            )
        );
    }

    // ------------------------------------------------------------- set-up --

    function test_setUp_moduleEnabledAndConfiguredBySignedSafeTx() public view {
        vm.assertTrue(safe.isModuleEnabled(address(module)));
        vm.assertEq(safe.nonce(), 1);
        vm.assertEq(module.safe(), address(safe));
        vm.assertEq(address(module.positionManager()), address(npm));
        vm.assertEq(address(module.swapRouter()), address(router));
        vm.assertEq(address(module.factory()), address(factory));
        vm.assertEq(module.operator(), operator);
        vm.assertEq(module.allowedPool(address(token0), address(token1), FEE), address(pool));
        vm.assertEq(module.poolFor(address(token1), address(token0), FEE), address(pool));
        vm.assertEq(module.allowedPoolsWithToken(address(token0)), 1);
        vm.assertEq(uint256(module.maxRebalancesPerDay()), MAX_PER_DAY);
        vm.assertEq(uint256(module.minRebalanceInterval()), MIN_INTERVAL);
        vm.assertEq(uint256(module.maxSwapShareBps()), MAX_SWAP_SHARE);
        vm.assertEq(uint256(module.twapWindow()), TWAP_WINDOW);
        vm.assertEq(uint256(module.maxPriceDeviationBps()), MAX_DEVIATION);
        vm.assertEq(npm.ownerOf(safeTokenId), address(safe));
        vm.assertEq(token0.allowance(address(safe), address(npm)), type(uint256).max);
        vm.assertEq(token1.allowance(address(safe), address(router)), type(uint256).max);
    }

    function test_RevertWhen_ConstructedWithRouterOfAnotherFactory() public {
        address otherFactory = address(new FakeFactoryHolder(address(1)));
        vm.expectRevert(LPRebalanceModule.InvalidConfig.selector);
        new LPRebalanceModule(address(safe), IPositionManager(address(npm)), IV3SwapRouter(otherFactory));
    }

    function test_RevertWhen_ConstructedWithoutSafeCode() public {
        vm.expectRevert(LPRebalanceModule.InvalidConfig.selector);
        new LPRebalanceModule(outsider, IPositionManager(address(npm)), IV3SwapRouter(address(router)));
    }

    // ------------------------------------------------------------- config --

    function test_RevertWhen_ConfigNotBySafe() public {
        address[3] memory callers = [operator, outsider, vm.addr(OWNER_KEY_A)];
        for (uint256 i = 0; i < callers.length; ++i) {
            vm.startPrank(callers[i]);
            vm.expectRevert(LPRebalanceModule.NotSafe.selector);
            module.setOperator(outsider);
            vm.expectRevert(LPRebalanceModule.NotSafe.selector);
            module.removeOperator();
            vm.expectRevert(LPRebalanceModule.NotSafe.selector);
            module.allowPool(address(token0), address(token1), 500);
            vm.expectRevert(LPRebalanceModule.NotSafe.selector);
            module.disallowPool(address(token0), address(token1), FEE);
            vm.expectRevert(LPRebalanceModule.NotSafe.selector);
            module.setLimits(100, 0, 10_000);
            vm.expectRevert(LPRebalanceModule.NotSafe.selector);
            module.setPriceCheck(1, 10_000, 0);
            vm.stopPrank();
        }
        vm.assertEq(module.operator(), operator);
    }

    function test_setOperator_replacesTheOneOperator() public {
        address next = makeAddr("nextOperator");
        vm.expectEmit(true, true, false, false, address(module));
        emit LPRebalanceModule.OperatorSet(operator, next);
        vm.prank(address(safe));
        module.setOperator(next);
        vm.assertEq(module.operator(), next);

        vm.expectRevert(LPRebalanceModule.NotOperator.selector);
        vm.prank(operator);
        module.approve(address(token0), address(npm), 0);
        vm.prank(next);
        module.approve(address(token0), address(npm), 0);
    }

    function test_removeOperator_operatorCanNoLongerAct() public {
        vm.expectEmit(true, false, false, false, address(module));
        emit LPRebalanceModule.OperatorRemoved(operator);
        vm.prank(address(safe));
        module.removeOperator();
        vm.assertEq(module.operator(), address(0));

        vm.startPrank(operator);
        vm.expectRevert(LPRebalanceModule.NotOperator.selector);
        module.collect(_collectParams(safeTokenId));
        vm.expectRevert(LPRebalanceModule.NotOperator.selector);
        module.execute(new bytes[](0));
        vm.stopPrank();
    }

    function test_removeOperator_bySignedSafeTransaction() public {
        vm.assertTrue(_execSafeTx(address(module), abi.encodeCall(LPRebalanceModule.removeOperator, ()), OP_CALL));
        vm.assertEq(module.operator(), address(0));
    }

    function test_RevertWhen_SetOperatorToZero() public {
        vm.expectRevert(LPRebalanceModule.InvalidConfig.selector);
        vm.prank(address(safe));
        module.setOperator(address(0));
    }

    function test_allowPool_andDisallowPool_updateListAndTokens() public {
        address pool500 = factory.createPool(address(token0), address(token1), 500);
        vm.expectEmit(true, true, true, true, address(module));
        emit LPRebalanceModule.PoolAllowed(pool500, address(token0), address(token1), 500);
        vm.prank(address(safe));
        module.allowPool(address(token1), address(token0), 500);
        vm.assertEq(module.allowedPool(address(token0), address(token1), 500), pool500);
        vm.assertEq(module.allowedPoolsWithToken(address(token1)), 2);

        // Idempotent: allowing twice does not count the tokens twice.
        vm.prank(address(safe));
        module.allowPool(address(token0), address(token1), 500);
        vm.assertEq(module.allowedPoolsWithToken(address(token1)), 2);

        vm.startPrank(address(safe));
        vm.expectEmit(true, true, true, true, address(module));
        emit LPRebalanceModule.PoolDisallowed(pool500, address(token0), address(token1), 500);
        module.disallowPool(address(token0), address(token1), 500);
        module.disallowPool(address(token0), address(token1), FEE);
        vm.stopPrank();
        vm.assertEq(module.allowedPool(address(token0), address(token1), FEE), address(0));
        vm.assertEq(module.allowedPoolsWithToken(address(token0)), 0);

        vm.expectRevert(abi.encodeWithSelector(LPRebalanceModule.TokenNotAllowed.selector, address(token0)));
        vm.prank(operator);
        module.approve(address(token0), address(npm), 1);
    }

    function test_RevertWhen_AllowingPoolThatDoesNotExist() public {
        vm.expectRevert(
            abi.encodeWithSelector(LPRebalanceModule.UnknownPool.selector, address(token0), address(token1), 100)
        );
        vm.prank(address(safe));
        module.allowPool(address(token0), address(token1), 100);
    }

    function test_setLimits_andSetPriceCheck_emit() public {
        vm.startPrank(address(safe));
        vm.expectEmit(false, false, false, true, address(module));
        emit LPRebalanceModule.LimitsSet(2, 600, 10_000);
        module.setLimits(2, 600, 10_000);
        vm.expectEmit(false, false, false, true, address(module));
        emit LPRebalanceModule.PriceCheckSet(600, 20, 60);
        module.setPriceCheck(600, 20, 60);
        vm.stopPrank();
        vm.assertEq(uint256(module.maxRebalancesPerDay()), 2);
        vm.assertEq(uint256(module.minRebalanceInterval()), 600);
        vm.assertEq(uint256(module.maxSwapShareBps()), 10_000);
        vm.assertEq(uint256(module.twapWindow()), 600);
        vm.assertEq(uint256(module.maxPriceDeviationBps()), 20);
    }

    function test_RevertWhen_SwapShareLimitAbove100Percent() public {
        vm.expectRevert(LPRebalanceModule.InvalidConfig.selector);
        vm.prank(address(safe));
        module.setLimits(1, 0, 10_001);
    }

    function test_RevertWhen_TwapWindowZero() public {
        vm.expectRevert(LPRebalanceModule.InvalidConfig.selector);
        vm.prank(address(safe));
        module.setPriceCheck(0, 50, 0);
    }

    // ---------------------------------------------------- allowed: single --

    function test_decreaseLiquidity_owedToSafePosition() public {
        uint128 liquidity = _liquidity(safeTokenId);
        vm.prank(operator);
        (uint256 amount0, uint256 amount1) = module.decreaseLiquidity(_decreaseParams(safeTokenId, liquidity / 2));
        vm.assertGt(amount0, 0);
        vm.assertGt(amount1, 0);
        (,,,,,,, uint128 left,,, uint128 owed0, uint128 owed1) = npm.positions(safeTokenId);
        vm.assertEq(uint256(left), liquidity - liquidity / 2);
        vm.assertEq(uint256(owed0), amount0);
        vm.assertEq(uint256(owed1), amount1);
        vm.assertEq(token0.balanceOf(address(safe)), 0);
        vm.assertEq(uint256(_inWindow()), 1, "decrease counts as a rebalance");
    }

    function test_collect_sendsTokensToSafe() public {
        vm.startPrank(operator);
        (uint256 d0, uint256 d1) = module.decreaseLiquidity(_decreaseParams(safeTokenId, _liquidity(safeTokenId)));
        vm.expectEmit(true, false, false, true, address(module));
        emit LPRebalanceModule.Collected(safeTokenId, d0, d1);
        (uint256 c0, uint256 c1) = module.collect(_collectParams(safeTokenId));
        vm.stopPrank();
        vm.assertEq(c0, d0);
        vm.assertEq(c1, d1);
        vm.assertEq(token0.balanceOf(address(safe)), d0);
        vm.assertEq(token1.balanceOf(address(safe)), d1);
    }

    function test_burn_emptyPosition() public {
        vm.startPrank(operator);
        module.decreaseLiquidity(_decreaseParams(safeTokenId, _liquidity(safeTokenId)));
        module.collect(_collectParams(safeTokenId));
        vm.expectEmit(true, false, false, false, address(module));
        emit LPRebalanceModule.PositionBurned(safeTokenId);
        module.burn(safeTokenId);
        vm.stopPrank();
        vm.assertEq(npm.balanceOf(address(safe)), 0);
    }

    function test_mint_positionOwnedBySafe_countsAsRebalance() public {
        token0.mint(address(safe), 100e18);
        token1.mint(address(safe), 100e18);
        vm.prank(operator);
        (uint256 tokenId, uint128 liquidity, uint256 a0, uint256 a1) =
            module.mint(_moduleMintParams(-1200, 1200, 100e18, 100e18));
        vm.assertEq(npm.ownerOf(tokenId), address(safe));
        vm.assertEq(uint256(_liquidity(tokenId)), liquidity);
        vm.assertEq(token0.balanceOf(address(safe)), 100e18 - a0);
        vm.assertEq(token1.balanceOf(address(safe)), 100e18 - a1);
        vm.assertEq(uint256(_inWindow()), 1);
        vm.assertEq(uint256(module.lastRebalanceAt()), block.timestamp);
    }

    function test_increaseLiquidity_addsToSafePosition() public {
        token0.mint(address(safe), 10e18);
        token1.mint(address(safe), 10e18);
        uint128 before = _liquidity(safeTokenId);
        vm.prank(operator);
        (uint128 added,,) = module.increaseLiquidity(_increaseParams(safeTokenId, 10e18, 10e18));
        vm.assertGt(uint256(added), 0);
        vm.assertEq(uint256(_liquidity(safeTokenId)), uint256(before) + added);
        vm.assertEq(uint256(_inWindow()), 1);
    }

    function test_swapExactInputSingle_outputToSafe() public {
        token0.mint(address(safe), 100e18);
        token1.mint(address(safe), 100e18);
        vm.prank(operator);
        uint256 out = module.swapExactInputSingle(_swapParams(true, 100e18), block.timestamp);
        vm.assertGt(out, 99e18);
        vm.assertEq(token0.balanceOf(address(safe)), 0);
        vm.assertEq(token1.balanceOf(address(safe)), 100e18 + out);
        vm.assertEq(token1.balanceOf(address(router)), 0);
        vm.assertEq(uint256(_inWindow()), 1);
    }

    function test_approve_positionManagerAndRouter() public {
        vm.startPrank(operator);
        vm.expectEmit(true, true, false, true, address(module));
        emit LPRebalanceModule.Approved(address(token0), address(router), 5);
        module.approve(address(token0), address(router), 5);
        module.approve(address(token1), address(npm), 0);
        vm.stopPrank();
        vm.assertEq(token0.allowance(address(safe), address(router)), 5);
        vm.assertEq(token1.allowance(address(safe), address(npm)), 0);
        vm.assertEq(uint256(_inWindow()), 0, "approve is not a rebalance");
    }

    // ----------------------------------------------------- allowed: batch --

    function test_execute_fullRebalance_countsOnce() public {
        bytes[] memory calls = _rebalanceCalls(safeTokenId, 100e18, -1200, 1200, 800e18, 800e18);
        vm.recordLogs();
        vm.prank(operator);
        bytes[] memory results = module.execute(calls);

        (uint256 tokenId, uint128 liquidity,,) = abi.decode(results[3], (uint256, uint128, uint256, uint256));
        vm.assertEq(npm.ownerOf(tokenId), address(safe));
        vm.assertEq(uint256(_liquidity(tokenId)), liquidity);
        vm.assertEq(uint256(_liquidity(safeTokenId)), 0);
        vm.assertEq(uint256(_inWindow()), 1);

        uint256 counted = 0;
        Vm.Log[] memory logs = vm.getRecordedLogs();
        for (uint256 i = 0; i < logs.length; ++i) {
            if (logs[i].emitter == address(module) && logs[i].topics[0] == LPRebalanceModule.RebalanceCounted.selector)
            {
                ++counted;
            }
        }
        vm.assertEq(counted, 1);
    }

    function test_execute_emptyBatchDoesNothing() public {
        vm.prank(operator);
        bytes[] memory results = module.execute(new bytes[](0));
        vm.assertEq(results.length, 0);
        vm.assertEq(uint256(_inWindow()), 0);
    }

    function test_execute_decreaseCollectBurn_countsOnce() public {
        bytes[] memory calls = new bytes[](3);
        calls[0] = abi.encodeCall(
            LPRebalanceModule.decreaseLiquidity, (_decreaseParams(safeTokenId, _liquidity(safeTokenId)))
        );
        calls[1] = abi.encodeCall(LPRebalanceModule.collect, (_collectParams(safeTokenId)));
        calls[2] = abi.encodeCall(LPRebalanceModule.burn, (safeTokenId));
        vm.prank(operator);
        module.execute(calls);
        vm.assertEq(uint256(_inWindow()), 1);
        vm.assertEq(uint256(module.lastRebalanceAt()), block.timestamp);
        vm.assertGt(token0.balanceOf(address(safe)), 999e18);
    }

    // ------------------------------------------------------- wrong caller --

    function test_RevertWhen_CallerIsNotOperator() public {
        address[4] memory callers = [outsider, address(safe), vm.addr(OWNER_KEY_A), trader];
        for (uint256 i = 0; i < callers.length; ++i) {
            vm.startPrank(callers[i]);
            vm.expectRevert(LPRebalanceModule.NotOperator.selector);
            module.decreaseLiquidity(_decreaseParams(safeTokenId, 1));
            vm.expectRevert(LPRebalanceModule.NotOperator.selector);
            module.collect(_collectParams(safeTokenId));
            vm.expectRevert(LPRebalanceModule.NotOperator.selector);
            module.burn(safeTokenId);
            vm.expectRevert(LPRebalanceModule.NotOperator.selector);
            module.mint(_moduleMintParams(-60, 60, 1, 1));
            vm.expectRevert(LPRebalanceModule.NotOperator.selector);
            module.increaseLiquidity(_increaseParams(safeTokenId, 1, 1));
            vm.expectRevert(LPRebalanceModule.NotOperator.selector);
            module.swapExactInputSingle(_swapParams(true, 1), block.timestamp);
            vm.expectRevert(LPRebalanceModule.NotOperator.selector);
            module.approve(address(token0), address(router), 1);
            vm.expectRevert(LPRebalanceModule.NotOperator.selector);
            module.execute(new bytes[](0));
            vm.stopPrank();
        }
    }

    // ---------------------------------------------------- wrong recipient --

    function test_RevertWhen_CollectRecipientIsNotSafe() public {
        IPositionManager.CollectParams memory p = _collectParams(safeTokenId);
        p.recipient = operator;
        vm.expectRevert(abi.encodeWithSelector(LPRebalanceModule.RecipientNotSafe.selector, operator));
        vm.prank(operator);
        module.collect(p);
        // 0 would leave the tokens in the position manager for anyone to sweep.
        p.recipient = address(0);
        vm.expectRevert(abi.encodeWithSelector(LPRebalanceModule.RecipientNotSafe.selector, address(0)));
        vm.prank(operator);
        module.collect(p);
    }

    function test_RevertWhen_MintRecipientIsNotSafe() public {
        IPositionManager.MintParams memory p = _moduleMintParams(-60, 60, 1e18, 1e18);
        p.recipient = outsider;
        vm.expectRevert(abi.encodeWithSelector(LPRebalanceModule.RecipientNotSafe.selector, outsider));
        vm.prank(operator);
        module.mint(p);
    }

    function test_RevertWhen_SwapRecipientIsNotSafe() public {
        token0.mint(address(safe), 1e18);
        // SwapRouter02 reads address(1) as msg.sender and address(2) as the router itself.
        address[3] memory recipients = [operator, address(1), address(2)];
        for (uint256 i = 0; i < recipients.length; ++i) {
            IV3SwapRouter.ExactInputSingleParams memory p = _swapParams(true, 1e18);
            p.recipient = recipients[i];
            vm.expectRevert(abi.encodeWithSelector(LPRebalanceModule.RecipientNotSafe.selector, recipients[i]));
            vm.prank(operator);
            module.swapExactInputSingle(p, block.timestamp);
        }
    }

    // -------------------------------------------------- pool not allowed --

    function test_RevertWhen_MintPoolNotAllowed() public {
        address pool500 = factory.createPool(address(token0), address(token1), 500);
        IUniswapV3Pool(pool500).initialize(PRICE_ONE);
        IPositionManager.MintParams memory p = _moduleMintParams(-60, 60, 1e18, 1e18);
        p.fee = 500;
        vm.expectRevert(abi.encodeWithSelector(LPRebalanceModule.PoolNotAllowed.selector, pool500));
        vm.prank(operator);
        module.mint(p);
    }

    function test_RevertWhen_MintTokensUnsorted() public {
        IPositionManager.MintParams memory p = _moduleMintParams(-60, 60, 1e18, 1e18);
        (p.token0, p.token1) = (p.token1, p.token0);
        vm.expectRevert(abi.encodeWithSelector(LPRebalanceModule.PoolNotAllowed.selector, address(pool)));
        vm.prank(operator);
        module.mint(p);
    }

    function test_RevertWhen_SwapPoolNotAllowed() public {
        TestERC20 other = new TestERC20("Other", "OTH", 18);
        address otherPool = factory.createPool(address(token0), address(other), FEE);
        IV3SwapRouter.ExactInputSingleParams memory p = _swapParams(true, 1e18);
        p.tokenOut = address(other);
        vm.expectRevert(abi.encodeWithSelector(LPRebalanceModule.PoolNotAllowed.selector, otherPool));
        vm.prank(operator);
        module.swapExactInputSingle(p, block.timestamp);

        p.tokenOut = address(token0); // tokenIn == tokenOut: no such pool
        vm.expectRevert(abi.encodeWithSelector(LPRebalanceModule.PoolNotAllowed.selector, address(0)));
        vm.prank(operator);
        module.swapExactInputSingle(p, block.timestamp);
    }

    function test_RevertWhen_PositionPoolWasDisallowed() public {
        vm.prank(address(safe));
        module.disallowPool(address(token0), address(token1), FEE);
        vm.startPrank(operator);
        vm.expectRevert(abi.encodeWithSelector(LPRebalanceModule.PoolNotAllowed.selector, address(pool)));
        module.decreaseLiquidity(_decreaseParams(safeTokenId, 1));
        vm.expectRevert(abi.encodeWithSelector(LPRebalanceModule.PoolNotAllowed.selector, address(pool)));
        module.collect(_collectParams(safeTokenId));
        vm.stopPrank();
    }

    // --------------------------------------------- position not the Safe's --

    function test_RevertWhen_PositionNotOwnedBySafe() public {
        bytes memory err = abi.encodeWithSelector(LPRebalanceModule.PositionNotOwnedBySafe.selector, lpTokenId, lp);
        vm.startPrank(operator);
        vm.expectRevert(err);
        module.decreaseLiquidity(_decreaseParams(lpTokenId, 1));
        IPositionManager.CollectParams memory c = _collectParams(lpTokenId);
        vm.expectRevert(err);
        module.collect(c);
        vm.expectRevert(err);
        module.burn(lpTokenId);
        // increaseLiquidity needs no approval in the position manager: it would pay into lp's position.
        vm.expectRevert(err);
        module.increaseLiquidity(_increaseParams(lpTokenId, 1e18, 1e18));
        vm.stopPrank();
    }

    function test_RevertWhen_PositionDoesNotExist() public {
        vm.expectRevert(abi.encodeWithSelector(LPRebalanceModule.PositionNotOwnedBySafe.selector, 999, address(0)));
        vm.prank(operator);
        module.decreaseLiquidity(_decreaseParams(999, 1));
    }

    // ------------------------------------------------------------ approve --

    function test_RevertWhen_SpenderNotAllowed() public {
        address[5] memory spenders = [outsider, operator, address(safe), address(pool), address(module)];
        for (uint256 i = 0; i < spenders.length; ++i) {
            vm.expectRevert(abi.encodeWithSelector(LPRebalanceModule.SpenderNotAllowed.selector, spenders[i]));
            vm.prank(operator);
            module.approve(address(token0), spenders[i], type(uint256).max);
        }
        vm.assertEq(token0.allowance(address(safe), outsider), 0);
    }

    function test_RevertWhen_ApproveTokenNotInAllowedPool() public {
        TestERC20 other = new TestERC20("Other", "OTH", 18);
        vm.expectRevert(abi.encodeWithSelector(LPRebalanceModule.TokenNotAllowed.selector, address(other)));
        vm.prank(operator);
        module.approve(address(other), address(router), 1);
    }

    /// @dev ERC-721 approve has ERC-20 approve's selector; an approved router
    ///      would let anyone move the NFT through callPositionManager.
    function test_RevertWhen_ApprovingPositionNftToRouter() public {
        vm.expectRevert(abi.encodeWithSelector(LPRebalanceModule.TokenNotAllowed.selector, address(npm)));
        vm.prank(operator);
        module.approve(address(npm), address(router), safeTokenId);
        vm.assertEq(npm.getApproved(safeTokenId), address(0));
    }

    // ------------------------------------------------------------- limits --

    function _oneSwap() internal {
        token0.mint(address(safe), 10e18);
        vm.prank(operator);
        module.swapExactInputSingle(_swapParams(true, 1e18), block.timestamp);
    }

    function test_RevertWhen_RebalanceTooSoon() public {
        _oneSwap();
        vm.warp(block.timestamp + MIN_INTERVAL - 1);
        vm.expectRevert(abi.encodeWithSelector(LPRebalanceModule.TooSoon.selector, block.timestamp + 1));
        vm.prank(operator);
        module.swapExactInputSingle(_swapParams(true, 1e18), block.timestamp);
        vm.warp(block.timestamp + 1);
        vm.prank(operator);
        module.swapExactInputSingle(_swapParams(true, 1e18), block.timestamp);
    }

    function test_RevertWhen_TooManyRebalancesIn24Hours() public {
        for (uint256 i = 0; i < MAX_PER_DAY; ++i) {
            _oneSwap();
            vm.warp(block.timestamp + MIN_INTERVAL);
        }
        vm.assertEq(uint256(_inWindow()), MAX_PER_DAY);
        vm.expectRevert(abi.encodeWithSelector(LPRebalanceModule.TooManyRebalances.selector, MAX_PER_DAY, MAX_PER_DAY));
        vm.prank(operator);
        module.mint(_moduleMintParams(-60, 60, 1e18, 1e18));

        // The window slides: one more fits exactly 24 hours after the first.
        uint256 first = block.timestamp - MAX_PER_DAY * MIN_INTERVAL;
        vm.warp(first + 1 days - 1);
        vm.expectRevert(abi.encodeWithSelector(LPRebalanceModule.TooManyRebalances.selector, MAX_PER_DAY, MAX_PER_DAY));
        vm.prank(operator);
        module.swapExactInputSingle(_swapParams(true, 1e18), block.timestamp);
        vm.warp(first + 1 days);
        _oneSwap();
        vm.assertEq(uint256(_inWindow()), MAX_PER_DAY);
    }

    /// @dev Around midnight UTC the old per-day count allowed twice the limit in a few hours.
    function test_RevertWhen_BatchesAroundMidnight() public {
        vm.prank(address(safe));
        module.setLimits(MAX_PER_DAY, 10 minutes, MAX_SWAP_SHARE);
        vm.warp((block.timestamp / 1 days + 1) * 1 days - 30 minutes);
        for (uint256 i = 0; i < MAX_PER_DAY; ++i) {
            _oneSwap();
            vm.warp(block.timestamp + 10 minutes);
        }
        vm.assertGt(block.timestamp % 1 days, 0);
        vm.assertLt(block.timestamp % 1 days, 1 hours); // a new UTC day
        vm.expectRevert(abi.encodeWithSelector(LPRebalanceModule.TooManyRebalances.selector, MAX_PER_DAY, MAX_PER_DAY));
        vm.prank(operator);
        module.swapExactInputSingle(_swapParams(true, 1e18), block.timestamp);
    }

    /// @dev The 24-hour record is a ring of MAX_REBALANCES_PER_DAY entries: it wraps
    ///      without losing an entry that is still in the window.
    function test_rebalanceRecord_wrapsAroundItsRing() public {
        uint16 max = module.MAX_REBALANCES_PER_DAY();
        vm.prank(address(safe));
        module.setLimits(max, 0, MAX_SWAP_SHARE);
        token0.mint(address(safe), 1_000e18);
        token1.mint(address(safe), 1_000e18);
        for (uint256 i = 0; i < 3 * uint256(max); ++i) {
            vm.warp(block.timestamp + 31 minutes); // 46.4 fit in 24 hours, 48 allowed
            vm.prank(operator);
            module.swapExactInputSingle(_swapParams(i % 2 == 0, 1e18), block.timestamp);
        }
        vm.assertEq(uint256(module.rebalanceCount()), 3 * uint256(max));
        vm.assertEq(_inWindow(), uint256(1 days) / 31 minutes + 1);
        // Packed as fast as allowed: the 49th in 24 hours is refused.
        vm.warp(block.timestamp + 2 days);
        for (uint256 i = 0; i < max; ++i) {
            vm.warp(block.timestamp + 1);
            vm.prank(operator);
            module.swapExactInputSingle(_swapParams(i % 2 == 0, 1e18), block.timestamp);
        }
        vm.warp(block.timestamp + 1);
        vm.expectRevert(abi.encodeWithSelector(LPRebalanceModule.TooManyRebalances.selector, max, max));
        vm.prank(operator);
        module.swapExactInputSingle(_swapParams(true, 1e18), block.timestamp);
    }

    function test_RevertWhen_NoRebalancesAllowed() public {
        vm.prank(address(safe));
        module.setLimits(0, 0, MAX_SWAP_SHARE);
        token0.mint(address(safe), 10e18);
        vm.expectRevert(abi.encodeWithSelector(LPRebalanceModule.TooManyRebalances.selector, 0, 0));
        vm.prank(operator);
        module.swapExactInputSingle(_swapParams(true, 1e18), block.timestamp);
    }

    function test_revertedRebalance_isNotCounted() public {
        token0.mint(address(safe), 10e18);
        IV3SwapRouter.ExactInputSingleParams memory p = _swapParams(true, 1e18);
        p.amountOutMinimum = 2e18; // the router refuses
        _expectRevertCallFailed("Too little received");
        vm.prank(operator);
        module.swapExactInputSingle(p, block.timestamp);
        vm.assertEq(uint256(_inWindow()), 0);
        vm.assertEq(uint256(module.lastRebalanceAt()), 0);
    }

    function test_RevertWhen_SwapTooLarge() public {
        // Holdings: 100 token0 + 100 token1 (at TWAP price 1) = 200 token0; 50% = 100.
        token0.mint(address(safe), 100e18);
        token1.mint(address(safe), 100e18);
        vm.expectRevert(abi.encodeWithSelector(LPRebalanceModule.SwapTooLarge.selector, 5001, MAX_SWAP_SHARE));
        vm.prank(operator);
        module.swapExactInputSingle(_swapParams(true, 100.02e18), block.timestamp);
        vm.prank(operator);
        module.swapExactInputSingle(_swapParams(true, 100e18), block.timestamp);
    }

    function test_RevertWhen_SwapExceedsAllHoldings() public {
        token0.mint(address(safe), 1e18);
        vm.expectRevert(
            abi.encodeWithSelector(LPRebalanceModule.SwapTooLarge.selector, type(uint256).max, MAX_SWAP_SHARE)
        );
        vm.prank(operator);
        module.swapExactInputSingle(_swapParams(true, 2e18), block.timestamp);
    }

    function test_RevertWhen_BatchSwapsExceedShareTogether() public {
        token0.mint(address(safe), 100e18);
        token1.mint(address(safe), 100e18);
        bytes[] memory calls = new bytes[](2);
        calls[0] = abi.encodeCall(LPRebalanceModule.swapExactInputSingle, (_swapParams(true, 60e18), block.timestamp)); // 3000 bps
        calls[1] = abi.encodeCall(LPRebalanceModule.swapExactInputSingle, (_swapParams(false, 50e18), block.timestamp)); // ~2500 bps
        vm.expectPartialRevert(LPRebalanceModule.SwapTooLarge.selector);
        vm.prank(operator);
        module.execute(calls);

        calls[1] = abi.encodeCall(LPRebalanceModule.swapExactInputSingle, (_swapParams(false, 30e18), block.timestamp));
        vm.prank(operator);
        module.execute(calls);
        vm.assertEq(uint256(_inWindow()), 1);
    }

    function test_RevertWhen_SwapAmountInZero() public {
        vm.expectRevert(LPRebalanceModule.ZeroAmountIn.selector);
        vm.prank(operator);
        module.swapExactInputSingle(_swapParams(true, 0), block.timestamp);
    }

    function test_RevertWhen_DeadlineExpired() public {
        IPositionManager.DecreaseLiquidityParams memory p = _decreaseParams(safeTokenId, 1);
        p.deadline = block.timestamp - 1;
        vm.expectRevert(abi.encodeWithSelector(LPRebalanceModule.DeadlineExpired.selector, p.deadline));
        vm.prank(operator);
        module.decreaseLiquidity(p);
    }

    // -------------------------------------------------------- price check --

    function test_RevertWhen_OperatorSwapMovesPriceBeyondDeviation() public {
        vm.prank(address(safe));
        module.setPriceCheck(TWAP_WINDOW, 5, MAX_OBSERVATION_AGE);
        token0.mint(address(safe), 1_000e18);
        token1.mint(address(safe), 1_000e18);
        // About 1.03e24 of liquidity in range: 700 token0 move the price 14 ticks down.
        vm.expectRevert(abi.encodeWithSelector(LPRebalanceModule.PriceDeviates.selector, address(pool), -14, 0));
        vm.prank(operator);
        module.swapExactInputSingle(_swapParams(true, 700e18), block.timestamp);
        vm.assertEq(int256(_spotTick()), 0);

        vm.prank(operator);
        module.swapExactInputSingle(_swapParams(true, 200e18), block.timestamp);
        vm.assertLe(-int256(_spotTick()), 5);
    }

    function test_RevertWhen_MintAfterManipulatingSwap() public {
        token0.mint(address(safe), 10e18);
        token1.mint(address(safe), 10e18);
        _traderSwap(true, 20_000e18); // price down ~4%
        int24 spot = _spotTick();
        vm.assertLt(int256(spot), -int256(uint256(MAX_DEVIATION)));
        vm.expectRevert(abi.encodeWithSelector(LPRebalanceModule.PriceDeviates.selector, address(pool), spot, 0));
        vm.prank(operator);
        module.mint(_moduleMintParams(-1200, 1200, 10e18, 10e18));
    }

    function test_RevertWhen_DecreaseOrIncreaseAfterManipulatingSwap() public {
        _traderSwap(false, 20_000e18); // price up ~4%
        int24 spot = _spotTick();
        bytes memory err = abi.encodeWithSelector(LPRebalanceModule.PriceDeviates.selector, address(pool), spot, 0);
        uint128 liquidity = _liquidity(safeTokenId);
        vm.startPrank(operator);
        vm.expectRevert(err);
        module.decreaseLiquidity(_decreaseParams(safeTokenId, liquidity));
        vm.expectRevert(err);
        module.increaseLiquidity(_increaseParams(safeTokenId, 1e18, 1e18));
        vm.stopPrank();
    }

    function test_RevertWhen_SwapAfterManipulatingSwapLeavesPriceOff() public {
        token0.mint(address(safe), 10e18);
        _traderSwap(false, 20_000e18); // price up ~4%
        vm.expectPartialRevert(LPRebalanceModule.PriceDeviates.selector);
        vm.prank(operator);
        module.swapExactInputSingle(_swapParams(true, 1e18), block.timestamp);
    }

    /// @dev The price is checked before a swap too: a pushed price is refused
    ///      even if the swap would bring it back.
    function test_RevertWhen_SwapStartsAwayFromTwap() public {
        token0.mint(address(safe), 10_000e18);
        token1.mint(address(safe), 10_000e18);
        _traderSwap(false, 5_000e18); // price up ~1%
        int24 spot = _spotTick();
        vm.assertGt(int256(spot), int256(uint256(MAX_DEVIATION)));
        vm.expectRevert(abi.encodeWithSelector(LPRebalanceModule.PriceDeviates.selector, address(pool), spot, 0));
        vm.prank(operator);
        module.swapExactInputSingle(_swapParams(true, 5_000e18), block.timestamp);
    }

    function test_priceCheck_usesTwapNotTheLatestPrice() public {
        // A price held for longer than the window becomes the TWAP.
        _traderSwap(true, 20_000e18);
        int24 spot = _spotTick();
        vm.warp(block.timestamp + TWAP_WINDOW);
        vm.assertEq(int256(_twapTick()), int256(spot));
        vm.prank(operator);
        module.decreaseLiquidity(_decreaseParams(safeTokenId, 1));
    }

    function test_RevertWhen_TwapWindowLongerThanHistory() public {
        vm.prank(address(safe));
        module.setPriceCheck(30 days, MAX_DEVIATION, MAX_OBSERVATION_AGE);
        vm.expectRevert(abi.encodeWithSelector(LPRebalanceModule.TwapUnavailable.selector, address(pool)));
        vm.prank(operator);
        module.decreaseLiquidity(_decreaseParams(safeTokenId, 1));
    }

    function test_freshModule_twapWindowDefaultsTo30Minutes_andAllowsNothing() public {
        LPRebalanceModule fresh =
            new LPRebalanceModule(address(safe), IPositionManager(address(npm)), IV3SwapRouter(address(router)));
        vm.assertEq(uint256(fresh.twapWindow()), 30 minutes);
        vm.startPrank(address(safe));
        safe.enableModule(address(fresh));
        fresh.setOperator(operator);
        fresh.allowPool(address(token0), address(token1), FEE);
        vm.stopPrank();
        vm.expectRevert(abi.encodeWithSelector(LPRebalanceModule.TooManyRebalances.selector, 0, 0));
        vm.prank(operator);
        fresh.decreaseLiquidity(_decreaseParams(safeTokenId, 1));
    }

    // ----------------------------------------------------- calldata shape --

    function test_RevertWhen_UnknownSelectorCalledDirectly() public {
        vm.prank(operator);
        (bool ok, bytes memory ret) =
            address(module).call(abi.encodeWithSignature("transfer(address,uint256)", operator, 1));
        vm.assertFalse(ok);
        vm.assertEq(
            ret,
            abi.encodeWithSelector(
                LPRebalanceModule.SelectorNotAllowed.selector, bytes4(keccak256("transfer(address,uint256)"))
            )
        );
    }

    function test_RevertWhen_BatchHoldsForbiddenSelector() public {
        bytes[] memory calls = new bytes[](1);
        calls[0] = abi.encodeCall(LPRebalanceModule.execute, (new bytes[](0)));
        vm.expectRevert(
            abi.encodeWithSelector(LPRebalanceModule.SelectorNotAllowed.selector, LPRebalanceModule.execute.selector)
        );
        vm.prank(operator);
        module.execute(calls);

        calls[0] = abi.encodeCall(LPRebalanceModule.setOperator, (outsider));
        vm.expectRevert(
            abi.encodeWithSelector(
                LPRebalanceModule.SelectorNotAllowed.selector, LPRebalanceModule.setOperator.selector
            )
        );
        vm.prank(operator);
        module.execute(calls);

        calls[0] = hex"0102";
        vm.expectRevert(abi.encodeWithSelector(LPRebalanceModule.SelectorNotAllowed.selector, bytes4(0x01020000)));
        vm.prank(operator);
        module.execute(calls);
    }

    function test_RevertWhen_BatchCallHasWrongLength() public {
        bytes[] memory calls = new bytes[](1);
        calls[0] = bytes.concat(abi.encodeCall(LPRebalanceModule.burn, (safeTokenId)), hex"00");
        vm.expectRevert(
            abi.encodeWithSelector(
                LPRebalanceModule.InvalidCalldataLength.selector, LPRebalanceModule.burn.selector, 37
            )
        );
        vm.prank(operator);
        module.execute(calls);
    }

    // ------------------------------------------------------------- errors --

    function test_RevertWhen_ModuleDisabled() public {
        // SENTINEL_MODULES (address(1)) precedes the only module in Safe's list.
        vm.prank(address(safe));
        safe.disableModule(address(1), address(module));
        _expectRevertCallFailed("GS104");
        vm.prank(operator);
        module.approve(address(token0), address(router), 1);
    }

    function test_RevertWhen_PositionManagerRefuses_bubblesCallFailed() public {
        _expectRevertCallFailed("Not cleared");
        vm.prank(operator);
        module.burn(safeTokenId);
    }

    // --------------------------------------------------------------- math --

    function test_getSqrtRatioAtTick_boundsAndPrices() public pure {
        vm.assertEq(uint256(RebalanceMath.getSqrtRatioAtTick(0)), 2 ** 96);
        vm.assertEq(uint256(RebalanceMath.getSqrtRatioAtTick(-887272)), 4295128739);
        vm.assertEq(
            uint256(RebalanceMath.getSqrtRatioAtTick(887272)), 1461446703485210103287273052203988822378723970342
        );
    }

    function test_RevertWhen_TickOutOfRange() public {
        MathCaller caller = new MathCaller();
        vm.expectRevert(abi.encodeWithSelector(RebalanceMath.TickOutOfRange.selector, int24(887273)));
        caller.sqrtRatioAtTick(887273);
    }

    function test_getQuoteAtTick_priceOneAndInverse() public pure {
        address a = address(1);
        address b = address(2);
        vm.assertEq(RebalanceMath.getQuoteAtTick(0, 1e18, a, b), 1e18);
        // tick 6932 ~ price 2: a is worth ~2 b, b ~0.5 a.
        uint256 q = RebalanceMath.getQuoteAtTick(6932, 1e18, a, b);
        vm.assertApproxEqAbs(q, 2e18, 1e15);
        vm.assertApproxEqAbs(RebalanceMath.getQuoteAtTick(6932, 1e18, b, a), 0.5e18, 1e15);
        // Above 2^128 sqrt price, the other branch.
        vm.assertGt(RebalanceMath.getQuoteAtTick(800000, 1, a, b), 1e30);
    }
}

contract MathCaller {
    function sqrtRatioAtTick(int24 tick) external pure returns (uint160) {
        return RebalanceMath.getSqrtRatioAtTick(tick);
    }
}

/// @dev Answers factory() with a fixed address (a router of another factory).
contract FakeFactoryHolder {
    address public immutable factory;

    constructor(address factory_) {
        factory = factory_;
    }
}

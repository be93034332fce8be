// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {Test} from "../utils/Test.sol";
import {LiquidityAmounts} from "../utils/LiquidityAmounts.sol";
import {INonfungiblePositionManager, ISwapRouter02, IUniswapV3Pool} from "../utils/Interfaces.sol";
import {TestERC20} from "../../src/TestERC20.sol";
import {LPRebalanceModule, RebalanceMath} from "../../src/LPRebalanceModule.sol";
import {IPositionManager, IV3SwapRouter} from "../../src/interfaces/IUniswapV3.sol";

/// @notice Drives LPRebalanceModule with random operator actions, each one
///         optionally sandwiched by an outside trader: the trader may push the
///         pool price first, and after the action always trades the price back
///         to the reference price 1 (an efficient market around a fixed true
///         price). Time passes between actions.
///
///         Value is counted in token1 at the reference price 1 (both tokens
///         have 18 decimals): idle balances plus each position's amounts at the
///         pool price (which is 1 between actions) plus tokens owed. Swap fees
///         the Safe's positions earn are taken out: fees not yet credited to a
///         position are not counted, and `ghost_feesCredited` sums, exactly as
///         the position manager computes them, the fees credited to tokens
///         owed by each successful operator call that touches a position, so
///         that earned fees cannot hide a loss.
///
///         For every operator action that succeeds, the handler adds what the
///         module's bounds allow it to lose to `ghost_allowedLoss`:
///         - a swap: amountIn * (pool fee + (maxDeviation + 3) ticks) - it
///           executes at prices no worse than the post-swap spot, which is
///           within maxDeviation ticks of a TWAP tick in [-1, 0];
///         - a mint or increase: (amount0 + amount1 paid in) *
///           (maxDeviation + 4) ticks - liquidity added at a spot within the
///           bound loses at most that once the price returns to 1;
///         - decrease, collect, burn, approve: nothing (a decrease at a pushed
///           price only gains at the reference price);
///         - 10 wei of rounding per call.
contract LPRebalanceHandler is Test {
    uint256 internal constant FEE_BPS = 30;
    uint160 internal constant PRICE_ONE = 2 ** 96;
    uint160 internal constant MIN_SQRT_PRICE_LIMIT = 4295128739 + 1;
    uint160 internal constant MAX_SQRT_PRICE_LIMIT = 1461446703485210103287273052203988822378723970342 - 1;
    uint24 internal constant FEE = 3000;

    LPRebalanceModule public immutable module;
    INonfungiblePositionManager public immutable npm;
    ISwapRouter02 public immutable router;
    IUniswapV3Pool public immutable pool;
    TestERC20 public immutable token0;
    TestERC20 public immutable token1;
    address public immutable safe;
    address public immutable operator;
    address public immutable trader;

    uint256 public ghost_allowedLoss;
    uint256 public ghost_feesCredited;
    /// @notice Actions whose own loss exceeded their own allowance (see `_afterAction`).
    uint256 public ghost_stepViolations;
    uint256 public ghost_worstStepExcess;
    uint256 internal lastValue;
    uint256 internal stepAllowance;
    uint256 internal stepFees;
    uint256 public ghost_succeeded;
    uint256 public ghost_refused;
    uint256 public ghost_swaps;
    uint256 public ghost_mints;
    uint256 public ghost_rebalances;
    uint256 public ghost_unnamedReverts;
    uint256 public ghost_limitViolations;
    uint256 public ghost_lastRebalanceAt;
    uint256 public ghost_rebalanceDay;
    uint256 public ghost_rebalancesOnDay;

    constructor(
        LPRebalanceModule module_,
        INonfungiblePositionManager npm_,
        ISwapRouter02 router_,
        IUniswapV3Pool pool_,
        TestERC20 token0_,
        TestERC20 token1_,
        address trader_
    ) {
        module = module_;
        npm = npm_;
        router = router_;
        pool = pool_;
        token0 = token0_;
        token1 = token1_;
        safe = module_.safe();
        operator = module_.operator();
        trader = trader_;
        lastValue = safeValue();
    }

    // ============================================================ actions ==

    /// @notice A whole rebalance in one batch: decrease, collect, swap, mint.
    function rebalance(uint256 seed, uint256 push) external {
        _beforeAction(seed, push);
        (bool haveId, uint256 tokenId) = _safePosition(seed);
        bytes[] memory calls = new bytes[](haveId ? 4 : 2);
        uint256 i = 0;
        if (haveId) {
            calls[i++] = abi.encodeCall(LPRebalanceModule.decreaseLiquidity, (_decreaseParams(tokenId, seed >> 8)));
            calls[i++] = abi.encodeCall(LPRebalanceModule.collect, (_collectParams(tokenId)));
        }
        (uint256 h0, uint256 h1) = _holdingsAfterWithdrawal(tokenId, haveId);
        IV3SwapRouter.ExactInputSingleParams memory s = _swapParams(seed >> 16, h0, h1);
        calls[i++] = abi.encodeCall(LPRebalanceModule.swapExactInputSingle, (s, block.timestamp));
        // Desired amounts up to half of what the Safe holds after the swap (out: 99% of in).
        if (s.tokenIn == address(token0)) (h0, h1) = (h0 - s.amountIn, h1 + s.amountIn * 99 / 100);
        else (h0, h1) = (h0 + s.amountIn * 99 / 100, h1 - s.amountIn);
        calls[i++] = abi.encodeCall(LPRebalanceModule.mint, (_mintParams(seed >> 96, h0, h1)));
        uint256 fees = haveId ? _pendingFees(tokenId) : 0;
        (bool ok, bytes memory ret) = _run(abi.encodeCall(LPRebalanceModule.execute, (calls)), true);
        if (ok) {
            bytes[] memory results = abi.decode(ret, (bytes[]));
            (,, uint256 used0, uint256 used1) = abi.decode(results[i - 1], (uint256, uint128, uint256, uint256));
            _credit(_swapAllowance(s.amountIn) + _liquidityAllowance(used0, used1) + 10 * calls.length, fees);
            ++ghost_rebalances;
        }
        _afterAction();
    }

    function swap(uint256 seed, uint256 push) external {
        _beforeAction(seed, push);
        (uint256 idle0, uint256 idle1) = _idle();
        IV3SwapRouter.ExactInputSingleParams memory s = _swapParams(seed, idle0, idle1);
        (bool ok,) = _run(abi.encodeCall(LPRebalanceModule.swapExactInputSingle, (s, block.timestamp)), true);
        if (ok) {
            _credit(_swapAllowance(s.amountIn) + 10, 0);
            ++ghost_swaps;
        }
        _afterAction();
    }

    function mint(uint256 seed, uint256 push) external {
        _beforeAction(seed, push);
        (uint256 idle0, uint256 idle1) = _idle();
        (bool ok, bytes memory ret) =
            _run(abi.encodeCall(LPRebalanceModule.mint, (_mintParams(seed, idle0, idle1))), true);
        if (ok) {
            (,, uint256 used0, uint256 used1) = abi.decode(ret, (uint256, uint128, uint256, uint256));
            _credit(_liquidityAllowance(used0, used1) + 10, 0);
            ++ghost_mints;
        }
        _afterAction();
    }

    function increaseLiquidity(uint256 seed, uint256 push) external {
        _beforeAction(seed, push);
        (bool haveId, uint256 tokenId) = _safePosition(seed);
        if (haveId) {
            (uint256 idle0, uint256 idle1) = _idle();
            IPositionManager.IncreaseLiquidityParams memory p = IPositionManager.IncreaseLiquidityParams({
                tokenId: tokenId,
                amount0Desired: bound(seed >> 8, 0, idle0),
                amount1Desired: bound(seed >> 40, 0, idle1),
                amount0Min: 0,
                amount1Min: 0,
                deadline: block.timestamp
            });
            uint256 fees = _pendingFees(tokenId);
            (bool ok, bytes memory ret) = _run(abi.encodeCall(LPRebalanceModule.increaseLiquidity, (p)), true);
            if (ok) {
                (, uint256 used0, uint256 used1) = abi.decode(ret, (uint128, uint256, uint256));
                _credit(_liquidityAllowance(used0, used1) + 10, fees);
            }
        }
        _afterAction();
    }

    function decreaseLiquidity(uint256 seed, uint256 push) external {
        _beforeAction(seed, push);
        (bool haveId, uint256 tokenId) = _safePosition(seed);
        if (haveId) {
            uint256 fees = _pendingFees(tokenId);
            (bool ok,) =
                _run(abi.encodeCall(LPRebalanceModule.decreaseLiquidity, (_decreaseParams(tokenId, seed >> 8))), false);
            if (ok) _credit(10, fees);
        }
        _afterAction();
    }

    function collectAndBurn(uint256 seed) external {
        (bool haveId, uint256 tokenId) = _safePosition(seed);
        if (haveId) {
            uint256 fees = _pendingFees(tokenId);
            (bool ok,) = _run(abi.encodeCall(LPRebalanceModule.collect, (_collectParams(tokenId))), false);
            if (ok) _credit(10, fees);
            if (seed % 2 == 0) _run(abi.encodeCall(LPRebalanceModule.burn, (tokenId)), false);
        }
        _afterAction();
    }

    /// @notice The operator tries an approval to an allowed or a refused spender.
    function approve(uint256 seed) external {
        address token = seed % 2 == 0 ? address(token0) : address(token1);
        address spender = (seed >> 1) % 3 == 0 ? address(npm) : ((seed >> 1) % 3 == 1 ? address(router) : trader);
        uint256 amount = (seed >> 8) % 2 == 0 ? type(uint256).max : seed >> 16;
        _run(abi.encodeCall(LPRebalanceModule.approve, (token, spender, amount)), false);
        // Keep the swap and mint paths open for later actions.
        if (spender != trader && amount != type(uint256).max) {
            _run(abi.encodeCall(LPRebalanceModule.approve, (token, spender, type(uint256).max)), false);
        }
    }

    /// @notice The trader pushes the price and trades it back: the Safe's positions earn fees.
    function outsideRoundTrip(uint256 push) external {
        _push(push);
        _restorePrice();
    }

    function warp(uint256 seconds_) external {
        vm.warp(block.timestamp + bound(seconds_, 0, 6 hours));
    }

    // ============================================================= values ==

    /// @notice The Safe's value in token1 at price 1: idle + positions at the pool price + owed.
    function safeValue() public view returns (uint256 value) {
        value = token0.balanceOf(safe) + token1.balanceOf(safe);
        (uint160 sqrtP,,,,,,) = pool.slot0();
        uint256 n = npm.balanceOf(safe);
        for (uint256 i = 0; i < n; ++i) {
            uint256 id = npm.tokenOfOwnerByIndex(safe, i);
            (,,,,, int24 lower, int24 upper, uint128 liquidity,,, uint128 owed0, uint128 owed1) = npm.positions(id);
            (uint256 a0, uint256 a1) = LiquidityAmounts.getAmountsForLiquidity(sqrtP, lower, upper, liquidity);
            value += a0 + a1 + owed0 + owed1;
        }
    }

    // ============================================================ helpers ==

    function _beforeAction(uint256 seed, uint256 push) internal {
        vm.warp(block.timestamp + bound(seed >> 200, 0, 2 hours));
        if (push % 2 == 1) _push(push >> 1);
    }

    /// @dev Restores the price, then checks this action on its own: the value
    ///      lost since the last action (with the fees it credited taken out) is
    ///      within what its operator calls were allowed to lose.
    function _afterAction() internal {
        _restorePrice();
        uint256 value = safeValue();
        if (value + stepAllowance < lastValue + stepFees) {
            ++ghost_stepViolations;
            uint256 excess = lastValue + stepFees - value - stepAllowance;
            if (excess > ghost_worstStepExcess) ghost_worstStepExcess = excess;
        }
        lastValue = value;
        stepAllowance = 0;
        stepFees = 0;
    }

    /// @dev The trader moves the price up or down: three times in four by up to
    ///      ~0.7% (around the module's 0.5% bound), else by up to ~7%.
    function _push(uint256 push) internal {
        uint256 amount = bound(push >> 2, 1e18, (push >> 1) % 4 == 0 ? 35_000e18 : 3_500e18);
        _traderSwap(push % 2 == 0, amount, push % 2 == 0 ? MIN_SQRT_PRICE_LIMIT : MAX_SQRT_PRICE_LIMIT);
    }

    function _restorePrice() internal {
        (uint160 current,,,,,,) = pool.slot0();
        if (current == PRICE_ONE) return;
        _traderSwap(PRICE_ONE < current, 1e30, PRICE_ONE);
        (current,,,,,,) = pool.slot0();
        require(current == PRICE_ONE, "price not restored");
    }

    function _traderSwap(bool zeroForOne, uint256 amountIn, uint160 limit) internal {
        (address tokenIn, address tokenOut) =
            zeroForOne ? (address(token0), address(token1)) : (address(token1), address(token0));
        vm.prank(trader);
        router.exactInputSingle(
            ISwapRouter02.ExactInputSingleParams({
                tokenIn: tokenIn,
                tokenOut: tokenOut,
                fee: FEE,
                recipient: trader,
                amountIn: amountIn,
                amountOutMinimum: 0,
                sqrtPriceLimitX96: limit
            })
        );
    }

    /// @dev Runs one operator call as the operator; a counted action that
    ///      succeeds is checked against the rate limits, a refusal must be named.
    function _run(bytes memory data, bool counted) internal returns (bool ok, bytes memory ret) {
        vm.prank(operator);
        (ok, ret) = address(module).call(data);
        if (ok) {
            ++ghost_succeeded;
            if (counted) _recordRebalance();
        } else {
            ++ghost_refused;
            if (!_isNamed(ret)) ++ghost_unnamedReverts;
        }
    }

    /// @dev Adds what a successful call may lose and the fees it credited.
    function _credit(uint256 allowance, uint256 fees) internal {
        ghost_allowedLoss += allowance;
        ghost_feesCredited += fees;
        stepAllowance += allowance;
        stepFees += fees;
    }

    function _recordRebalance() internal {
        uint256 day = block.timestamp / 1 days;
        if (ghost_lastRebalanceAt != 0 && block.timestamp < ghost_lastRebalanceAt + module.minRebalanceInterval()) {
            ++ghost_limitViolations;
        }
        ghost_rebalancesOnDay = day == ghost_rebalanceDay ? ghost_rebalancesOnDay + 1 : 1;
        ghost_rebalanceDay = day;
        if (ghost_rebalancesOnDay > module.maxRebalancesPerDay()) ++ghost_limitViolations;
        ghost_lastRebalanceAt = block.timestamp;
    }

    function _isNamed(bytes memory err) internal pure returns (bool) {
        if (err.length < 4) return false;
        bytes4 s = bytes4(err);
        return s == LPRebalanceModule.PriceDeviates.selector || s == LPRebalanceModule.TooManyRebalances.selector
            || s == LPRebalanceModule.TooSoon.selector || s == LPRebalanceModule.SwapTooLarge.selector
            || s == LPRebalanceModule.ZeroAmountIn.selector || s == LPRebalanceModule.CallFailed.selector
            || s == LPRebalanceModule.SpenderNotAllowed.selector
            || s == LPRebalanceModule.PositionNotOwnedBySafe.selector || s == LPRebalanceModule.TwapUnavailable.selector
            || s == LPRebalanceModule.DeadlineTooFar.selector || s == LPRebalanceModule.RangeOffTwap.selector
            || s == LPRebalanceModule.RangeTooNarrow.selector || s == LPRebalanceModule.MinimumTooLow.selector
            || s == LPRebalanceModule.CallLossBudgetExceeded.selector
            || s == LPRebalanceModule.DayLossBudgetExceeded.selector;
    }

    /// @dev Fees a position manager poke of `tokenId` credits now (both tokens,
    ///      at price 1): liquidity * (feeGrowthInside - feeGrowthInsideLast) / 2^128
    ///      per token (Tick.getFeeGrowthInside; NonfungiblePositionManager).
    function _pendingFees(uint256 tokenId) internal view returns (uint256) {
        (,,,,, int24 lower, int24 upper, uint128 liquidity, uint256 last0, uint256 last1,,) = npm.positions(tokenId);
        if (liquidity == 0) return 0;
        (uint256 inside0, uint256 inside1) = _feeGrowthInside(lower, upper);
        unchecked {
            return RebalanceMath.mulDiv(inside0 - last0, liquidity, 1 << 128)
                + RebalanceMath.mulDiv(inside1 - last1, liquidity, 1 << 128);
        }
    }

    function _feeGrowthInside(int24 lower, int24 upper) internal view returns (uint256 inside0, uint256 inside1) {
        (, int24 tick,,,,,) = pool.slot0();
        uint256 global0 = pool.feeGrowthGlobal0X128();
        uint256 global1 = pool.feeGrowthGlobal1X128();
        (,, uint256 lower0, uint256 lower1,,,,) = pool.ticks(lower);
        (,, uint256 upper0, uint256 upper1,,,,) = pool.ticks(upper);
        unchecked {
            (uint256 below0, uint256 below1) = tick >= lower ? (lower0, lower1) : (global0 - lower0, global1 - lower1);
            (uint256 above0, uint256 above1) = tick < upper ? (upper0, upper1) : (global0 - upper0, global1 - upper1);
            inside0 = global0 - below0 - above0;
            inside1 = global1 - below1 - above1;
        }
    }

    function _safePosition(uint256 seed) internal view returns (bool, uint256) {
        uint256 n = npm.balanceOf(safe);
        if (n == 0) return (false, 0);
        return (true, npm.tokenOfOwnerByIndex(safe, seed % n));
    }

    function _idle() internal view returns (uint256, uint256) {
        return (token0.balanceOf(safe), token1.balanceOf(safe));
    }

    /// @dev Idle balances plus what withdrawing all of `tokenId` at the current price would add.
    function _holdingsAfterWithdrawal(uint256 tokenId, bool haveId) internal view returns (uint256 h0, uint256 h1) {
        (h0, h1) = _idle();
        if (!haveId) return (h0, h1);
        (uint160 sqrtP,,,,,,) = pool.slot0();
        (,,,,, int24 lower, int24 upper, uint128 liquidity,,, uint128 owed0, uint128 owed1) = npm.positions(tokenId);
        (uint256 a0, uint256 a1) = LiquidityAmounts.getAmountsForLiquidity(sqrtP, lower, upper, liquidity);
        h0 += a0 + owed0;
        h1 += a1 + owed1;
    }

    function _decreaseParams(uint256 tokenId, uint256 seed)
        internal
        view
        returns (IPositionManager.DecreaseLiquidityParams memory)
    {
        (,,,,,,, uint128 liquidity,,,,) = npm.positions(tokenId);
        // All of it half of the time, else a random part (0 is refused by the position manager).
        uint256 part = seed % 2 == 0 ? liquidity : bound(seed >> 1, 0, liquidity);
        return IPositionManager.DecreaseLiquidityParams({
            tokenId: tokenId, liquidity: uint128(part), amount0Min: 0, amount1Min: 0, deadline: block.timestamp
        });
    }

    function _collectParams(uint256 tokenId) internal view returns (IPositionManager.CollectParams memory) {
        return IPositionManager.CollectParams({
            tokenId: tokenId, recipient: safe, amount0Max: type(uint128).max, amount1Max: type(uint128).max
        });
    }

    /// @dev A swap in a random direction of up to 70% of the input token's holdings.
    function _swapParams(uint256 seed, uint256 h0, uint256 h1)
        internal
        view
        returns (IV3SwapRouter.ExactInputSingleParams memory)
    {
        bool zeroForOne = seed % 2 == 0;
        uint256 holding = zeroForOne ? h0 : h1;
        return IV3SwapRouter.ExactInputSingleParams({
            tokenIn: zeroForOne ? address(token0) : address(token1),
            tokenOut: zeroForOne ? address(token1) : address(token0),
            fee: FEE,
            recipient: safe,
            amountIn: bound(seed >> 1, 1, holding * 7 / 10 + 1),
            amountOutMinimum: 0,
            sqrtPriceLimitX96: 0
        });
    }

    /// @dev A random range around the price (out of range now and then) with
    ///      desired amounts up to half the holdings.
    function _mintParams(uint256 seed, uint256 h0, uint256 h1)
        internal
        view
        returns (IPositionManager.MintParams memory)
    {
        int24 center = int24(int256(bound(seed, 0, 20))) * 60 - 600;
        int24 half = int24(int256(bound(seed >> 8, 1, 20))) * 60;
        return IPositionManager.MintParams({
            token0: address(token0),
            token1: address(token1),
            fee: FEE,
            tickLower: center - half,
            tickUpper: center + half,
            amount0Desired: bound(seed >> 16, 0, h0 / 2),
            amount1Desired: bound(seed >> 96, 0, h1 / 2),
            amount0Min: 0,
            amount1Min: 0,
            recipient: safe,
            deadline: block.timestamp
        });
    }

    function _swapAllowance(uint256 amountIn) internal view returns (uint256) {
        uint256 bps = FEE_BPS + module.maxPriceDeviationBps() + 3;
        return (amountIn * bps + 9_999) / 10_000;
    }

    function _liquidityAllowance(uint256 amount0, uint256 amount1) internal view returns (uint256) {
        uint256 bps = uint256(module.maxPriceDeviationBps()) + 4;
        return ((amount0 + amount1) * bps + 9_999) / 10_000;
    }
}

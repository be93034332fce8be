// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {Test} from "../utils/Test.sol";
import {LiquidityAmounts} from "../utils/LiquidityAmounts.sol";
import {INonfungiblePositionManager, ISwapRouter02, IUniswapV3Pool} from "../utils/Interfaces.sol";
import {TestERC20} from "../../src/TestERC20.sol";
import {PriceFeed} from "../../src/PriceFeed.sol";
import {LPRebalanceModule, RebalanceMath} from "../../src/LPRebalanceModule.sol";
import {IPositionManager, IV3SwapRouter} from "../../src/interfaces/IUniswapV3.sol";

/// @notice An adversary that holds both the operator key and a trader with deep
///         pockets, against LPRebalanceModule on two allow-listed pools of the
///         same pair (fee tiers 0.3% and 0.05%). The fair price is 1 (both
///         tokens have 18 decimals). The trader may push a pool's price before
///         an operator action (a sandwich: the price is traded back to 1 after
///         it), or push it and hold it while time passes, so that the TWAP
///         follows the pushed price (`hold`; the next action runs at the held
///         price). The operator's minimums are left free (the owners' slippage
///         setting is 100%), so the loss budget is the only bound on value.
///
///         Value is the Safe's at the fair price: idle balances plus each
///         position's amounts at price 1 plus tokens owed; it does not depend
///         on where the trader has the pools. Fees the Safe's positions earn
///         are taken out: each operator call that touches a position credits
///         exactly the fees the position manager adds to its tokens owed.
///
///         Per operator action, `loss` is the fair value lost net of those
///         fees. It is bounded by what the module charged to its budget
///         (converted back from units of 1e-8 of value) plus the oracle error:
///         the module values at the TWAP, which a held price moves off 1, by
///         |1.0001^twapTick - 1| per unit of value moved (swap input, or twice
///         a deposit). Decrease, collect, burn and approve lose nothing.
///
///         Pool 0 is anchored (the test sets it) to USD feeds of both tokens
///         that track the fair price: the handler writes 1 USD to both before
///         every operator action. There the module also values at the feeds'
///         price, so its loss is bounded by the charge alone (no oracle error).
contract LPRebalanceHandler is Test {
    uint160 internal constant PRICE_ONE = 2 ** 96;
    uint160 internal constant MIN_SQRT_PRICE_LIMIT = 4295128739 + 1;
    uint160 internal constant MAX_SQRT_PRICE_LIMIT = 1461446703485210103287273052203988822378723970342 - 1;
    uint256 internal constant ROUNDING = 10; // wei per operator call

    LPRebalanceModule public immutable module;
    INonfungiblePositionManager public immutable npm;
    ISwapRouter02 public immutable router;
    TestERC20 public immutable token0;
    TestERC20 public immutable token1;
    address public immutable safe;
    address public immutable operator;
    address public immutable trader;
    IUniswapV3Pool[2] internal pools;
    uint24[2] internal fees;
    /// @notice USD feeds of token0 and token1 (8 decimals, always 1 USD), anchoring pool 0.
    PriceFeed public immutable feed0;
    PriceFeed public immutable feed1;

    /// @notice Per-action excess of the fair-value loss over its charge and oracle error.
    uint256 public ghost_stepViolations;
    uint256 public ghost_worstStepExcess;
    /// @notice Decrease/collect/burn/approve actions that lost fair value.
    uint256 public ghost_nonSwapViolations;
    /// @notice 24-hour windows whose loss (beyond fees and oracle error) exceeded the day budget.
    uint256 public ghost_windowViolations;
    uint256 public ghost_unnamedReverts;
    uint256 public ghost_limitViolations;
    uint256 public ghost_anchorRefusals;
    uint256 public ghost_succeeded;
    uint256 public ghost_refused;
    uint256 public ghost_budgetRefusals;
    uint256 public ghost_holds;
    uint256 public ghost_chargedUnits;

    struct Step {
        uint256 at;
        int256 loss; // net of fees and oracle error
        uint256 value;
    }

    Step[] internal steps;
    uint256[] internal rebalanceTimes;
    bool internal holding;

    // per action
    uint256 internal valueBefore;
    uint256 internal unitsBefore;
    uint256 internal oracleErr;
    uint256 internal feesCredited;
    uint256 internal calls;
    bool internal valueMoving;

    constructor(
        LPRebalanceModule module_,
        INonfungiblePositionManager npm_,
        ISwapRouter02 router_,
        IUniswapV3Pool[2] memory pools_,
        uint24[2] memory fees_,
        TestERC20 token0_,
        TestERC20 token1_,
        address trader_
    ) {
        module = module_;
        npm = npm_;
        router = router_;
        pools = pools_;
        fees = fees_;
        token0 = token0_;
        token1 = token1_;
        safe = module_.safe();
        operator = module_.operator();
        trader = trader_;
        feed0 = new PriceFeed(8, "TKA / USD", 1e8);
        feed1 = new PriceFeed(8, "TKB / USD", 1e8);
    }

    // ============================================================ actions ==

    /// @notice A whole rebalance in one batch on one pool: decrease, collect, swap, mint.
    function rebalance(uint256 seed, uint256 push) external {
        uint256 p = _beforeAction(seed, push);
        (bool haveId, uint256 tokenId) = _safePosition(seed);
        bytes[] memory batch = new bytes[](haveId ? 4 : 2);
        uint256 i = 0;
        if (haveId) {
            batch[i++] = abi.encodeCall(LPRebalanceModule.decreaseLiquidity, (_decreaseParams(tokenId, seed >> 8)));
            batch[i++] = abi.encodeCall(LPRebalanceModule.collect, (_collectParams(tokenId)));
            _creditFees(tokenId);
        }
        (uint256 h0, uint256 h1) = _holdingsAfterWithdrawal(tokenId, haveId);
        IV3SwapRouter.ExactInputSingleParams memory s = _swapParams(p, seed >> 16, h0, h1);
        batch[i++] = abi.encodeCall(LPRebalanceModule.swapExactInputSingle, (s, block.timestamp));
        if (s.tokenIn == address(token0)) (h0, h1) = (h0 - s.amountIn, h1 + s.amountIn * 99 / 100);
        else (h0, h1) = (h0 + s.amountIn * 99 / 100, h1 - s.amountIn);
        batch[i++] = abi.encodeCall(LPRebalanceModule.mint, (_mintParams(p, seed >> 96, h0, h1)));
        _oracleErr(p, s.amountIn, 1);
        (bool ok, bytes memory ret) = _run(abi.encodeCall(LPRebalanceModule.execute, (batch)), batch.length, true);
        if (ok) {
            bytes[] memory results = abi.decode(ret, (bytes[]));
            (,, uint256 used0, uint256 used1) = abi.decode(results[i - 1], (uint256, uint128, uint256, uint256));
            _oracleErr(p, used0 + used1, 2);
        }
        _afterAction();
    }

    function swap(uint256 seed, uint256 push) external {
        uint256 p = _beforeAction(seed, push);
        (uint256 idle0, uint256 idle1) = _idle();
        IV3SwapRouter.ExactInputSingleParams memory s = _swapParams(p, seed, idle0, idle1);
        _oracleErr(p, s.amountIn, 1);
        _run(abi.encodeCall(LPRebalanceModule.swapExactInputSingle, (s, block.timestamp)), 1, true);
        _afterAction();
    }

    function mint(uint256 seed, uint256 push) external {
        uint256 p = _beforeAction(seed, push);
        (uint256 idle0, uint256 idle1) = _idle();
        (bool ok, bytes memory ret) =
            _run(abi.encodeCall(LPRebalanceModule.mint, (_mintParams(p, seed, idle0, idle1))), 1, true);
        if (ok) {
            (,, uint256 used0, uint256 used1) = abi.decode(ret, (uint256, uint128, uint256, uint256));
            _oracleErr(p, used0 + used1, 2);
        }
        _afterAction();
    }

    function increaseLiquidity(uint256 seed, uint256 push) external {
        _beforeAction(seed, push);
        (bool haveId, uint256 tokenId) = _safePosition(seed);
        if (haveId) {
            (uint256 idle0, uint256 idle1) = _idle();
            IPositionManager.IncreaseLiquidityParams memory q = IPositionManager.IncreaseLiquidityParams({
                tokenId: tokenId,
                amount0Desired: bound(seed >> 8, 0, idle0),
                amount1Desired: bound(seed >> 40, 0, idle1),
                amount0Min: 0,
                amount1Min: 0,
                deadline: block.timestamp
            });
            _creditFees(tokenId);
            (bool ok, bytes memory ret) = _run(abi.encodeCall(LPRebalanceModule.increaseLiquidity, (q)), 1, true);
            if (ok) {
                (, uint256 used0, uint256 used1) = abi.decode(ret, (uint128, uint256, uint256));
                _oracleErr(_poolIndexOf(tokenId), used0 + used1, 2);
            } else {
                feesCredited = 0;
            }
        }
        _afterAction();
    }

    function decreaseLiquidity(uint256 seed, uint256 push) external {
        _beforeAction(seed, push);
        (bool haveId, uint256 tokenId) = _safePosition(seed);
        if (haveId) {
            _creditFees(tokenId);
            (bool ok,) = _run(
                abi.encodeCall(LPRebalanceModule.decreaseLiquidity, (_decreaseParams(tokenId, seed >> 8))), 1, false
            );
            if (!ok) feesCredited = 0;
        }
        _afterAction();
    }

    function collectAndBurn(uint256 seed) external {
        _beforeAction(seed, 0);
        (bool haveId, uint256 tokenId) = _safePosition(seed);
        if (haveId) {
            _creditFees(tokenId);
            (bool ok,) = _run(abi.encodeCall(LPRebalanceModule.collect, (_collectParams(tokenId))), 1, false);
            if (!ok) feesCredited = 0;
            if (seed % 2 == 0) _run(abi.encodeCall(LPRebalanceModule.burn, (tokenId)), 1, false);
        }
        _afterAction();
    }

    /// @notice The operator tries an approval to an allowed or a refused spender.
    function approve(uint256 seed) external {
        _beforeAction(seed, 0);
        address token = seed % 2 == 0 ? address(token0) : address(token1);
        address spender = (seed >> 1) % 3 == 0 ? address(npm) : ((seed >> 1) % 3 == 1 ? address(router) : trader);
        uint256 amount = (seed >> 8) % 2 == 0 ? type(uint256).max : seed >> 16;
        _run(abi.encodeCall(LPRebalanceModule.approve, (token, spender, amount)), 1, false);
        // Keep the swap and mint paths open for later actions.
        if (spender != trader && amount != type(uint256).max) {
            _run(abi.encodeCall(LPRebalanceModule.approve, (token, spender, type(uint256).max)), 1, false);
        }
        _afterAction();
    }

    /// @notice The trader pushes a pool's price and holds it while up to two TWAP
    ///         windows pass; the next operator action runs at the held price.
    function hold(uint256 push, uint256 seconds_) external {
        _restorePrices();
        _push(push % 2, push >> 1);
        vm.warp(block.timestamp + bound(seconds_, 0, 1 hours));
        holding = true;
        ++ghost_holds;
    }

    /// @notice The trader pushes the price and trades it back: the Safe's positions earn fees.
    function outsideRoundTrip(uint256 push) external {
        _push(push % 2, push >> 1);
        _restorePrices();
        holding = false;
    }

    function warp(uint256 seconds_) external {
        vm.warp(block.timestamp + bound(seconds_, 0, 6 hours));
    }

    /// @notice Jumps to a few minutes before the next UTC midnight.
    function toMidnight(uint256 seconds_) external {
        uint256 target = (block.timestamp / 1 days + 1) * 1 days - bound(seconds_, 0, 30 minutes);
        if (target > block.timestamp) vm.warp(target);
    }

    // ============================================================= values ==

    /// @notice The Safe's value in token1 at the fair price 1: idle + positions + owed.
    function safeValue() public view returns (uint256 value) {
        value = token0.balanceOf(safe) + token1.balanceOf(safe);
        uint256 n = npm.balanceOf(safe);
        for (uint256 i = 0; i < n; ++i) {
            uint256 id = npm.tokenOfOwnerByIndex(safe, i);
            (,,,,, int24 lower, int24 upper, uint128 liquidity,,, uint128 owed0, uint128 owed1) = npm.positions(id);
            (uint256 a0, uint256 a1) = LiquidityAmounts.getAmountsForLiquidity(PRICE_ONE, lower, upper, liquidity);
            value += a0 + a1 + owed0 + owed1;
        }
    }

    function stepCount() external view returns (uint256) {
        return steps.length;
    }

    // ============================================================ helpers ==

    /// @dev Time passes (unless a price is held), maybe a sandwich push; returns the pool index.
    function _beforeAction(uint256 seed, uint256 push) internal returns (uint256 p) {
        p = (seed >> 250) % 2;
        if (!holding) {
            vm.warp(block.timestamp + bound(seed >> 200, 0, 2 hours));
            if (push % 2 == 1) _push(p, push >> 1);
        }
        feed0.updateAnswer(1e8);
        feed1.updateAnswer(1e8);
        valueBefore = safeValue();
        (, unitsBefore) = module.window();
        oracleErr = 0;
        feesCredited = 0;
        calls = 0;
        valueMoving = false;
    }

    /// @dev Restores the prices, then checks this action on its own and the last 24 hours.
    function _afterAction() internal {
        _restorePrices();
        holding = false;
        if (calls == 0) return;
        uint256 value = safeValue();
        (, uint256 unitsAfter) = module.window();
        uint256 units = unitsAfter - unitsBefore;
        ghost_chargedUnits += units;
        // The module's denominator is at most the fair value moved to the TWAP (<= 2% off here).
        uint256 charged = RebalanceMath.mulDivRoundingUp(units, valueBefore * 102 / 100, 1e8);
        int256 loss = int256(valueBefore + feesCredited) - int256(value);
        int256 slack = int256(ROUNDING * calls);
        if (!valueMoving && loss > slack) ++ghost_nonSwapViolations;
        int256 excess = loss - int256(charged + oracleErr) - slack;
        if (excess > 0) {
            ++ghost_stepViolations;
            if (uint256(excess) > ghost_worstStepExcess) ghost_worstStepExcess = uint256(excess);
        }
        steps.push(Step({at: block.timestamp, loss: loss - int256(oracleErr) - slack, value: valueBefore}));
        _checkWindow();
    }

    /// @dev Over the 24 hours ending now: loss beyond fees and oracle error <= day budget.
    function _checkWindow() internal {
        int256 sum = 0;
        uint256 maxValue = 0;
        for (uint256 i = steps.length; i > 0; --i) {
            Step memory s = steps[i - 1];
            if (s.at + 1 days <= block.timestamp) break;
            sum += s.loss;
            if (s.value > maxValue) maxValue = s.value;
        }
        uint256 budget = RebalanceMath.mulDivRoundingUp(maxValue * 102 / 100, module.lossBudgetPerDayBps(), 10_000);
        if (sum > int256(budget)) ++ghost_windowViolations;
    }

    function _oracleErr(uint256 p, uint256 amount, uint256 times) internal {
        // The anchored pool is valued at the feeds' (fair) price too.
        if (p == 0) return;
        int24 t = _twapTick(pools[p]);
        uint256 q = RebalanceMath.getQuoteAtTick(
            t < 0 ? -t : t,
            1e18,
            address(token0) < address(token1) ? address(token0) : address(token1),
            address(token0) < address(token1) ? address(token1) : address(token0)
        );
        // |1.0001^|t| - 1| >= |1.0001^t - 1|; one more bp of slack for rounding.
        uint256 bps1e18 = q - 1e18 + 1e14;
        oracleErr += RebalanceMath.mulDivRoundingUp(amount, bps1e18 * times, 1e18);
    }

    function _twapTick(IUniswapV3Pool pool) internal view returns (int24 tick) {
        uint32 w = module.twapWindow();
        uint32[] memory secondsAgos = new uint32[](2);
        secondsAgos[0] = w;
        (int56[] memory c,) = pool.observe(secondsAgos);
        int56 delta = c[1] - c[0];
        tick = int24(delta / int56(uint56(w)));
        if (delta < 0 && delta % int56(uint56(w)) != 0) --tick;
    }

    /// @dev The trader moves pool `p`: three times in four to a tick within
    ///      +-180 of the fair one (around the module's 150-tick bound), else by an
    ///      amount of up to ~7% of price.
    function _push(uint256 p, uint256 push) internal {
        if (push % 4 != 0) {
            int24 target = int24(int256(bound(push >> 2, 0, 360))) - 180;
            uint160 limit = RebalanceMath.getSqrtRatioAtTick(target);
            (uint160 current,,,,,,) = pools[p].slot0();
            if (limit != current) _traderSwap(p, limit < current, 1e30, limit);
            return;
        }
        uint256 amount = bound(push >> 3, 1e18, 35_000e18);
        bool down = (push >> 2) % 2 == 0;
        _traderSwap(p, down, amount, down ? MIN_SQRT_PRICE_LIMIT : MAX_SQRT_PRICE_LIMIT);
    }

    function _restorePrices() internal {
        for (uint256 p = 0; p < 2; ++p) {
            (uint160 current,,,,,,) = pools[p].slot0();
            if (current == PRICE_ONE) continue;
            _traderSwap(p, PRICE_ONE < current, 1e30, PRICE_ONE);
            (current,,,,,,) = pools[p].slot0();
            require(current == PRICE_ONE, "price not restored");
        }
    }

    function _traderSwap(uint256 p, bool zeroForOne, uint256 amountIn, uint160 limit) internal {
        (address tokenIn, address tokenOut) =
            zeroForOne ? (address(token0), address(token1)) : (address(token1), address(token0));
        vm.prank(trader);
        router.exactInputSingle(
            ISwapRouter02.ExactInputSingleParams({
                tokenIn: tokenIn,
                tokenOut: tokenOut,
                fee: fees[p],
                recipient: trader,
                amountIn: amountIn,
                amountOutMinimum: 0,
                sqrtPriceLimitX96: limit
            })
        );
    }

    /// @dev Runs one operator call as the operator; a counted action that
    ///      succeeds is checked against the rate limits, a refusal must be named.
    function _run(bytes memory data, uint256 n, bool moving) internal returns (bool ok, bytes memory ret) {
        vm.prank(operator);
        (ok, ret) = address(module).call(data);
        if (ok) {
            ++ghost_succeeded;
            calls += n;
            if (moving) valueMoving = true;
            if (moving || bytes4(data) == LPRebalanceModule.decreaseLiquidity.selector) _recordRebalance();
        } else {
            ++ghost_refused;
            if (!_isNamed(ret)) ++ghost_unnamedReverts;
            bytes4 s = bytes4(ret);
            if (s == LPRebalanceModule.AnchorDeviates.selector) ++ghost_anchorRefusals;
            if (
                s == LPRebalanceModule.CallLossBudgetExceeded.selector
                    || s == LPRebalanceModule.DayLossBudgetExceeded.selector
            ) {
                ++ghost_budgetRefusals;
            }
        }
    }

    function _recordRebalance() internal {
        uint256 n = rebalanceTimes.length;
        if (n != 0 && block.timestamp < rebalanceTimes[n - 1] + module.minRebalanceInterval()) ++ghost_limitViolations;
        uint256 inWindow = 1;
        for (uint256 i = n; i > 0 && rebalanceTimes[i - 1] + 1 days > block.timestamp; --i) {
            ++inWindow;
        }
        if (inWindow > module.maxRebalancesPerDay()) ++ghost_limitViolations;
        rebalanceTimes.push(block.timestamp);
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
            || s == LPRebalanceModule.DayLossBudgetExceeded.selector || s == LPRebalanceModule.AnchorDeviates.selector;
    }

    /// @dev Fees a position manager poke of `tokenId` credits now (both tokens, at
    ///      price 1): liquidity * (feeGrowthInside - feeGrowthInsideLast) / 2^128.
    function _creditFees(uint256 tokenId) internal {
        (,,,, uint24 fee, int24 lower, int24 upper, uint128 liquidity, uint256 last0, uint256 last1,,) =
            npm.positions(tokenId);
        if (liquidity == 0) return;
        (uint256 inside0, uint256 inside1) = _feeGrowthInside(fee == fees[0] ? pools[0] : pools[1], lower, upper);
        unchecked {
            feesCredited += RebalanceMath.mulDiv(inside0 - last0, liquidity, 1 << 128)
            + RebalanceMath.mulDiv(inside1 - last1, liquidity, 1 << 128);
        }
    }

    function _feeGrowthInside(IUniswapV3Pool pool, int24 lower, int24 upper)
        internal
        view
        returns (uint256 inside0, uint256 inside1)
    {
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

    function _poolIndexOf(uint256 tokenId) internal view returns (uint256) {
        (,,,, uint24 fee,,,,,,,) = npm.positions(tokenId);
        return fee == fees[0] ? 0 : 1;
    }

    function _idle() internal view returns (uint256, uint256) {
        return (token0.balanceOf(safe), token1.balanceOf(safe));
    }

    /// @dev Idle balances plus what withdrawing all of `tokenId` at its pool's price would add.
    function _holdingsAfterWithdrawal(uint256 tokenId, bool haveId) internal view returns (uint256 h0, uint256 h1) {
        (h0, h1) = _idle();
        if (!haveId) return (h0, h1);
        (uint160 sqrtP,,,,,,) = pools[_poolIndexOf(tokenId)].slot0();
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
    function _swapParams(uint256 p, uint256 seed, uint256 h0, uint256 h1)
        internal
        view
        returns (IV3SwapRouter.ExactInputSingleParams memory)
    {
        bool zeroForOne = seed % 2 == 0;
        uint256 holding = zeroForOne ? h0 : h1;
        return IV3SwapRouter.ExactInputSingleParams({
            tokenIn: zeroForOne ? address(token0) : address(token1),
            tokenOut: zeroForOne ? address(token1) : address(token0),
            fee: fees[p],
            recipient: safe,
            // The most the swap-share cap lets through half of the time, else any part.
            amountIn: (seed >> 1) % 2 == 0 ? holding * 6 / 10 + 1 : bound(seed >> 2, 1, holding * 7 / 10 + 1),
            amountOutMinimum: 0,
            sqrtPriceLimitX96: 0
        });
    }

    /// @dev A random range (on or off the TWAP) with desired amounts up to half the holdings.
    function _mintParams(uint256 p, uint256 seed, uint256 h0, uint256 h1)
        internal
        view
        returns (IPositionManager.MintParams memory)
    {
        int24 center = int24(int256(bound(seed, 0, 20))) * 60 - 600;
        int24 half = int24(int256(bound(seed >> 8, 1, 20))) * 60;
        return IPositionManager.MintParams({
            token0: address(token0),
            token1: address(token1),
            fee: fees[p],
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
}

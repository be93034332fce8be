// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {Test} from "./utils/Test.sol";
import {Vm} from "./utils/Vm.sol";
import {Artifacts} from "./utils/Artifacts.sol";
import {IUniswapV3Factory, IUniswapV3Pool} from "./utils/Interfaces.sol";
import {TestERC20} from "../src/TestERC20.sol";
import {PoolCaller} from "../src/PoolCaller.sol";

/// @notice PoolCaller against the real UniswapV3Factory / UniswapV3Pool
///         bytecode from the official v3-core npm package's artifacts.
contract PoolCallerTest is Test {
    uint24 internal constant FEE = 3000;
    int24 internal constant SPACING = 60;
    int24 internal constant MAX_TICK = 887220; // largest multiple of 60 <= TickMath.MAX_TICK
    uint160 internal constant PRICE_ONE = 2 ** 96;

    IUniswapV3Factory internal factory;
    IUniswapV3Pool internal pool;
    TestERC20 internal token0;
    TestERC20 internal token1;
    PoolCaller internal caller;
    address internal lp;
    address internal trader;
    address internal recipient;

    function setUp() public {
        factory = IUniswapV3Factory(Artifacts.deploy(Artifacts.UNISWAP_V3_FACTORY));
        TestERC20 a = new TestERC20("Token A", "TKA", 18);
        TestERC20 b = new TestERC20("Token B", "TKB", 6);
        (token0, token1) = address(a) < address(b) ? (a, b) : (b, a);
        pool = IUniswapV3Pool(factory.createPool(address(token0), address(token1), FEE));
        pool.initialize(PRICE_ONE);
        caller = new PoolCaller();

        lp = makeAddr("lp");
        trader = makeAddr("trader");
        recipient = makeAddr("recipient");
        _fund(lp);
        _fund(trader);
    }

    function _fund(address who) internal {
        token0.mint(who, 1e36);
        token1.mint(who, 1e36);
        vm.startPrank(who);
        token0.approve(address(caller), type(uint256).max);
        token1.approve(address(caller), type(uint256).max);
        vm.stopPrank();
    }

    function _addLiquidity(int24 lower, int24 upper, uint128 liquidity)
        internal
        returns (uint256 amount0, uint256 amount1)
    {
        vm.prank(lp);
        return caller.mint(address(pool), lp, lower, upper, liquidity);
    }

    function _positionLiquidity(address owner, int24 lower, int24 upper) internal view returns (uint128 liq) {
        (liq,,,,) = pool.positions(keccak256(abi.encodePacked(owner, lower, upper)));
    }

    function _abs(int256 x) internal pure returns (uint256) {
        return uint256(x >= 0 ? x : -x);
    }

    // ------------------------------------------------------ official code --

    function test_officialArtifacts_matchCanonicalInitCodeHash() public view {
        vm.assertEq(keccak256(vm.getCode(Artifacts.UNISWAP_V3_POOL)), Artifacts.POOL_INIT_CODE_HASH);
        address expected = address(
            uint160(
                uint256(
                    keccak256(
                        abi.encodePacked(
                            hex"ff",
                            address(factory),
                            keccak256(abi.encode(address(token0), address(token1), FEE)),
                            Artifacts.POOL_INIT_CODE_HASH
                        )
                    )
                )
            )
        );
        vm.assertEq(address(pool), expected);
        vm.assertEq(pool.factory(), address(factory));
        vm.assertEq(pool.token0(), address(token0));
        vm.assertEq(pool.token1(), address(token1));
        vm.assertEq(uint256(pool.fee()), FEE);
        vm.assertEq(int256(pool.tickSpacing()), int256(SPACING));
        vm.assertEq(factory.owner(), address(this));
    }

    // ---------------------------------------------------------------- mint --

    function test_mint_paysExactlyTheReturnedAmounts() public {
        uint256 lp0 = token0.balanceOf(lp);
        uint256 lp1 = token1.balanceOf(lp);

        vm.recordLogs();
        (uint256 amount0, uint256 amount1) = _addLiquidity(-600, 600, 1e18);

        vm.assertGt(amount0, 0);
        vm.assertGt(amount1, 0);
        vm.assertEq(token0.balanceOf(lp), lp0 - amount0);
        vm.assertEq(token1.balanceOf(lp), lp1 - amount1);
        vm.assertEq(token0.balanceOf(address(pool)), amount0);
        vm.assertEq(token1.balanceOf(address(pool)), amount1);
        vm.assertEq(token0.balanceOf(address(caller)), 0);
        vm.assertEq(token1.balanceOf(address(caller)), 0);
        vm.assertEq(uint256(_positionLiquidity(lp, -600, 600)), 1e18);
        vm.assertEq(uint256(_positionLiquidity(address(caller), -600, 600)), 0);
        vm.assertEq(uint256(pool.liquidity()), 1e18);

        // The MintResult event carries the same amounts.
        Vm.Log[] memory logs = vm.getRecordedLogs();
        bool found = false;
        for (uint256 i = 0; i < logs.length; ++i) {
            if (logs[i].emitter == address(caller) && logs[i].topics[0] == PoolCaller.MintResult.selector) {
                vm.assertEq(logs[i].topics[1], bytes32(uint256(uint160(address(pool)))));
                vm.assertEq(logs[i].topics[2], bytes32(uint256(uint160(lp))));
                (int24 lower, int24 upper, uint128 liq, uint256 e0, uint256 e1) =
                    abi.decode(logs[i].data, (int24, int24, uint128, uint256, uint256));
                vm.assertEq(int256(lower), -600);
                vm.assertEq(int256(upper), 600);
                vm.assertEq(uint256(liq), 1e18);
                vm.assertEq(e0, amount0);
                vm.assertEq(e1, amount1);
                found = true;
            }
        }
        vm.assertTrue(found, "MintResult not emitted");
    }

    function test_mint_emitsMintResult() public {
        (uint256 amount0, uint256 amount1) = _addLiquidity(-120, 120, 5e17);
        // Same liquidity at the same price and range costs the same again.
        vm.expectEmit(true, true, false, true, address(caller));
        emit PoolCaller.MintResult(address(pool), lp, -120, 120, 5e17, amount0, amount1);
        _addLiquidity(-120, 120, 5e17);
    }

    function test_mint_singleSidedBelowAndAbovePrice() public {
        (uint256 a0, uint256 a1) = _addLiquidity(-1200, -600, 1e18); // below price: token1 only
        vm.assertEq(a0, 0);
        vm.assertGt(a1, 0);
        (a0, a1) = _addLiquidity(600, 1200, 1e18); // above price: token0 only
        vm.assertGt(a0, 0);
        vm.assertEq(a1, 0);
        vm.assertEq(token0.balanceOf(address(pool)), a0);
    }

    function test_mint_recipientOwnsPosition_burnAndCollectOnPool() public {
        address owner = makeAddr("owner");
        vm.prank(lp);
        (uint256 amount0, uint256 amount1) = caller.mint(address(pool), owner, -600, 600, 1e18);
        vm.assertEq(uint256(_positionLiquidity(owner, -600, 600)), 1e18);
        vm.assertEq(uint256(_positionLiquidity(lp, -600, 600)), 0);

        // Neither the payer nor PoolCaller can burn it: the position is the owner's.
        vm.expectRevert(bytes("LS"));
        vm.prank(lp);
        pool.burn(-600, 600, 1e18);

        vm.prank(owner);
        (uint256 burned0, uint256 burned1) = pool.burn(-600, 600, 1e18);
        // Rounding favours the pool: at most 1 wei less back than was paid in.
        vm.assertApproxEqAbs(burned0, amount0, 1);
        vm.assertApproxEqAbs(burned1, amount1, 1);
        vm.assertLe(burned0, amount0);
        vm.assertLe(burned1, amount1);

        vm.prank(owner);
        (uint128 c0, uint128 c1) = pool.collect(owner, -600, 600, type(uint128).max, type(uint128).max);
        vm.assertEq(uint256(c0), burned0);
        vm.assertEq(uint256(c1), burned1);
        vm.assertEq(token0.balanceOf(owner), burned0);
        vm.assertEq(token1.balanceOf(owner), burned1);
    }

    function test_mint_withoutApprovalRevertsWithTokenError() public {
        (uint256 amount0,) = _addLiquidity(-600, 600, 1e18);
        address stranger = makeAddr("stranger");
        token0.mint(stranger, 1e30);
        token1.mint(stranger, 1e30);
        vm.expectRevert(
            abi.encodeWithSelector(TestERC20.ERC20InsufficientAllowance.selector, address(caller), 0, amount0)
        );
        vm.prank(stranger);
        caller.mint(address(pool), stranger, -600, 600, 1e18);
    }

    function testFuzz_mint_paysExactlyTheReturnedAmounts(int24 lower, int24 upper, uint128 liquidity) public {
        int24 l = int24(int256(bound(uint256(int256(lower) + MAX_TICK), 0, 2 * uint256(int256(MAX_TICK))))) - MAX_TICK;
        int24 u = int24(int256(bound(uint256(int256(upper) + MAX_TICK), 0, 2 * uint256(int256(MAX_TICK))))) - MAX_TICK;
        l = (l / SPACING) * SPACING;
        u = (u / SPACING) * SPACING;
        if (l > u) (l, u) = (u, l);
        vm.assume(l < u);
        uint128 liq = uint128(bound(liquidity, 1, 1e27));

        uint256 lp0 = token0.balanceOf(lp);
        uint256 lp1 = token1.balanceOf(lp);
        (uint256 amount0, uint256 amount1) = _addLiquidity(l, u, liq);
        vm.assertEq(lp0 - token0.balanceOf(lp), amount0);
        vm.assertEq(lp1 - token1.balanceOf(lp), amount1);
        vm.assertEq(token0.balanceOf(address(pool)), amount0);
        vm.assertEq(token1.balanceOf(address(pool)), amount1);
        vm.assertEq(uint256(_positionLiquidity(lp, l, u)), uint256(liq));
    }

    // ---------------------------------------------------------------- swap --

    /// Checks that the payer paid exactly the positive delta and the recipient
    /// received exactly the negative one, for both tokens.
    function _swapAndCheck(bool zeroForOne, int256 amountSpecified, uint160 limit)
        internal
        returns (int256 amount0, int256 amount1)
    {
        uint256[2] memory pay = [token0.balanceOf(trader), token1.balanceOf(trader)];
        uint256[2] memory rec = [token0.balanceOf(recipient), token1.balanceOf(recipient)];
        uint256[2] memory pl = [token0.balanceOf(address(pool)), token1.balanceOf(address(pool))];

        vm.prank(trader);
        (amount0, amount1) = caller.swap(address(pool), recipient, zeroForOne, amountSpecified, limit);

        if (zeroForOne) {
            vm.assertGe(amount0, 0);
            vm.assertLe(amount1, 0);
            vm.assertEq(pay[0] - token0.balanceOf(trader), uint256(amount0));
            vm.assertEq(token1.balanceOf(trader), pay[1]);
            vm.assertEq(token1.balanceOf(recipient) - rec[1], uint256(-amount1));
            vm.assertEq(token0.balanceOf(recipient), rec[0]);
        } else {
            vm.assertLe(amount0, 0);
            vm.assertGe(amount1, 0);
            vm.assertEq(pay[1] - token1.balanceOf(trader), uint256(amount1));
            vm.assertEq(token0.balanceOf(trader), pay[0]);
            vm.assertEq(token0.balanceOf(recipient) - rec[0], uint256(-amount0));
            vm.assertEq(token1.balanceOf(recipient), rec[1]);
        }
        vm.assertEq(int256(token0.balanceOf(address(pool))) - int256(pl[0]), amount0);
        vm.assertEq(int256(token1.balanceOf(address(pool))) - int256(pl[1]), amount1);
        vm.assertEq(token0.balanceOf(address(caller)), 0);
        vm.assertEq(token1.balanceOf(address(caller)), 0);
    }

    function test_swapExact0For1() public {
        _addLiquidity(-6000, 6000, 1e21);
        vm.prank(trader);
        (int256 amount0, int256 amount1) = caller.swapExact0For1(address(pool), 1e18, recipient, 0);
        vm.assertEq(amount0, 1e18);
        vm.assertLt(amount1, 0);
        vm.assertEq(token1.balanceOf(recipient), uint256(-amount1));
        (, int24 tick,,,,,) = pool.slot0();
        vm.assertLt(int256(tick), 0);
    }

    function test_swap0ForExact1() public {
        _addLiquidity(-6000, 6000, 1e21);
        vm.prank(trader);
        (int256 amount0, int256 amount1) = caller.swap0ForExact1(address(pool), 1e18, recipient, 0);
        vm.assertEq(amount1, -1e18);
        vm.assertGt(amount0, 1e18); // price ~1 plus the 0.3% fee
        vm.assertEq(token1.balanceOf(recipient), 1e18);
    }

    function test_swapExact1For0() public {
        _addLiquidity(-6000, 6000, 1e21);
        uint256 before1 = token1.balanceOf(trader);
        vm.prank(trader);
        (int256 amount0, int256 amount1) = caller.swapExact1For0(address(pool), 1e18, recipient, 0);
        vm.assertEq(amount1, 1e18);
        vm.assertLt(amount0, 0);
        vm.assertEq(before1 - token1.balanceOf(trader), 1e18);
        vm.assertEq(token0.balanceOf(recipient), uint256(-amount0));
        (, int24 tick,,,,,) = pool.slot0();
        vm.assertGt(int256(tick), -1);
    }

    function test_swap1ForExact0() public {
        _addLiquidity(-6000, 6000, 1e21);
        vm.prank(trader);
        (int256 amount0, int256 amount1) = caller.swap1ForExact0(address(pool), 1e18, recipient, 0);
        vm.assertEq(amount0, -1e18);
        vm.assertGt(amount1, 1e18);
        vm.assertEq(token0.balanceOf(recipient), 1e18);
    }

    function test_swap_bothWays_exactBalanceChanges() public {
        _addLiquidity(-6000, 6000, 1e21);
        _addLiquidity(-60, 60, 1e22);
        _swapAndCheck(true, 3e19, 0); // exact input, crosses the narrow range
        _swapAndCheck(false, 5e19, 0); // back the other way
        _swapAndCheck(true, -2e18, 0); // exact output
        _swapAndCheck(false, -2e18, 0);
    }

    function test_swap_emitsSwapResult() public {
        _addLiquidity(-6000, 6000, 1e21);
        uint160 limitIn = uint160((uint256(PRICE_ONE) * 99) / 100);
        vm.recordLogs();
        vm.prank(trader);
        (int256 amount0, int256 amount1) = caller.swap(address(pool), recipient, true, 1e15, limitIn);
        Vm.Log[] memory logs = vm.getRecordedLogs();
        Vm.Log memory last = logs[logs.length - 1];
        vm.assertEq(last.emitter, address(caller));
        vm.assertEq(last.topics[0], PoolCaller.SwapResult.selector);
        vm.assertEq(last.topics[1], bytes32(uint256(uint160(address(pool)))));
        vm.assertEq(last.topics[2], bytes32(uint256(uint160(recipient))));
        (bool z, int256 spec, uint160 limit, int256 e0, int256 e1) =
            abi.decode(last.data, (bool, int256, uint160, int256, int256));
        vm.assertTrue(z);
        vm.assertEq(spec, 1e15);
        vm.assertEq(uint256(limit), uint256(limitIn));
        vm.assertEq(e0, amount0);
        vm.assertEq(e1, amount1);
        vm.assertEq(amount0, 1e15);
    }

    function test_swap_zeroLimitMeansNoLimit() public {
        _addLiquidity(-6000, 6000, 1e21);
        vm.expectEmit(true, true, false, false, address(caller));
        emit PoolCaller.SwapResult(address(pool), recipient, true, 1e18, caller.MIN_SQRT_PRICE_LIMIT(), 0, 0);
        vm.prank(trader);
        caller.swap(address(pool), recipient, true, 1e18, 0);
    }

    function test_swap_stopsAtPriceLimit() public {
        _addLiquidity(-6000, 6000, 1e21);
        uint160 limit = uint160((uint256(PRICE_ONE) * 99) / 100);
        (int256 amount0, int256 amount1) = _swapAndCheck(true, 1e30, limit);
        (uint160 sqrtPrice,,,,,,) = pool.slot0();
        vm.assertEq(uint256(sqrtPrice), uint256(limit));
        vm.assertLt(amount0, 1e30); // only part of the input was used
        vm.assertLt(amount1, 0);

        uint160 upLimit = uint160((uint256(PRICE_ONE) * 101) / 100);
        _swapAndCheck(false, 1e30, upLimit);
        (sqrtPrice,,,,,,) = pool.slot0();
        vm.assertEq(uint256(sqrtPrice), uint256(upLimit));
    }

    function test_swap_badPriceLimitRevertsWithPoolError() public {
        _addLiquidity(-6000, 6000, 1e21);
        vm.expectRevert(bytes("SPL"));
        vm.prank(trader);
        caller.swap(address(pool), recipient, true, 1e18, PRICE_ONE + 1);
    }

    function testFuzz_swap_balancesMatchReturnedAmounts(uint256 amount, bool zeroForOne, bool exactIn) public {
        _addLiquidity(-MAX_TICK, MAX_TICK, 1e21);
        _addLiquidity(-600, 600, 1e22);
        amount = bound(amount, 1, exactIn ? 1e24 : 5e20);
        int256 spec = exactIn ? int256(amount) : -int256(amount);
        (int256 amount0, int256 amount1) = _swapAndCheck(zeroForOne, spec, 0);
        if (exactIn) {
            vm.assertEq(zeroForOne ? amount0 : amount1, spec);
        } else {
            vm.assertEq(zeroForOne ? amount1 : amount0, spec);
        }
        // And back again.
        _swapAndCheck(!zeroForOne, spec, 0);
    }

    // ----------------------------------------------------------- callbacks --

    function test_callbacks_rejectCallsOutsideAPoolCall() public {
        vm.expectRevert(abi.encodeWithSelector(PoolCaller.UnexpectedCallback.selector, address(this)));
        caller.uniswapV3SwapCallback(1, 0, abi.encode(lp));
        vm.expectRevert(abi.encodeWithSelector(PoolCaller.UnexpectedCallback.selector, address(this)));
        caller.uniswapV3MintCallback(1, 1, abi.encode(lp));
        // Not even the pool itself may call in outside a PoolCaller call.
        vm.expectRevert(abi.encodeWithSelector(PoolCaller.UnexpectedCallback.selector, address(pool)));
        vm.prank(address(pool));
        caller.uniswapV3SwapCallback(1, 0, abi.encode(lp));
    }
}

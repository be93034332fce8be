// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {Test} from "./Test.sol";
import {Artifacts} from "./Artifacts.sol";
import {
    IUniswapV3Factory,
    IUniswapV3Pool,
    INonfungiblePositionManager,
    ISwapRouter02,
    IWETH9,
    ISafe,
    ISafeProxyFactory
} from "./Interfaces.sol";
import {TestERC20} from "../../src/TestERC20.sol";
import {LPRebalanceModule} from "../../src/LPRebalanceModule.sol";
import {IPositionManager, IV3SwapRouter} from "../../src/interfaces/IUniswapV3.sol";

interface IMultiSendCallOnly {
    function multiSend(bytes memory transactions) external payable;
}

/// @notice The official Uniswap V3 (factory, pool, NonfungiblePositionManager,
///         SwapRouter02) and Safe 1.4.1 (SafeL2 proxy, CompatibilityFallbackHandler,
///         MultiSendCallOnly) bytecode from the npm artifacts, with an
///         LPRebalanceModule enabled and configured on a 2-of-3 Safe through a
///         signed Safe transaction.
///
///         State after `_setUpRebalance()`:
///         - pool token0/token1 (18 decimals), fee 0.3%, price 1 (tick 0),
///           observation cardinality 100, one day of history at tick 0;
///         - `lp` holds a deep full-range position (tokenId 1);
///         - the Safe holds a position over [-600, 600] (`safeTokenId`) worth
///           about 1000 of each token, no idle tokens, and has approved the
///           position manager and the router for both tokens (through the module);
///         - module: operator `operator`, the pool allow-listed, limits below.
abstract contract RebalanceFixture is Test {
    uint24 internal constant FEE = 3000;
    int24 internal constant SPACING = 60;
    int24 internal constant FULL_RANGE_TICK = 887220;
    uint160 internal constant PRICE_ONE = 2 ** 96;
    uint160 internal constant MIN_SQRT_PRICE_LIMIT = 4295128739 + 1;
    uint160 internal constant MAX_SQRT_PRICE_LIMIT = 1461446703485210103287273052203988822378723970342 - 1;

    uint32 internal constant TWAP_WINDOW = 30 minutes;
    uint16 internal constant MAX_DEVIATION = 50;
    uint16 internal constant MAX_SWAP_SHARE = 5_000;
    uint16 internal constant MAX_PER_DAY = 4;
    uint32 internal constant MIN_INTERVAL = 1 hours;
    uint32 internal constant MAX_OBSERVATION_AGE = 10 minutes;
    /// @dev Loss budget at the TWAP, bps of the Safe's value in the pool.
    uint16 internal constant LOSS_PER_CALL = 100;
    uint16 internal constant LOSS_PER_DAY = 300;
    /// @dev The general tests leave minimums free (10_000 bps) and ranges any
    ///      width; LPRebalanceModuleAttack tightens them.
    uint16 internal constant FIXTURE_SLIPPAGE = 10_000;
    uint32 internal constant DEADLINE_HORIZON = 1 hours;

    uint256 internal constant START = 1_750_000_000;
    uint256 internal constant SAFE_AMOUNT = 1_000e18;
    uint256 internal constant LP_AMOUNT = 1_000_000e18;
    int24 internal constant SAFE_LOWER = -600;
    int24 internal constant SAFE_UPPER = 600;

    uint256 internal constant OWNER_KEY_A = 0xA11CE;
    uint256 internal constant OWNER_KEY_B = 0xB0B;
    uint256 internal constant OWNER_KEY_C = 0xCA7;
    uint8 internal constant OP_CALL = 0;
    uint8 internal constant OP_DELEGATECALL = 1;

    IWETH9 internal weth;
    IUniswapV3Factory internal factory;
    INonfungiblePositionManager internal npm;
    ISwapRouter02 internal router;
    TestERC20 internal token0;
    TestERC20 internal token1;
    IUniswapV3Pool internal pool;

    ISafe internal safe;
    address internal multiSendCallOnly;
    LPRebalanceModule internal module;

    address internal operator;
    address internal lp;
    address internal trader;
    address internal outsider;
    uint256 internal lpTokenId;
    uint256 internal safeTokenId;

    // ------------------------------------------------------------- set-up --

    function _setUpRebalance() internal {
        vm.warp(START);
        operator = makeAddr("operator");
        lp = makeAddr("lp");
        trader = makeAddr("trader");
        outsider = makeAddr("outsider");

        _deployUniswap();
        _deployPool();
        _deploySafe();
        module = new LPRebalanceModule(address(safe), IPositionManager(address(npm)), IV3SwapRouter(address(router)));
        vm.label(address(module), "module");
        vm.assertTrue(_execSafeTx(multiSendCallOnly, _configureModuleBatch(), OP_DELEGATECALL), "enable module");

        _approveThroughModule();
        token0.mint(address(safe), SAFE_AMOUNT);
        token1.mint(address(safe), SAFE_AMOUNT);
        vm.prank(address(safe));
        (safeTokenId,,,) = npm.mint(_mintParams(SAFE_LOWER, SAFE_UPPER, SAFE_AMOUNT, SAFE_AMOUNT));
        _clearSafeBalances();

        vm.warp(block.timestamp + 1 days);
    }

    function _deployUniswap() internal {
        weth = IWETH9(Artifacts.deploy(Artifacts.WETH9));
        factory = IUniswapV3Factory(Artifacts.deploy(Artifacts.UNISWAP_V3_FACTORY));
        // The token descriptor only serves tokenURI, which these tests do not read.
        npm = INonfungiblePositionManager(
            Artifacts.deploy(
                Artifacts.NONFUNGIBLE_POSITION_MANAGER, abi.encode(address(factory), address(weth), address(0))
            )
        );
        router = ISwapRouter02(
            Artifacts.deploy(
                Artifacts.SWAP_ROUTER_02, abi.encode(address(0), address(factory), address(npm), address(weth))
            )
        );
        vm.label(address(npm), "npm");
        vm.label(address(router), "router");
    }

    function _deployPool() internal {
        TestERC20 a = new TestERC20("Token A", "TKA", 18);
        TestERC20 b = new TestERC20("Token B", "TKB", 18);
        (token0, token1) = address(a) < address(b) ? (a, b) : (b, a);
        pool = IUniswapV3Pool(npm.createAndInitializePoolIfNecessary(address(token0), address(token1), FEE, PRICE_ONE));
        pool.increaseObservationCardinalityNext(100);
        vm.label(address(pool), "pool");

        _fund(lp, LP_AMOUNT * 10);
        _fund(trader, LP_AMOUNT * 10);
        vm.prank(lp);
        (lpTokenId,,,) = npm.mint(
            INonfungiblePositionManager.MintParams({
                token0: address(token0),
                token1: address(token1),
                fee: FEE,
                tickLower: -FULL_RANGE_TICK,
                tickUpper: FULL_RANGE_TICK,
                amount0Desired: LP_AMOUNT,
                amount1Desired: LP_AMOUNT,
                amount0Min: 0,
                amount1Min: 0,
                recipient: lp,
                deadline: block.timestamp
            })
        );
    }

    function _fund(address who, uint256 amount) internal {
        token0.mint(who, amount);
        token1.mint(who, amount);
        vm.startPrank(who);
        token0.approve(address(npm), type(uint256).max);
        token1.approve(address(npm), type(uint256).max);
        token0.approve(address(router), type(uint256).max);
        token1.approve(address(router), type(uint256).max);
        vm.stopPrank();
    }

    function _deploySafe() internal {
        address singleton = Artifacts.deploy(Artifacts.SAFE_L2);
        ISafeProxyFactory proxyFactory = ISafeProxyFactory(Artifacts.deploy(Artifacts.SAFE_PROXY_FACTORY));
        address handler = Artifacts.deploy(Artifacts.COMPATIBILITY_FALLBACK_HANDLER);
        multiSendCallOnly = Artifacts.deploy(Artifacts.MULTI_SEND_CALL_ONLY);
        address[] memory owners = new address[](3);
        owners[0] = vm.addr(OWNER_KEY_A);
        owners[1] = vm.addr(OWNER_KEY_B);
        owners[2] = vm.addr(OWNER_KEY_C);
        bytes memory initializer =
            abi.encodeCall(ISafe.setup, (owners, 2, address(0), "", handler, address(0), 0, payable(address(0))));
        safe = ISafe(proxyFactory.createProxyWithNonce(singleton, initializer, 0));
        vm.label(address(safe), "safe");
    }

    /// @dev MultiSendCallOnly batch the Safe delegatecalls: enable the module and configure it.
    function _configureModuleBatch() internal view returns (bytes memory) {
        address[] memory to = new address[](7);
        bytes[] memory data = new bytes[](7);
        to[0] = address(safe);
        data[0] = abi.encodeCall(ISafe.enableModule, (address(module)));
        to[1] = address(module);
        data[1] = abi.encodeCall(LPRebalanceModule.setOperator, (operator));
        to[2] = address(module);
        data[2] = abi.encodeCall(LPRebalanceModule.allowPool, (address(token0), address(token1), FEE));
        to[3] = address(module);
        data[3] = abi.encodeCall(LPRebalanceModule.setLimits, (MAX_PER_DAY, MIN_INTERVAL, MAX_SWAP_SHARE));
        to[4] = address(module);
        data[4] = abi.encodeCall(LPRebalanceModule.setPriceCheck, (TWAP_WINDOW, MAX_DEVIATION, MAX_OBSERVATION_AGE));
        to[5] = address(module);
        data[5] = abi.encodeCall(LPRebalanceModule.setLossBudget, (LOSS_PER_CALL, LOSS_PER_DAY));
        to[6] = address(module);
        data[6] = abi.encodeCall(LPRebalanceModule.setBounds, (FIXTURE_SLIPPAGE, 0, DEADLINE_HORIZON));
        return abi.encodeCall(IMultiSendCallOnly.multiSend, (_packMultiSend(to, data)));
    }

    function _approveThroughModule() internal {
        vm.startPrank(operator);
        module.approve(address(token0), address(npm), type(uint256).max);
        module.approve(address(token1), address(npm), type(uint256).max);
        module.approve(address(token0), address(router), type(uint256).max);
        module.approve(address(token1), address(router), type(uint256).max);
        vm.stopPrank();
    }

    /// @dev Sends the Safe's idle tokens to a sink so that its holdings are the position alone.
    function _clearSafeBalances() internal {
        address sink = makeAddr("sink");
        vm.startPrank(address(safe));
        token0.transfer(sink, token0.balanceOf(address(safe)));
        token1.transfer(sink, token1.balanceOf(address(safe)));
        vm.stopPrank();
    }

    // ----------------------------------------------------------------- Safe --

    /// @dev MultiSend encoding: per call (uint8 operation, address to, uint256 value, uint256 length, bytes data).
    function _packMultiSend(address[] memory to, bytes[] memory data) internal pure returns (bytes memory packed) {
        for (uint256 i = 0; i < to.length; ++i) {
            packed = bytes.concat(packed, abi.encodePacked(uint8(0), to[i], uint256(0), data[i].length, data[i]));
        }
    }

    /// @dev Signatures of owners A and B over a Safe transaction with the current nonce.
    function _signSafeTx(address to, bytes memory data, uint8 operation) internal view returns (bytes memory) {
        bytes32 txHash = safe.getTransactionHash(to, 0, data, operation, 0, 0, 0, address(0), address(0), safe.nonce());
        (uint256 first, uint256 second) =
            vm.addr(OWNER_KEY_A) < vm.addr(OWNER_KEY_B) ? (OWNER_KEY_A, OWNER_KEY_B) : (OWNER_KEY_B, OWNER_KEY_A);
        (uint8 v1, bytes32 r1, bytes32 s1) = vm.sign(first, txHash);
        (uint8 v2, bytes32 r2, bytes32 s2) = vm.sign(second, txHash);
        return abi.encodePacked(r1, s1, v1, r2, s2, v2);
    }

    function _execSafeTx(address to, bytes memory data, uint8 operation) internal returns (bool) {
        bytes memory signatures = _signSafeTx(to, data, operation);
        return safe.execTransaction(to, 0, data, operation, 0, 0, 0, address(0), payable(address(0)), signatures);
    }

    // -------------------------------------------------------------- params --

    function _mintParams(int24 lower, int24 upper, uint256 amount0, uint256 amount1)
        internal
        view
        returns (INonfungiblePositionManager.MintParams memory)
    {
        return INonfungiblePositionManager.MintParams({
            token0: address(token0),
            token1: address(token1),
            fee: FEE,
            tickLower: lower,
            tickUpper: upper,
            amount0Desired: amount0,
            amount1Desired: amount1,
            amount0Min: 0,
            amount1Min: 0,
            recipient: address(safe),
            deadline: block.timestamp
        });
    }

    function _moduleMintParams(int24 lower, int24 upper, uint256 amount0, uint256 amount1)
        internal
        view
        returns (IPositionManager.MintParams memory)
    {
        return IPositionManager.MintParams({
            token0: address(token0),
            token1: address(token1),
            fee: FEE,
            tickLower: lower,
            tickUpper: upper,
            amount0Desired: amount0,
            amount1Desired: amount1,
            amount0Min: 0,
            amount1Min: 0,
            recipient: address(safe),
            deadline: block.timestamp
        });
    }

    function _decreaseParams(uint256 tokenId, uint128 liquidity)
        internal
        view
        returns (IPositionManager.DecreaseLiquidityParams memory)
    {
        return IPositionManager.DecreaseLiquidityParams({
            tokenId: tokenId, liquidity: liquidity, amount0Min: 0, amount1Min: 0, deadline: block.timestamp
        });
    }

    function _collectParams(uint256 tokenId) internal view returns (IPositionManager.CollectParams memory) {
        return IPositionManager.CollectParams({
            tokenId: tokenId, recipient: address(safe), amount0Max: type(uint128).max, amount1Max: type(uint128).max
        });
    }

    function _increaseParams(uint256 tokenId, uint256 amount0, uint256 amount1)
        internal
        view
        returns (IPositionManager.IncreaseLiquidityParams memory)
    {
        return IPositionManager.IncreaseLiquidityParams({
            tokenId: tokenId,
            amount0Desired: amount0,
            amount1Desired: amount1,
            amount0Min: 0,
            amount1Min: 0,
            deadline: block.timestamp
        });
    }

    function _swapParams(bool zeroForOne, uint256 amountIn)
        internal
        view
        returns (IV3SwapRouter.ExactInputSingleParams memory)
    {
        (address tokenIn, address tokenOut) =
            zeroForOne ? (address(token0), address(token1)) : (address(token1), address(token0));
        return IV3SwapRouter.ExactInputSingleParams({
            tokenIn: tokenIn,
            tokenOut: tokenOut,
            fee: FEE,
            recipient: address(safe),
            amountIn: amountIn,
            amountOutMinimum: 0,
            sqrtPriceLimitX96: 0
        });
    }

    /// @dev The module batch of a full rebalance: decrease all, collect, swap, mint.
    function _rebalanceCalls(uint256 tokenId, uint256 swapIn, int24 lower, int24 upper, uint256 a0, uint256 a1)
        internal
        view
        returns (bytes[] memory calls)
    {
        calls = new bytes[](4);
        calls[0] = abi.encodeCall(LPRebalanceModule.decreaseLiquidity, (_decreaseParams(tokenId, _liquidity(tokenId))));
        calls[1] = abi.encodeCall(LPRebalanceModule.collect, (_collectParams(tokenId)));
        calls[2] = abi.encodeCall(LPRebalanceModule.swapExactInputSingle, (_swapParams(true, swapIn), block.timestamp));
        calls[3] = abi.encodeCall(LPRebalanceModule.mint, (_moduleMintParams(lower, upper, a0, a1)));
    }

    // --------------------------------------------------------------- views --

    function _liquidity(uint256 tokenId) internal view returns (uint128 liquidity) {
        (,,,,,,, liquidity,,,,) = npm.positions(tokenId);
    }

    /// @dev Rebalances the module counts in the last 24 hours.
    function _inWindow() internal view returns (uint256 count) {
        (count,) = module.window();
    }

    function _spotTick() internal view returns (int24 tick) {
        (, tick,,,,,) = pool.slot0();
    }

    function _sqrtPrice() internal view returns (uint160 sqrtPriceX96) {
        (sqrtPriceX96,,,,,,) = pool.slot0();
    }

    function _twapTick() internal view returns (int24) {
        uint32[] memory secondsAgos = new uint32[](2);
        secondsAgos[0] = TWAP_WINDOW;
        (int56[] memory cumulatives,) = pool.observe(secondsAgos);
        int56 delta = cumulatives[1] - cumulatives[0];
        int24 tick = int24(delta / int56(uint56(TWAP_WINDOW)));
        if (delta < 0 && delta % int56(uint56(TWAP_WINDOW)) != 0) --tick;
        return tick;
    }

    // -------------------------------------------------------------- market --

    /// @dev `trader` swaps `amountIn` through the router (no price limit).
    function _traderSwap(bool zeroForOne, uint256 amountIn) internal returns (uint256) {
        return _traderSwapWithLimit(zeroForOne, amountIn, zeroForOne ? MIN_SQRT_PRICE_LIMIT : MAX_SQRT_PRICE_LIMIT);
    }

    function _traderSwapWithLimit(bool zeroForOne, uint256 amountIn, uint160 limit) internal returns (uint256) {
        (address tokenIn, address tokenOut) =
            zeroForOne ? (address(token0), address(token1)) : (address(token1), address(token0));
        vm.prank(trader);
        return router.exactInputSingle(
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

    /// @dev `trader` moves the pool price exactly to `sqrtPriceX96` (a no-op if it is there).
    function _traderMovePriceTo(uint160 sqrtPriceX96) internal {
        uint160 current = _sqrtPrice();
        if (current == sqrtPriceX96) return;
        _traderSwapWithLimit(sqrtPriceX96 < current, LP_AMOUNT, sqrtPriceX96);
    }
}

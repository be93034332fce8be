// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {ISafeModuleManager} from "./interfaces/ISafeModuleManager.sol";
import {IPositionManager, IV3SwapRouter, IV3Factory, IV3Pool, IERC20Balance} from "./interfaces/IUniswapV3.sol";

/// @title LPRebalanceModule
/// @notice A Safe (1.4.1) module through which one operator key makes the Safe
///         manage its Uniswap V3 positions, and nothing else.
///
///         The operator calls typed entry points (or `execute`, a batch of
///         them); the module checks each one and has the Safe make exactly one
///         call with `execTransactionFromModuleReturnData` (operation CALL,
///         value 0) to the NonfungiblePositionManager (`decreaseLiquidity`,
///         `collect`, `burn`, `mint`, `increaseLiquidity`), to SwapRouter02
///         (`exactInputSingle`) or to a token (`approve`):
///         - positions must be owned by the Safe and their pool allow-listed;
///           minted positions, collected tokens and swap output go to the Safe;
///         - swaps and mints use allow-listed pools only;
///         - `approve` only names the position manager or the router as
///           spender, and only for a token of an allow-listed pool;
///         - mint, increaseLiquidity and decreaseLiquidity require the pool's
///           spot tick to be within `maxPriceDeviationBps` ticks of its TWAP
///           over `twapWindow` seconds before the call; a swap requires it
///           after the swap;
///         - rate and size limits, below.
///
///         What counts as a rebalance: one operator transaction (a single
///         entry-point call or one `execute` batch) that contains at least one
///         swap, mint or increaseLiquidity. It counts once, however many such
///         steps it holds. Decrease, collect, burn and approve alone do not
///         count. Per rebalance: at most `maxRebalancesPerDay` per UTC day
///         (block.timestamp / 1 days) and at least `minRebalanceInterval`
///         seconds after the previous rebalance started.
///
///         Swap size: before each swap, the Safe's holdings of the pool's two
///         tokens (its balance of tokenIn, plus its balance of tokenOut
///         converted into tokenIn at the TWAP tick) stand in for the position
///         value: a rebalance first decreases and collects the position into
///         the Safe, so at swap time the withdrawn position is held as tokens.
///         Liquidity still inside positions is not counted (stricter); idle
///         reserves of the two tokens are. The swap's share is
///         ceil(amountIn * 10_000 / holdings) bps; the shares of all swaps in
///         one rebalance add up and may not exceed `maxSwapShareBps`.
///
///         Price deviation is compared in ticks: |spot tick - TWAP tick| <=
///         maxPriceDeviationBps, one tick being a 1.0001x price step (1 bp),
///         so a bound of b allows a price ratio within 1.0001^b of the TWAP
///         (b = 100: +1.005% / -0.995%). The TWAP tick is the arithmetic mean
///         over [now - twapWindow, now], rounded toward negative infinity
///         (OracleLibrary.consult); the pool needs enough observation history
///         (`increaseObservationCardinalityNext`), else `TwapUnavailable`.
///
///         Only the Safe configures the module; every setting starts at zero,
///         which allows nothing until the Safe sets an operator, pools,
///         limits and the price check.
/// @dev One module instance serves one Safe. Deadlines are checked here as
///      well as in the position manager; amount minimums and the swap's price
///      limit pass through unchanged. Malformed ABI encoding (e.g. an address
///      with dirty upper bits) is rejected by Solidity's decoder without data.
contract LPRebalanceModule {
    // ------------------------------------------------------------- errors --

    error NotOperator();
    error NotSafe();
    error InvalidConfig();
    error SelectorNotAllowed(bytes4 selector);
    error InvalidCalldataLength(bytes4 selector, uint256 length);
    error RecipientNotSafe(address recipient);
    error PoolNotAllowed(address pool);
    error UnknownPool(address tokenA, address tokenB, uint24 fee);
    error PositionNotOwnedBySafe(uint256 tokenId, address owner);
    error SpenderNotAllowed(address spender);
    error TokenNotAllowed(address token);
    error PriceCheckNotConfigured();
    error TwapUnavailable(address pool);
    error PriceDeviates(address pool, int24 spotTick, int24 twapTick);
    error TooManyRebalances(uint256 day, uint256 maxPerDay);
    error TooSoon(uint256 earliest);
    error SwapTooLarge(uint256 shareBps, uint256 maxShareBps);
    error ZeroAmountIn();
    error DeadlineExpired(uint256 deadline);
    error CallFailed(bytes returnData);

    // ------------------------------------------------------------- events --

    event OperatorSet(address indexed previousOperator, address indexed newOperator);
    event OperatorRemoved(address indexed previousOperator);
    event PoolAllowed(address indexed pool, address indexed token0, address indexed token1, uint24 fee);
    event PoolDisallowed(address indexed pool, address indexed token0, address indexed token1, uint24 fee);
    event LimitsSet(uint16 maxRebalancesPerDay, uint32 minRebalanceInterval, uint16 maxSwapShareBps);
    event PriceCheckSet(uint32 twapWindow, uint16 maxPriceDeviationBps);

    event RebalanceCounted(uint256 indexed day, uint256 countOnDay);
    event LiquidityDecreased(uint256 indexed tokenId, uint128 liquidity, uint256 amount0, uint256 amount1);
    event Collected(uint256 indexed tokenId, uint256 amount0, uint256 amount1);
    event PositionBurned(uint256 indexed tokenId);
    event PositionMinted(
        uint256 indexed tokenId, address indexed pool, uint128 liquidity, uint256 amount0, uint256 amount1
    );
    event LiquidityIncreased(uint256 indexed tokenId, uint128 liquidity, uint256 amount0, uint256 amount1);
    event Swapped(address indexed pool, address indexed tokenIn, uint256 amountIn, uint256 amountOut, uint256 shareBps);
    event Approved(address indexed token, address indexed spender, uint256 amount);

    // ---------------------------------------------------------- constants --

    uint256 internal constant BPS = 10_000;
    uint8 internal constant CALL = 0;

    // ---------------------------------------------------------- immutables --

    /// @notice The Safe this module acts for; the only account that configures it.
    address public immutable safe;
    IPositionManager public immutable positionManager;
    IV3SwapRouter public immutable swapRouter;
    /// @notice The UniswapV3Factory of both the position manager and the router.
    IV3Factory public immutable factory;

    // --------------------------------------------------------------- config --

    /// @notice The one key allowed to call the operator entry points (0: none).
    address public operator;
    /// @notice TWAP window in seconds for the price check (0: not configured).
    uint32 public twapWindow;
    /// @notice Largest |spot tick - TWAP tick| allowed (1 tick = 1 bp of price).
    uint16 public maxPriceDeviationBps;
    /// @notice Largest summed share (bps of holdings) swapped per rebalance.
    uint16 public maxSwapShareBps;

    uint16 public maxRebalancesPerDay;
    uint32 public minRebalanceInterval;

    // ---------------------------------------------------------- rate state --

    /// @notice block.timestamp of the last counted rebalance (0: none yet).
    uint40 public lastRebalanceAt;
    /// @notice UTC day (timestamp / 1 days) that `rebalancesOnDay` refers to.
    uint32 public rebalanceDay;
    uint16 public rebalancesOnDay;

    /// @notice Allow-listed pool by (token0, token1, fee), tokens sorted; 0 if not allowed.
    mapping(address token0 => mapping(address token1 => mapping(uint24 fee => address pool))) public allowedPool;
    /// @notice Number of allow-listed pools that hold `token` (approvable if > 0).
    mapping(address token => uint256 pools) public allowedPoolsWithToken;

    /// @dev Per-transaction state of one operator call or batch.
    struct Batch {
        bool counted;
        uint256 swapShareBps;
        address twapPool;
        int24 twapTick;
    }

    modifier onlySafe() {
        if (msg.sender != safe) revert NotSafe();
        _;
    }

    modifier onlyOperator() {
        if (msg.sender != operator) revert NotOperator();
        _;
    }

    /// @param safe_ The Safe that enables this module.
    /// @param positionManager_ Uniswap V3 NonfungiblePositionManager.
    /// @param swapRouter_ SwapRouter02 on the same factory.
    constructor(address safe_, IPositionManager positionManager_, IV3SwapRouter swapRouter_) {
        if (safe_.code.length == 0 || address(positionManager_).code.length == 0) revert InvalidConfig();
        if (address(swapRouter_).code.length == 0) revert InvalidConfig();
        address factory_ = positionManager_.factory();
        if (factory_ == address(0) || swapRouter_.factory() != factory_) revert InvalidConfig();
        safe = safe_;
        positionManager = positionManager_;
        swapRouter = swapRouter_;
        factory = IV3Factory(factory_);
    }

    /// @dev Unknown selectors revert by name; ether is refused.
    fallback() external {
        revert SelectorNotAllowed(msg.sig);
    }

    // ============================================================ config ==

    /// @notice Sets (or replaces) the one operator key. Only the Safe.
    function setOperator(address newOperator) external onlySafe {
        if (newOperator == address(0)) revert InvalidConfig();
        emit OperatorSet(operator, newOperator);
        operator = newOperator;
    }

    /// @notice Removes the operator: every operator entry point reverts until a new one is set.
    function removeOperator() external onlySafe {
        emit OperatorRemoved(operator);
        operator = address(0);
    }

    /// @notice Allow-lists the factory's pool for (tokenA, tokenB, fee); idempotent.
    function allowPool(address tokenA, address tokenB, uint24 fee) external onlySafe {
        (address token0, address token1) = _sort(tokenA, tokenB);
        address pool = factory.getPool(token0, token1, fee);
        if (pool == address(0)) revert UnknownPool(tokenA, tokenB, fee);
        if (allowedPool[token0][token1][fee] == address(0)) {
            allowedPool[token0][token1][fee] = pool;
            ++allowedPoolsWithToken[token0];
            ++allowedPoolsWithToken[token1];
        }
        emit PoolAllowed(pool, token0, token1, fee);
    }

    /// @notice Removes (tokenA, tokenB, fee) from the allow-list; idempotent.
    function disallowPool(address tokenA, address tokenB, uint24 fee) external onlySafe {
        (address token0, address token1) = _sort(tokenA, tokenB);
        address pool = allowedPool[token0][token1][fee];
        if (pool != address(0)) {
            delete allowedPool[token0][token1][fee];
            --allowedPoolsWithToken[token0];
            --allowedPoolsWithToken[token1];
        }
        emit PoolDisallowed(pool, token0, token1, fee);
    }

    /// @notice Sets the rebalance limits (see the contract notice for what counts).
    /// @param maxRebalancesPerDay_ Rebalances per UTC day (0: none).
    /// @param minRebalanceInterval_ Seconds between the starts of two rebalances.
    /// @param maxSwapShareBps_ Summed swap share per rebalance, in bps of holdings (<= 10_000).
    function setLimits(uint16 maxRebalancesPerDay_, uint32 minRebalanceInterval_, uint16 maxSwapShareBps_)
        external
        onlySafe
    {
        if (maxSwapShareBps_ > BPS) revert InvalidConfig();
        maxRebalancesPerDay = maxRebalancesPerDay_;
        minRebalanceInterval = minRebalanceInterval_;
        maxSwapShareBps = maxSwapShareBps_;
        emit LimitsSet(maxRebalancesPerDay_, minRebalanceInterval_, maxSwapShareBps_);
    }

    /// @notice Sets the TWAP window (seconds, > 0) and the largest spot/TWAP deviation in ticks (bps).
    function setPriceCheck(uint32 twapWindow_, uint16 maxPriceDeviationBps_) external onlySafe {
        if (twapWindow_ == 0) revert InvalidConfig();
        twapWindow = twapWindow_;
        maxPriceDeviationBps = maxPriceDeviationBps_;
        emit PriceCheckSet(twapWindow_, maxPriceDeviationBps_);
    }

    /// @notice The allow-listed pool for (tokenA, tokenB, fee) in any token order; 0 if none.
    function poolFor(address tokenA, address tokenB, uint24 fee) external view returns (address) {
        (address token0, address token1) = _sort(tokenA, tokenB);
        return allowedPool[token0][token1][fee];
    }

    // ========================================================== operator ==

    /// @notice NonfungiblePositionManager.decreaseLiquidity on a Safe-owned position.
    function decreaseLiquidity(IPositionManager.DecreaseLiquidityParams calldata params)
        external
        onlyOperator
        returns (uint256 amount0, uint256 amount1)
    {
        Batch memory batch;
        return _decreaseLiquidity(params, batch);
    }

    /// @notice NonfungiblePositionManager.collect to the Safe.
    function collect(IPositionManager.CollectParams calldata params)
        external
        onlyOperator
        returns (uint256 amount0, uint256 amount1)
    {
        return _collect(params);
    }

    /// @notice NonfungiblePositionManager.burn of an empty Safe-owned position.
    function burn(uint256 tokenId) external onlyOperator {
        _burn(tokenId);
    }

    /// @notice NonfungiblePositionManager.mint in an allow-listed pool, to the Safe. Counts as a rebalance.
    function mint(IPositionManager.MintParams calldata params)
        external
        onlyOperator
        returns (uint256 tokenId, uint128 liquidity, uint256 amount0, uint256 amount1)
    {
        Batch memory batch;
        return _mint(params, batch);
    }

    /// @notice NonfungiblePositionManager.increaseLiquidity on a Safe-owned position. Counts as a rebalance.
    function increaseLiquidity(IPositionManager.IncreaseLiquidityParams calldata params)
        external
        onlyOperator
        returns (uint128 liquidity, uint256 amount0, uint256 amount1)
    {
        Batch memory batch;
        return _increaseLiquidity(params, batch);
    }

    /// @notice SwapRouter02.exactInputSingle on an allow-listed pool, to the Safe. Counts as a rebalance.
    function swapExactInputSingle(IV3SwapRouter.ExactInputSingleParams calldata params)
        external
        onlyOperator
        returns (uint256 amountOut)
    {
        Batch memory batch;
        return _swap(params, batch);
    }

    /// @notice ERC-20 approve by the Safe of `spender` (the position manager or the router only).
    function approve(address token, address spender, uint256 amount) external onlyOperator {
        _approve(token, spender, amount);
    }

    /// @notice Runs several operator steps in one transaction, which counts as at most one rebalance.
    /// @param calls ABI-encoded calls of this contract's operator entry points (not `execute`).
    /// @return results The ABI-encoded return values, one per call.
    function execute(bytes[] calldata calls) external onlyOperator returns (bytes[] memory results) {
        Batch memory batch;
        results = new bytes[](calls.length);
        for (uint256 i = 0; i < calls.length; ++i) {
            results[i] = _dispatch(calls[i], batch);
        }
    }

    // ========================================================== internal ==

    function _dispatch(bytes calldata data, Batch memory batch) internal returns (bytes memory) {
        // casting to 'bytes4' keeps the first four bytes (zero-padded if shorter)
        // forge-lint: disable-next-line(unsafe-typecast)
        bytes4 selector = bytes4(data);
        if (data.length < 4) revert SelectorNotAllowed(selector);
        bytes calldata args = data[4:];
        if (selector == this.decreaseLiquidity.selector) {
            _checkLength(selector, args, 5);
            (uint256 a0, uint256 a1) =
                _decreaseLiquidity(abi.decode(args, (IPositionManager.DecreaseLiquidityParams)), batch);
            return abi.encode(a0, a1);
        }
        if (selector == this.collect.selector) {
            _checkLength(selector, args, 4);
            (uint256 a0, uint256 a1) = _collect(abi.decode(args, (IPositionManager.CollectParams)));
            return abi.encode(a0, a1);
        }
        if (selector == this.swapExactInputSingle.selector) {
            _checkLength(selector, args, 7);
            return abi.encode(_swap(abi.decode(args, (IV3SwapRouter.ExactInputSingleParams)), batch));
        }
        if (selector == this.mint.selector) {
            _checkLength(selector, args, 11);
            (uint256 tokenId, uint128 liquidity, uint256 a0, uint256 a1) =
                _mint(abi.decode(args, (IPositionManager.MintParams)), batch);
            return abi.encode(tokenId, liquidity, a0, a1);
        }
        if (selector == this.increaseLiquidity.selector) {
            _checkLength(selector, args, 6);
            (uint128 liquidity, uint256 a0, uint256 a1) =
                _increaseLiquidity(abi.decode(args, (IPositionManager.IncreaseLiquidityParams)), batch);
            return abi.encode(liquidity, a0, a1);
        }
        if (selector == this.burn.selector) {
            _checkLength(selector, args, 1);
            _burn(abi.decode(args, (uint256)));
            return "";
        }
        if (selector == this.approve.selector) {
            _checkLength(selector, args, 3);
            (address token, address spender, uint256 amount) = abi.decode(args, (address, address, uint256));
            _approve(token, spender, amount);
            return "";
        }
        revert SelectorNotAllowed(selector);
    }

    /// @dev Every entry point takes only static arguments: exactly `words` 32-byte words.
    function _checkLength(bytes4 selector, bytes calldata args, uint256 words) internal pure {
        if (args.length != words * 32) revert InvalidCalldataLength(selector, args.length + 4);
    }

    function _decreaseLiquidity(IPositionManager.DecreaseLiquidityParams memory p, Batch memory batch)
        internal
        returns (uint256 amount0, uint256 amount1)
    {
        _checkDeadline(p.deadline);
        address pool = _safePositionPool(p.tokenId);
        _checkPrice(pool, batch);
        bytes memory ret = _exec(address(positionManager), abi.encodeCall(IPositionManager.decreaseLiquidity, (p)));
        (amount0, amount1) = abi.decode(ret, (uint256, uint256));
        emit LiquidityDecreased(p.tokenId, p.liquidity, amount0, amount1);
    }

    function _collect(IPositionManager.CollectParams memory p) internal returns (uint256 amount0, uint256 amount1) {
        if (p.recipient != safe) revert RecipientNotSafe(p.recipient);
        _safePositionPool(p.tokenId);
        bytes memory ret = _exec(address(positionManager), abi.encodeCall(IPositionManager.collect, (p)));
        (amount0, amount1) = abi.decode(ret, (uint256, uint256));
        emit Collected(p.tokenId, amount0, amount1);
    }

    function _burn(uint256 tokenId) internal {
        _safePositionPool(tokenId);
        _exec(address(positionManager), abi.encodeCall(IPositionManager.burn, (tokenId)));
        emit PositionBurned(tokenId);
    }

    function _mint(IPositionManager.MintParams memory p, Batch memory batch)
        internal
        returns (uint256 tokenId, uint128 liquidity, uint256 amount0, uint256 amount1)
    {
        _checkDeadline(p.deadline);
        if (p.recipient != safe) revert RecipientNotSafe(p.recipient);
        address pool = _pool(p.token0, p.token1, p.fee);
        _countRebalance(batch);
        _checkPrice(pool, batch);
        bytes memory ret = _exec(address(positionManager), abi.encodeCall(IPositionManager.mint, (p)));
        (tokenId, liquidity, amount0, amount1) = abi.decode(ret, (uint256, uint128, uint256, uint256));
        emit PositionMinted(tokenId, pool, liquidity, amount0, amount1);
    }

    function _increaseLiquidity(IPositionManager.IncreaseLiquidityParams memory p, Batch memory batch)
        internal
        returns (uint128 liquidity, uint256 amount0, uint256 amount1)
    {
        _checkDeadline(p.deadline);
        address pool = _safePositionPool(p.tokenId);
        _countRebalance(batch);
        _checkPrice(pool, batch);
        bytes memory ret = _exec(address(positionManager), abi.encodeCall(IPositionManager.increaseLiquidity, (p)));
        (liquidity, amount0, amount1) = abi.decode(ret, (uint128, uint256, uint256));
        emit LiquidityIncreased(p.tokenId, liquidity, amount0, amount1);
    }

    function _swap(IV3SwapRouter.ExactInputSingleParams memory p, Batch memory batch)
        internal
        returns (uint256 amountOut)
    {
        if (p.recipient != safe) revert RecipientNotSafe(p.recipient);
        // SwapRouter02 reads amountIn == 0 as "swap the router's own balance".
        if (p.amountIn == 0) revert ZeroAmountIn();
        (address token0, address token1) = _sort(p.tokenIn, p.tokenOut);
        address pool = _pool(token0, token1, p.fee);
        _countRebalance(batch);

        int24 twapTick = _twapTick(pool, batch);
        uint256 holdings = _holdingsIn(p.tokenIn, p.tokenOut, twapTick);
        // More than all holdings reads as an unbounded share.
        uint256 share =
            p.amountIn > holdings ? type(uint256).max : RebalanceMath.mulDivRoundingUp(p.amountIn, BPS, holdings);
        uint256 used = share > BPS ? type(uint256).max : batch.swapShareBps + share;
        if (used > maxSwapShareBps) revert SwapTooLarge(used, maxSwapShareBps);
        batch.swapShareBps = used;

        bytes memory ret = _exec(address(swapRouter), abi.encodeCall(IV3SwapRouter.exactInputSingle, (p)));
        amountOut = abi.decode(ret, (uint256));
        (, int24 spotTick,,,,,) = IV3Pool(pool).slot0();
        _checkDeviation(pool, spotTick, twapTick);
        emit Swapped(pool, p.tokenIn, p.amountIn, amountOut, share);
    }

    function _approve(address token, address spender, uint256 amount) internal {
        if (spender != address(positionManager) && spender != address(swapRouter)) revert SpenderNotAllowed(spender);
        // The position manager's own approve(address,uint256) is ERC-721: never approve a position NFT.
        if (allowedPoolsWithToken[token] == 0 || token == address(positionManager)) revert TokenNotAllowed(token);
        bytes memory ret = _exec(token, abi.encodeWithSelector(IERC20Approve.approve.selector, spender, amount));
        if (ret.length != 0 && (ret.length != 32 || abi.decode(ret, (uint256)) != 1)) revert CallFailed(ret);
        emit Approved(token, spender, amount);
    }

    /// @dev Has the Safe CALL `to` with `data` and no value; bubbles any failure as CallFailed.
    function _exec(address to, bytes memory data) internal returns (bytes memory) {
        try ISafeModuleManager(safe).execTransactionFromModuleReturnData(to, 0, data, CALL) returns (
            bool success, bytes memory returnData
        ) {
            if (!success) revert CallFailed(returnData);
            return returnData;
        } catch (bytes memory reason) {
            revert CallFailed(reason);
        }
    }

    function _checkDeadline(uint256 deadline) internal view {
        // forge-lint: disable-next-line(block-timestamp)
        if (deadline < block.timestamp) revert DeadlineExpired(deadline);
    }

    /// @dev The allow-listed pool of (token0, token1, fee) (sorted), or PoolNotAllowed.
    function _pool(address token0, address token1, uint24 fee) internal view returns (address pool) {
        pool = allowedPool[token0][token1][fee];
        if (pool == address(0)) revert PoolNotAllowed(factory.getPool(token0, token1, fee));
    }

    /// @dev Requires `tokenId` to be owned by the Safe and returns its allow-listed pool.
    function _safePositionPool(uint256 tokenId) internal view returns (address) {
        address owner;
        try positionManager.ownerOf(tokenId) returns (address o) {
            owner = o;
        } catch {}
        if (owner != safe) revert PositionNotOwnedBySafe(tokenId, owner);
        (,, address token0, address token1, uint24 fee,,,,,,,) = positionManager.positions(tokenId);
        return _pool(token0, token1, fee);
    }

    /// @dev Counts the batch as one rebalance the first time a counted step runs.
    function _countRebalance(Batch memory batch) internal {
        if (batch.counted) return;
        batch.counted = true;
        uint256 last = lastRebalanceAt;
        if (last != 0) {
            uint256 earliest = last + minRebalanceInterval;
            // forge-lint: disable-next-line(block-timestamp)
            if (block.timestamp < earliest) revert TooSoon(earliest);
        }
        uint256 day = block.timestamp / 1 days;
        uint256 count = day == rebalanceDay ? rebalancesOnDay : 0;
        if (count >= maxRebalancesPerDay) revert TooManyRebalances(day, maxRebalancesPerDay);
        unchecked {
            ++count;
        }
        // casting is safe: timestamps fit 40 bits and days 32 bits until the
        // year 36812, and count <= maxRebalancesPerDay (a uint16)
        lastRebalanceAt = uint40(block.timestamp);
        // forge-lint: disable-next-line(unsafe-typecast)
        rebalanceDay = uint32(day);
        // forge-lint: disable-next-line(unsafe-typecast)
        rebalancesOnDay = uint16(count);
        emit RebalanceCounted(day, count);
    }

    function _checkPrice(address pool, Batch memory batch) internal view {
        int24 twapTick = _twapTick(pool, batch);
        (, int24 spotTick,,,,,) = IV3Pool(pool).slot0();
        _checkDeviation(pool, spotTick, twapTick);
    }

    function _checkDeviation(address pool, int24 spotTick, int24 twapTick) internal view {
        int256 diff = int256(spotTick) - int256(twapTick);
        if (diff < 0) diff = -diff;
        // casting to 'uint256' is safe because diff >= 0
        // forge-lint: disable-next-line(unsafe-typecast)
        if (uint256(diff) > maxPriceDeviationBps) revert PriceDeviates(pool, spotTick, twapTick);
    }

    /// @dev Arithmetic-mean tick over the last `twapWindow` seconds (OracleLibrary.consult).
    ///      Within one transaction it cannot change (the pool's cumulatives for "now"
    ///      only advance with the timestamp), so it is read once per pool and batch.
    function _twapTick(address pool, Batch memory batch) internal view returns (int24 tick) {
        if (batch.twapPool == pool) return batch.twapTick;
        uint32 window = twapWindow;
        if (window == 0) revert PriceCheckNotConfigured();
        uint32[] memory secondsAgos = new uint32[](2);
        secondsAgos[0] = window;
        int56[] memory cumulatives;
        try IV3Pool(pool).observe(secondsAgos) returns (int56[] memory c, uint160[] memory) {
            cumulatives = c;
        } catch {
            revert TwapUnavailable(pool);
        }
        int56 delta = cumulatives[1] - cumulatives[0];
        int56 w = int56(uint56(window));
        // casting to 'int24' is safe: a mean of ticks is a tick
        // forge-lint: disable-next-line(unsafe-typecast)
        tick = int24(delta / w);
        if (delta < 0 && delta % w != 0) --tick;
        batch.twapPool = pool;
        batch.twapTick = tick;
    }

    /// @dev The Safe's balance of tokenIn plus its balance of tokenOut valued in
    ///      tokenIn at `tick` (OracleLibrary.getQuoteAtTick; balances above
    ///      uint128 are capped there); saturates at type(uint256).max.
    function _holdingsIn(address tokenIn, address tokenOut, int24 tick) internal view returns (uint256) {
        uint256 balanceIn = IERC20Balance(tokenIn).balanceOf(safe);
        uint256 balanceOut = IERC20Balance(tokenOut).balanceOf(safe);
        if (balanceOut > type(uint128).max) balanceOut = type(uint128).max;
        // casting to 'uint128' is safe because balanceOut was capped above
        // forge-lint: disable-next-line(unsafe-typecast)
        uint256 quoted = RebalanceMath.getQuoteAtTick(tick, uint128(balanceOut), tokenOut, tokenIn);
        unchecked {
            uint256 sum = balanceIn + quoted;
            return sum < balanceIn ? type(uint256).max : sum;
        }
    }

    function _sort(address a, address b) internal pure returns (address, address) {
        return a < b ? (a, b) : (b, a);
    }
}

/// @dev ERC-20 approve, for its selector (the same as ERC-721 approve).
interface IERC20Approve {
    function approve(address spender, uint256 amount) external returns (bool);
}

/// @title RebalanceMath
/// @notice The Uniswap V3 math LPRebalanceModule needs, ported to Solidity 0.8
///         with the same results: FullMath (v3-core 1.0.0), TickMath.getSqrtRatioAtTick
///         (v3-core 1.0.0) and OracleLibrary.getQuoteAtTick (v3-periphery 1.x).
library RebalanceMath {
    int24 internal constant MIN_TICK = -887272;
    int24 internal constant MAX_TICK = 887272;
    uint256 internal constant MAX_ABS_TICK = 887272;

    error TickOutOfRange(int24 tick);

    /// @notice FullMath.mulDiv: floor(a * b / denominator) with a 512-bit product;
    ///         reverts if denominator is 0 or the result overflows.
    function mulDiv(uint256 a, uint256 b, uint256 denominator) internal pure returns (uint256 result) {
        unchecked {
            uint256 prod0;
            uint256 prod1;
            assembly ("memory-safe") {
                let mm := mulmod(a, b, not(0))
                prod0 := mul(a, b)
                prod1 := sub(sub(mm, prod0), lt(mm, prod0))
            }
            if (prod1 == 0) {
                require(denominator > 0);
                assembly ("memory-safe") {
                    result := div(prod0, denominator)
                }
                return result;
            }
            require(denominator > prod1);
            uint256 remainder;
            assembly ("memory-safe") {
                remainder := mulmod(a, b, denominator)
                prod1 := sub(prod1, gt(remainder, prod0))
                prod0 := sub(prod0, remainder)
            }
            uint256 twos = (0 - denominator) & denominator;
            assembly ("memory-safe") {
                denominator := div(denominator, twos)
                prod0 := div(prod0, twos)
                twos := add(div(sub(0, twos), twos), 1)
            }
            prod0 |= prod1 * twos;
            uint256 inv = (3 * denominator) ^ 2;
            inv *= 2 - denominator * inv; // mod 2**8
            inv *= 2 - denominator * inv; // mod 2**16
            inv *= 2 - denominator * inv; // mod 2**32
            inv *= 2 - denominator * inv; // mod 2**64
            inv *= 2 - denominator * inv; // mod 2**128
            inv *= 2 - denominator * inv; // mod 2**256
            result = prod0 * inv;
        }
    }

    /// @notice FullMath.mulDivRoundingUp: ceil(a * b / denominator).
    function mulDivRoundingUp(uint256 a, uint256 b, uint256 denominator) internal pure returns (uint256 result) {
        result = mulDiv(a, b, denominator);
        if (mulmod(a, b, denominator) > 0) {
            require(result < type(uint256).max);
            unchecked {
                ++result;
            }
        }
    }

    /// @notice TickMath.getSqrtRatioAtTick: sqrt(1.0001^tick) * 2^96, rounded up.
    function getSqrtRatioAtTick(int24 tick) internal pure returns (uint160 sqrtPriceX96) {
        unchecked {
            // casting to 'uint256' is safe: both operands are non-negative
            // forge-lint: disable-next-line(unsafe-typecast)
            uint256 absTick = tick < 0 ? uint256(-int256(tick)) : uint256(int256(tick));
            if (absTick > MAX_ABS_TICK) revert TickOutOfRange(tick);

            uint256 ratio =
                absTick & 0x1 != 0 ? 0xfffcb933bd6fad37aa2d162d1a594001 : 0x100000000000000000000000000000000;
            if (absTick & 0x2 != 0) ratio = (ratio * 0xfff97272373d413259a46990580e213a) >> 128;
            if (absTick & 0x4 != 0) ratio = (ratio * 0xfff2e50f5f656932ef12357cf3c7fdcc) >> 128;
            if (absTick & 0x8 != 0) ratio = (ratio * 0xffe5caca7e10e4e61c3624eaa0941cd0) >> 128;
            if (absTick & 0x10 != 0) ratio = (ratio * 0xffcb9843d60f6159c9db58835c926644) >> 128;
            if (absTick & 0x20 != 0) ratio = (ratio * 0xff973b41fa98c081472e6896dfb254c0) >> 128;
            if (absTick & 0x40 != 0) ratio = (ratio * 0xff2ea16466c96a3843ec78b326b52861) >> 128;
            if (absTick & 0x80 != 0) ratio = (ratio * 0xfe5dee046a99a2a811c461f1969c3053) >> 128;
            if (absTick & 0x100 != 0) ratio = (ratio * 0xfcbe86c7900a88aedcffc83b479aa3a4) >> 128;
            if (absTick & 0x200 != 0) ratio = (ratio * 0xf987a7253ac413176f2b074cf7815e54) >> 128;
            if (absTick & 0x400 != 0) ratio = (ratio * 0xf3392b0822b70005940c7a398e4b70f3) >> 128;
            if (absTick & 0x800 != 0) ratio = (ratio * 0xe7159475a2c29b7443b29c7fa6e889d9) >> 128;
            if (absTick & 0x1000 != 0) ratio = (ratio * 0xd097f3bdfd2022b8845ad8f792aa5825) >> 128;
            if (absTick & 0x2000 != 0) ratio = (ratio * 0xa9f746462d870fdf8a65dc1f90e061e5) >> 128;
            if (absTick & 0x4000 != 0) ratio = (ratio * 0x70d869a156d2a1b890bb3df62baf32f7) >> 128;
            if (absTick & 0x8000 != 0) ratio = (ratio * 0x31be135f97d08fd981231505542fcfa6) >> 128;
            if (absTick & 0x10000 != 0) ratio = (ratio * 0x9aa508b5b7a84e1c677de54f3e99bc9) >> 128;
            if (absTick & 0x20000 != 0) ratio = (ratio * 0x5d6af8dedb81196699c329225ee604) >> 128;
            if (absTick & 0x40000 != 0) ratio = (ratio * 0x2216e584f5fa1ea926041bedfe98) >> 128;
            if (absTick & 0x80000 != 0) ratio = (ratio * 0x48a170391f7dc42444e8fa2) >> 128;

            if (tick > 0) ratio = type(uint256).max / ratio;
            // Q128.128 to Q64.96, rounding up.
            sqrtPriceX96 = uint160((ratio >> 32) + (ratio % (1 << 32) == 0 ? 0 : 1));
        }
    }

    /// @notice OracleLibrary.getQuoteAtTick: `baseAmount` of baseToken in quoteToken at `tick`, rounded down.
    function getQuoteAtTick(int24 tick, uint128 baseAmount, address baseToken, address quoteToken)
        internal
        pure
        returns (uint256 quoteAmount)
    {
        uint160 sqrtRatioX96 = getSqrtRatioAtTick(tick);
        if (sqrtRatioX96 <= type(uint128).max) {
            uint256 ratioX192 = uint256(sqrtRatioX96) * sqrtRatioX96;
            quoteAmount = baseToken < quoteToken
                ? mulDiv(ratioX192, baseAmount, 1 << 192)
                : mulDiv(1 << 192, baseAmount, ratioX192);
        } else {
            uint256 ratioX128 = mulDiv(sqrtRatioX96, sqrtRatioX96, 1 << 64);
            quoteAmount = baseToken < quoteToken
                ? mulDiv(ratioX128, baseAmount, 1 << 128)
                : mulDiv(1 << 128, baseAmount, ratioX128);
        }
    }
}

// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {ISafeModuleManager} from "./interfaces/ISafeModuleManager.sol";
import {IPositionManager, IV3SwapRouter, IV3Factory, IV3Pool, IERC20Balance} from "./interfaces/IUniswapV3.sol";

/// @title LPRebalanceModule
/// @notice A Safe (1.4.1) module through which one operator key makes the Safe
///         manage its Uniswap V3 positions, and nothing else, within a loss
///         budget the Safe's owners set.
///
///         The operator calls typed entry points (or `execute`, a batch of
///         them); the module checks each one and has the Safe make exactly one
///         call with `execTransactionFromModuleReturnData` (operation CALL,
///         value 0) to the NonfungiblePositionManager (`decreaseLiquidity`,
///         `collect`, `burn`, `mint`, `increaseLiquidity`), to SwapRouter02
///         (`exactInputSingle`) or to a token (`approve`):
///         - positions must be owned by the Safe and their pool allow-listed;
///           minted positions, collected tokens and swap output go to the Safe;
///         - `approve` only names the position manager or the router as
///           spender, and only for a token of an allow-listed pool.
///
///         The reference price is the pool's TWAP tick over `twapWindow`
///         seconds (30 minutes unless the Safe sets another), the arithmetic
///         mean of OracleLibrary.consult rounded toward negative infinity.
///         The spot tick must be within `maxPriceDeviationBps` ticks of it
///         (1 tick = 1 bp of price) before mint, increase and decrease, and
///         both before and after a swap. Losses are valued at the TWAP tick
///         and at the tick the pool held before the call's block (read from its
///         observations, so a trader's push earlier in the same block does not
///         move it), and the larger is charged; if the pool's latest
///         observation is older than `maxObservationAge`, at the spot too.
///
///         Loss budget: each call that moves value (decrease, swap, mint,
///         increase) is valued at the reference price: a swap's output
///         against its input; a deposit against the position's value for
///         the liquidity it bought; a decrease's returned amounts against the
///         value of the liquidity removed. A shortfall is charged, in units of
///         1e-8 of the Safe's value in that pool (its balances of the pool's
///         two tokens plus the position the call touches, at the reference
///         price, taken once per pool and operator transaction: a lower bound
///         of its value in the listed pools, so the charge errs high). One
///         operator transaction may lose at most `lossBudgetPerCallBps`, and
///         all operator transactions of the last 24 hours (a sliding window)
///         at most `lossBudgetPerDayBps`; else `CallLossBudgetExceeded` /
///         `DayLossBudgetExceeded`.
///
///         Shape checks: a mint or increase must be on a range that contains
///         the TWAP tick (tickLower <= TWAP < tickUpper) and is at least
///         `minRangeWidth` ticks wide; a swap's `amountOutMinimum` must be at
///         least its input's worth at the TWAP less `slippageBps`, and the
///         minimums of a mint, increase or decrease (`amount0Min`, `amount1Min`),
///         valued together at the TWAP, at least the worth of the amounts the
///         TWAP price gives less `slippageBps`; every deadline (a swap carries
///         one too) must lie in [now, now + maxDeadlineHorizon].
///
///         What counts as a rebalance: one operator transaction (a single
///         entry-point call or one `execute` batch) that contains at least one
///         decrease, swap, mint or increase. It counts once, however many such
///         steps it holds; collect (it only moves what a position already owes
///         into the Safe), burn and approve alone do not count, so liquidity
///         cannot be pulled out more often than the rebalance limits allow. At
///         most `maxRebalancesPerDay` rebalances start in any 24 hours (a
///         sliding window, not a UTC day), each at least `minRebalanceInterval`
///         seconds after the previous one. The swap share of one rebalance
///         (ceil(amountIn * 10_000 / holdings), holdings being the Safe's
///         balances of the pool's two tokens in tokenIn at the TWAP) adds up to
///         at most `maxSwapShareBps`.
///
///         Price anchor (per pool, optional, `setAnchor`): Chainlink USD feeds
///         of both tokens give the feeds' tick; on an anchored pool the TWAP tick
///         and the pre-block tick must lie within `maxDeviation` ticks of it
///         (else AnchorDeviates), each feed's answer must be positive and at
///         most `maxAge` old (else FeedAnswerInvalid / FeedStale), and losses are
///         valued at the feeds' tick too. Only anchored pools are bounded against
///         a price a trader holds off the market for a whole TWAP window.
///
///         Owner controls: only the Safe (its threshold) configures the
///         module, rotates or removes the operator and unpauses; any single
///         owner of the Safe can `pause` it at once with a plain transaction,
///         which stops every operator entry point. Every setting but the TWAP
///         window starts at zero, which allows nothing.
/// @dev One module instance serves one Safe. Malformed ABI encoding (e.g. an
///      address with dirty upper bits) is rejected by Solidity's decoder without data.
contract LPRebalanceModule {
    // ------------------------------------------------------------- errors --

    error NotOperator();
    error NotSafe();
    error NotSafeOrOwner(address caller);
    error IsPaused();
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
    error TooManyRebalances(uint256 inWindow, uint256 maxPerDay);
    error TooSoon(uint256 earliest);
    error SwapTooLarge(uint256 shareBps, uint256 maxShareBps);
    error ZeroAmountIn();
    error DeadlineExpired(uint256 deadline);
    error DeadlineTooFar(uint256 deadline, uint256 latest);
    error RangeOffTwap(int24 tickLower, int24 tickUpper, int24 twapTick);
    error RangeTooNarrow(int24 tickLower, int24 tickUpper, uint256 minWidth);
    error MinimumTooLow(uint256 minimum, uint256 required);
    error CallLossBudgetExceeded(uint256 loss, uint256 budget);
    error DayLossBudgetExceeded(uint256 loss, uint256 budget);
    error CallFailed(bytes returnData);
    error FeedStale(address feed, uint256 updatedAt, uint256 maxAge);
    error FeedAnswerInvalid(address feed, int256 answer);
    error AnchorDeviates(address pool, int24 anchorTick, int24 twapTick, int24 blockTick);

    // ------------------------------------------------------------- events --

    event OperatorSet(address indexed previousOperator, address indexed newOperator);
    event OperatorRemoved(address indexed previousOperator);
    event Paused(address indexed by);
    event Unpaused(address indexed by);
    event PoolAllowed(address indexed pool, address indexed token0, address indexed token1, uint24 fee);
    event PoolDisallowed(address indexed pool, address indexed token0, address indexed token1, uint24 fee);
    event LimitsSet(
        uint16 indexed maxRebalancesPerDay, uint32 indexed minRebalanceInterval, uint16 indexed maxSwapShareBps
    );
    event PriceCheckSet(
        uint32 indexed twapWindow, uint16 indexed maxPriceDeviationBps, uint32 indexed maxObservationAge
    );
    event LossBudgetSet(uint16 indexed perCallBps, uint16 indexed perDayBps);
    event AnchorSet(
        address indexed pool, address indexed feed0, address indexed feed1, uint32 maxAge, uint24 maxDeviationTicks
    );
    event BoundsSet(uint16 indexed slippageBps, uint24 indexed minRangeWidth, uint32 indexed maxDeadlineHorizon);

    event RebalanceCounted(uint256 indexed index, uint256 indexed inWindow);
    event LossCharged(uint256 indexed index, address indexed pool, uint256 loss, uint256 callLoss);
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
    /// @notice Loss is counted in units of 1e-8 of value: one bp is 10_000 units.
    uint256 public constant LOSS_UNITS_PER_BPS = 10_000;
    uint256 internal constant LOSS_SCALE = BPS * LOSS_UNITS_PER_BPS;
    /// @notice The largest `maxRebalancesPerDay` (it bounds the 24-hour scan).
    uint16 public constant MAX_REBALANCES_PER_DAY = 48;
    uint32 public constant DEFAULT_TWAP_WINDOW = 30 minutes;
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
    /// @notice Set by any owner (or the Safe): every operator entry point reverts.
    bool public paused;
    /// @notice TWAP window in seconds of the reference price.
    uint32 public twapWindow;
    /// @notice Largest |spot tick - TWAP tick| allowed (1 tick = 1 bp of price).
    uint16 public maxPriceDeviationBps;
    /// @notice Age (s) of the pool's latest observation beyond which spot is valued too (0: always).
    uint32 public maxObservationAge;
    /// @notice Largest summed share (bps of holdings) swapped per rebalance.
    uint16 public maxSwapShareBps;
    uint16 public maxRebalancesPerDay;
    uint32 public minRebalanceInterval;
    /// @notice Largest loss at the reference price of one operator transaction, bps of value.
    uint16 public lossBudgetPerCallBps;
    /// @notice Largest summed loss of the operator transactions of any 24 hours, bps of value.
    uint16 public lossBudgetPerDayBps;
    /// @notice How far below the TWAP-derived amount a minimum may be, in bps.
    uint16 public slippageBps;
    /// @notice Narrowest range (tickUpper - tickLower) a mint may open.
    uint24 public minRangeWidth;
    /// @notice Latest deadline allowed, in seconds from now.
    uint32 public maxDeadlineHorizon;

    // ---------------------------------------------------------- rate state --

    /// @notice block.timestamp of the last counted rebalance (0: none yet).
    uint40 public lastRebalanceAt;
    /// @notice Number of rebalances counted so far.
    uint64 public rebalanceCount;
    /// @dev Ring of the last MAX_REBALANCES_PER_DAY rebalances, by index mod its size:
    ///      (block.timestamp << 216) | loss units charged. At most that many start in
    ///      any 24 hours, so an entry is overwritten only once it is out of the window.
    uint256[MAX_REBALANCES_PER_DAY] internal _rebalances;

    /// @notice Allow-listed pool by (token0, token1, fee), tokens sorted; 0 if not allowed.
    mapping(address token0 => mapping(address token1 => mapping(uint24 fee => address pool))) public allowedPool;
    /// @notice Number of allow-listed pools that hold `token` (approvable if > 0).
    mapping(address token => uint256 pools) public allowedPoolsWithToken;

    /// @notice An external price anchor of a pool: USD feeds of its two tokens.
    /// @dev `feed0`/`feed1` are Chainlink AggregatorV3 feeds of token0/USD and
    ///      token1/USD (address 0: that token is worth exactly 1 USD). `exp` is
    ///      decimals(token1) + decimals(feed1) - decimals(token0) - decimals(feed0),
    ///      read when the anchor is set. maxAge 0: no anchor.
    struct Anchor {
        address feed0;
        uint32 maxAge;
        uint24 maxDeviation;
        int8 exp;
        address feed1;
    }

    /// @notice The price anchor of each pool (see `setAnchor`).
    mapping(address pool => Anchor) public anchorOf;

    /// @dev Per-transaction state of one operator call or batch.
    struct Batch {
        bool counted;
        uint256 index;
        uint256 dayLoss;
        uint256 loss;
        uint256 swapShareBps;
        address pool;
        int24 twapTick;
        uint160 sqrtTwap;
        int24 blockTick;
        bool stale;
        bool anchored;
        int24 anchorTick;
        uint256 value;
    }

    /// @dev NonfungiblePositionManager.positions' return values.
    struct PositionData {
        uint96 nonce;
        address operator;
        address token0;
        address token1;
        uint24 fee;
        int24 tickLower;
        int24 tickUpper;
        uint128 liquidity;
        uint256 feeGrowthInside0LastX128;
        uint256 feeGrowthInside1LastX128;
        uint128 tokensOwed0;
        uint128 tokensOwed1;
    }

    /// @dev A position of the Safe (or one being minted) and its allow-listed pool.
    struct Position {
        address pool;
        address token0;
        address token1;
        int24 tickLower;
        int24 tickUpper;
        uint128 liquidity;
        uint128 owed0;
        uint128 owed1;
    }

    modifier onlySafe() {
        if (msg.sender != safe) revert NotSafe();
        _;
    }

    modifier onlyOperator() {
        if (msg.sender != operator) revert NotOperator();
        if (paused) revert IsPaused();
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
        twapWindow = DEFAULT_TWAP_WINDOW;
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

    /// @notice Stops every operator entry point at once. Any single owner of the
    ///         Safe may call it directly (no threshold), or the Safe itself.
    function pause() external {
        if (msg.sender != safe && !ISafeModuleManager(safe).isOwner(msg.sender)) revert NotSafeOrOwner(msg.sender);
        paused = true;
        emit Paused(msg.sender);
    }

    /// @notice Lets the operator act again. Only the Safe (its threshold).
    function unpause() external onlySafe {
        paused = false;
        emit Unpaused(msg.sender);
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
    /// @param maxRebalancesPerDay_ Rebalances in any 24 hours (0: none; <= MAX_REBALANCES_PER_DAY).
    /// @param minRebalanceInterval_ Seconds between the starts of two rebalances.
    /// @param maxSwapShareBps_ Summed swap share per rebalance, in bps of holdings (<= 10_000).
    function setLimits(uint16 maxRebalancesPerDay_, uint32 minRebalanceInterval_, uint16 maxSwapShareBps_)
        external
        onlySafe
    {
        if (maxSwapShareBps_ > BPS || maxRebalancesPerDay_ > MAX_REBALANCES_PER_DAY) revert InvalidConfig();
        maxRebalancesPerDay = maxRebalancesPerDay_;
        minRebalanceInterval = minRebalanceInterval_;
        maxSwapShareBps = maxSwapShareBps_;
        emit LimitsSet(maxRebalancesPerDay_, minRebalanceInterval_, maxSwapShareBps_);
    }

    /// @notice Sets the TWAP window (seconds, > 0), the largest spot/TWAP deviation in
    ///         ticks (bps) and the age of the latest observation beyond which spot is valued too.
    function setPriceCheck(uint32 twapWindow_, uint16 maxPriceDeviationBps_, uint32 maxObservationAge_)
        external
        onlySafe
    {
        if (twapWindow_ == 0) revert InvalidConfig();
        twapWindow = twapWindow_;
        maxPriceDeviationBps = maxPriceDeviationBps_;
        maxObservationAge = maxObservationAge_;
        emit PriceCheckSet(twapWindow_, maxPriceDeviationBps_, maxObservationAge_);
    }

    /// @notice Sets the loss budget at the reference price, in bps of the Safe's value in the pool.
    /// @param perCallBps Largest loss of one operator transaction.
    /// @param perDayBps Largest summed loss of the operator transactions of any 24 hours.
    function setLossBudget(uint16 perCallBps, uint16 perDayBps) external onlySafe {
        if (perCallBps > perDayBps || perDayBps > BPS) revert InvalidConfig();
        lossBudgetPerCallBps = perCallBps;
        lossBudgetPerDayBps = perDayBps;
        emit LossBudgetSet(perCallBps, perDayBps);
    }

    /// @notice Anchors the pool of (tokenA, tokenB, fee) to USD price feeds, or
    ///         removes its anchor (both feeds 0). On an anchored pool every
    ///         decrease, mint, increase and swap refuses (AnchorDeviates) when the
    ///         TWAP tick or the pre-block tick is more than `maxDeviationTicks`
    ///         from the feeds' tick, and (FeedStale, FeedAnswerInvalid) when a
    ///         feed's answer is older than `maxAge` seconds or not positive; its
    ///         losses are also valued at the feeds' tick, and the largest charged.
    /// @param feedA The USD feed of tokenA (0: tokenA is worth exactly 1 USD).
    /// @param feedB The USD feed of tokenB (0: likewise).
    /// @param maxAge Oldest feed answer accepted, in seconds (> 0).
    /// @param maxDeviationTicks Largest distance of the pool's references from the feeds' tick.
    function setAnchor(
        address tokenA,
        address tokenB,
        uint24 fee,
        address feedA,
        address feedB,
        uint32 maxAge,
        uint24 maxDeviationTicks
    ) external onlySafe {
        (address token0, address token1) = _sort(tokenA, tokenB);
        (address feed0, address feed1) = tokenA == token0 ? (feedA, feedB) : (feedB, feedA);
        address pool = factory.getPool(token0, token1, fee);
        if (pool == address(0)) revert UnknownPool(tokenA, tokenB, fee);
        if (feed0 == address(0) && feed1 == address(0)) {
            delete anchorOf[pool];
            emit AnchorSet(pool, address(0), address(0), 0, 0);
            return;
        }
        if (maxAge == 0 || maxDeviationTicks > uint24(RebalanceMath.MAX_TICK)) revert InvalidConfig();
        // A feed must be a contract (a typo'd address would otherwise read as no answer).
        if ((feed0 != address(0) && feed0.code.length == 0) || (feed1 != address(0) && feed1.code.length == 0)) {
            revert InvalidConfig();
        }
        int256 exp = int256(_decimals(token1)) + _feedDecimals(feed1) - int256(_decimals(token0)) - _feedDecimals(feed0);
        // 10**38 < 2**127: the feeds' price (answers below 2**128) then fits 256 bits.
        if (exp > 38 || exp < -38) revert InvalidConfig();
        // casting to 'int8' is safe: |exp| <= 38
        // forge-lint: disable-next-line(unsafe-typecast)
        anchorOf[pool] = Anchor(feed0, maxAge, maxDeviationTicks, int8(exp), feed1);
        emit AnchorSet(pool, feed0, feed1, maxAge, maxDeviationTicks);
    }

    /// @notice The feeds' tick of an anchored pool now: the largest tick whose
    ///         price does not exceed the feeds' price of token0 in token1
    ///         (see `_anchorTick`). Reverts as an operator call would on a stale
    ///         or non-positive answer.
    function anchorTick(address pool) external view returns (int24) {
        Anchor memory a = anchorOf[pool];
        if (a.maxAge == 0) revert InvalidConfig();
        (uint256 num, uint256 den) = _anchorPrice(a);
        return _anchorTick(num, den, RebalanceMath.MIN_TICK, RebalanceMath.MAX_TICK - 1);
    }

    /// @notice Sets the shape checks: minimums' slippage below the TWAP-derived
    ///         amounts (bps), narrowest range (ticks), latest deadline (s from now).
    function setBounds(uint16 slippageBps_, uint24 minRangeWidth_, uint32 maxDeadlineHorizon_) external onlySafe {
        if (slippageBps_ > BPS) revert InvalidConfig();
        slippageBps = slippageBps_;
        minRangeWidth = minRangeWidth_;
        maxDeadlineHorizon = maxDeadlineHorizon_;
        emit BoundsSet(slippageBps_, minRangeWidth_, maxDeadlineHorizon_);
    }

    /// @notice The allow-listed pool for (tokenA, tokenB, fee) in any token order; 0 if none.
    function poolFor(address tokenA, address tokenB, uint24 fee) external view returns (address) {
        (address token0, address token1) = _sort(tokenA, tokenB);
        return allowedPool[token0][token1][fee];
    }

    /// @notice Rebalances started in the last 24 hours and the loss units charged to them.
    function window() public view returns (uint256 count, uint256 loss) {
        uint256 n = rebalanceCount;
        uint256 oldest = n > MAX_REBALANCES_PER_DAY ? n - MAX_REBALANCES_PER_DAY : 0;
        // forge-lint: disable-next-line(block-timestamp)
        uint256 since = block.timestamp > 1 days ? block.timestamp - 1 days : 0;
        while (n > oldest) {
            uint256 packed = _rebalances[(n - 1) % MAX_REBALANCES_PER_DAY];
            if (packed >> 216 <= since) break;
            ++count;
            loss += packed & type(uint216).max;
            --n;
        }
    }

    // ========================================================== operator ==

    /// @notice NonfungiblePositionManager.decreaseLiquidity on a Safe-owned position. Counts as a rebalance.
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

    /// @notice SwapRouter02.exactInputSingle on an allow-listed pool, to the Safe,
    ///         by `deadline` (the router's params carry none). Counts as a rebalance.
    function swapExactInputSingle(IV3SwapRouter.ExactInputSingleParams calldata params, uint256 deadline)
        external
        onlyOperator
        returns (uint256 amountOut)
    {
        Batch memory batch;
        return _swap(params, deadline, batch);
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
            _checkLength(selector, args, 8);
            (IV3SwapRouter.ExactInputSingleParams memory p, uint256 deadline) =
                abi.decode(args, (IV3SwapRouter.ExactInputSingleParams, uint256));
            return abi.encode(_swap(p, deadline, batch));
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
        Position memory pos = _safePosition(p.tokenId);
        _countRebalance(batch);
        _loadPool(pos.pool, pos, batch);
        _checkSpot(pos.pool, batch.twapTick);
        uint128 liquidity = p.liquidity > pos.liquidity ? pos.liquidity : p.liquidity;
        (uint256 e0, uint256 e1) =
            RebalanceMath.getAmountsForLiquidity(batch.sqrtTwap, pos.tickLower, pos.tickUpper, liquidity);
        _checkMinimums(pos, p.amount0Min, p.amount1Min, e0, e1, batch.twapTick);
        bytes memory ret = _exec(address(positionManager), abi.encodeCall(IPositionManager.decreaseLiquidity, (p)));
        (amount0, amount1) = abi.decode(ret, (uint256, uint256));
        // Given: the liquidity removed; got: the amounts it returned.
        _chargePosition(pos, liquidity, amount0, amount1, false, batch);
        emit LiquidityDecreased(p.tokenId, p.liquidity, amount0, amount1);
    }

    function _collect(IPositionManager.CollectParams memory p) internal returns (uint256 amount0, uint256 amount1) {
        if (p.recipient != safe) revert RecipientNotSafe(p.recipient);
        _safePosition(p.tokenId);
        // Collect moves only what is already owed to the position (fees, and the
        // amounts of a counted decrease) into the Safe: no loss, no count.
        bytes memory ret = _exec(address(positionManager), abi.encodeCall(IPositionManager.collect, (p)));
        (amount0, amount1) = abi.decode(ret, (uint256, uint256));
        emit Collected(p.tokenId, amount0, amount1);
    }

    function _burn(uint256 tokenId) internal {
        _safePosition(tokenId);
        _exec(address(positionManager), abi.encodeCall(IPositionManager.burn, (tokenId)));
        emit PositionBurned(tokenId);
    }

    function _mint(IPositionManager.MintParams memory p, Batch memory batch)
        internal
        returns (uint256 tokenId, uint128 liquidity, uint256 amount0, uint256 amount1)
    {
        _checkDeadline(p.deadline);
        if (p.recipient != safe) revert RecipientNotSafe(p.recipient);
        Position memory pos;
        pos.pool = _pool(p.token0, p.token1, p.fee);
        pos.token0 = p.token0;
        pos.token1 = p.token1;
        pos.tickLower = p.tickLower;
        pos.tickUpper = p.tickUpper;
        _countRebalance(batch);
        _loadPool(pos.pool, pos, batch);
        _checkDeposit(pos, p.amount0Desired, p.amount1Desired, p.amount0Min, p.amount1Min, batch);
        bytes memory ret = _exec(address(positionManager), abi.encodeCall(IPositionManager.mint, (p)));
        (tokenId, liquidity, amount0, amount1) = abi.decode(ret, (uint256, uint128, uint256, uint256));
        _chargePosition(pos, liquidity, amount0, amount1, true, batch);
        emit PositionMinted(tokenId, pos.pool, liquidity, amount0, amount1);
    }

    function _increaseLiquidity(IPositionManager.IncreaseLiquidityParams memory p, Batch memory batch)
        internal
        returns (uint128 liquidity, uint256 amount0, uint256 amount1)
    {
        _checkDeadline(p.deadline);
        Position memory pos = _safePosition(p.tokenId);
        _countRebalance(batch);
        _loadPool(pos.pool, pos, batch);
        _checkDeposit(pos, p.amount0Desired, p.amount1Desired, p.amount0Min, p.amount1Min, batch);
        bytes memory ret = _exec(address(positionManager), abi.encodeCall(IPositionManager.increaseLiquidity, (p)));
        (liquidity, amount0, amount1) = abi.decode(ret, (uint128, uint256, uint256));
        _chargePosition(pos, liquidity, amount0, amount1, true, batch);
        emit LiquidityIncreased(p.tokenId, liquidity, amount0, amount1);
    }

    function _swap(IV3SwapRouter.ExactInputSingleParams memory p, uint256 deadline, Batch memory batch)
        internal
        returns (uint256 amountOut)
    {
        _checkDeadline(deadline);
        if (p.recipient != safe) revert RecipientNotSafe(p.recipient);
        // SwapRouter02 reads amountIn == 0 as "swap the router's own balance".
        if (p.amountIn == 0) revert ZeroAmountIn();
        Position memory pos;
        (pos.token0, pos.token1) = _sort(p.tokenIn, p.tokenOut);
        pos.pool = _pool(pos.token0, pos.token1, p.fee);
        _countRebalance(batch);
        _loadPool(pos.pool, pos, batch);
        int24 twapTick = batch.twapTick;
        int24 spotBefore = _checkSpot(pos.pool, twapTick);

        uint256 share;
        {
            uint256 holdings = _holdingsIn(p.tokenIn, p.tokenOut, twapTick);
            // More than all holdings reads as an unbounded share.
            share =
                p.amountIn > holdings ? type(uint256).max : RebalanceMath.mulDivRoundingUp(p.amountIn, BPS, holdings);
            uint256 used = share > BPS ? type(uint256).max : batch.swapShareBps + share;
            if (used > maxSwapShareBps) revert SwapTooLarge(used, maxSwapShareBps);
            batch.swapShareBps = used;
        }
        _checkMinimum(p.amountOutMinimum, _quote(twapTick, p.amountIn, p.tokenIn, p.tokenOut));

        bytes memory ret = _exec(address(swapRouter), abi.encodeCall(IV3SwapRouter.exactInputSingle, (p)));
        amountOut = abi.decode(ret, (uint256));
        _checkSpot(pos.pool, twapTick);

        _chargeSwap(pos, p.tokenIn == pos.token0, p.amountIn, amountOut, spotBefore, batch);
        emit Swapped(pos.pool, p.tokenIn, p.amountIn, amountOut, share);
    }

    /// @dev Charges a swap's output short of its input's value (at the TWAP, and at
    ///      the spot before the swap too if the pool's oracle is stale).
    function _chargeSwap(
        Position memory pos,
        bool zeroForOne,
        uint256 amountIn,
        uint256 amountOut,
        int24 spotBefore,
        Batch memory batch
    ) internal {
        (uint256 g0, uint256 g1) = zeroForOne ? (amountIn, uint256(0)) : (uint256(0), amountIn);
        (uint256 r0, uint256 r1) = zeroForOne ? (uint256(0), amountOut) : (amountOut, uint256(0));
        uint256 loss = _shortfall(batch.twapTick, pos, g0, g1, r0, r1);
        if (batch.blockTick != batch.twapTick) {
            uint256 atBlock = _shortfall(batch.blockTick, pos, g0, g1, r0, r1);
            if (atBlock > loss) loss = atBlock;
        }
        if (batch.stale) {
            uint256 atSpot = _shortfall(spotBefore, pos, g0, g1, r0, r1);
            if (atSpot > loss) loss = atSpot;
        }
        if (batch.anchored) {
            uint256 atAnchor = _shortfall(batch.anchorTick, pos, g0, g1, r0, r1);
            if (atAnchor > loss) loss = atAnchor;
        }
        _charge(pos.pool, loss, batch);
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

    /// @dev now <= deadline <= now + maxDeadlineHorizon.
    function _checkDeadline(uint256 deadline) internal view {
        // forge-lint: disable-next-line(block-timestamp)
        if (deadline < block.timestamp) revert DeadlineExpired(deadline);
        uint256 latest = block.timestamp + maxDeadlineHorizon;
        if (deadline > latest) revert DeadlineTooFar(deadline, latest);
    }

    /// @dev `minimum` must be at least `expected` less `slippageBps`.
    function _checkMinimum(uint256 minimum, uint256 expected) internal view {
        uint256 required = expected - RebalanceMath.mulDiv(expected, slippageBps, BPS);
        if (minimum < required) revert MinimumTooLow(minimum, required);
    }

    /// @dev A deposit into [tickLower, tickUpper): the range holds the TWAP tick and
    ///      is wide enough; the minimums are the TWAP-derived amounts less slippage.
    function _checkDeposit(
        Position memory pos,
        uint256 desired0,
        uint256 desired1,
        uint256 min0,
        uint256 min1,
        Batch memory batch
    ) internal view {
        int24 twapTick = batch.twapTick;
        if (pos.tickLower > twapTick || twapTick >= pos.tickUpper) {
            revert RangeOffTwap(pos.tickLower, pos.tickUpper, twapTick);
        }
        if (int256(pos.tickUpper) - int256(pos.tickLower) < int256(uint256(minRangeWidth))) {
            revert RangeTooNarrow(pos.tickLower, pos.tickUpper, minRangeWidth);
        }
        _checkSpot(pos.pool, twapTick);
        uint128 liquidity =
            RebalanceMath.getLiquidityForAmounts(batch.sqrtTwap, pos.tickLower, pos.tickUpper, desired0, desired1);
        (uint256 e0, uint256 e1) =
            RebalanceMath.getAmountsForLiquidity(batch.sqrtTwap, pos.tickLower, pos.tickUpper, liquidity);
        _checkMinimums(pos, min0, min1, e0, e1, twapTick);
    }

    /// @dev The minimums, valued at the TWAP, must be worth at least the TWAP-derived
    ///      amounts less `slippageBps` (by value, not token by token: a spot inside the
    ///      deviation bound changes a position's mix more than its value).
    function _checkMinimums(Position memory pos, uint256 min0, uint256 min1, uint256 e0, uint256 e1, int24 twapTick)
        internal
        view
    {
        uint256 minimum = min1 + _quote(twapTick, min0, pos.token0, pos.token1);
        uint256 expected = e1 + _quote(twapTick, e0, pos.token0, pos.token1);
        _checkMinimum(minimum, expected);
    }

    /// @dev The allow-listed pool of (token0, token1, fee) (sorted), or PoolNotAllowed.
    function _pool(address token0, address token1, uint24 fee) internal view returns (address pool) {
        pool = allowedPool[token0][token1][fee];
        if (pool == address(0)) revert PoolNotAllowed(factory.getPool(token0, token1, fee));
    }

    /// @dev Requires `tokenId` to be owned by the Safe and returns it with its allow-listed pool.
    function _safePosition(uint256 tokenId) internal view returns (Position memory pos) {
        address owner;
        try positionManager.ownerOf(tokenId) returns (address o) {
            owner = o;
        } catch {}
        if (owner != safe) revert PositionNotOwnedBySafe(tokenId, owner);
        PositionData memory d = abi.decode(
            _staticcall(address(positionManager), abi.encodeCall(IPositionManager.positions, (tokenId))), (PositionData)
        );
        pos.token0 = d.token0;
        pos.token1 = d.token1;
        pos.tickLower = d.tickLower;
        pos.tickUpper = d.tickUpper;
        pos.liquidity = d.liquidity;
        pos.owed0 = d.tokensOwed0;
        pos.owed1 = d.tokensOwed1;
        pos.pool = _pool(d.token0, d.token1, d.fee);
    }

    /// @dev A view call that bubbles the callee's revert as CallFailed.
    function _staticcall(address to, bytes memory data) internal view returns (bytes memory ret) {
        bool ok;
        (ok, ret) = to.staticcall(data);
        if (!ok) revert CallFailed(ret);
    }

    /// @dev Counts the batch as one rebalance the first time a counted step runs:
    ///      at most maxRebalancesPerDay in any 24 hours, minRebalanceInterval apart.
    function _countRebalance(Batch memory batch) internal {
        if (batch.counted) return;
        batch.counted = true;
        uint256 last = lastRebalanceAt;
        if (last != 0) {
            uint256 earliest = last + minRebalanceInterval;
            // forge-lint: disable-next-line(block-timestamp)
            if (block.timestamp < earliest) revert TooSoon(earliest);
        }
        (uint256 count, uint256 dayLoss) = window();
        if (count >= maxRebalancesPerDay) revert TooManyRebalances(count, maxRebalancesPerDay);
        uint256 index = rebalanceCount;
        // casting is safe: timestamps fit 40 bits until the year 36812, and
        // the count grows by one per transaction
        lastRebalanceAt = uint40(block.timestamp);
        // forge-lint: disable-next-line(unsafe-typecast)
        rebalanceCount = uint64(index + 1);
        _rebalances[index % MAX_REBALANCES_PER_DAY] = block.timestamp << 216;
        batch.index = index;
        batch.dayLoss = dayLoss;
        emit RebalanceCounted(index, count + 1);
    }

    /// @dev Reads the pool's reference (TWAP tick and staleness) and the Safe's
    ///      value in it, once per pool and batch.
    function _loadPool(address pool, Position memory pos, Batch memory batch) internal view {
        if (batch.pool == pool) return;
        int24 twapTick = _twapTick(pool);
        uint160 sqrtTwap = RebalanceMath.getSqrtRatioAtTick(twapTick);
        batch.pool = pool;
        batch.twapTick = twapTick;
        batch.sqrtTwap = sqrtTwap;
        uint32 observedAt;
        (batch.blockTick, observedAt) = _blockTick(pool);
        uint32 age;
        // The pool stores timestamps mod 2**32: the difference wraps the same way.
        unchecked {
            // forge-lint: disable-next-line(unsafe-typecast)
            age = uint32(block.timestamp) - observedAt;
        }
        batch.stale = age > maxObservationAge;
        _checkAnchor(pool, batch);
        // The Safe's balances of the pool's tokens plus the position touched, in token1.
        uint256 v0 = IERC20Balance(pos.token0).balanceOf(safe) + pos.owed0;
        uint256 v1 = IERC20Balance(pos.token1).balanceOf(safe) + pos.owed1;
        if (pos.liquidity > 0) {
            (uint256 a0, uint256 a1) =
                RebalanceMath.getAmountsForLiquidity(sqrtTwap, pos.tickLower, pos.tickUpper, pos.liquidity);
            v0 += a0;
            v1 += a1;
        }
        batch.value = v1 + _quote(twapTick, v0, pos.token0, pos.token1);
    }

    /// @dev The tick the pool held before this block's first price move (its spot if
    ///      it has not moved in this block: an in-block push does not change it), and
    ///      the time of its latest observation.
    function _blockTick(address pool) internal view returns (int24 tick, uint32 observedAt) {
        (, int24 spotTick, uint16 index, uint16 cardinality,,,) = IV3Pool(pool).slot0();
        int56 cumulative;
        (observedAt, cumulative,,) = IV3Pool(pool).observations(index);
        tick = spotTick;
        // forge-lint: disable-next-line(block-timestamp)
        if (observedAt != uint32(block.timestamp) || cardinality < 2) return (tick, observedAt);
        // The price moved in this block: the pool wrote this observation with the
        // tick it held before the block's first move, since the previous one.
        (uint32 prevAt, int56 prevCumulative,, bool initialized) =
            IV3Pool(pool).observations((uint256(index) + cardinality - 1) % cardinality);
        if (!initialized || prevAt == observedAt) return (tick, observedAt);
        int56 dt;
        unchecked {
            dt = int56(uint56(observedAt - prevAt));
        }
        // casting to 'int24' is safe: the cumulative grew by one tick times dt
        // forge-lint: disable-next-line(unsafe-typecast)
        tick = int24((cumulative - prevCumulative) / dt);
    }

    /// @dev Charges the shortfall of a deposit (`deposit`: liquidity bought for
    ///      amount0/amount1) or a withdrawal (liquidity given for amount0/amount1).
    function _chargePosition(
        Position memory pos,
        uint128 liquidity,
        uint256 amount0,
        uint256 amount1,
        bool deposit,
        Batch memory batch
    ) internal {
        uint256 loss = _positionShortfall(batch.twapTick, batch.sqrtTwap, pos, liquidity, amount0, amount1, deposit);
        if (batch.blockTick != batch.twapTick) {
            int24 t = batch.blockTick;
            uint256 atBlock =
                _positionShortfall(t, RebalanceMath.getSqrtRatioAtTick(t), pos, liquidity, amount0, amount1, deposit);
            if (atBlock > loss) loss = atBlock;
        }
        if (batch.stale) {
            (, int24 spotTick,,,,,) = IV3Pool(pos.pool).slot0();
            uint256 atSpot = _positionShortfall(
                spotTick, RebalanceMath.getSqrtRatioAtTick(spotTick), pos, liquidity, amount0, amount1, deposit
            );
            if (atSpot > loss) loss = atSpot;
        }
        if (batch.anchored) {
            int24 t = batch.anchorTick;
            uint256 atAnchor =
                _positionShortfall(t, RebalanceMath.getSqrtRatioAtTick(t), pos, liquidity, amount0, amount1, deposit);
            if (atAnchor > loss) loss = atAnchor;
        }
        _charge(pos.pool, loss, batch);
    }

    function _positionShortfall(
        int24 tick,
        uint160 sqrtP,
        Position memory pos,
        uint128 liquidity,
        uint256 amount0,
        uint256 amount1,
        bool deposit
    ) internal pure returns (uint256) {
        (uint256 l0, uint256 l1) = RebalanceMath.getAmountsForLiquidity(sqrtP, pos.tickLower, pos.tickUpper, liquidity);
        return
            deposit ? _shortfall(tick, pos, amount0, amount1, l0, l1) : _shortfall(tick, pos, l0, l1, amount0, amount1);
    }

    /// @dev Value (in token1 at `tick`) given less value got, or 0.
    function _shortfall(int24 tick, Position memory pos, uint256 g0, uint256 g1, uint256 r0, uint256 r1)
        internal
        pure
        returns (uint256)
    {
        uint256 given = g1 + _quote(tick, g0, pos.token0, pos.token1);
        uint256 got = r1 + _quote(tick, r0, pos.token0, pos.token1);
        return given > got ? given - got : 0;
    }

    /// @dev Adds `loss` (token1 of `pool`) to the batch as a share of the Safe's
    ///      value in the pool, and enforces the per-call and 24-hour budgets.
    function _charge(address pool, uint256 loss, Batch memory batch) internal {
        if (loss == 0) return;
        uint256 units = batch.value == 0 || loss >= batch.value
            ? LOSS_SCALE
            : RebalanceMath.mulDivRoundingUp(loss, LOSS_SCALE, batch.value);
        uint256 callLoss = batch.loss + units;
        batch.loss = callLoss;
        uint256 callBudget = uint256(lossBudgetPerCallBps) * LOSS_UNITS_PER_BPS;
        if (callLoss > callBudget) revert CallLossBudgetExceeded(callLoss, callBudget);
        uint256 dayBudget = uint256(lossBudgetPerDayBps) * LOSS_UNITS_PER_BPS;
        if (batch.dayLoss + callLoss > dayBudget) revert DayLossBudgetExceeded(batch.dayLoss + callLoss, dayBudget);
        _rebalances[batch.index % MAX_REBALANCES_PER_DAY] = (block.timestamp << 216) | callLoss;
        emit LossCharged(batch.index, pool, units, callLoss);
    }

    /// @dev The spot tick, within maxPriceDeviationBps of `twapTick`, or PriceDeviates.
    function _checkSpot(address pool, int24 twapTick) internal view returns (int24 spotTick) {
        (, spotTick,,,,,) = IV3Pool(pool).slot0();
        int256 diff = int256(spotTick) - int256(twapTick);
        if (diff < 0) diff = -diff;
        // casting to 'uint256' is safe because diff >= 0
        // forge-lint: disable-next-line(unsafe-typecast)
        if (uint256(diff) > maxPriceDeviationBps) revert PriceDeviates(pool, spotTick, twapTick);
    }

    /// @dev Arithmetic-mean tick over the last `twapWindow` seconds (OracleLibrary.consult).
    ///      Within one transaction it cannot change (the pool's cumulatives for "now"
    ///      only advance with the timestamp), so it is read once per pool and batch.
    function _twapTick(address pool) internal view returns (int24 tick) {
        uint32 window_ = twapWindow;
        if (window_ == 0) revert PriceCheckNotConfigured();
        uint32[] memory secondsAgos = new uint32[](2);
        secondsAgos[0] = window_;
        int56[] memory cumulatives;
        try IV3Pool(pool).observe(secondsAgos) returns (int56[] memory c, uint160[] memory) {
            cumulatives = c;
        } catch {
            revert TwapUnavailable(pool);
        }
        int56 delta = cumulatives[1] - cumulatives[0];
        int56 w = int56(uint56(window_));
        // casting to 'int24' is safe: a mean of ticks is a tick
        // forge-lint: disable-next-line(unsafe-typecast)
        tick = int24(delta / w);
        if (delta < 0 && delta % w != 0) --tick;
    }

    /// @dev `amount` of `base` in `quote` at `tick` (amounts above uint128 are capped).
    function _quote(int24 tick, uint256 amount, address base, address quote) internal pure returns (uint256) {
        if (amount == 0) return 0;
        if (amount > type(uint128).max) amount = type(uint128).max;
        // casting to 'uint128' is safe because amount was capped above
        // forge-lint: disable-next-line(unsafe-typecast)
        return RebalanceMath.getQuoteAtTick(tick, uint128(amount), base, quote);
    }

    /// @dev The Safe's balance of tokenIn plus its balance of tokenOut valued in
    ///      tokenIn at `tick`; saturates at type(uint256).max.
    function _holdingsIn(address tokenIn, address tokenOut, int24 tick) internal view returns (uint256) {
        uint256 balanceIn = IERC20Balance(tokenIn).balanceOf(safe);
        uint256 quoted = _quote(tick, IERC20Balance(tokenOut).balanceOf(safe), tokenOut, tokenIn);
        unchecked {
            uint256 sum = balanceIn + quoted;
            return sum < balanceIn ? type(uint256).max : sum;
        }
    }

    /// @dev On an anchored pool: the feeds' tick, which both the TWAP tick and the
    ///      pre-block tick must lie within maxDeviation ticks of (else AnchorDeviates).
    function _checkAnchor(address pool, Batch memory batch) internal view {
        // An unanchored pool costs one storage read (maxAge shares feed0's slot).
        if (anchorOf[pool].maxAge == 0) return;
        Anchor memory a = anchorOf[pool];
        batch.anchored = true;
        (uint256 num, uint256 den) = _anchorPrice(a);
        int24 twapTick = batch.twapTick;
        int24 blockTick = batch.blockTick;
        int256 dev = int256(uint256(a.maxDeviation));
        // The feeds' tick must lie in [max(twap, block) - dev, min(twap, block) + dev].
        int256 lo = (twapTick > blockTick ? int256(twapTick) : int256(blockTick)) - dev;
        int256 hi = (twapTick < blockTick ? int256(twapTick) : int256(blockTick)) + dev;
        if (lo < RebalanceMath.MIN_TICK) lo = RebalanceMath.MIN_TICK;
        if (hi > RebalanceMath.MAX_TICK - 1) hi = RebalanceMath.MAX_TICK - 1;
        // casting to 'int24' is safe: lo and hi were clamped to ticks
        // forge-lint: disable-next-line(unsafe-typecast)
        (int24 lo24, int24 hi24) = (int24(lo), int24(hi));
        if (
            lo > hi || !_priceAtOrBelow(lo24, num, den)
                || (hi24 < RebalanceMath.MAX_TICK - 1 && _priceAtOrBelow(hi24 + 1, num, den))
        ) {
            revert AnchorDeviates(
                pool, _anchorTick(num, den, RebalanceMath.MIN_TICK, RebalanceMath.MAX_TICK - 1), twapTick, blockTick
            );
        }
        batch.anchorTick = _anchorTick(num, den, lo24, hi24);
    }

    /// @dev The feeds' price of one unit of token0 in units of token1, num/den:
    ///      (answer0 / 10**dec(feed0)) / (answer1 / 10**dec(feed1)) * 10**dec(token1) / 10**dec(token0).
    function _anchorPrice(Anchor memory a) internal view returns (uint256 num, uint256 den) {
        num = _feedAnswer(a.feed0, a.maxAge);
        den = _feedAnswer(a.feed1, a.maxAge);
        if (a.exp >= 0) num *= 10 ** uint256(int256(a.exp));
        // casting to 'uint256' is safe: -exp > 0
        // forge-lint: disable-next-line(unsafe-typecast)
        else den *= 10 ** uint256(-int256(a.exp));
    }

    /// @dev A feed's latest answer (1 for feed 0), or FeedStale / FeedAnswerInvalid.
    function _feedAnswer(address feed, uint32 maxAge) internal view returns (uint256) {
        if (feed == address(0)) return 1;
        (, int256 answer,, uint256 updatedAt,) = IAggregatorV3(feed).latestRoundData();
        if (answer <= 0 || answer >= int256(uint256(type(uint128).max))) revert FeedAnswerInvalid(feed, answer);
        // forge-lint: disable-next-line(block-timestamp)
        if (updatedAt + maxAge < block.timestamp) revert FeedStale(feed, updatedAt, maxAge);
        // casting to 'uint256' is safe because answer > 0
        // forge-lint: disable-next-line(unsafe-typecast)
        return uint256(answer);
    }

    /// @dev The largest tick t in [lo, hi] with price(t) <= num/den (lo if none), where
    ///      price(t) = floor(getSqrtRatioAtTick(t)**2 / 2**64) / 2**128 (OracleLibrary's
    ///      X128 ratio): the feeds' tick, rounded toward negative infinity. Bisection.
    function _anchorTick(uint256 num, uint256 den, int24 lo, int24 hi) internal pure returns (int24) {
        while (lo < hi) {
            int24 mid = int24((int256(lo) + int256(hi) + 1) >> 1);
            if (_priceAtOrBelow(mid, num, den)) lo = mid;
            else hi = mid - 1;
        }
        return lo;
    }

    /// @dev floor(sqrtRatio(t)**2 / 2**64) * den <= num * 2**128, in 512 bits.
    function _priceAtOrBelow(int24 tick, uint256 num, uint256 den) internal pure returns (bool) {
        uint256 sqrtP = RebalanceMath.getSqrtRatioAtTick(tick);
        uint256 ratioX128 = RebalanceMath.mulDiv(sqrtP, sqrtP, 1 << 64);
        (uint256 lHi, uint256 lLo) = _mul512(ratioX128, den);
        (uint256 rHi, uint256 rLo) = (num >> 128, num << 128);
        return lHi < rHi || (lHi == rHi && lLo <= rLo);
    }

    function _mul512(uint256 a, uint256 b) internal pure returns (uint256 hi, uint256 lo) {
        assembly ("memory-safe") {
            let mm := mulmod(a, b, not(0))
            lo := mul(a, b)
            hi := sub(sub(mm, lo), lt(mm, lo))
        }
    }

    function _decimals(address token) internal view returns (uint256) {
        return abi.decode(_staticcall(token, abi.encodeCall(IDecimals.decimals, ())), (uint8));
    }

    function _feedDecimals(address feed) internal view returns (int256) {
        return feed == address(0) ? int256(0) : int256(_decimals(feed));
    }

    function _sort(address a, address b) internal pure returns (address, address) {
        return a < b ? (a, b) : (b, a);
    }
}

/// @dev Chainlink's AggregatorV3Interface, the part the anchor reads.
interface IAggregatorV3 {
    function latestRoundData()
        external
        view
        returns (uint80 roundId, int256 answer, uint256 startedAt, uint256 updatedAt, uint80 answeredInRound);
}

/// @dev ERC-20's and AggregatorV3's decimals().
interface IDecimals {
    function decimals() external view returns (uint8);
}

/// @dev ERC-20 approve, for its selector (the same as ERC-721 approve).
interface IERC20Approve {
    function approve(address spender, uint256 amount) external returns (bool);
}

/// @title RebalanceMath
/// @notice The Uniswap V3 math LPRebalanceModule needs, ported to Solidity 0.8
///         with the same results: FullMath (v3-core 1.0.0), TickMath.getSqrtRatioAtTick
///         (v3-core 1.0.0) and OracleLibrary.getQuoteAtTick and LiquidityAmounts (v3-periphery 1.x).
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

    uint256 internal constant Q96 = 0x1000000000000000000000000;

    /// @notice LiquidityAmounts.getAmountsForLiquidity: the amounts `liquidity` on
    ///         [tickLower, tickUpper) is worth at `sqrtP`, rounded down.
    function getAmountsForLiquidity(uint160 sqrtP, int24 tickLower, int24 tickUpper, uint128 liquidity)
        internal
        pure
        returns (uint256 amount0, uint256 amount1)
    {
        uint160 sqrtA = getSqrtRatioAtTick(tickLower);
        uint160 sqrtB = getSqrtRatioAtTick(tickUpper);
        if (sqrtA > sqrtB) (sqrtA, sqrtB) = (sqrtB, sqrtA);
        if (sqrtP <= sqrtA) {
            amount0 = _amount0(sqrtA, sqrtB, liquidity);
        } else if (sqrtP < sqrtB) {
            amount0 = _amount0(sqrtP, sqrtB, liquidity);
            amount1 = _amount1(sqrtA, sqrtP, liquidity);
        } else {
            amount1 = _amount1(sqrtA, sqrtB, liquidity);
        }
    }

    /// @notice LiquidityAmounts.getLiquidityForAmounts at `sqrtP`, capped at uint128.
    function getLiquidityForAmounts(uint160 sqrtP, int24 tickLower, int24 tickUpper, uint256 amount0, uint256 amount1)
        internal
        pure
        returns (uint128)
    {
        uint160 sqrtA = getSqrtRatioAtTick(tickLower);
        uint160 sqrtB = getSqrtRatioAtTick(tickUpper);
        if (sqrtA > sqrtB) (sqrtA, sqrtB) = (sqrtB, sqrtA);
        uint256 liquidity;
        if (sqrtP <= sqrtA) {
            liquidity = _liquidity0(sqrtA, sqrtB, amount0);
        } else if (sqrtP < sqrtB) {
            uint256 l0 = _liquidity0(sqrtP, sqrtB, amount0);
            uint256 l1 = _liquidity1(sqrtA, sqrtP, amount1);
            liquidity = l0 < l1 ? l0 : l1;
        } else {
            liquidity = _liquidity1(sqrtA, sqrtB, amount1);
        }
        // casting to 'uint128' is safe: capped first
        // forge-lint: disable-next-line(unsafe-typecast)
        return liquidity > type(uint128).max ? type(uint128).max : uint128(liquidity);
    }

    function _amount0(uint160 sqrtA, uint160 sqrtB, uint128 liquidity) private pure returns (uint256) {
        return mulDiv(uint256(liquidity) << 96, sqrtB - sqrtA, sqrtB) / sqrtA;
    }

    function _amount1(uint160 sqrtA, uint160 sqrtB, uint128 liquidity) private pure returns (uint256) {
        return mulDiv(liquidity, sqrtB - sqrtA, Q96);
    }

    /// @dev Amounts above 2**128 are capped (liquidity saturates anyway).
    function _liquidity0(uint160 sqrtA, uint160 sqrtB, uint256 amount0) private pure returns (uint256) {
        if (amount0 > type(uint128).max) amount0 = type(uint128).max;
        return mulDiv(amount0, mulDiv(sqrtA, sqrtB, Q96), sqrtB - sqrtA);
    }

    function _liquidity1(uint160 sqrtA, uint160 sqrtB, uint256 amount1) private pure returns (uint256) {
        if (amount1 > type(uint128).max) amount1 = type(uint128).max;
        return mulDiv(amount1, Q96, sqrtB - sqrtA);
    }
}

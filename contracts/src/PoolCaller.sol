// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @dev The parts of UniswapV3Pool that PoolCaller uses.
interface IUniswapV3PoolActions {
    function token0() external view returns (address);
    function token1() external view returns (address);

    function mint(address recipient, int24 tickLower, int24 tickUpper, uint128 amount, bytes calldata data)
        external
        returns (uint256 amount0, uint256 amount1);

    function swap(
        address recipient,
        bool zeroForOne,
        int256 amountSpecified,
        uint160 sqrtPriceLimitX96,
        bytes calldata data
    ) external returns (int256 amount0, int256 amount1);
}

interface IERC20TransferFrom {
    function transferFrom(address from, address to, uint256 amount) external returns (bool);
}

/// @title PoolCaller
/// @notice Test router that calls a raw UniswapV3Pool directly (in the spirit of
///         Uniswap's TestUniswapV3Callee), for differential tests of pool math.
///         The caller (`msg.sender`) pays: it must have approved this contract
///         for token0/token1. Output tokens and minted positions go to `recipient`,
///         so `recipient` owns the position and later calls `burn`/`collect` on
///         the pool itself.
/// @dev Exact amounts are both returned and emitted (`MintResult`, `SwapResult`),
///      so an off-chain caller can read them from the transaction receipt.
///      Pool callbacks are accepted only from the pool of the call in progress.
///      Intended for local chains and tests only.
contract PoolCaller {
    /// @dev TickMath.MIN_SQRT_RATIO + 1 and TickMath.MAX_SQRT_RATIO - 1: the
    ///      most extreme price limits a swap accepts.
    uint160 public constant MIN_SQRT_PRICE_LIMIT = 4295128739 + 1;
    uint160 public constant MAX_SQRT_PRICE_LIMIT = 1461446703485210103287273052203988822378723970342 - 1;

    /// @notice Emitted after every `mint`; amounts are what the pool pulled.
    event MintResult(
        address indexed pool,
        address indexed recipient,
        int24 tickLower,
        int24 tickUpper,
        uint128 liquidity,
        uint256 amount0,
        uint256 amount1
    );

    /// @notice Emitted after every swap; the pool's signed deltas (positive:
    ///         paid into the pool by the caller, negative: sent to `recipient`).
    event SwapResult(
        address indexed pool,
        address indexed recipient,
        bool zeroForOne,
        int256 amountSpecified,
        uint160 sqrtPriceLimitX96,
        int256 amount0,
        int256 amount1
    );

    /// @notice Emitted inside the pool's callbacks with the amounts owed.
    event MintCallback(uint256 amount0Owed, uint256 amount1Owed);
    event SwapCallback(int256 amount0Delta, int256 amount1Delta);

    error UnexpectedCallback(address caller);
    error TransferFromFailed(address token, address from, address to, uint256 amount);

    /// @dev The pool whose callback is expected, set only during a pool call.
    address private _activePool;

    // ---------------------------------------------------------------- mint --

    /// @notice Adds `amount` liquidity to [tickLower, tickUpper) for `recipient`,
    ///         paid by the caller.
    function mint(address pool, address recipient, int24 tickLower, int24 tickUpper, uint128 amount)
        external
        returns (uint256 amount0, uint256 amount1)
    {
        _activePool = pool;
        (amount0, amount1) =
            IUniswapV3PoolActions(pool).mint(recipient, tickLower, tickUpper, amount, abi.encode(msg.sender));
        _activePool = address(0);
        emit MintResult(pool, recipient, tickLower, tickUpper, amount, amount0, amount1);
    }

    // ---------------------------------------------------------------- swap --

    /// @notice Raw pool swap. `amountSpecified` > 0: exact input, < 0: exact
    ///         output. `sqrtPriceLimitX96` == 0 means no limit (the extreme
    ///         price in the swap direction).
    /// @return amount0 The pool's token0 delta (positive: paid by the caller).
    /// @return amount1 The pool's token1 delta (positive: paid by the caller).
    function swap(address pool, address recipient, bool zeroForOne, int256 amountSpecified, uint160 sqrtPriceLimitX96)
        public
        returns (int256 amount0, int256 amount1)
    {
        uint160 limit = sqrtPriceLimitX96;
        if (limit == 0) limit = zeroForOne ? MIN_SQRT_PRICE_LIMIT : MAX_SQRT_PRICE_LIMIT;
        _activePool = pool;
        (amount0, amount1) =
            IUniswapV3PoolActions(pool).swap(recipient, zeroForOne, amountSpecified, limit, abi.encode(msg.sender));
        _activePool = address(0);
        emit SwapResult(pool, recipient, zeroForOne, amountSpecified, limit, amount0, amount1);
    }

    /// @notice Sells exactly `amount0In` token0 (unless the price limit stops it first).
    function swapExact0For1(address pool, uint256 amount0In, address recipient, uint160 sqrtPriceLimitX96)
        external
        returns (int256 amount0, int256 amount1)
    {
        return swap(pool, recipient, true, _toInt(amount0In), sqrtPriceLimitX96);
    }

    /// @notice Buys exactly `amount1Out` token1 (unless the price limit stops it first).
    function swap0ForExact1(address pool, uint256 amount1Out, address recipient, uint160 sqrtPriceLimitX96)
        external
        returns (int256 amount0, int256 amount1)
    {
        return swap(pool, recipient, true, -_toInt(amount1Out), sqrtPriceLimitX96);
    }

    /// @notice Sells exactly `amount1In` token1 (unless the price limit stops it first).
    function swapExact1For0(address pool, uint256 amount1In, address recipient, uint160 sqrtPriceLimitX96)
        external
        returns (int256 amount0, int256 amount1)
    {
        return swap(pool, recipient, false, _toInt(amount1In), sqrtPriceLimitX96);
    }

    /// @notice Buys exactly `amount0Out` token0 (unless the price limit stops it first).
    function swap1ForExact0(address pool, uint256 amount0Out, address recipient, uint160 sqrtPriceLimitX96)
        external
        returns (int256 amount0, int256 amount1)
    {
        return swap(pool, recipient, false, -_toInt(amount0Out), sqrtPriceLimitX96);
    }

    // ----------------------------------------------------------- callbacks --

    function uniswapV3MintCallback(uint256 amount0Owed, uint256 amount1Owed, bytes calldata data) external {
        if (msg.sender != _activePool || msg.sender == address(0)) revert UnexpectedCallback(msg.sender);
        address payer = abi.decode(data, (address));
        emit MintCallback(amount0Owed, amount1Owed);
        if (amount0Owed > 0) _pay(IUniswapV3PoolActions(msg.sender).token0(), payer, amount0Owed);
        if (amount1Owed > 0) _pay(IUniswapV3PoolActions(msg.sender).token1(), payer, amount1Owed);
    }

    function uniswapV3SwapCallback(int256 amount0Delta, int256 amount1Delta, bytes calldata data) external {
        if (msg.sender != _activePool || msg.sender == address(0)) revert UnexpectedCallback(msg.sender);
        address payer = abi.decode(data, (address));
        emit SwapCallback(amount0Delta, amount1Delta);
        // casting to 'uint256' is safe because each delta is checked to be positive
        // forge-lint: disable-next-line(unsafe-typecast)
        if (amount0Delta > 0) _pay(IUniswapV3PoolActions(msg.sender).token0(), payer, uint256(amount0Delta));
        // forge-lint: disable-next-line(unsafe-typecast)
        if (amount1Delta > 0) _pay(IUniswapV3PoolActions(msg.sender).token1(), payer, uint256(amount1Delta));
    }

    // ------------------------------------------------------------- helpers --

    /// @dev transferFrom(payer, pool, amount), accepting tokens that return
    ///      nothing as well as those that return true; a token's revert reason
    ///      is passed on unchanged.
    function _pay(address token, address payer, uint256 amount) private {
        (bool ok, bytes memory ret) =
            token.call(abi.encodeCall(IERC20TransferFrom.transferFrom, (payer, msg.sender, amount)));
        if (!ok && ret.length != 0) {
            // Bubble up the token's own revert reason.
            assembly ("memory-safe") {
                revert(add(ret, 0x20), mload(ret))
            }
        }
        if (!ok || (ret.length != 0 && !abi.decode(ret, (bool)))) {
            revert TransferFromFailed(token, payer, msg.sender, amount);
        }
    }

    function _toInt(uint256 x) private pure returns (int256) {
        require(x <= uint256(type(int256).max), "amount too large");
        // casting to 'int256' is safe because x <= type(int256).max was checked
        // forge-lint: disable-next-line(unsafe-typecast)
        return int256(x);
    }
}

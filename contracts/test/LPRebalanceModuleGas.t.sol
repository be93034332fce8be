// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {RebalanceFixture, IMultiSendCallOnly} from "./utils/RebalanceFixture.sol";
import {INonfungiblePositionManager, ISwapRouter02} from "./utils/Interfaces.sol";
import {LPRebalanceModule} from "../src/LPRebalanceModule.sol";
import {IPositionManager} from "../src/interfaces/IUniswapV3.sol";
import {PriceFeed} from "../src/PriceFeed.sol";

/// @notice Gas of the same full rebalance (decrease all, collect, swap 100
///         token0, mint [-1200, 1200]) from the same state:
///         (a) the operator through LPRebalanceModule.execute, and
///         (b) the owners through a 2-of-3 Safe execTransaction that
///         delegatecalls MultiSendCallOnly with the same four calls.
///         Written to the gas snapshot group "LPRebalanceModule" (foundry.toml
///         `snapshots`): `<path>_execution` is the gas of the call as measured in
///         the EVM from a test contract (all contracts cold, as in a fresh
///         transaction); `<path>_tx` adds 21000 and the calldata (4 gas per
///         zero byte, 16 per other byte). The module has rebalanced once
///         before, so its rate-limit slot is not written from zero.
contract LPRebalanceModuleGasTest is RebalanceFixture {
    string internal constant GROUP = "LPRebalanceModule";

    bytes internal moduleCalldata;
    bytes internal safeCalldata;

    function setUp() public {
        _setUpRebalance();
        // A first, small rebalance earlier on, so that the module's rate-limit
        // slot is already in use (as it is for every rebalance but the first).
        token0.mint(address(safe), 2e18);
        token1.mint(address(safe), 2e18);
        vm.prank(operator);
        module.swapExactInputSingle(_swapParams(true, 1e18), block.timestamp);
        vm.warp(block.timestamp + 2 hours);

        uint256 tokenId = safeTokenId;
        uint128 liquidity = _liquidity(tokenId);

        bytes[] memory calls = _rebalanceCalls(tokenId, 100e18, -1200, 1200, 800e18, 800e18);
        moduleCalldata = abi.encodeCall(LPRebalanceModule.execute, (calls));

        address[] memory to = new address[](4);
        bytes[] memory data = new bytes[](4);
        to[0] = address(npm);
        data[0] = abi.encodeCall(IPositionManager.decreaseLiquidity, (_decreaseParams(tokenId, liquidity)));
        to[1] = address(npm);
        data[1] = abi.encodeCall(IPositionManager.collect, (_collectParams(tokenId)));
        to[2] = address(router);
        data[2] = abi.encodeCall(
            ISwapRouter02.exactInputSingle,
            (ISwapRouter02.ExactInputSingleParams({
                    tokenIn: address(token0),
                    tokenOut: address(token1),
                    fee: FEE,
                    recipient: address(safe),
                    amountIn: 100e18,
                    amountOutMinimum: 0,
                    sqrtPriceLimitX96: 0
                }))
        );
        to[3] = address(npm);
        data[3] = abi.encodeCall(INonfungiblePositionManager.mint, (_mintParams(-1200, 1200, 800e18, 800e18)));
        bytes memory batch = abi.encodeCall(IMultiSendCallOnly.multiSend, (_packMultiSend(to, data)));
        bytes memory signatures = _signSafeTx(multiSendCallOnly, batch, OP_DELEGATECALL);
        safeCalldata = abi.encodeCall(
            safe.execTransaction,
            (multiSendCallOnly, 0, batch, OP_DELEGATECALL, 0, 0, 0, address(0), payable(address(0)), signatures)
        );
    }

    function _calldataGas(bytes memory data) internal pure returns (uint256 gas) {
        for (uint256 i = 0; i < data.length; ++i) {
            gas += data[i] == 0 ? 4 : 16;
        }
    }

    function _measure(address target, address sender, bytes memory data, string memory name)
        internal
        returns (uint256 execution)
    {
        vm.prank(sender);
        vm.startSnapshotGas(GROUP, string.concat(name, "_execution"));
        (bool ok,) = target.call(data);
        execution = vm.stopSnapshotGas(GROUP, string.concat(name, "_execution"));
        vm.assertTrue(ok, "rebalance failed");
        vm.snapshotValue(GROUP, string.concat(name, "_tx"), 21_000 + _calldataGas(data) + execution);
    }

    function _assertRebalanced() internal view {
        vm.assertEq(uint256(_liquidity(safeTokenId)), 0);
        vm.assertEq(npm.balanceOf(address(safe)), 2);
        uint256 newId = npm.tokenOfOwnerByIndex(address(safe), 1);
        (,,,,, int24 lower, int24 upper,,,,,) = npm.positions(newId);
        vm.assertEq(int256(lower), -1200);
        vm.assertEq(int256(upper), 1200);
    }

    function test_gas_fullRebalance_module() public {
        bytes memory data = moduleCalldata;
        _measure(address(module), operator, data, "fullRebalance_module");
        _assertRebalanced();
    }

    /// @dev The same rebalance on a pool anchored to two USD feeds (both tokens
    ///      priced by a feed, the costlier case).
    function test_gas_fullRebalance_module_anchored() public {
        PriceFeed feed0 = new PriceFeed(8, "TKA / USD", 1e8);
        PriceFeed feed1 = new PriceFeed(8, "TKB / USD", 1e8);
        vm.prank(address(safe));
        module.setAnchor(address(token0), address(token1), FEE, address(feed0), address(feed1), 1 hours, 100);
        bytes memory data = moduleCalldata;
        _measure(address(module), operator, data, "fullRebalance_module_anchored");
        _assertRebalanced();
    }

    function test_gas_fullRebalance_safeMultiSendCallOnly() public {
        bytes memory data = safeCalldata;
        _measure(address(safe), outsider, data, "fullRebalance_safeMultiSendCallOnly");
        _assertRebalanced();
    }
}

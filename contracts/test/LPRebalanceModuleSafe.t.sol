// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {Vm} from "./utils/Vm.sol";
import {RebalanceFixture, IMultiSendCallOnly} from "./utils/RebalanceFixture.sol";
import {LiquidityAmounts} from "./utils/LiquidityAmounts.sol";
import {INonfungiblePositionManager, ISafe} from "./utils/Interfaces.sol";
import {LPRebalanceModule} from "../src/LPRebalanceModule.sol";
import {IPositionManager, IV3SwapRouter} from "../src/interfaces/IUniswapV3.sol";

/// @notice End to end on the official bytecode: a 2-of-3 Safe (SafeL2 1.4.1
///         proxy) mints a Uniswap V3 position and enables and configures the
///         module through owner-signed Safe transactions; the operator then
///         rebalances the position (approve, decrease, collect, swap, mint,
///         burn) in one module transaction; finally the owners disable the module.
contract LPRebalanceModuleSafeTest is RebalanceFixture {
    uint256 internal constant FUNDS = 2_000e18;

    function setUp() public {
        vm.warp(START);
        operator = makeAddr("operator");
        lp = makeAddr("lp");
        trader = makeAddr("trader");
        outsider = makeAddr("outsider");
        _deployUniswap();
        _deployPool();
        _deploySafe();
        module = new LPRebalanceModule(address(safe), IPositionManager(address(npm)), IV3SwapRouter(address(router)));
        token0.mint(address(safe), FUNDS);
        token1.mint(address(safe), FUNDS);
    }

    /// @dev The owners' first transaction: approve the position manager for both
    ///      tokens and mint a position over [-600, 600] to the Safe.
    function _ownersMintPosition() internal returns (uint256 tokenId) {
        address[] memory to = new address[](3);
        bytes[] memory data = new bytes[](3);
        to[0] = address(token0);
        data[0] = abi.encodeCall(token0.approve, (address(npm), type(uint256).max));
        to[1] = address(token1);
        data[1] = abi.encodeCall(token1.approve, (address(npm), type(uint256).max));
        to[2] = address(npm);
        data[2] = abi.encodeCall(INonfungiblePositionManager.mint, (_mintParams(-600, 600, 1_000e18, 1_000e18)));
        bytes memory batch = abi.encodeCall(IMultiSendCallOnly.multiSend, (_packMultiSend(to, data)));
        vm.assertTrue(_execSafeTx(multiSendCallOnly, batch, OP_DELEGATECALL), "owners' mint");
        tokenId = npm.tokenOfOwnerByIndex(address(safe), 0);
    }

    function test_RevertWhen_OneOwnerSignsAlone() public {
        bytes memory data = abi.encodeCall(ISafe.enableModule, (address(module)));
        bytes32 txHash =
            safe.getTransactionHash(address(safe), 0, data, OP_CALL, 0, 0, 0, address(0), address(0), safe.nonce());
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(OWNER_KEY_A, txHash);
        vm.expectRevert(bytes("GS020")); // signatures data too short for threshold 2
        safe.execTransaction(
            address(safe), 0, data, OP_CALL, 0, 0, 0, address(0), payable(address(0)), abi.encodePacked(r, s, v)
        );
        vm.assertFalse(safe.isModuleEnabled(address(module)));
    }

    struct Rebalanced {
        uint256 newId;
        uint128 newLiquidity;
        uint256 used0;
        uint256 used1;
        uint256 decreased0;
        uint256 decreased1;
        uint256 collected0;
        uint256 collected1;
        uint256 swappedOut;
    }

    /// @dev The operator's one transaction: rebalance `oldId` into [-1200, 1200].
    function _operatorRebalance(uint256 oldId) internal returns (Rebalanced memory r) {
        bytes[] memory calls = new bytes[](6);
        calls[0] = abi.encodeCall(LPRebalanceModule.approve, (address(token0), address(router), 100e18));
        calls[1] = abi.encodeCall(LPRebalanceModule.decreaseLiquidity, (_decreaseParams(oldId, _liquidity(oldId))));
        calls[2] = abi.encodeCall(LPRebalanceModule.collect, (_collectParams(oldId)));
        calls[3] = abi.encodeCall(LPRebalanceModule.swapExactInputSingle, (_swapParams(true, 100e18), block.timestamp));
        calls[4] = abi.encodeCall(LPRebalanceModule.mint, (_moduleMintParams(-1200, 1200, 1_800e18, 1_800e18)));
        calls[5] = abi.encodeCall(LPRebalanceModule.burn, (oldId));
        vm.prank(operator);
        bytes[] memory results = module.execute(calls);
        (r.decreased0, r.decreased1) = abi.decode(results[1], (uint256, uint256));
        (r.collected0, r.collected1) = abi.decode(results[2], (uint256, uint256));
        r.swappedOut = abi.decode(results[3], (uint256));
        (r.newId, r.newLiquidity, r.used0, r.used1) = abi.decode(results[4], (uint256, uint128, uint256, uint256));
    }

    function test_fullRebalance_throughModuleEnabledByOwners() public {
        // 1. The owners mint a position (signed Safe transaction, MultiSendCallOnly).
        uint256 oldId = _ownersMintPosition();
        vm.assertEq(npm.ownerOf(oldId), address(safe));

        // 2. The owners enable and configure the module (second signed transaction).
        vm.assertTrue(_execSafeTx(multiSendCallOnly, _configureModuleBatch(), OP_DELEGATECALL), "enable module");
        vm.assertTrue(safe.isModuleEnabled(address(module)));
        vm.assertEq(safe.nonce(), 2);

        // A day passes: the pool has TWAP history.
        vm.warp(block.timestamp + 1 days);
        uint256 valueBefore = _valueAtPriceOne(oldId);
        uint256 idle0 = token0.balanceOf(address(safe));
        uint256 idle1 = token1.balanceOf(address(safe));

        // 3. The operator rebalances in one transaction (approve, decrease, collect, swap, mint, burn).
        vm.recordLogs();
        Rebalanced memory r = _operatorRebalance(oldId);

        // The old position is gone, the new one is the Safe's.
        vm.assertEq(npm.balanceOf(address(safe)), 1);
        vm.assertEq(npm.ownerOf(r.newId), address(safe));
        vm.assertEq(uint256(_liquidity(r.newId)), r.newLiquidity);
        vm.assertEq(r.collected0, r.decreased0);
        vm.assertEq(r.collected1, r.decreased1);
        // Every token is accounted for: idle + collected - swapped in + swapped out - new mint.
        vm.assertEq(token0.balanceOf(address(safe)), idle0 + r.collected0 - 100e18 - r.used0);
        vm.assertEq(token1.balanceOf(address(safe)), idle1 + r.collected1 + r.swappedOut - r.used1);
        vm.assertEq(token0.allowance(address(safe), address(router)), 0, "approval used up");
        // The swap moved the price a little, well inside the bound; one rebalance counted.
        vm.assertLe(-int256(_spotTick()), int256(uint256(MAX_DEVIATION)));
        vm.assertEq(uint256(_inWindow()), 1);
        vm.assertEq(safe.nonce(), 2, "module transactions use no Safe nonce");
        // Value at price 1 drops by no more than the swap's fee and price impact.
        uint256 valueAfter = _valueAtPriceOne(r.newId);
        vm.assertGe(valueAfter + 100e18 * (30 + uint256(MAX_DEVIATION)) / 10_000, valueBefore);
        vm.assertLe(valueAfter, valueBefore);

        // SafeL2 logged each of the six module transactions.
        Vm.Log[] memory logs = vm.getRecordedLogs();
        uint256 moduleTxs = 0;
        bytes32 executionFromModuleSuccess = keccak256("ExecutionFromModuleSuccess(address)");
        for (uint256 i = 0; i < logs.length; ++i) {
            if (logs[i].emitter == address(safe) && logs[i].topics[0] == executionFromModuleSuccess) ++moduleTxs;
        }
        vm.assertEq(moduleTxs, 6);

        // 4. The owners disable the module: the operator can no longer act.
        vm.assertTrue(
            _execSafeTx(address(safe), abi.encodeCall(ISafe.disableModule, (address(1), address(module))), OP_CALL)
        );
        vm.expectRevert(
            abi.encodeWithSelector(
                LPRebalanceModule.CallFailed.selector, abi.encodeWithSignature("Error(string)", "GS104")
            )
        );
        vm.prank(operator);
        module.collect(_collectParams(r.newId));
    }

    /// @dev Idle tokens plus the position's amounts at the pool price, in token1 at price 1.
    function _valueAtPriceOne(uint256 tokenId) internal view returns (uint256) {
        (,,,,, int24 lower, int24 upper, uint128 liquidity,,,,) = npm.positions(tokenId);
        (uint256 a0, uint256 a1) = LiquidityAmounts.getAmountsForLiquidity(_sqrtPrice(), lower, upper, liquidity);
        return token0.balanceOf(address(safe)) + token1.balanceOf(address(safe)) + a0 + a1;
    }
}

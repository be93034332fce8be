// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {Test} from "./utils/Test.sol";
import {Multicall3} from "../src/Multicall3.sol";
import {TestERC20} from "../src/TestERC20.sol";

contract Reverter {
    error Nope(uint256 code);

    function fail() external pure {
        revert Nope(7);
    }
}

contract ValueSink {
    function take() external payable returns (uint256) {
        return msg.value;
    }
}

contract Multicall3Test is Test {
    Multicall3 internal mc;
    TestERC20 internal token;
    Reverter internal reverter;

    function setUp() public {
        mc = new Multicall3();
        token = new TestERC20("Test", "TST", 18);
        token.mint(address(0xA11CE), 42);
        reverter = new Reverter();
    }

    function test_selectorsMatchCanonicalAbi() public pure {
        vm.assertEq(Multicall3.aggregate.selector, bytes4(0x252dba42));
        vm.assertEq(Multicall3.tryAggregate.selector, bytes4(0xbce38bd7));
        vm.assertEq(Multicall3.tryBlockAndAggregate.selector, bytes4(0x399542e9));
        vm.assertEq(Multicall3.blockAndAggregate.selector, bytes4(0xc3077fa9));
        vm.assertEq(Multicall3.aggregate3.selector, bytes4(0x82ad56cb));
        vm.assertEq(Multicall3.aggregate3Value.selector, bytes4(0x174dea71));
        vm.assertEq(Multicall3.getEthBalance.selector, bytes4(0x4d2301cc));
        vm.assertEq(Multicall3.getCurrentBlockTimestamp.selector, bytes4(0x0f28c97d));
    }

    function test_aggregate3_allowFailure() public {
        Multicall3.Call3[] memory calls = new Multicall3.Call3[](3);
        calls[0] =
            Multicall3.Call3(address(token), false, abi.encodeWithSelector(token.balanceOf.selector, address(0xA11CE)));
        calls[1] = Multicall3.Call3(address(reverter), true, abi.encodeCall(Reverter.fail, ()));
        calls[2] = Multicall3.Call3(address(token), false, abi.encodeWithSelector(token.totalSupply.selector));
        Multicall3.Result[] memory r = mc.aggregate3(calls);
        vm.assertTrue(r[0].success);
        vm.assertEq(abi.decode(r[0].returnData, (uint256)), 42);
        vm.assertFalse(r[1].success);
        vm.assertEq(r[1].returnData, abi.encodeWithSelector(Reverter.Nope.selector, 7));
        vm.assertEq(abi.decode(r[2].returnData, (uint256)), 42);

        calls[1].allowFailure = false;
        vm.expectRevert(bytes("Multicall3: call failed"));
        mc.aggregate3(calls);
    }

    function test_aggregate_and_tryAggregate() public {
        Multicall3.Call[] memory calls = new Multicall3.Call[](2);
        calls[0] = Multicall3.Call(address(token), abi.encodeWithSelector(token.symbol.selector));
        calls[1] = Multicall3.Call(address(mc), abi.encodeCall(Multicall3.getBlockNumber, ()));
        vm.roll(1234);
        (uint256 blockNumber, bytes[] memory ret) = mc.aggregate(calls);
        vm.assertEq(blockNumber, 1234);
        vm.assertEq(abi.decode(ret[0], (string)), "TST");
        vm.assertEq(abi.decode(ret[1], (uint256)), 1234);

        calls[1] = Multicall3.Call(address(reverter), abi.encodeCall(Reverter.fail, ()));
        vm.expectRevert(bytes("Multicall3: call failed"));
        mc.aggregate(calls);
        vm.expectRevert(bytes("Multicall3: call failed"));
        mc.tryAggregate(true, calls);
        vm.expectRevert(bytes("Multicall3: call failed"));
        mc.blockAndAggregate(calls);

        Multicall3.Result[] memory r = mc.tryAggregate(false, calls);
        vm.assertTrue(r[0].success);
        vm.assertFalse(r[1].success);
        (uint256 bn,, Multicall3.Result[] memory r2) = mc.tryBlockAndAggregate(false, calls);
        vm.assertEq(bn, 1234);
        vm.assertEq(r2.length, 2);
    }

    function test_aggregate3Value() public {
        ValueSink sink = new ValueSink();
        Multicall3.Call3Value[] memory calls = new Multicall3.Call3Value[](2);
        calls[0] = Multicall3.Call3Value(address(sink), false, 1 ether, abi.encodeCall(ValueSink.take, ()));
        calls[1] = Multicall3.Call3Value(address(sink), false, 2 ether, abi.encodeCall(ValueSink.take, ()));
        vm.deal(address(this), 10 ether);
        Multicall3.Result[] memory r = mc.aggregate3Value{value: 3 ether}(calls);
        vm.assertEq(abi.decode(r[1].returnData, (uint256)), 2 ether);
        vm.assertEq(address(sink).balance, 3 ether);

        vm.expectRevert(bytes("Multicall3: value mismatch"));
        mc.aggregate3Value{value: 4 ether}(calls);
    }

    function test_blockGetters() public {
        vm.warp(1_700_000_000);
        vm.roll(99);
        vm.deal(address(0xB0B), 5 ether);
        vm.assertEq(mc.getCurrentBlockTimestamp(), 1_700_000_000);
        vm.assertEq(mc.getBlockNumber(), 99);
        vm.assertEq(mc.getEthBalance(address(0xB0B)), 5 ether);
        vm.assertEq(mc.getChainId(), block.chainid);
        vm.assertEq(mc.getCurrentBlockGasLimit(), block.gaslimit);
        vm.assertEq(mc.getCurrentBlockCoinbase(), block.coinbase);
        vm.assertEq(mc.getBasefee(), block.basefee);
        vm.assertEq(mc.getLastBlockHash(), blockhash(98));
        vm.assertEq(mc.getBlockHash(97), blockhash(97));
        vm.assertEq(mc.getCurrentBlockDifficulty(), block.prevrandao);
    }
}

// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {Test} from "./utils/Test.sol";
import {TestERC20} from "../src/TestERC20.sol";

contract TestERC20Test is Test {
    TestERC20 internal token;
    address internal alice;
    address internal bob;

    function setUp() public {
        token = new TestERC20("USD Coin", "USDC", 6);
        alice = makeAddr("alice");
        bob = makeAddr("bob");
    }

    function test_metadata() public {
        vm.assertEq(token.name(), "USD Coin");
        vm.assertEq(token.symbol(), "USDC");
        vm.assertEq(uint256(token.decimals()), 6);
        vm.assertEq(token.totalSupply(), 0);

        TestERC20 weth = new TestERC20("Wrapped Ether", "WETH", 18);
        vm.assertEq(uint256(weth.decimals()), 18);
    }

    function test_mint_anyoneCanMint() public {
        vm.expectEmit(true, true, false, true, address(token));
        emit TestERC20.Transfer(address(0), alice, 123e6);
        vm.prank(bob);
        token.mint(alice, 123e6);
        vm.assertEq(token.balanceOf(alice), 123e6);
        vm.assertEq(token.totalSupply(), 123e6);
    }

    function test_mint_toZeroReverts() public {
        vm.expectRevert(abi.encodeWithSelector(TestERC20.ERC20InvalidReceiver.selector, address(0)));
        token.mint(address(0), 1);
    }

    function test_mint_totalSupplyOverflowReverts() public {
        token.mint(alice, type(uint256).max);
        vm.expectRevert(abi.encodeWithSignature("Panic(uint256)", 0x11));
        token.mint(bob, 1);
    }

    function test_transfer() public {
        token.mint(alice, 100);
        vm.expectEmit(true, true, false, true, address(token));
        emit TestERC20.Transfer(alice, bob, 40);
        vm.prank(alice);
        vm.assertTrue(token.transfer(bob, 40));
        vm.assertEq(token.balanceOf(alice), 60);
        vm.assertEq(token.balanceOf(bob), 40);
        vm.assertEq(token.totalSupply(), 100);
    }

    function test_transfer_toSelf() public {
        token.mint(alice, 100);
        vm.prank(alice);
        token.transfer(alice, 100);
        vm.assertEq(token.balanceOf(alice), 100);
    }

    function test_transfer_insufficientBalanceReverts() public {
        token.mint(alice, 10);
        vm.expectRevert(abi.encodeWithSelector(TestERC20.ERC20InsufficientBalance.selector, alice, 10, 11));
        vm.prank(alice);
        token.transfer(bob, 11);
    }

    function test_transfer_toZeroReverts() public {
        token.mint(alice, 10);
        vm.expectRevert(abi.encodeWithSelector(TestERC20.ERC20InvalidReceiver.selector, address(0)));
        vm.prank(alice);
        token.transfer(address(0), 1);
    }

    function test_approve_and_transferFrom() public {
        token.mint(alice, 100);
        vm.expectEmit(true, true, false, true, address(token));
        emit TestERC20.Approval(alice, bob, 70);
        vm.prank(alice);
        vm.assertTrue(token.approve(bob, 70));
        vm.assertEq(token.allowance(alice, bob), 70);

        vm.expectEmit(true, true, false, true, address(token));
        emit TestERC20.Transfer(alice, address(this), 50);
        vm.prank(bob);
        vm.assertTrue(token.transferFrom(alice, address(this), 50));
        vm.assertEq(token.allowance(alice, bob), 20);
        vm.assertEq(token.balanceOf(alice), 50);
        vm.assertEq(token.balanceOf(address(this)), 50);

        vm.expectRevert(abi.encodeWithSelector(TestERC20.ERC20InsufficientAllowance.selector, bob, 20, 21));
        vm.prank(bob);
        token.transferFrom(alice, bob, 21);
    }

    function test_transferFrom_infiniteAllowanceIsNotDecreased() public {
        token.mint(alice, 100);
        vm.prank(alice);
        token.approve(bob, type(uint256).max);
        vm.prank(bob);
        token.transferFrom(alice, bob, 100);
        vm.assertEq(token.allowance(alice, bob), type(uint256).max);
    }

    function test_transferFrom_insufficientBalanceReverts() public {
        token.mint(alice, 5);
        vm.prank(alice);
        token.approve(bob, 10);
        vm.expectRevert(abi.encodeWithSelector(TestERC20.ERC20InsufficientBalance.selector, alice, 5, 6));
        vm.prank(bob);
        token.transferFrom(alice, bob, 6);
    }

    function test_approve_zeroSpenderReverts() public {
        vm.expectRevert(abi.encodeWithSelector(TestERC20.ERC20InvalidSpender.selector, address(0)));
        token.approve(address(0), 1);
    }

    function test_burn() public {
        token.mint(alice, 100);
        vm.expectEmit(true, true, false, true, address(token));
        emit TestERC20.Transfer(alice, address(0), 30);
        vm.prank(alice);
        token.burn(30);
        vm.assertEq(token.balanceOf(alice), 70);
        vm.assertEq(token.totalSupply(), 70);

        vm.expectRevert(abi.encodeWithSelector(TestERC20.ERC20InsufficientBalance.selector, alice, 70, 71));
        vm.prank(alice);
        token.burn(71);
    }

    function testFuzz_transfer(uint256 minted, uint256 amount, address to) public {
        vm.assume(to != address(0) && to != alice);
        amount = bound(amount, 0, minted);
        token.mint(alice, minted);
        vm.prank(alice);
        token.transfer(to, amount);
        vm.assertEq(token.balanceOf(alice), minted - amount);
        vm.assertEq(token.balanceOf(to), amount);
        vm.assertEq(token.totalSupply(), minted);
    }

    function testFuzz_transferFrom(uint256 allowed, uint256 amount) public {
        amount = bound(amount, 0, allowed);
        token.mint(alice, amount);
        vm.prank(alice);
        token.approve(bob, allowed);
        vm.prank(bob);
        token.transferFrom(alice, bob, amount);
        vm.assertEq(token.balanceOf(bob), amount);
        vm.assertEq(token.allowance(alice, bob), allowed == type(uint256).max ? allowed : allowed - amount);
    }
}

/// @dev Drives TestERC20 through random sequences of valid calls for the
///      invariant test below.
contract TestERC20Handler is Test {
    TestERC20 public immutable token;
    address[] public actors;

    constructor(TestERC20 token_) {
        token = token_;
        for (uint256 i = 0; i < 4; ++i) {
            actors.push(address(uint160(0x1000 + i)));
        }
    }

    function actorCount() external view returns (uint256) {
        return actors.length;
    }

    function _actor(uint256 seed) private view returns (address) {
        return actors[seed % actors.length];
    }

    function mint(uint256 toSeed, uint256 amount) external {
        amount = bound(amount, 0, 1e30);
        token.mint(_actor(toSeed), amount);
    }

    function transfer(uint256 fromSeed, uint256 toSeed, uint256 amount) external {
        address from = _actor(fromSeed);
        amount = bound(amount, 0, token.balanceOf(from));
        vm.prank(from);
        token.transfer(_actor(toSeed), amount);
    }

    function approve(uint256 ownerSeed, uint256 spenderSeed, uint256 amount) external {
        vm.prank(_actor(ownerSeed));
        token.approve(_actor(spenderSeed), amount);
    }

    function transferFrom(uint256 spenderSeed, uint256 fromSeed, uint256 toSeed, uint256 amount) external {
        address spender = _actor(spenderSeed);
        address from = _actor(fromSeed);
        uint256 allowed = token.allowance(from, spender);
        uint256 bal = token.balanceOf(from);
        amount = bound(amount, 0, allowed < bal ? allowed : bal);
        vm.prank(spender);
        token.transferFrom(from, _actor(toSeed), amount);
    }

    function burn(uint256 fromSeed, uint256 amount) external {
        address from = _actor(fromSeed);
        amount = bound(amount, 0, token.balanceOf(from));
        vm.prank(from);
        token.burn(amount);
    }
}

contract TestERC20InvariantTest is Test {
    TestERC20 internal token;
    TestERC20Handler internal handler;

    function setUp() public {
        token = new TestERC20("Test", "TST", 18);
        handler = new TestERC20Handler(token);
        targetContract(address(handler));
    }

    function invariant_totalSupplyEqualsSumOfBalances() public view {
        uint256 sum = 0;
        uint256 n = handler.actorCount();
        for (uint256 i = 0; i < n; ++i) {
            sum += token.balanceOf(handler.actors(i));
        }
        vm.assertEq(sum, token.totalSupply());
    }
}

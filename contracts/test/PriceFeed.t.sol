// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {Test} from "./utils/Test.sol";
import {PriceFeed} from "../src/PriceFeed.sol";

contract PriceFeedTest is Test {
    PriceFeed internal feed;

    function setUp() public {
        vm.warp(1_700_000_000);
        feed = new PriceFeed(8, "ETH / USD", 3000e8);
    }

    function test_firstRound() public view {
        vm.assertEq(uint256(feed.decimals()), 8);
        vm.assertEq(feed.description(), "ETH / USD");
        (uint80 id, int256 answer, uint256 startedAt, uint256 updatedAt, uint80 inRound) = feed.latestRoundData();
        vm.assertEq(uint256(id), 1);
        vm.assertEq(answer, 3000e8);
        vm.assertEq(startedAt, 1_700_000_000);
        vm.assertEq(updatedAt, 1_700_000_000);
        vm.assertEq(uint256(inRound), 1);
    }

    function test_updateAnswer_newRoundKeepsOld() public {
        vm.warp(1_700_003_600);
        feed.updateAnswer(2950e8);
        (uint80 id, int256 answer,, uint256 updatedAt,) = feed.latestRoundData();
        vm.assertEq(uint256(id), 2);
        vm.assertEq(answer, 2950e8);
        vm.assertEq(updatedAt, 1_700_003_600);
        (, int256 old,, uint256 oldAt,) = feed.getRoundData(1);
        vm.assertEq(old, 3000e8);
        vm.assertEq(oldAt, 1_700_000_000);
        vm.assertEq(feed.latestAnswer(), 2950e8);
    }

    function test_RevertWhen_notUpdater() public {
        address eve = makeAddr("eve");
        vm.prank(eve);
        vm.expectRevert(abi.encodeWithSelector(PriceFeed.NotUpdater.selector, eve));
        feed.updateAnswer(1);
    }

    function test_RevertWhen_nonPositive() public {
        vm.expectRevert(abi.encodeWithSelector(PriceFeed.NonPositiveAnswer.selector, int256(0)));
        feed.updateAnswer(0);
    }

    function test_RevertWhen_unknownRound() public {
        vm.expectRevert(PriceFeed.NoDataPresent.selector);
        feed.getRoundData(7);
    }

    function testFuzz_updateAnswer(int256 answer) public {
        vm.assume(answer > 0);
        feed.updateAnswer(answer);
        vm.assertEq(feed.latestAnswer(), answer);
        vm.assertEq(uint256(feed.latestRound()), 2);
    }
}

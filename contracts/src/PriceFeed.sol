// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @title PriceFeed
/// @notice A Chainlink AggregatorV3Interface price feed for local chains and tests ONLY: its
///         updater writes each answer. lpbot reads it exactly as it reads Chainlink's
///         aggregators on Ethereum and Arbitrum (`decimals`, `latestRoundData`, `getRoundData`).
/// @dev Rounds are numbered from 1; `startedAt` and `updatedAt` are the block timestamp of the
///      update; `answeredInRound` equals `roundId`, as for Chainlink's OCR aggregators.
contract PriceFeed {
    struct Round {
        int256 answer;
        uint256 updatedAt;
    }

    uint8 public immutable decimals;
    string public description;
    uint256 public constant version = 4;
    address public immutable updater;
    uint80 public latestRound;
    mapping(uint80 => Round) internal rounds;

    event AnswerUpdated(int256 indexed current, uint256 indexed roundId, uint256 updatedAt);

    error NotUpdater(address caller);
    error NonPositiveAnswer(int256 answer);
    error NoDataPresent();

    /// @param decimals_ Decimals of the answer (Chainlink's USD feeds use 8).
    /// @param description_ E.g. "ETH / USD".
    /// @param answer The first answer (round 1).
    constructor(uint8 decimals_, string memory description_, int256 answer) {
        decimals = decimals_;
        description = description_;
        updater = msg.sender;
        _update(answer);
    }

    /// @notice Records a new round with `answer`; only the deployer may call it.
    function updateAnswer(int256 answer) external {
        if (msg.sender != updater) revert NotUpdater(msg.sender);
        _update(answer);
    }

    function latestRoundData()
        external
        view
        returns (uint80 roundId, int256 answer, uint256 startedAt, uint256 updatedAt, uint80 answeredInRound)
    {
        return getRoundData(latestRound);
    }

    function getRoundData(uint80 roundId)
        public
        view
        returns (uint80, int256 answer, uint256 startedAt, uint256 updatedAt, uint80 answeredInRound)
    {
        Round memory r = rounds[roundId];
        if (r.updatedAt == 0) revert NoDataPresent();
        return (roundId, r.answer, r.updatedAt, r.updatedAt, roundId);
    }

    function latestAnswer() external view returns (int256) {
        return rounds[latestRound].answer;
    }

    function _update(int256 answer) internal {
        if (answer <= 0) revert NonPositiveAnswer(answer);
        uint80 id = latestRound + 1;
        latestRound = id;
        rounds[id] = Round(answer, block.timestamp);
        emit AnswerUpdated(answer, id, block.timestamp);
    }
}

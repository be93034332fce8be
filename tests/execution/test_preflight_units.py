"""The pre-flight's pure parts: revert decoding, the price bound's arithmetic, the gas limit,
and the sender's behaviour against a local JSON-RPC stand-in (no chain)."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import pytest
from eth_abi.abi import encode
from eth_utils.abi import function_signature_to_4byte_selector
from hypothesis import given
from hypothesis import strategies as st

from lpbot.errors import Refused
from lpbot.execution.preflight import decode_revert, gas_limit, price_move_bps
from lpbot.execution.state import TxRecord, wasted_gas_wei
from lpbot.uniswap.tick_math import MAX_SQRT_RATIO, MIN_SQRT_RATIO


def _error(reason: str) -> bytes:
    return bytes.fromhex("08c379a0") + encode(["string"], [reason])


def _custom(signature: str, types: list[str], args: list[object]) -> bytes:
    return function_signature_to_4byte_selector(signature) + encode(types, args)


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (_error("Price slippage check"), "'Price slippage check' (a liquidity change's minimum"),
        (_error("Too little received"), "'Too little received' (the swap's minimum output"),
        (_error("GS026"), "'GS026' (invalid owner provided"),
        (_error("GS013"), "'GS013' (the Safe transaction failed"),
        (_error("STF"), "'STF' (a token transferFrom failed"),
        (_error("something new"), "'something new'"),
        (bytes.fromhex("4e487b71") + encode(["uint256"], [0x11]), "panic 0x11 (arithmetic"),
        (b"", "reverted without a reason"),
        (
            _custom("TooSoon(uint256)", ["uint256"], [1234]),
            "module TooSoon(1234)",
        ),
        (
            _custom(
                "PriceDeviates(address,int24,int24)",
                ["address", "int24", "int24"],
                ["0x" + "11" * 20, -5, 120],
            ),
            "module PriceDeviates(0x" + "11" * 20 + ", -5, 120)",
        ),
        (
            _custom("CallFailed(bytes)", ["bytes"], [_error("Price slippage check")]),
            "module CallFailed: 'Price slippage check'",
        ),
        (bytes.fromhex("deadbeef"), "reverted with data 0xdeadbeef"),
    ],
)
def test_revert_reasons_keep_the_contracts_code(data: bytes, expected: str) -> None:
    assert decode_revert(data).startswith(expected)


@given(
    st.integers(MIN_SQRT_RATIO, MAX_SQRT_RATIO - 1),
    st.integers(MIN_SQRT_RATIO, MAX_SQRT_RATIO - 1),
)
def test_price_move_is_exact_and_symmetric_in_sign(then: int, now: int) -> None:
    move = price_move_bps(then, now)
    assert isinstance(move, Fraction) and move >= 0
    assert move == Fraction(abs(now * now - then * then) * 10_000, then * then)
    assert (move == 0) == (then == now)


def test_a_seven_bps_move_is_seven_bps() -> None:
    sqrt = 2**96
    # price x 1.0007 -> sqrt x sqrt(1.0007); the square is exact to the integer's rounding
    now = int((1.0007**0.5) * 2**96)
    assert abs(float(price_move_bps(sqrt, now)) - 7.0) < 1e-6


@given(st.integers(21_000, 30_000_000), st.integers(0, 30_000_000), st.integers(0, 10_000))
def test_the_gas_limit_covers_both_the_estimate_and_the_dry_run(
    estimate: int, dry_run: int, margin: int
) -> None:
    limit = gas_limit(estimate, dry_run, margin)
    assert limit >= max(estimate, dry_run)
    assert limit * 10_000 >= max(estimate, dry_run) * (10_000 + margin)
    assert (limit - 1) * 10_000 < max(estimate, dry_run) * (10_000 + margin)


def test_a_negative_margin_is_refused() -> None:
    with pytest.raises(Refused, match="margin"):
        gas_limit(100_000, 0, -1)


def test_only_reverted_and_cancelling_transactions_are_gas_lost() -> None:
    me = "0x" + "aa" * 20
    safe = "0x" + "bb" * 20

    def tx(to: str, status: str, used: int) -> TxRecord:
        return TxRecord(f"0x{used:064x}", 0, me, to, 1_000_000, 10, 1, status, 1, used, 7)

    txs = [
        tx(safe, "REPLACED", 0),
        tx(safe, "REVERTED", 805_691),
        tx(me, "CONFIRMED", 21_000),
        tx(safe, "CONFIRMED", 700_000),
    ]
    assert wasted_gas_wei(txs) == (805_691 + 21_000) * 7
    assert [t.kind for t in txs] == ["rebalance", "rebalance", "cancel", "rebalance"]


def test_the_submit_endpoint_and_the_execution_policy_come_from_the_config(
    tmp_path: Path,
) -> None:
    from decimal import Decimal

    from lpbot.config import load_config
    from lpbot.errors import ConfigError

    path = tmp_path / "lpbot.toml"
    path.write_text(
        '[chains.ethereum]\nrpc_url_env = "RPC"\nsubmit_url_env = "PROTECT"\n'
        '[execution]\nmax_fee_usd = "25"\nmax_price_move_share_pct = 30\n'
    )
    config = load_config(path)
    assert config.execution.max_fee_usd == Decimal(25)
    assert config.execution.max_price_move_share_pct == 30
    chain = config.resolve_chain("ethereum", {"RPC": "http://a", "PROTECT": "http://b/k"})
    assert chain.submit_url == "http://b/k" and chain.public_fallback is False
    with pytest.raises(ConfigError, match="PROTECT is not set"):
        config.resolve_chain("ethereum", {"RPC": "http://a"})
    path.write_text('[chains.ethereum]\nrpc_url_env = "RPC"\n[execution]\ngas_margin_pct = -1\n')
    with pytest.raises(ConfigError, match="gas_margin_pct"):
        load_config(path)

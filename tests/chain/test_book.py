"""``lpbot.chain.book``'s reading of a token's ``symbol()`` answer, without a chain."""

from __future__ import annotations

from eth_abi.abi import encode

from lpbot.chain.book import _symbol


def test_a_symbol_is_an_abi_string_or_a_bytes32() -> None:
    assert _symbol(encode(["string"], ["ZRO"])) == "ZRO"
    assert _symbol(b"MKR".ljust(32, b"\0")) == "MKR"  # Maker's token, and others of its age


def test_a_symbol_that_is_neither_or_empty_is_none() -> None:
    assert _symbol(b"") is None
    assert _symbol(b"\0" * 32) is None
    assert _symbol(encode(["string"], ["   "])) is None
    assert _symbol(b"\x01\x02") is None


def test_a_symbol_cannot_break_a_pool_name() -> None:
    # a pool is named "A/B-fee": a token calling itself "A/B C" is shown as "A_B_C"
    assert _symbol(encode(["string"], ["A/B C"])) == "A_B_C"
    assert _symbol(encode(["string"], ["X" * 40])) == "X" * 24

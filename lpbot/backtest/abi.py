"""The UniswapV3Pool events and view calls the backtester reads, encoded and decoded by hand.

Signatures are those of ``IUniswapV3PoolEvents`` and ``IUniswapV3PoolState`` (v3-core 1.0.0),
``Multicall3.aggregate3`` and ERC-20 ``decimals()``; topics and selectors are their keccak-256
hashes. Indexed ``int24`` ticks arrive sign-extended to 32 bytes. Kept free of the compiled
artifacts so that a data fetch needs nothing but an RPC URL.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from eth_abi.abi import decode, encode
from eth_hash.auto import keccak
from eth_utils.address import to_checksum_address

from lpbot.backtest.events import EventKind


def _topic(signature: str) -> str:
    return "0x" + keccak(signature.encode()).hex()


def selector(signature: str) -> bytes:
    """The 4-byte function selector of a Solidity signature such as ``ticks(int24)``."""
    return keccak(signature.encode())[:4]


EVENT_SIGNATURES: dict[EventKind, str] = {
    EventKind.INITIALIZE: "Initialize(uint160,int24)",
    EventKind.MINT: "Mint(address,address,int24,int24,uint128,uint256,uint256)",
    EventKind.BURN: "Burn(address,int24,int24,uint128,uint256,uint256)",
    EventKind.COLLECT: "Collect(address,address,int24,int24,uint128,uint128)",
    EventKind.SWAP: "Swap(address,address,int256,int256,uint160,uint128,int24)",
    EventKind.FLASH: "Flash(address,address,uint256,uint256,uint256,uint256)",
    EventKind.SET_FEE_PROTOCOL: "SetFeeProtocol(uint8,uint8,uint8,uint8)",
    EventKind.COLLECT_PROTOCOL: "CollectProtocol(address,address,uint128,uint128)",
    EventKind.INCREASE_CARDINALITY: "IncreaseObservationCardinalityNext(uint16,uint16)",
}
TOPICS: dict[EventKind, str] = {kind: _topic(sig) for kind, sig in EVENT_SIGNATURES.items()}
KIND_OF_TOPIC: dict[str, EventKind] = {topic: kind for kind, topic in TOPICS.items()}
POOL_CREATED_TOPIC = _topic("PoolCreated(address,address,uint24,int24,address)")


def _word_int(topic: bytes) -> int:
    return int.from_bytes(topic, "big", signed=True)


def _word_address(topic: bytes) -> str:
    return to_checksum_address(topic[12:])


def _mint(topics: Sequence[bytes], data: bytes) -> tuple[Any, ...]:
    _sender, amount, amount0, amount1 = decode(["address", "uint128", "uint256", "uint256"], data)
    return (
        _word_address(topics[1]),
        _word_int(topics[2]),
        _word_int(topics[3]),
        amount,
        amount0,
        amount1,
    )


def _burn(topics: Sequence[bytes], data: bytes) -> tuple[Any, ...]:
    amount, amount0, amount1 = decode(["uint128", "uint256", "uint256"], data)
    return (
        _word_address(topics[1]),
        _word_int(topics[2]),
        _word_int(topics[3]),
        amount,
        amount0,
        amount1,
    )


def _collect(topics: Sequence[bytes], data: bytes) -> tuple[Any, ...]:
    _recipient, amount0, amount1 = decode(["address", "uint128", "uint128"], data)
    return (_word_address(topics[1]), _word_int(topics[2]), _word_int(topics[3]), amount0, amount1)


def _data(types: list[str]) -> Callable[[Sequence[bytes], bytes], tuple[Any, ...]]:
    def decoder(_topics: Sequence[bytes], data: bytes) -> tuple[Any, ...]:
        return tuple(decode(types, data))

    return decoder


_DECODERS: dict[EventKind, Callable[[Sequence[bytes], bytes], tuple[Any, ...]]] = {
    EventKind.INITIALIZE: _data(["uint160", "int24"]),
    EventKind.MINT: _mint,
    EventKind.BURN: _burn,
    EventKind.COLLECT: _collect,
    EventKind.SWAP: _data(["int256", "int256", "uint160", "uint128", "int24"]),
    EventKind.FLASH: _data(["uint256", "uint256", "uint256", "uint256"]),
    EventKind.SET_FEE_PROTOCOL: _data(["uint8", "uint8", "uint8", "uint8"]),
    EventKind.COLLECT_PROTOCOL: _data(["uint128", "uint128"]),
    EventKind.INCREASE_CARDINALITY: _data(["uint16", "uint16"]),
}


def decode_event(kind: EventKind, topics: Sequence[bytes], data: bytes) -> tuple[Any, ...]:
    """The event's fields in ``PoolEvent.args`` order (see ``EventKind``)."""
    return _DECODERS[kind](topics, data)


# ------------------------------------------------------------------------------ view calls


def call_data(signature: str, types: Sequence[str] = (), args: Sequence[Any] = ()) -> bytes:
    """Calldata: the selector of ``signature`` followed by the ABI-encoded ``args``."""
    return selector(signature) + (encode(list(types), list(args)) if types else b"")


AGGREGATE3 = "aggregate3((address,bool,bytes)[])"


def encode_aggregate3(calls: Sequence[tuple[str, bytes]]) -> bytes:
    """Multicall3.aggregate3 calldata for ``(target, calldata)`` pairs, failures allowed."""
    return call_data(AGGREGATE3, ["(address,bool,bytes)[]"], [[(t, True, d) for t, d in calls]])


def decode_aggregate3(raw: bytes) -> list[tuple[bool, bytes]]:
    (results,) = decode(["(bool,bytes)[]"], raw)
    return [(bool(ok), bytes(data)) for ok, data in results]


def position_key(owner: str, tick_lower: int, tick_upper: int) -> bytes:
    """``keccak256(abi.encodePacked(owner, tickLower, tickUpper))`` (Position.get, v3-core)."""
    packed = (
        bytes.fromhex(owner[2:].rjust(40, "0"))
        + (tick_lower % (1 << 24)).to_bytes(3, "big")
        + (tick_upper % (1 << 24)).to_bytes(3, "big")
    )
    return keccak(packed)

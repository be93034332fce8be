"""A fresh UniswapV3Pool on the devnet, driven and read the way the Python ``Pool`` is.

``OnchainPool`` deploys two ``TestERC20`` tokens, creates and initializes the pool through the
official factory, funds the accounts that act on it and has each approve ``PoolCaller``. Actions
are raw ``eth_sendTransaction`` calls from Anvil's unlocked accounts: ``mint`` and ``swap`` through
``PoolCaller`` (the sender pays), ``burn``, ``collect`` and the admin calls on the pool itself. An
action returns the values of the pool's own event (``Mint``, ``Burn``, ``Collect``, ``Swap``), or
``Reverted(reason)`` with the reason string the same call gives under ``eth_call``.

``fetch_state`` reads everything ``StateQuery`` names in ONE Multicall3 ``aggregate3`` eth_call at
a given block; ``model_state`` derives the same mapping from a ``lpbot.uniswap.Pool``, so the two
compare key by key.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import requests
from eth_abi.abi import decode as abi_decode
from eth_abi.abi import encode as abi_encode
from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak

from lpbot.analytics.prices import sqrt_price_x96_from_price
from lpbot.chain import artifacts
from lpbot.uniswap import Pool, UniswapRevert
from lpbot.uniswap.oracle import Observation
from lpbot.uniswap.tick_math import MAX_SQRT_RATIO, MIN_SQRT_RATIO

GAS = 25_000_000  # a swap crossing a few hundred initialized ticks fits
READ_GAS = 10**9  # a long run's state read exceeds the block gas limit; Anvil's eth_call allows it
MAX_UINT256 = 2**256 - 1
MIN_SQRT_PRICE_LIMIT = MIN_SQRT_RATIO + 1  # what PoolCaller substitutes for a limit of 0
MAX_SQRT_PRICE_LIMIT = MAX_SQRT_RATIO - 1
ERROR_STRING = bytes.fromhex("08c379a0")  # Error(string)


def selector(signature: str) -> bytes:
    return keccak(text=signature)[:4]


def word(x: int) -> bytes:
    """One ABI word: two's complement for negative integers."""
    return (x % 2**256).to_bytes(32, "big")


def uint(data: bytes, i: int) -> int:
    return int.from_bytes(data[32 * i : 32 * i + 32], "big")


def sint(data: bytes, i: int) -> int:
    return int.from_bytes(data[32 * i : 32 * i + 32], "big", signed=True)


def position_key(owner: str, tick_lower: int, tick_upper: int) -> bytes:
    """PositionKey: keccak256(abi.encodePacked(owner, int24 tickLower, int24 tickUpper))."""
    return keccak(
        bytes.fromhex(owner[2:])
        + (tick_lower % 2**24).to_bytes(3, "big")
        + (tick_upper % 2**24).to_bytes(3, "big")
    )


@dataclass(frozen=True, slots=True)
class Reverted:
    """A call that reverted: the contract's reason string, ``''`` when it gave none.

    Anything other than ``Error(string)`` or empty revert data is kept as ``'0x' + hex``.
    """

    reason: str


def revert_reason(data: bytes) -> str:
    if not data:
        return ""
    if data[:4] == ERROR_STRING:
        (reason,) = abi_decode(["string"], data[4:])
        return str(reason)
    return "0x" + data.hex()


def model_outcome(action: Any, *args: Any) -> Any:
    """Call a ``Pool`` method; a ``UniswapRevert`` becomes ``Reverted(reason)``."""
    try:
        return action(*args)
    except UniswapRevert as e:
        return Reverted(e.reason)


class RpcError(Exception):
    def __init__(self, method: str, error: dict[str, Any]) -> None:
        self.code = error.get("code")
        self.message = str(error.get("message"))
        data = error.get("data")
        if isinstance(data, dict):  # some nodes nest the revert data one level deeper
            data = data.get("data")
        self.data = (
            bytes.fromhex(data[2:]) if isinstance(data, str) and data.startswith("0x") else b""
        )
        super().__init__(f"{method}: {self.code} {self.message}")


class JsonRpc:
    """A bare JSON-RPC client on one keep-alive session: the loop makes thousands of calls."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.session = requests.Session()
        self.ids = itertools.count(1)

    def __call__(self, method: str, *params: Any) -> Any:
        body: dict[str, Any] = {
            "jsonrpc": "2.0",
            "id": next(self.ids),
            "method": method,
            "params": list(params),
        }
        response = self.session.post(self.url, json=body, timeout=60)
        response.raise_for_status()
        reply = response.json()
        if "error" in reply:
            raise RpcError(method, reply["error"])
        return reply["result"]

    def close(self) -> None:
        self.session.close()


@dataclass(frozen=True)
class Receipt:
    status: int
    block_number: int
    logs: list[dict[str, Any]]
    contract_address: str | None


class Sender:
    """Sends transactions from unlocked accounts and waits for their (automined) receipts."""

    def __init__(self, rpc: JsonRpc) -> None:
        self.rpc = rpc

    def transact(self, sender: str, to: str | None, data: bytes) -> Receipt:
        tx: dict[str, Any] = {"from": sender, "data": "0x" + data.hex(), "gas": hex(GAS)}
        if to is not None:
            tx["to"] = to
        tx_hash = self.rpc("eth_sendTransaction", tx)
        raw = None
        while raw is None:
            raw = self.rpc("eth_getTransactionReceipt", tx_hash)
        return Receipt(
            status=int(raw["status"], 16),
            block_number=int(raw["blockNumber"], 16),
            logs=raw["logs"],
            contract_address=raw.get("contractAddress"),
        )

    def must(self, sender: str, to: str | None, data: bytes) -> Receipt:
        receipt = self.transact(sender, to, data)
        if receipt.status != 1:
            reason = self.reason(sender, to, data, receipt.block_number)
            raise AssertionError(f"set-up transaction to {to} reverted: {reason!r}")
        return receipt

    def reason(self, sender: str, to: str | None, data: bytes, block: int) -> str:
        """The revert reason of a call replayed with ``eth_call`` on the state of ``block``."""
        tx = {"from": sender, "to": to, "data": "0x" + data.hex(), "gas": hex(GAS)}
        try:
            self.rpc("eth_call", tx, hex(block))
        except RpcError as e:
            return revert_reason(e.data)
        raise AssertionError(
            f"the transaction reverted in block {block} but eth_call of it succeeds (out of gas?)"
        )


def deploy(sender: Sender, account: str, name: str, types: list[str], args: list[Any]) -> str:
    code = bytes.fromhex(artifacts.load(name).bytecode[2:]) + abi_encode(types, args)
    receipt = sender.must(account, None, code)
    assert receipt.contract_address is not None
    return to_checksum_address(receipt.contract_address)


# ------------------------------------------------------------------------------ state queries


@dataclass
class StateQuery:
    """What one ``fetch_state`` reads besides the pool's globals.

    ``ticks``: every tick ever used as a bound, so that cleared ticks are checked to be zero;
    ``words``: the tickBitmap words covering them; ``positions``: every (owner, lower, upper)
    ever touched; ``observations``: slots 0..n-1; ``observe``: seconds-ago lists for observe().
    """

    ticks: set[int] = field(default_factory=set)
    words: set[int] = field(default_factory=set)
    positions: set[tuple[str, int, int]] = field(default_factory=set)
    observations: int = 1
    observe: list[tuple[int, ...]] = field(default_factory=list)


State = dict[Any, Any]

_SLOT0 = selector("slot0()")
_LIQUIDITY = selector("liquidity()")
_FGG0 = selector("feeGrowthGlobal0X128()")
_FGG1 = selector("feeGrowthGlobal1X128()")
_PROTOCOL_FEES = selector("protocolFees()")
_TICKS = selector("ticks(int24)")
_BITMAP = selector("tickBitmap(int16)")
_POSITIONS = selector("positions(bytes32)")
_OBSERVATIONS = selector("observations(uint256)")
_OBSERVE = selector("observe(uint32[])")
_TIMESTAMP = selector("getCurrentBlockTimestamp()")
_AGGREGATE3 = selector("aggregate3((address,bool,bytes)[])")


def _encode_aggregate3(calls: Sequence[tuple[str, bool, bytes]]) -> bytes:
    """Multicall3.aggregate3 calldata, laid out by hand (the loop encodes it thousands of times)."""
    heads: list[bytes] = []
    tails: list[bytes] = []
    offset = 32 * len(calls)
    for target, allow_failure, data in calls:
        heads.append(word(offset))
        padded = data + b"\0" * (-len(data) % 32)
        item = (
            bytes(12)
            + bytes.fromhex(target[2:])
            + word(int(allow_failure))
            + word(96)
            + word(len(data))
            + padded
        )
        tails.append(item)
        offset += len(item)
    return _AGGREGATE3 + word(32) + word(len(calls)) + b"".join(heads) + b"".join(tails)


def _decode_aggregate3(ret: bytes) -> list[tuple[bool, bytes]]:
    """aggregate3's Result[] (bool success, bytes returnData)."""
    base = uint(ret, 0)
    n = int.from_bytes(ret[base : base + 32], "big")
    start = base + 32
    out = []
    for i in range(n):
        item = start + int.from_bytes(ret[start + 32 * i : start + 32 * i + 32], "big")
        success = bool(int.from_bytes(ret[item : item + 32], "big"))
        data_at = item + int.from_bytes(ret[item + 32 : item + 64], "big")
        length = int.from_bytes(ret[data_at : data_at + 32], "big")
        out.append((success, ret[data_at + 32 : data_at + 32 + length]))
    return out


def tick_word(tick: int, spacing: int) -> int:
    """TickBitmap.position(compressed tick).wordPos; compressed rounds towards -infinity."""
    return (tick // spacing) >> 8


def initialized_ticks(words: dict[int, int], spacing: int) -> set[int]:
    """The ticks whose bit is set in the given tickBitmap words."""
    out = set()
    for w, bits in words.items():
        while bits:
            b = (bits & -bits).bit_length() - 1
            out.add((w * 256 + b) * spacing)
            bits &= bits - 1
    return out


def model_state(pool: Pool, query: StateQuery) -> State:
    """The mapping ``fetch_state`` reads from the contract, computed from the Python pool."""
    s = pool.slot0
    state: State = {
        "slot0": (
            s.sqrt_price_x96,
            s.tick,
            s.observation_index,
            s.observation_cardinality,
            s.observation_cardinality_next,
            s.fee_protocol,
            s.unlocked,
        ),
        "liquidity": pool.liquidity,
        "feeGrowthGlobal0X128": pool.fee_growth_global0_x128,
        "feeGrowthGlobal1X128": pool.fee_growth_global1_x128,
        "protocolFees": (pool.protocol_fees.token0, pool.protocol_fees.token1),
        "block.timestamp": pool.block_timestamp,
    }
    for t in sorted(query.ticks):
        info = pool.tick_info(t)
        state["ticks", t] = (
            info.liquidity_gross,
            info.liquidity_net,
            info.fee_growth_outside0_x128,
            info.fee_growth_outside1_x128,
            info.tick_cumulative_outside,
            info.seconds_per_liquidity_outside_x128,
            info.seconds_outside,
            info.initialized,
        )
    for w in sorted(query.words):
        state["tickBitmap", w] = pool.tick_bitmap.get(w, 0)
    for owner, lower, upper in sorted(query.positions):
        p = pool.position(owner, lower, upper)
        state["positions", owner, lower, upper] = (
            p.liquidity,
            p.fee_growth_inside0_last_x128,
            p.fee_growth_inside1_last_x128,
            p.tokens_owed0,
            p.tokens_owed1,
        )
    for i in range(query.observations):
        state["observations", i] = tuple(pool.observations.get(i, Observation()))
    for seconds_agos in query.observe:
        result = model_outcome(pool.observe, seconds_agos)
        state["observe", seconds_agos] = (
            result if isinstance(result, Reverted) else (tuple(result[0]), tuple(result[1]))
        )
    return state


# ---------------------------------------------------------------------------------- the pool


@dataclass
class OnchainPool:
    """A created, initialized and funded pool on the devnet, and the accounts that act on it."""

    rpc: JsonRpc
    sender: Sender
    address: str
    token0: str
    token1: str
    fee: int
    tick_spacing: int
    pool_caller: str
    multicall: str
    factory_owner: str
    sqrt_price_x96: int  # the price initialize() set
    initialized_at: int  # its block timestamp
    initialized_block: int

    @classmethod
    def create(
        cls,
        rpc: JsonRpc,
        *,
        factory: str,
        factory_owner: str,
        pool_caller: str,
        multicall: str,
        fee: int,
        tick_spacing: int,
        decimals: tuple[int, int],
        price: Decimal,
        actors: Iterable[str],
        funding: int,
    ) -> OnchainPool:
        """Deploy two tokens, fund ``actors`` and have them approve PoolCaller, create the pool
        and initialize it at ``price`` (whole token1 per whole token0), one second after the
        latest block."""
        sender = Sender(rpc)
        deployed = {
            deploy(sender, factory_owner, "TestERC20", ["string", "string", "uint8"], [n, n, d]): d
            for n, d in zip(("Diff Token A", "Diff Token B"), decimals, strict=True)
        }
        token0, token1 = sorted(deployed, key=lambda a: int(a, 16))
        for actor in actors:
            for token in (token0, token1):
                sender.must(
                    actor,
                    token,
                    selector("mint(address,uint256)")
                    + abi_encode(["address", "uint256"], [actor, funding]),
                )
                sender.must(
                    actor,
                    token,
                    selector("approve(address,uint256)")
                    + abi_encode(["address", "uint256"], [pool_caller, MAX_UINT256]),
                )
        pool_args = abi_encode(["address", "address", "uint24"], [token0, token1, fee])
        sender.must(
            factory_owner, factory, selector("createPool(address,address,uint24)") + pool_args
        )
        got = rpc(
            "eth_call",
            {
                "to": factory,
                "data": "0x" + (selector("getPool(address,address,uint24)") + pool_args).hex(),
            },
            "latest",
        )
        address = to_checksum_address("0x" + got[-40:])
        sqrt_price_x96 = sqrt_price_x96_from_price(price, deployed[token0], deployed[token1])
        timestamp = int(rpc("eth_getBlockByNumber", "latest", False)["timestamp"], 16) + 1
        rpc("evm_setNextBlockTimestamp", timestamp)
        receipt = sender.must(
            factory_owner, address, selector("initialize(uint160)") + word(sqrt_price_x96)
        )
        return cls(
            rpc=rpc,
            sender=sender,
            address=address,
            token0=token0,
            token1=token1,
            fee=fee,
            tick_spacing=tick_spacing,
            pool_caller=pool_caller,
            multicall=multicall,
            factory_owner=factory_owner,
            sqrt_price_x96=sqrt_price_x96,
            initialized_at=timestamp,
            initialized_block=receipt.block_number,
        )

    # ------------------------------------------------------------------------------- actions

    def _act(self, sender: str, to: str, data: bytes, event: bytes | None) -> tuple[Any, int]:
        """Send; return (the data of the pool's ``event``, None or Reverted; block number)."""
        receipt = self.sender.transact(sender, to, data)
        if receipt.status != 1:
            reason = self.sender.reason(sender, to, data, receipt.block_number)
            return Reverted(reason), receipt.block_number
        if event is None:
            return None, receipt.block_number
        topic = "0x" + keccak(event).hex()
        for log in receipt.logs:
            if log["address"].lower() == self.address.lower() and log["topics"][0] == topic:
                return bytes.fromhex(log["data"][2:]), receipt.block_number
        return None, receipt.block_number

    def mint(self, owner: str, tick_lower: int, tick_upper: int, amount: int) -> tuple[Any, int]:
        """PoolCaller.mint paid by ``owner`` for ``owner``: (amount0, amount1) of the Mint event."""
        data = selector("mint(address,address,int24,int24,uint128)") + b"".join(
            [word(int(self.address, 16)), word(int(owner, 16)), word(tick_lower),
             word(tick_upper), word(amount)]
        )  # fmt: skip
        out, block = self._act(
            owner, self.pool_caller, data,
            b"Mint(address,address,int24,int24,uint128,uint256,uint256)",
        )  # fmt: skip
        return (out if isinstance(out, Reverted) else (uint(out, 2), uint(out, 3))), block

    def burn(self, owner: str, tick_lower: int, tick_upper: int, amount: int) -> tuple[Any, int]:
        """pool.burn from ``owner``: (amount0, amount1) of the Burn event."""
        data = (
            selector("burn(int24,int24,uint128)")
            + word(tick_lower)
            + word(tick_upper)
            + word(amount)
        )
        out, block = self._act(
            owner, self.address, data, b"Burn(address,int24,int24,uint128,uint256,uint256)"
        )
        return (out if isinstance(out, Reverted) else (uint(out, 1), uint(out, 2))), block

    def collect(
        self, owner: str, tick_lower: int, tick_upper: int, request0: int, request1: int
    ) -> tuple[Any, int]:
        """pool.collect from ``owner`` to ``owner``: (amount0, amount1) of the Collect event."""
        data = selector("collect(address,int24,int24,uint128,uint128)") + b"".join(
            [word(int(owner, 16)), word(tick_lower), word(tick_upper), word(request0),
             word(request1)]
        )  # fmt: skip
        out, block = self._act(
            owner, self.address, data, b"Collect(address,address,int24,int24,uint128,uint128)"
        )
        return (out if isinstance(out, Reverted) else (uint(out, 1), uint(out, 2))), block

    def swap(
        self, trader: str, zero_for_one: bool, amount_specified: int, sqrt_price_limit_x96: int
    ) -> tuple[Any, int]:
        """PoolCaller.swap paid by ``trader``; the Swap event's
        (amount0, amount1, sqrtPriceX96, liquidity, tick)."""
        data = selector("swap(address,address,bool,int256,uint160)") + b"".join(
            [word(int(self.address, 16)), word(int(trader, 16)), word(int(zero_for_one)),
             word(amount_specified), word(sqrt_price_limit_x96)]
        )  # fmt: skip
        out, block = self._act(
            trader, self.pool_caller, data,
            b"Swap(address,address,int256,int256,uint160,uint128,int24)",
        )  # fmt: skip
        if isinstance(out, Reverted):
            return out, block
        return (sint(out, 0), sint(out, 1), uint(out, 2), uint(out, 3), sint(out, 4)), block

    def increase_observation_cardinality_next(self, sender: str, n: int) -> tuple[Any, int]:
        data = selector("increaseObservationCardinalityNext(uint16)") + word(n)
        return self._act(sender, self.address, data, None)

    def set_fee_protocol(self, fee_protocol0: int, fee_protocol1: int) -> tuple[Any, int]:
        data = selector("setFeeProtocol(uint8,uint8)") + word(fee_protocol0) + word(fee_protocol1)
        return self._act(self.factory_owner, self.address, data, None)

    # ---------------------------------------------------------------------------------- state

    def fetch_state(self, query: StateQuery, block: int) -> State:
        """Everything ``query`` names, read in one aggregate3 eth_call on the state of ``block``."""
        pool = self.address
        keys: list[Any] = [
            "slot0",
            "liquidity",
            "feeGrowthGlobal0X128",
            "feeGrowthGlobal1X128",
            "protocolFees",
            "block.timestamp",
        ]
        calls: list[tuple[str, bool, bytes]] = [
            (pool, False, _SLOT0),
            (pool, False, _LIQUIDITY),
            (pool, False, _FGG0),
            (pool, False, _FGG1),
            (pool, False, _PROTOCOL_FEES),
            (self.multicall, False, _TIMESTAMP),
        ]
        for t in sorted(query.ticks):
            keys.append(("ticks", t))
            calls.append((pool, False, _TICKS + word(t)))
        for w in sorted(query.words):
            keys.append(("tickBitmap", w))
            calls.append((pool, False, _BITMAP + word(w)))
        for owner, lower, upper in sorted(query.positions):
            keys.append(("positions", owner, lower, upper))
            calls.append((pool, False, _POSITIONS + position_key(owner, lower, upper)))
        for i in range(query.observations):
            keys.append(("observations", i))
            calls.append((pool, False, _OBSERVATIONS + word(i)))
        for seconds_agos in query.observe:
            keys.append(("observe", seconds_agos))
            calls.append((pool, True, _OBSERVE + abi_encode(["uint32[]"], [list(seconds_agos)])))

        ret = self.rpc(
            "eth_call",
            {
                "to": self.multicall,
                "data": "0x" + _encode_aggregate3(calls).hex(),
                "gas": hex(READ_GAS),
            },
            hex(block),
        )
        results = _decode_aggregate3(bytes.fromhex(ret[2:]))
        state: State = {}
        for key, (ok, data) in zip(keys, results, strict=True):
            kind = key if isinstance(key, str) else key[0]
            if kind == "observe":
                if not ok:
                    state[key] = Reverted(revert_reason(data))
                else:
                    cums, spls = abi_decode(["int56[]", "uint160[]"], data)
                    state[key] = (tuple(cums), tuple(spls))
            elif kind == "slot0":
                state[key] = (
                    uint(data, 0), sint(data, 1), uint(data, 2), uint(data, 3), uint(data, 4),
                    uint(data, 5), bool(uint(data, 6)),
                )  # fmt: skip
            elif kind == "protocolFees":
                state[key] = (uint(data, 0), uint(data, 1))
            elif kind == "ticks":
                state[key] = (
                    uint(data, 0), sint(data, 1), uint(data, 2), uint(data, 3), sint(data, 4),
                    uint(data, 5), uint(data, 6), bool(uint(data, 7)),
                )  # fmt: skip
            elif kind == "positions":
                state[key] = tuple(uint(data, i) for i in range(5))
            elif kind == "observations":
                state[key] = (uint(data, 0), sint(data, 1), uint(data, 2), bool(uint(data, 3)))
            else:
                state[key] = uint(data, 0)
        return state

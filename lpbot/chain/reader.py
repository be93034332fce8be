"""Reading a pool and its positions from a chain in one Multicall3 ``aggregate3`` round trip.

One ``eth_call`` reads slot0, liquidity, fee growth globals, the oracle (``observe``), the block,
the initialized ticks of the bitmap words around the price (TickLens
``getPopulatedTicksInWord``) and NonfungiblePositionManager positions with their range's ticks.
The words read are those around a tick hint (the last tick this reader saw); when the price has
left them, or a position's ticks were not known yet, a second round trip completes the picture.
Round trips are counted on the snapshot and logged.

The block a read ran at comes from where the chain's registry entry says
(``ChainInfo.block_number_source``): Multicall3 ``getBlockNumber`` (Solidity ``block.number``)
where that is the chain's block; ArbSys ``arbBlockNumber()`` in the same batch on Arbitrum, where
``block.number`` is the L1 block; otherwise the node's ``eth_getBlockByNumber``, to which the read
is then pinned (one more round trip). A read at a given block number takes that number.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from eth_abi.abi import decode
from eth_utils.address import to_checksum_address
from web3 import Web3
from web3.contract.contract import Contract
from web3.types import BlockIdentifier

from lpbot.analytics.full_range import PoolFeeState, full_range_ticks
from lpbot.chain import artifacts
from lpbot.chain.registry import ARBSYS, block_number_source
from lpbot.chain.rpc import classify_rpc_error
from lpbot.errors import Refused, RetryLater
from lpbot.uniswap.pool import Pool, Slot0
from lpbot.uniswap.position_value import NpmPosition, fees, get_fee_growth_inside
from lpbot.uniswap.tick import TickInfo

log = logging.getLogger(__name__)

# keccak256("IncreaseLiquidity(uint256,uint128,uint256,uint256)"), NonfungiblePositionManager
INCREASE_LIQUIDITY_TOPIC = "0x3067048beee31b25b2f1681f88dac838c8bba36af25bfb2b7cf7473a5847e35f"


@dataclass(frozen=True)
class NpmPositionState:
    """NonfungiblePositionManager.positions(tokenId) with the pool's data for its range."""

    token_id: int
    token0: str
    token1: str
    fee: int
    npm: NpmPosition
    lower: TickInfo
    upper: TickInfo


@dataclass(frozen=True)
class PoolSnapshot:
    """A pool's state at one block, as read from the chain."""

    address: str
    block_number: int
    block_timestamp: int
    fee: int
    tick_spacing: int
    slot0: Slot0
    liquidity: int
    fee_growth_global0_x128: int
    fee_growth_global1_x128: int
    ticks: dict[int, TickInfo]
    word_range: tuple[int, int]  # bitmap words read, inclusive
    twap_seconds: tuple[int, ...]
    tick_cumulatives: tuple[int, ...] | None  # None when observe reverted (e.g. 'OLD')
    positions: dict[int, NpmPositionState] = field(default_factory=dict)
    round_trips: int = 1
    # the full range's two ticks as ``ticks(tick)`` returns them, initialized or not (read when
    # asked: ``fetch_pool_state(full_range=True)``)
    full_range: dict[int, TickInfo] = field(default_factory=dict)

    def fee_state(self) -> PoolFeeState | None:
        """The pool's price and fee growth for the full-range benchmark (None: its two ticks
        were not read)."""
        lo, hi = full_range_ticks(self.tick_spacing)
        if lo not in self.full_range or hi not in self.full_range:
            return None

        def outside(t: int) -> tuple[int, int] | None:
            info = self.full_range[t]
            if not info.initialized:
                return None
            return info.fee_growth_outside0_x128, info.fee_growth_outside1_x128

        return PoolFeeState(
            block=self.block_number,
            sqrt_price_x96=self.slot0.sqrt_price_x96,
            tick=self.slot0.tick,
            fee=self.fee,
            tick_spacing=self.tick_spacing,
            fee_growth_global0_x128=self.fee_growth_global0_x128,
            fee_growth_global1_x128=self.fee_growth_global1_x128,
            lower_outside=outside(lo),
            upper_outside=outside(hi),
        )

    @property
    def tick_range_known(self) -> tuple[int, int]:
        """The tick interval whose initialized ticks are all in ``ticks``."""
        span = 256 * self.tick_spacing
        return self.word_range[0] * span, (self.word_range[1] + 1) * span - 1

    def twap_tick(self) -> int | None:
        """Arithmetic-mean tick over the widest window read, rounded toward negative infinity
        (OracleLibrary.consult)."""
        if not self.tick_cumulatives or len(self.twap_seconds) < 2:
            return None
        window = max(self.twap_seconds) - min(self.twap_seconds)
        newest = self.tick_cumulatives[self.twap_seconds.index(min(self.twap_seconds))]
        oldest = self.tick_cumulatives[self.twap_seconds.index(max(self.twap_seconds))]
        delta = newest - oldest
        mean = abs(delta) // window * (1 if delta >= 0 else -1)
        if delta < 0 and delta % window != 0:
            mean -= 1
        return mean

    def fee_growth_inside(self, token_id: int) -> tuple[int, int]:
        """Fee growth inside NFT ``token_id``'s range now (PositionValue._getFeeGrowthInside)."""
        pos = self.positions[token_id]
        return get_fee_growth_inside(
            self.slot0.tick,
            self.fee_growth_global0_x128,
            self.fee_growth_global1_x128,
            pos.lower.fee_growth_outside0_x128,
            pos.lower.fee_growth_outside1_x128,
            pos.upper.fee_growth_outside0_x128,
            pos.upper.fee_growth_outside1_x128,
            pos.npm.tick_lower,
            pos.npm.tick_upper,
        )

    def uncollected_fees(self, token_id: int) -> tuple[int, int]:
        """What ``collect`` would pay NFT ``token_id`` now: fees accrued plus tokens owed."""
        return fees(self.positions[token_id].npm, *self.fee_growth_inside(token_id))

    def to_pool(self) -> Pool:
        """A ``Pool`` that quotes exactly like the contract within ``tick_range_known``."""
        return Pool.from_state(
            fee=self.fee,
            tick_spacing=self.tick_spacing,
            slot0=self.slot0,
            liquidity=self.liquidity,
            fee_growth_global0_x128=self.fee_growth_global0_x128,
            fee_growth_global1_x128=self.fee_growth_global1_x128,
            ticks=self.ticks,
            block_timestamp=self.block_timestamp,
        )


class PoolReader:
    """Reads pools through Multicall3 and TickLens; keeps the last tick per pool as a hint."""

    def __init__(
        self,
        w3: Web3,
        *,
        multicall: str,
        tick_lens: str,
        position_manager: str | None = None,
        word_radius: int = 2,
        block_source: str | None = None,
    ) -> None:
        self.w3 = w3
        self.word_radius = word_radius
        # "evm" | "arbsys" | "node" (registry ``block_number_source``); None: by the chain id
        self._block_source = block_source
        self._multicall = w3.eth.contract(
            address=to_checksum_address(multicall), abi=artifacts.abi("Multicall3")
        )
        self._lens = w3.eth.contract(
            address=to_checksum_address(tick_lens), abi=artifacts.abi("TickLens")
        )
        self._pool_abi = w3.eth.contract(abi=artifacts.abi("UniswapV3Pool"))
        self._npm: Contract | None = (
            w3.eth.contract(
                address=to_checksum_address(position_manager),
                abi=artifacts.abi("NonfungiblePositionManager"),
            )
            if position_manager
            else None
        )
        self._hints: dict[str, int] = {}
        self._static: dict[str, tuple[int, int, str, str]] = {}
        self._position_ticks: dict[int, tuple[int, int]] = {}

    # ------------------------------------------------------------------------------ encoding

    def _pool_call(self, pool: str, fn: str, *args: Any) -> tuple[str, bool, bytes]:
        data = self._pool_abi.encode_abi(fn_name=fn, args=list(args))
        return (pool, True, bytes.fromhex(data[2:]))

    def _aggregate(self, calls: list[tuple[str, bool, bytes]], block: BlockIdentifier) -> list[Any]:
        """One ``eth_call`` of Multicall3.aggregate3: a list of (success, return data)."""
        data = self._multicall.encode_abi(fn_name="aggregate3", args=[calls])
        try:
            raw = self.w3.eth.call(
                {"to": self._multicall.address, "data": data}, block_identifier=block
            )
        except Exception as exc:  # web3 raises many types for transport failures
            failure = classify_rpc_error(exc)
            raise RetryLater(
                f"multicall of {len(calls)} calls failed ({failure.fault.value}): {failure.message}"
            ) from None
        (results,) = decode(["(bool,bytes)[]"], bytes(raw))
        return list(results)

    # ------------------------------------------------------------------------------- reading

    def fetch_pool_state(
        self,
        pool: str,
        *,
        token_ids: Sequence[int] = (),
        twap_seconds: Sequence[int] = (0, 300),
        block: BlockIdentifier = "latest",
        full_range: bool = False,
    ) -> PoolSnapshot:
        """Read ``pool`` (and the NFT positions ``token_ids``) at ``block``; with
        ``full_range``, its lowest and highest usable ticks too (``PoolSnapshot.fee_state``)."""
        pool = to_checksum_address(pool)
        trips = 0
        static = self._static.get(pool)
        hint = self._hints.get(pool)
        source = self.block_source()
        pinned: int | None = block if isinstance(block, int) else None
        if pinned is None and source == "node":
            pinned = int(self.w3.eth.get_block(block)["number"])
            trips += 1
        at: BlockIdentifier = pinned if pinned is not None else block

        calls: list[tuple[str, bool, bytes]] = [
            self._pool_call(pool, "slot0"),
            self._pool_call(pool, "liquidity"),
            self._pool_call(pool, "feeGrowthGlobal0X128"),
            self._pool_call(pool, "feeGrowthGlobal1X128"),
            self._pool_call(pool, "observe", list(twap_seconds)),
            self._own_call("getCurrentBlockTimestamp"),
            self._block_number_call(source),
        ]
        if static is None:
            calls += [
                self._pool_call(pool, "fee"),
                self._pool_call(pool, "tickSpacing"),
                self._pool_call(pool, "token0"),
                self._pool_call(pool, "token1"),
            ]
        words: list[int] = []
        if hint is not None and static is not None:
            centre = (hint // static[1]) >> 8
            words = list(range(centre - self.word_radius, centre + self.word_radius + 1))
            calls += [self._lens_call(pool, w) for w in words]
        known_ranges = {
            tid: self._position_ticks[tid] for tid in token_ids if tid in self._position_ticks
        }
        if self._npm is not None:
            calls += [self._npm_call(tid) for tid in token_ids]
        range_ticks = sorted({t for r in known_ranges.values() for t in r})
        calls += [self._pool_call(pool, "ticks", t) for t in range_ticks]
        extreme_ticks = full_range_ticks(static[1]) if full_range and static else ()
        calls += [self._pool_call(pool, "ticks", t) for t in extreme_ticks]

        results = self._aggregate(calls, at)
        trips += 1
        it = iter(results)
        slot0_raw = self._decode_pool("slot0", next(it))
        liquidity = self._decode_pool("liquidity", next(it))[0]
        g0 = self._decode_pool("feeGrowthGlobal0X128", next(it))[0]
        g1 = self._decode_pool("feeGrowthGlobal1X128", next(it))[0]
        ok, observe_data = next(it)
        tick_cumulatives = tuple(decode(["int56[]", "uint160[]"], observe_data)[0]) if ok else None
        block_timestamp = decode(["uint256"], next(it)[1])[0]
        number_ok, number_data = next(it)
        if pinned is not None:
            block_number = pinned
        elif number_ok and len(number_data) == 32:
            block_number = decode(["uint256"], number_data)[0]
        else:  # no ArbSys here (an Anvil fork of Arbitrum): ask the node, and read again there
            log.info("ArbSys.arbBlockNumber() unavailable; block numbers from the node")
            self._block_source = "node"
            return self.fetch_pool_state(
                pool, token_ids=token_ids, twap_seconds=twap_seconds, block=block,
                full_range=full_range,
            )  # fmt: skip
        if static is None:
            static = (
                self._decode_pool("fee", next(it))[0],
                self._decode_pool("tickSpacing", next(it))[0],
                to_checksum_address(self._decode_pool("token0", next(it))[0]),
                to_checksum_address(self._decode_pool("token1", next(it))[0]),
            )
            self._static[pool] = static
        fee, spacing, token0, token1 = static
        slot0 = Slot0(
            sqrt_price_x96=slot0_raw[0],
            tick=slot0_raw[1],
            observation_index=slot0_raw[2],
            observation_cardinality=slot0_raw[3],
            observation_cardinality_next=slot0_raw[4],
            fee_protocol=slot0_raw[5],
            unlocked=slot0_raw[6],
        )
        ticks: dict[int, TickInfo] = {}
        for _w in words:
            self._merge_lens(ticks, next(it))
        npm_raw = [next(it) for _ in token_ids] if self._npm is not None else []
        range_infos = {t: self._tick_info(next(it)) for t in range_ticks}
        extreme = {t: self._tick_info(next(it)) for t in extreme_ticks}

        centre = (slot0.tick // spacing) >> 8
        wanted = set(range(centre - self.word_radius, centre + self.word_radius + 1))
        missing_words = sorted(wanted - set(words))
        positions_raw = {
            tid: self._decode_npm(raw) for tid, raw in zip(token_ids, npm_raw, strict=True)
        }
        for tid, p in positions_raw.items():
            if (to_checksum_address(p[2]), to_checksum_address(p[3]), p[4]) != (
                token0,
                token1,
                fee,
            ):
                raise Refused(f"position {tid} is not in pool {pool}")
        missing_ticks = sorted(
            {t for p in positions_raw.values() for t in (p[5], p[6])} - set(range_infos)
        )
        missing_extreme = full_range_ticks(spacing) if full_range and not extreme else ()
        if missing_words or missing_ticks or missing_extreme:
            calls = [self._lens_call(pool, w) for w in missing_words]
            calls += [self._pool_call(pool, "ticks", t) for t in missing_ticks]
            calls += [self._pool_call(pool, "ticks", t) for t in missing_extreme]
            results = self._aggregate(calls, block_number)
            trips += 1
            it = iter(results)
            for _w in missing_words:
                self._merge_lens(ticks, next(it))
            for t in missing_ticks:
                range_infos[t] = self._tick_info(next(it))
            for t in missing_extreme:
                extreme[t] = self._tick_info(next(it))
            words = sorted(set(words) | set(missing_words))
        # the lens words only give liquidity net/gross; fill in full structs where read
        for t, info in range_infos.items():
            if info.initialized:
                ticks[t] = info
        visible = [w for w in words if w in wanted] or words
        word_range = (min(visible), max(visible))
        # keep the ticks of a contiguous word range, so that to_pool() quotes exactly within it,
        # and the positions' own range ticks wherever they are (burning needs them)
        lo, hi = word_range[0] * 256 * spacing, (word_range[1] + 1) * 256 * spacing - 1
        ticks = {t: i for t, i in ticks.items() if lo <= t <= hi or t in range_infos}

        positions: dict[int, NpmPositionState] = {}
        for tid, p in positions_raw.items():
            self._position_ticks[tid] = (p[5], p[6])
            positions[tid] = NpmPositionState(
                token_id=tid,
                token0=p[2],
                token1=p[3],
                fee=p[4],
                npm=NpmPosition(
                    tick_lower=p[5],
                    tick_upper=p[6],
                    liquidity=p[7],
                    fee_growth_inside0_last_x128=p[8],
                    fee_growth_inside1_last_x128=p[9],
                    tokens_owed0=p[10],
                    tokens_owed1=p[11],
                ),
                lower=range_infos[p[5]],
                upper=range_infos[p[6]],
            )
        self._hints[pool] = slot0.tick
        log.info("read pool %s at block %d in %d round trip(s)", pool, block_number, trips)
        return PoolSnapshot(
            address=pool,
            block_number=block_number,
            block_timestamp=block_timestamp,
            fee=fee,
            tick_spacing=spacing,
            slot0=slot0,
            liquidity=liquidity,
            fee_growth_global0_x128=g0,
            fee_growth_global1_x128=g1,
            ticks=ticks,
            word_range=word_range,
            twap_seconds=tuple(twap_seconds),
            tick_cumulatives=tick_cumulatives,
            positions=positions,
            round_trips=trips,
            full_range=extreme,
        )

    def fetch_opened_at(self, token_id: int, from_block: int = 0) -> int | None:
        """The timestamp of the position's first ``IncreaseLiquidity`` (its mint), or None."""
        if self._npm is None:
            return None
        topic = "0x" + token_id.to_bytes(32, "big").hex()
        logs = self.w3.eth.get_logs(
            {
                "address": self._npm.address,
                "fromBlock": from_block,
                "toBlock": "latest",
                "topics": [INCREASE_LIQUIDITY_TOPIC, topic],  # type: ignore[list-item]
            }
        )
        if not logs:
            return None
        block = self.w3.eth.get_block(logs[0]["blockNumber"])
        return int(block["timestamp"])

    # ------------------------------------------------------------------------------- helpers

    def block_source(self) -> str:
        """Where block numbers come from: the constructor's, else the registry's for the chain."""
        if self._block_source is None:
            self._block_source = block_number_source(int(self.w3.eth.chain_id))
        return self._block_source

    def _block_number_call(self, source: str) -> tuple[str, bool, bytes]:
        if source == "arbsys":  # arbBlockNumber(); may fail where the precompile is absent
            return (to_checksum_address(ARBSYS), True, Web3.keccak(text="arbBlockNumber()")[:4])
        return self._own_call("getBlockNumber")

    def _own_call(self, fn: str) -> tuple[str, bool, bytes]:
        data = self._multicall.encode_abi(fn_name=fn)
        return (self._multicall.address, True, bytes.fromhex(data[2:]))

    def _lens_call(self, pool: str, word: int) -> tuple[str, bool, bytes]:
        data = self._lens.encode_abi(fn_name="getPopulatedTicksInWord", args=[pool, word])
        return (self._lens.address, True, bytes.fromhex(data[2:]))

    def _npm_call(self, token_id: int) -> tuple[str, bool, bytes]:
        assert self._npm is not None
        data = self._npm.encode_abi(fn_name="positions", args=[token_id])
        return (self._npm.address, True, bytes.fromhex(data[2:]))

    def _decode_pool(self, fn: str, result: tuple[bool, bytes]) -> tuple[Any, ...]:
        ok, data = result
        if not ok:
            raise RetryLater(f"pool call {fn} reverted")
        if not data:
            # no code at that block (a node that does not serve the state, a devnet loaded from a
            # saved state): the call succeeds with nothing to decode
            raise RetryLater(f"pool call {fn} returned no data (no pool state at that block)")
        types = [o["type"] for o in self._pool_abi.get_function_by_name(fn).abi["outputs"]]
        return tuple(decode(types, data))

    def _tick_info(self, result: tuple[bool, bytes]) -> TickInfo:
        return TickInfo(*self._decode_pool("ticks", result))

    def _decode_npm(self, result: tuple[bool, bytes]) -> tuple[Any, ...]:
        ok, data = result
        if not ok:
            raise RetryLater("NonfungiblePositionManager.positions reverted (no such token id?)")
        types = [
            "uint96", "address", "address", "address", "uint24", "int24", "int24",
            "uint128", "uint256", "uint256", "uint128", "uint128",
        ]  # fmt: skip
        return tuple(decode(types, data))

    @staticmethod
    def _merge_lens(ticks: dict[int, TickInfo], result: tuple[bool, bytes]) -> None:
        ok, data = result
        if not ok:
            raise RetryLater("TickLens.getPopulatedTicksInWord reverted")
        (populated,) = decode(["(int24,int128,uint128)[]"], data)
        for tick, net, gross in populated:
            ticks[tick] = TickInfo(liquidity_gross=gross, liquidity_net=net, initialized=True)

"""Providers as a JSON-RPC stand-in imitates them: how each refuses an ``eth_getLogs``.

Every message, code and HTTP status is the provider's own, as its users have quoted it in bug
reports (the issue threads cited beside each): only block numbers and limits are filled in.
A synthetic chain answers the rest: a log at every ``SPARSE``-th block, one at every block of the
dense stretch ``DENSE``, and block headers whose hash is derived from the number.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from eth_utils.crypto import keccak

from lpbot.chain.rpc import Fault
from tests.chain.rpc_standin import RpcError, RpcStandIn

ADDRESS = "0x00000000000000000000000000000000000000aa"
TOPIC = "0x" + "11" * 32
SPARSE = 97
DENSE = range(30_000, 30_400)


def log_blocks(lo: int, hi: int, every: int = SPARSE, dense: range = DENSE) -> list[int]:
    return [b for b in range(lo, hi + 1) if b % every == 0 or b in dense]


def block_hash(number: int, fork: int = 0) -> str:
    return "0x" + keccak(number.to_bytes(8, "big") + fork.to_bytes(2, "big")).hex()


# (lo, hi, number of logs the range holds) -> the provider's refusal, or None to answer
Refusal = Callable[[int, int, int], RpcError | None]


@dataclass(frozen=True)
class Provider:
    name: str
    refuse: Refusal
    fault: Fault  # what the first refusal is
    limit: int | None = None  # the block limit the message states


def _range_cap(cap: int, error: Callable[[int, int], RpcError]) -> Refusal:
    return lambda lo, hi, _n: error(lo, hi) if hi - lo + 1 > cap else None


def _results_cap(cap: int, error: Callable[[int, int], RpcError]) -> Refusal:
    return lambda lo, hi, n: error(lo, hi) if n > cap else None


def _every(k: int, error: RpcError) -> Refusal:
    counter = itertools.count(1)
    return lambda _lo, _hi, _n: error if next(counter) % k == 0 else None


PROVIDERS: tuple[Provider, ...] = (
    # Alchemy free tier, HTTP 400 (boundless-xyz/boundless#838, risc0/risc0-ethereum#656)
    Provider(
        "alchemy-range",
        _range_cap(
            500,
            lambda lo, _hi: RpcError(
                -32600,
                "You can make eth_getLogs requests with up to a 500 block range. Based on your "
                f"parameters, this block range should work: [{hex(lo)}, {hex(lo + 499)}]",
                status=400,
            ),
        ),
        Fault.RANGE_TOO_LARGE,
        500,
    ),
    # Alchemy response-size cap (ethereum/go-ethereum#25343)
    Provider(
        "alchemy-size",
        _results_cap(
            150,
            lambda lo, hi: RpcError(
                -32602,
                "Log response size exceeded. You can make eth_getLogs requests with up to a 2K "
                "block range and no limit on the response size, or you can request any block range "
                "with a cap of 10K logs in the response. Based on your parameters and the response "
                "size limit, this block range should work: "
                f"[{hex(lo)}, {hex(lo + (hi - lo) // 4)}]",
            ),
        ),
        Fault.TOO_MANY_RESULTS,
    ),
    # Infura's block-range limit (INFURA/infura#237)
    Provider(
        "infura-range",
        _range_cap(
            10_000, lambda lo, hi: RpcError(-32602, f"range {hi - lo} exceeds limit of 10000")
        ),
        Fault.RANGE_TOO_LARGE,
        10_000,
    ),
    # Infura free tier
    Provider(
        "infura-freetier",
        _range_cap(
            10_000,
            lambda _lo, _hi: RpcError(
                -32600, "ranges over 10000 blocks are not supported on freetier"
            ),
        ),
        Fault.RANGE_TOO_LARGE,
        10_000,
    ),
    # Infura's documented result cap: -32005, the code EIP-1474 also gives rate limits
    Provider(
        "infura-results",
        _results_cap(
            150, lambda _lo, _hi: RpcError(-32005, "query returned more than 150 results")
        ),
        Fault.TOO_MANY_RESULTS,
    ),
    # QuickNode: HTTP 413 (eternalsafe/wallet#57, OffchainLabs/arbitrum-sdk#609)
    Provider(
        "quicknode",
        _range_cap(
            10_000,
            lambda _lo, _hi: RpcError(
                -32614, "eth_getLogs is limited to a 10,000 range", status=413
            ),
        ),
        Fault.RANGE_TOO_LARGE,
        10_000,
    ),
    # QuickNode's older wording, as served through thirdweb's gateway (thirdweb-dev/js#275)
    Provider(
        "quicknode-blocks",
        _range_cap(
            10_000,
            lambda _lo, _hi: RpcError(
                -32602,
                "eth_getLogs and eth_newFilter are limited to a 10,000 blocks range",
                status=413,
            ),
        ),
        Fault.RANGE_TOO_LARGE,
        10_000,
    ),
    # thirdweb RPC edge
    Provider(
        "thirdweb",
        _range_cap(
            1_000,
            lambda _lo, _hi: RpcError(-32602, "Maximum allowed number of requested blocks is 1000"),
        ),
        Fault.RANGE_TOO_LARGE,
        1_000,
    ),
    # Ankr: no limit in the message (ponder-sh/ponder getLogsRetryHelper); the cap is hidden
    Provider(
        "ankr",
        _range_cap(3_000, lambda _lo, _hi: RpcError(-32600, "block range is too wide")),
        Fault.RANGE_TOO_LARGE,
        None,
    ),
    # Ankr's newer wording (ponder-sh/ponder#1940)
    Provider(
        "ankr-distance",
        _range_cap(
            10_000, lambda _lo, _hi: RpcError(-32602, "maximum [from, to] blocks distance: 10000")
        ),
        Fault.RANGE_TOO_LARGE,
        10_000,
    ),
    # geth-based public endpoints (publicnode, BSC dataseeds: AlphaWallet/alpha-wallet-android#2736)
    Provider(
        "public-geth",
        _range_cap(5_000, lambda _lo, _hi: RpcError(-32000, "exceed maximum block range: 5000")),
        Fault.RANGE_TOO_LARGE,
        5_000,
    ),
    # Chainstack: no limit in the message
    Provider(
        "chainstack",
        _range_cap(100, lambda _lo, _hi: RpcError(-32000, "Block range limit exceeded.")),
        Fault.RANGE_TOO_LARGE,
        None,
    ),
    # reth's own limits (--rpc.max-blocks-per-filter, --rpc.max-logs-per-response; base/base#2421)
    Provider(
        "reth-range",
        _range_cap(
            20_000, lambda _lo, _hi: RpcError(-32602, "query exceeds max block range 20000")
        ),
        Fault.RANGE_TOO_LARGE,
        20_000,
    ),
    Provider(
        "reth-results",
        _results_cap(
            150,
            lambda lo, hi: RpcError(
                -32602, f"query exceeds max results 150, retry with the range {lo}-{(lo + hi) // 2}"
            ),
        ),
        Fault.TOO_MANY_RESULTS,
    ),
    # Nitro (Arbitrum's node)
    Provider(
        "nitro",
        _results_cap(
            150, lambda _lo, _hi: RpcError(-32000, "logs matched by query exceeds limit of 150")
        ),
        Fault.TOO_MANY_RESULTS,
    ),
    # zkSync Era's node (ponder-sh/ponder getLogsRetryHelper: "infura, zksync")
    Provider(
        "zksync",
        _results_cap(
            150,
            lambda lo, hi: RpcError(
                -32602,
                "Query returned more than 150 results. Try with this block range "
                f"[{hex(lo)}, {hex((lo + hi) // 2)}].",
            ),
        ),
        Fault.TOO_MANY_RESULTS,
    ),
)

# rate limits: the range is fine, the request comes too soon
RATE_LIMITS: tuple[tuple[str, RpcError, float], ...] = (
    # Infura: HTTP 429, -32005, the wait in data.rate.backoff_seconds (INFURA/infura#201)
    (
        "infura",
        RpcError(
            -32005,
            "project ID request rate exceeded",
            {
                "rate": {"allowed_rps": 10, "backoff_seconds": 30, "current_rps": 13.3},
                "see": "https://infura.io/dashboard",
            },
            status=429,
        ),
        30.0,
    ),
    # Alchemy: HTTP 429, code 429 (conduitxyz/node#36)
    (
        "alchemy",
        RpcError(
            429,
            "Your app has exceeded its compute units per second capacity. If you have retries "
            "enabled, you can safely ignore this message. If not, check out "
            "https://docs.alchemy.com/reference/throughput",
            status=429,
            headers={"Retry-After": "2"},
        ),
        2.0,
    ),
    # QuickNode: -32007 with Retry-After
    (
        "quicknode",
        RpcError(
            -32007,
            "15/second request limit reached - reduce calls per second or upgrade your account "
            "at quicknode.com",
            status=429,
            headers={"Retry-After": "1"},
        ),
        1.0,
    ),
    # BSC's and other public endpoints: -32005 "limit exceeded", HTTP 200 (bnb-chain/bsc#1215)
    ("public", RpcError(-32005, "limit exceeded"), 0.5),
    # geth (and Nitro) behind a load balancer, asked about a block the node has not seen yet
    ("geth", RpcError(-32000, "header not found"), 0.5),
    # a load balancer's HTML page
    (
        "gateway",
        RpcError(-32603, "", status=502, body="<html><h1>502 Bad Gateway</h1></html>"),
        0.5,
    ),
)

QUOTAS: tuple[tuple[str, RpcError], ...] = (
    # Alchemy: HTTP 403 (xmtp/xmtpd#672)
    (
        "alchemy",
        RpcError(
            -32600,
            "Monthly capacity limit exceeded. Visit https://dashboard.alchemyapi.io/settings/"
            "billing to upgrade your scaling policy for continued service.",
            status=403,
        ),
    ),
    # Infura: the daily cap, worded as a rate limit (blockscout/blockscout#7339)
    (
        "infura",
        RpcError(
            -32005,
            "daily request count exceeded, request rate limited",
            {"rate": {"allowed_rps": 1, "backoff_seconds": 30, "current_rps": 2.2}},
            status=429,
        ),
    ),
)


def chain_standin(
    refuse: Refusal,
    *,
    head: int = 60_000,
    fork_from: int | None = None,
    every: int = SPARSE,
    dense: range = DENSE,
) -> RpcStandIn:
    """A stand-in for a chain of ``head`` blocks with the module's logs, refusing as ``refuse``.

    From ``fork_from`` on, block hashes are those of another fork (a reorg)."""
    standin = RpcStandIn(chain_id=42161)

    def get_logs(params: list[Any]) -> list[dict[str, Any]]:
        query = params[0]
        lo, hi = int(query["fromBlock"], 16), int(query["toBlock"], 16)
        blocks = log_blocks(lo, min(hi, head), every, dense)
        error = refuse(lo, hi, len(blocks))
        if error is not None:
            raise error
        return [
            {
                "address": ADDRESS, "blockNumber": hex(b), "blockHash": block_hash(b),
                "logIndex": "0x0", "transactionHash": "0x" + b.to_bytes(32, "big").hex(),
                "transactionIndex": "0x0", "topics": [TOPIC], "data": "0x", "removed": False,
            }
            for b in blocks
        ]  # fmt: skip

    def get_block(params: list[Any]) -> dict[str, Any] | None:
        number = head if params[0] == "latest" else int(params[0], 16)
        if number > head:
            return None
        fork = 1 if fork_from is not None and number >= fork_from else 0
        return {"number": hex(number), "hash": block_hash(number, fork),
                "timestamp": hex(1_700_000_000 + number // 4)}  # fmt: skip

    standin.answer("eth_getLogs", get_logs)
    standin.answer("eth_getBlockByNumber", get_block)
    standin.answer("eth_blockNumber", hex(head))
    return standin

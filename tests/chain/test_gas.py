"""Gas models against a JSON-RPC stand-in (real wire formats, exact fee arithmetic) and the devnet.

Wire formats:
- eth_feeHistory: EIP-1559 / execution-apis (``baseFeePerGas`` has blockCount + 1 entries, the
  last the next block's; ``reward`` one list per block, one entry per percentile).
- NodeInterface.gasEstimateL1Component and ArbGasInfo.getPricesInWei: the ABIs of
  OffchainLabs/nitro-contracts src/node-interface/NodeInterface.sol and
  src/precompiles/ArbGasInfo.sol; getPricesInWei's values as Nitro's
  precompiles/ArbGasInfo.go builds them (per-byte price = 16 x price per unit; per L2 tx = 140 x
  the per-byte price).
- zks_estimateFee: the ZKsync Era JSON-RPC reference's example answer
  ``{"gas_limit": "0x1ea9a9", "max_fee_per_gas": "0x17d7840", "max_priority_fee_per_gas": "0x0",
  "gas_per_pubdata_limit": "0x5340"}``.
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from eth_abi.abi import decode, encode
from web3 import Web3

from lpbot.chain import gas
from lpbot.chain.gas import (
    ARB_GAS_INFO,
    GAS_ESTIMATE_L1_COMPONENT,
    GET_PRICES_IN_WEI,
    NODE_INTERFACE,
    ArbitrumGasModel,
    Eip1559GasModel,
    GasCost,
    ZkSyncGasModel,
    gas_model_for,
    usd_cost,
)
from lpbot.chain.rpc import connect
from lpbot.chain.submit import fetch_fees
from lpbot.errors import ConfigError, Refused, RetryLater
from tests.chain.rpc_standin import RpcError, RpcStandIn, serve

SENDER = "0x1F98431c8aD98523631AE4a59f267346ea31F984"
SAFE = "0x41675C099F32341bf84BFc5382aF534df5C7461a"
# a 1,156-byte call: a selector and 36 words
CALLDATA = bytes.fromhex("6a761202") + bytes(range(32)) * 36
TX: Any = {"from": SENDER, "to": SAFE, "data": "0x" + CALLDATA.hex(), "value": 0}


@pytest.fixture
def rpc() -> Iterator[RpcStandIn]:
    with serve(RpcStandIn()) as standin:
        yield standin


def w3_for(rpc: RpcStandIn, chain_id: int) -> Web3:
    rpc.chain_id = chain_id
    return connect(rpc.url, timeout=5)


def fee_history(base_fees: list[int], rewards: list[int]) -> dict[str, Any]:
    return {
        "oldestBlock": "0x1406f40",
        "baseFeePerGas": [hex(b) for b in base_fees],
        "gasUsedRatio": [0.4310, 0.6128, 0.3819, 0.5207, 0.4933],
        "baseFeePerBlobGas": ["0x1"] * len(base_fees),
        "blobGasUsedRatio": [0.5, 0.3333, 0.6667, 0.5, 0.1667],
        "reward": [[hex(r)] for r in rewards],
    }


# Ethereum: base fees around 12 gwei; the 50th-percentile tips of five blocks
ETH_BASE_FEES = [
    11_576_412_335,
    11_822_519_004,
    12_109_700_291,
    11_937_250_112,
    12_063_004_881,
    12_080_117_406,  # the next block's
]
ETH_TIPS = [100_000_000, 1_000_000_000, 300_000_000, 2_000_000_000, 250_000_000]
ETH_GAS = 387_491

# Arbitrum One: 0.01 gwei L2 base fee, no tips; L1 price 0.024 gwei per calldata unit
ARB_BASE_FEE = 10_000_000
ARB_GAS = 445_024  # eth_estimateGas: L2 execution + the L1 component, in L2 gas
ARB_L1_GAS = 32_256  # NodeInterface: (700 compressed + 140) bytes x 16 units x 0.024 gwei / base
ARB_L1_BASE_FEE_ESTIMATE = 24_000_000
ARB_PRICE_PER_BYTE = 16 * 24_000_000


def test_eip1559_cost_from_fee_history_and_estimate(rpc: RpcStandIn) -> None:
    rpc.answer("eth_feeHistory", fee_history(ETH_BASE_FEES, ETH_TIPS))
    rpc.answer("eth_estimateGas", hex(ETH_GAS))
    cost = Eip1559GasModel().fetch_cost(w3_for(rpc, 1), TX)

    # next base fee 12_080_117_406; median tip of (0.1, 0.25, 0.3, 1, 2) gwei = 0.3 gwei
    assert cost == GasCost(
        gas_units=387_491,
        l2_fee_wei=387_491 * (12_080_117_406 + 300_000_000),
        l1_fee_wei=0,
        total_wei=4_797_184_073_768_346,
        max_fee_per_gas=2 * 12_080_117_406 + 300_000_000,
        max_priority_fee_per_gas=300_000_000,
    )
    assert cost.max_fee_per_gas == 24_460_234_812
    assert cost.max_total_wei == 387_491 * 24_460_234_812
    assert rpc.params_of("eth_feeHistory") == [["0x5", "latest", [50.0]]]
    (estimate,) = rpc.params_of("eth_estimateGas")
    assert estimate[0]["to"] == SAFE and estimate[0]["data"] == "0x" + CALLDATA.hex()


def test_eip1559_fees_match_what_the_submitter_signs(rpc: RpcStandIn) -> None:
    rpc.answer("eth_feeHistory", fee_history(ETH_BASE_FEES, ETH_TIPS))
    rpc.answer("eth_estimateGas", hex(ETH_GAS))
    w3 = w3_for(rpc, 1)
    cost = Eip1559GasModel().fetch_cost(w3, TX)
    fees = fetch_fees(w3)
    assert (cost.max_fee_per_gas, cost.max_priority_fee_per_gas) == (
        fees.max_fee_per_gas,
        fees.max_priority_fee_per_gas,
    )


def test_eip1559_tip_is_at_least_one_wei(rpc: RpcStandIn) -> None:
    rpc.answer("eth_feeHistory", fee_history(ETH_BASE_FEES, [0] * 5))
    rpc.answer("eth_estimateGas", hex(21_000))
    cost = Eip1559GasModel().fetch_cost(w3_for(rpc, 1), TX)
    assert cost.max_priority_fee_per_gas == 1
    assert cost.total_wei == 21_000 * (12_080_117_406 + 1)


def node_interface(params: list[Any]) -> str:
    call = params[0]
    assert call["to"] == NODE_INTERFACE
    data = bytes.fromhex(call["data"][2:])
    assert data[:4] == GAS_ESTIMATE_L1_COMPONENT
    to, creation, calldata = decode(["address", "bool", "bytes"], data[4:])
    assert (to, creation, calldata) == (SAFE.lower(), False, CALLDATA)
    assert call["from"] == SENDER
    return (
        "0x"
        + encode(
            ["uint64", "uint256", "uint256"], [ARB_L1_GAS, ARB_BASE_FEE, ARB_L1_BASE_FEE_ESTIMATE]
        ).hex()
    )


def arb_gas_info(params: list[Any]) -> str:
    call = params[0]
    assert call["to"] == ARB_GAS_INFO
    assert bytes.fromhex(call["data"][2:]) == GET_PRICES_IN_WEI
    prices = [
        140 * ARB_PRICE_PER_BYTE,  # per L2 tx
        ARB_PRICE_PER_BYTE,  # per L1 calldata byte
        20_000 * ARB_BASE_FEE,  # per storage allocation
        ARB_BASE_FEE,  # per ArbGas base (the minimum base fee)
        0,  # per ArbGas congestion
        ARB_BASE_FEE,  # per ArbGas total
    ]
    return "0x" + encode(["uint256"] * 6, prices).hex()


def eth_call_router(node_interface_answer: Any) -> Any:
    def route(params: list[Any]) -> str:
        to = params[0]["to"]
        if to == NODE_INTERFACE:
            return node_interface_answer(params)  # type: ignore[no-any-return]
        if to == ARB_GAS_INFO:
            return arb_gas_info(params)
        raise RpcError(-32000, "execution reverted")

    return route


def arbitrum_history() -> dict[str, Any]:
    base = [10_000_000, 10_000_000, 10_020_000, 10_000_000, 10_000_000, ARB_BASE_FEE]
    return fee_history(base, [0] * 5)


def test_arbitrum_l2_part_plus_node_interface_l1_component(rpc: RpcStandIn) -> None:
    rpc.answer("eth_feeHistory", arbitrum_history())
    rpc.answer("eth_estimateGas", hex(ARB_GAS))
    rpc.answer("eth_call", eth_call_router(node_interface))
    cost = ArbitrumGasModel().fetch_cost(w3_for(rpc, 42161), TX)

    # L1: 32_256 gas x 0.01 gwei; L2: (445_024 - 32_256) gas x 0.01 gwei; no tip on Arbitrum
    assert cost == GasCost(
        gas_units=445_024,
        l2_fee_wei=412_768 * 10_000_000,
        l1_fee_wei=32_256 * 10_000_000,
        total_wei=4_450_240_000_000,
        max_fee_per_gas=20_000_000,
        max_priority_fee_per_gas=0,
    )
    assert [p[0]["to"] for p in rpc.params_of("eth_call")] == [NODE_INTERFACE]


def test_arbitrum_falls_back_to_arb_gas_info(rpc: RpcStandIn) -> None:
    """A node without NodeInterface answers "0x": the L1 fee comes from getPricesInWei."""
    rpc.answer("eth_feeHistory", arbitrum_history())
    rpc.answer("eth_estimateGas", hex(ARB_GAS))
    rpc.answer("eth_call", eth_call_router(lambda _params: "0x"))
    cost = ArbitrumGasModel().fetch_cost(w3_for(rpc, 42161), TX)

    # (140 + 1_156) bytes x 0.384 gwei = 497_664_000_000 wei = 49_766.4 -> 49_767 L2 gas
    l1_fee = 140 * ARB_PRICE_PER_BYTE + 1_156 * ARB_PRICE_PER_BYTE
    assert l1_fee == 497_664_000_000
    assert cost == GasCost(
        gas_units=445_024,
        l2_fee_wei=(445_024 - 49_767) * 10_000_000,
        l1_fee_wei=497_664_000_000,
        total_wei=4_450_234_000_000,
        max_fee_per_gas=20_000_000,
        max_priority_fee_per_gas=0,
    )
    assert [p[0]["to"] for p in rpc.params_of("eth_call")] == [NODE_INTERFACE, ARB_GAS_INFO]


def test_arbitrum_l1_base_fee_estimate(rpc: RpcStandIn) -> None:
    rpc.answer("eth_call", lambda _p: "0x" + encode(["uint256"], [ARB_L1_BASE_FEE_ESTIMATE]).hex())
    assert gas.fetch_arb_l1_base_fee_estimate(w3_for(rpc, 42161)) == 24_000_000
    (call,) = rpc.params_of("eth_call")
    assert call[0]["to"] == ARB_GAS_INFO and call[0]["data"] == "0xf5d6ded7"


ZKS_FEE = {
    "gas_limit": "0x1ea9a9",
    "max_fee_per_gas": "0x17d7840",
    "max_priority_fee_per_gas": "0x0",
    "gas_per_pubdata_limit": "0x5340",
}


def test_zksync_cost_from_zks_estimate_fee(rpc: RpcStandIn) -> None:
    rpc.answer("zks_estimateFee", ZKS_FEE)
    w3 = w3_for(rpc, 324)
    tx: Any = {**TX, "value": 10**15}
    cost = ZkSyncGasModel().fetch_cost(w3, tx)

    # 2_009_513 gas x 0.025 gwei; pubdata is paid inside the gas limit
    assert cost == GasCost(
        gas_units=2_009_513,
        l2_fee_wei=50_237_825_000_000,
        l1_fee_wei=0,
        total_wei=50_237_825_000_000,
        max_fee_per_gas=25_000_000,
        max_priority_fee_per_gas=0,
    )
    assert rpc.params_of("zks_estimateFee") == [
        [{"from": SENDER, "to": SAFE, "data": "0x" + CALLDATA.hex(), "value": hex(10**15)}]
    ]
    fee = gas.fetch_zksync_fee(w3, TX)
    assert fee is not None and fee.gas_per_pubdata_limit == 21_312


def test_zksync_falls_back_to_estimate_gas_and_gas_price(rpc: RpcStandIn) -> None:
    # zks_estimateFee is not in the table: the stand-in answers -32601 "Method not found"
    rpc.answer("eth_estimateGas", hex(1_735_262))
    rpc.answer("eth_gasPrice", "0x2b275d0")
    cost = ZkSyncGasModel().fetch_cost(w3_for(rpc, 324), TX)
    assert cost == GasCost(
        gas_units=1_735_262,
        l2_fee_wei=1_735_262 * 45_250_000,
        l1_fee_wei=0,
        total_wei=78_520_605_500_000,
        max_fee_per_gas=45_250_000,
        max_priority_fee_per_gas=0,
    )
    assert [m for m, _ in rpc.calls if m != "eth_chainId"] == [
        "zks_estimateFee",
        "eth_estimateGas",
        "eth_gasPrice",
    ]


def test_zksync_needs_from_and_to(rpc: RpcStandIn) -> None:
    with pytest.raises(ConfigError):
        ZkSyncGasModel().fetch_cost(w3_for(rpc, 324), {"to": SAFE})


def test_zksync_revert_is_refused(rpc: RpcStandIn) -> None:
    def revert(_params: list[Any]) -> Any:
        raise RpcError(3, "execution reverted: GS013")

    rpc.answer("zks_estimateFee", revert)
    with pytest.raises(Refused):
        ZkSyncGasModel().fetch_cost(w3_for(rpc, 324), TX)


def test_revert_in_estimate_is_refused(rpc: RpcStandIn) -> None:
    def revert(_params: list[Any]) -> Any:
        # Error(string) "STF", as a node returns a reverting eth_estimateGas
        raise RpcError(
            3,
            "execution reverted: STF",
            "0x08c379a0" + encode(["string"], ["STF"]).hex(),
        )

    rpc.answer("eth_feeHistory", fee_history(ETH_BASE_FEES, ETH_TIPS))
    rpc.answer("eth_estimateGas", revert)
    with pytest.raises(Refused):
        Eip1559GasModel().fetch_cost(w3_for(rpc, 1), TX)


def test_unreachable_node_is_retried_later() -> None:
    w3 = connect("http://127.0.0.1:9", timeout=2)  # discard port: nothing listens
    with pytest.raises(RetryLater):
        Eip1559GasModel().fetch_cost(w3, TX)


@pytest.mark.parametrize(
    ("chain_id", "model"),
    [
        (1, Eip1559GasModel),
        (31337, Eip1559GasModel),
        (42161, ArbitrumGasModel),
        (324, ZkSyncGasModel),
    ],
)
def test_gas_model_for(chain_id: int, model: type) -> None:
    assert isinstance(gas_model_for(chain_id), model)


def test_gas_model_for_unknown_chain() -> None:
    with pytest.raises(ConfigError):
        gas_model_for(10)


def test_usd_cost_is_exact() -> None:
    cost = GasCost(445_024, 4_127_680_000_000, 322_560_000_000, 4_450_240_000_000, 20_000_000, 0)
    assert usd_cost(cost, Decimal("3012.45")) == Decimal("0.013406125488")
    assert usd_cost(cost, Decimal(0)) == 0
    with pytest.raises(ConfigError):
        usd_cost(cost, Decimal("NaN"))
    with pytest.raises(ConfigError):
        usd_cost(cost, Decimal("-1"))


def test_gas_cost_checks_its_sum() -> None:
    with pytest.raises(ValueError):
        GasCost(21_000, 1, 1, 3, 10, 1)
    with pytest.raises(ValueError):
        GasCost(21_000, 1, 0, 1, 10, 11)


@pytest.mark.devnet
def test_eip1559_on_devnet_is_what_a_transfer_pays(chain: Any) -> None:
    """A plain transfer on the devnet: 21,000 gas, and the receipt pays exactly the estimate."""
    w3: Web3 = chain.w3
    sender = chain.manifest.accounts.traders[0]
    tx: Any = {"from": sender, "to": chain.manifest.accounts.lps[0], "value": 1}
    cost = gas_model_for(w3.eth.chain_id).fetch_cost(w3, tx)

    fees = fetch_fees(w3)
    assert cost.gas_units == 21_000
    assert (cost.max_fee_per_gas, cost.max_priority_fee_per_gas) == (
        fees.max_fee_per_gas,
        fees.max_priority_fee_per_gas,
    )
    pending_base = w3.eth.get_block("pending")["baseFeePerGas"]
    assert cost.total_wei == 21_000 * (pending_base + cost.max_priority_fee_per_gas)

    signed_fees: Any = {
        "gas": cost.gas_units,
        "maxFeePerGas": cost.max_fee_per_gas,
        "maxPriorityFeePerGas": cost.max_priority_fee_per_gas,
    }
    send: Any = {**tx, **signed_fees}
    tx_hash = w3.eth.send_transaction(send)
    receipt = w3.eth.wait_for_transaction_receipt(tx_hash, timeout=10)
    assert receipt["gasUsed"] * receipt["effectiveGasPrice"] == cost.total_wei

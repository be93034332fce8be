"""What a transaction costs, per chain: EIP-1559, Arbitrum One's L2 + L1 data, zkSync Era's fees.

Every model answers ``fetch_cost(w3, tx)`` with a ``GasCost``: the gas limit to send with, the
expected fee split into its L2 (execution) and L1 (data) parts, and the two EIP-1559 fee fields
to sign. All amounts are integer wei; only ``usd_cost`` leaves integers, as an exact ``Decimal``.

- Ethereum and the devnet (``Eip1559GasModel``): units from ``eth_estimateGas``; the next block's
  base fee and a priority fee from ``eth_feeHistory``, priced as ``lpbot.chain.submit.fetch_fees``
  signs them (max fee = 2 x next base fee + priority fee).
- Arbitrum One (``ArbitrumGasModel``): ``eth_estimateGas`` already counts the L1 data component
  in L2 gas; NodeInterface ``gasEstimateL1Component`` tells how much of it is L1, so the two parts
  can be shown apart. ArbOS charges the base fee only: L2 tips are ignored (Arbitrum docs, "Gas
  and fees").
- zkSync Era (``ZkSyncGasModel``): ``zks_estimateFee``, whose gas limit already includes the
  pubdata (L1) cost at ``gas_per_pubdata_limit``; ``eth_estimateGas`` + ``eth_gasPrice`` where a
  node does not serve it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal, localcontext
from typing import Any, Protocol, TypeVar

from eth_abi.abi import decode, encode
from eth_abi.exceptions import DecodingError
from eth_utils.abi import function_signature_to_4byte_selector
from eth_utils.address import to_checksum_address
from eth_utils.conversions import to_bytes
from web3 import Web3
from web3.exceptions import ContractLogicError, Web3Exception
from web3.types import RPCEndpoint, TxParams

from lpbot.chain.registry import chain
from lpbot.errors import ConfigError, Halt, Refused, RetryLater

log = logging.getLogger(__name__)
T = TypeVar("T")

WEI_PER_ETH = 10**18
# Anvil's chain id: the local devnet prices like Ethereum
DEVNET_CHAIN_ID = 31337

# Arbitrum Nitro precompiles. NodeInterface is virtual: only eth_call / eth_estimateGas reach it.
# OffchainLabs/nitro-contracts src/node-interface/NodeInterface.sol:
#   gasEstimateL1Component(address to, bool contractCreation, bytes data) external payable
#       returns (uint64 gasEstimateForL1, uint256 baseFee, uint256 l1BaseFeeEstimate)
NODE_INTERFACE = "0x00000000000000000000000000000000000000C8"
GAS_ESTIMATE_L1_COMPONENT = function_signature_to_4byte_selector(
    "gasEstimateL1Component(address,bool,bytes)"
)
# OffchainLabs/nitro-contracts src/precompiles/ArbGasInfo.sol:
#   getPricesInWei() external view returns (uint256 perL2Tx, uint256 perL1CalldataByte,
#       uint256 perStorageAllocation, uint256 perArbGasBase, uint256 perArbGasCongestion,
#       uint256 perArbGasTotal)
#   getL1BaseFeeEstimate() external view returns (uint256)
ARB_GAS_INFO = "0x000000000000000000000000000000000000006C"
GET_PRICES_IN_WEI = function_signature_to_4byte_selector("getPricesInWei()")
GET_L1_BASE_FEE_ESTIMATE = function_signature_to_4byte_selector("getL1BaseFeeEstimate()")

ZERO_ADDRESS = "0x0000000000000000000000000000000000000000"
# JSON-RPC 2.0 "Method not found"
METHOD_NOT_FOUND = -32601


@dataclass(frozen=True, slots=True)
class GasCost:
    """A transaction's gas limit, its expected fee in wei (L2 + L1 parts), and the fees to sign.

    ``total_wei`` is what the sender is expected to pay; ``max_total_wei`` the most it can be
    charged (every unit of the limit at the max fee).
    """

    gas_units: int
    l2_fee_wei: int
    l1_fee_wei: int
    total_wei: int
    max_fee_per_gas: int
    max_priority_fee_per_gas: int

    def __post_init__(self) -> None:
        values = (
            self.gas_units,
            self.l2_fee_wei,
            self.l1_fee_wei,
            self.max_fee_per_gas,
            self.max_priority_fee_per_gas,
        )
        if min(values) < 0:
            raise ValueError(f"gas cost fields must be >= 0: {self}")
        if self.total_wei != self.l2_fee_wei + self.l1_fee_wei:
            raise ValueError(f"total_wei must be l2_fee_wei + l1_fee_wei: {self}")
        if self.max_priority_fee_per_gas > self.max_fee_per_gas:
            raise ValueError(f"priority fee above max fee: {self}")

    @property
    def max_total_wei(self) -> int:
        return self.gas_units * self.max_fee_per_gas


class GasModel(Protocol):
    """How one chain prices a transaction."""

    def fetch_cost(self, w3: Web3, tx: TxParams) -> GasCost:
        """The cost of sending ``tx`` (``from``, ``to``, ``data``, ``value``) now."""
        ...


@dataclass(frozen=True, slots=True)
class FeeQuote:
    """The next block's base fee and a priority fee, wei per gas."""

    base_fee_per_gas: int
    priority_fee_per_gas: int

    @property
    def max_fee_per_gas(self) -> int:
        """2 x base fee + priority fee: stays valid through six full blocks of +12.5% each."""
        return 2 * self.base_fee_per_gas + self.priority_fee_per_gas

    @property
    def expected_price(self) -> int:
        """What one gas costs if the next base fee holds (EIP-1559 effective gas price)."""
        return self.base_fee_per_gas + self.priority_fee_per_gas


def fetch_fee_quote(w3: Web3, blocks: int = 5, percentile: float = 50.0) -> FeeQuote:
    """The next block's base fee and the median of the last ``blocks`` blocks' priority fees.

    ``eth_feeHistory(blocks, "latest", [percentile])``: ``baseFeePerGas`` has ``blocks + 1``
    entries, the last one the next block's (EIP-1559); ``reward[i][0]`` is block i's
    ``percentile``-th priority fee. The priority fee is at least 1 wei, as ``fetch_fees`` signs.
    """
    history = _rpc("eth_feeHistory", lambda: w3.eth.fee_history(blocks, "latest", [percentile]))
    base_fees = history["baseFeePerGas"]
    if not base_fees:
        raise RetryLater("eth_feeHistory returned no base fee")
    rewards = sorted(int(r[0]) for r in history.get("reward", []) if r)
    priority = rewards[len(rewards) // 2] if rewards else 0
    return FeeQuote(base_fee_per_gas=int(base_fees[-1]), priority_fee_per_gas=max(priority, 1))


def fetch_gas_estimate(w3: Web3, tx: TxParams) -> int:
    """``eth_estimateGas`` for ``tx`` at ``latest`` (not over our own pending transactions,
    which a node's default ``pending`` block includes); a transaction that would revert is
    refused."""
    return int(_rpc("eth_estimateGas", lambda: w3.eth.estimate_gas(tx, "latest")))


@dataclass(frozen=True, slots=True)
class Eip1559GasModel:
    """Ethereum (and the devnet): ``eth_estimateGas`` units at the next base fee + priority fee."""

    blocks: int = 5
    percentile: float = 50.0

    def fetch_cost(self, w3: Web3, tx: TxParams) -> GasCost:
        quote = fetch_fee_quote(w3, self.blocks, self.percentile)
        gas = fetch_gas_estimate(w3, tx)
        fee = gas * quote.expected_price
        return GasCost(
            gas_units=gas,
            l2_fee_wei=fee,
            l1_fee_wei=0,
            total_wei=fee,
            max_fee_per_gas=quote.max_fee_per_gas,
            max_priority_fee_per_gas=quote.priority_fee_per_gas,
        )


@dataclass(frozen=True, slots=True)
class ArbitrumL1Component:
    """NodeInterface.gasEstimateL1Component's answer: L1 data gas in L2 gas units, and prices."""

    gas_estimate_for_l1: int
    base_fee: int
    l1_base_fee_estimate: int

    @property
    def fee_wei(self) -> int:
        """The L1 data fee: ArbOS converts it to L2 gas at the L2 base fee, so this is exact."""
        return self.gas_estimate_for_l1 * self.base_fee


def fetch_arbitrum_l1_component(w3: Web3, tx: TxParams) -> ArbitrumL1Component | None:
    """NodeInterface.gasEstimateL1Component(to, contractCreation, data) by ``eth_call``.

    OffchainLabs/nitro-contracts src/node-interface/NodeInterface.sol: "Estimates a
    transaction's l1 costs ... doesn't pad the estimate as gas estimation normally does."
    ``from`` is copied over to the call, as the node copies everything but ``to`` and ``data``.
    None when the node does not serve NodeInterface (an error answer, or no return data).
    """
    to = tx.get("to")
    creation = to is None
    args = encode(
        ["address", "bool", "bytes"],
        [to_checksum_address(str(to)) if to else ZERO_ADDRESS, creation, _data(tx)],
    )
    call: TxParams = {"to": NODE_INTERFACE, "data": GAS_ESTIMATE_L1_COMPONENT + args}
    if tx.get("from"):
        call["from"] = tx["from"]
    try:
        raw = w3.eth.call(call)
        gas_for_l1, base_fee, l1_base_fee = decode(["uint64", "uint256", "uint256"], bytes(raw))
    except (ContractLogicError, ValueError, DecodingError) as exc:
        log.warning("NodeInterface.gasEstimateL1Component not served: %s", exc)
        return None
    except (OSError, Web3Exception) as exc:
        raise RetryLater(f"NodeInterface.gasEstimateL1Component failed: {exc}") from exc
    return ArbitrumL1Component(int(gas_for_l1), int(base_fee), int(l1_base_fee))


@dataclass(frozen=True, slots=True)
class ArbGasInfoPrices:
    """ArbGasInfo.getPricesInWei(): wei per L2 tx, per L1 calldata byte, ..., per ArbGas."""

    per_l2_tx: int
    per_l1_calldata_byte: int
    per_storage_allocation: int
    per_arbgas_base: int
    per_arbgas_congestion: int
    per_arbgas_total: int

    def l1_fee_upper_bound(self, calldata_len: int) -> int:
        """L1 data fee for ``calldata_len`` bytes, as if they did not compress.

        Nitro's ArbGasInfo.GetPricesInWeiWithAggregator: per_l2_tx is the per-byte price times
        the 140 bytes assumed for a transaction without its calldata; ArbOS charges the brotli-
        compressed size, which is at most the raw one (up to a few bytes of framing).
        """
        return self.per_l2_tx + calldata_len * self.per_l1_calldata_byte


def fetch_arb_gas_info_prices(w3: Web3) -> ArbGasInfoPrices:
    """ArbGasInfo.getPricesInWei() at 0x...6C by ``eth_call``."""
    call: TxParams = {"to": ARB_GAS_INFO, "data": GET_PRICES_IN_WEI}
    raw = _rpc("ArbGasInfo.getPricesInWei", lambda: w3.eth.call(call))
    return ArbGasInfoPrices(*(int(v) for v in decode(["uint256"] * 6, bytes(raw))))


def fetch_arb_l1_base_fee_estimate(w3: Web3) -> int:
    """ArbGasInfo.getL1BaseFeeEstimate(): ArbOS's estimate of the L1 base fee, wei per gas."""
    call: TxParams = {"to": ARB_GAS_INFO, "data": GET_L1_BASE_FEE_ESTIMATE}
    raw = _rpc("ArbGasInfo.getL1BaseFeeEstimate", lambda: w3.eth.call(call))
    (value,) = decode(["uint256"], bytes(raw))
    return int(value)


@dataclass(frozen=True, slots=True)
class ArbitrumGasModel:
    """Arbitrum One: the L2 execution part at the next base fee, plus the L1 data component.

    ``eth_estimateGas`` returns the whole limit, L1 component included (in L2 gas). The L1 part
    comes from NodeInterface; where a node does not serve it, from ArbGasInfo's per-byte price
    on the uncompressed calldata (an upper bound). ArbOS ignores tips and charges the base fee
    only, so the priority fee is 0.
    """

    blocks: int = 5

    def fetch_cost(self, w3: Web3, tx: TxParams) -> GasCost:
        quote = fetch_fee_quote(w3, self.blocks)
        base = quote.base_fee_per_gas
        gas = fetch_gas_estimate(w3, tx)
        component = fetch_arbitrum_l1_component(w3, tx)
        if component is not None:
            l1_fee = component.fee_wei
            l1_gas = component.gas_estimate_for_l1
        else:
            l1_fee = fetch_arb_gas_info_prices(w3).l1_fee_upper_bound(len(_data(tx)))
            l1_gas = -(-l1_fee // base) if base else 0  # the L2 gas it takes, rounded up
        l2_fee = max(gas - l1_gas, 0) * base
        return GasCost(
            gas_units=gas,
            l2_fee_wei=l2_fee,
            l1_fee_wei=l1_fee,
            total_wei=l2_fee + l1_fee,
            max_fee_per_gas=2 * base,
            max_priority_fee_per_gas=0,
        )


@dataclass(frozen=True, slots=True)
class ZkSyncFee:
    """``zks_estimateFee``'s answer (hex quantities in the JSON), as integers."""

    gas_limit: int
    gas_per_pubdata_limit: int
    max_fee_per_gas: int
    max_priority_fee_per_gas: int


def fetch_zksync_fee(w3: Web3, tx: TxParams) -> ZkSyncFee | None:
    """``zks_estimateFee`` for ``tx``, or None when the node does not serve the method.

    ZKsync Era JSON-RPC reference, zks_estimateFee: params ``[{from, to, data, value}]``
    (``from`` and ``to`` required); result ``{gas_limit, gas_per_pubdata_limit, max_fee_per_gas,
    max_priority_fee_per_gas}``, each a hex quantity.
    """
    request = _call_request(tx)
    if "from" not in request or "to" not in request:
        raise ConfigError("zks_estimateFee needs the transaction's 'from' and 'to'")
    try:
        response: Any = w3.provider.make_request(RPCEndpoint("zks_estimateFee"), [request])
    except (OSError, Web3Exception) as exc:
        raise RetryLater(f"zks_estimateFee failed: {exc}") from exc
    error = response.get("error")
    if error:
        code, message = error.get("code"), str(error.get("message", ""))
        if code == METHOD_NOT_FOUND or "does not exist" in message or "not found" in message:
            return None
        if "revert" in message:
            raise Refused(f"zks_estimateFee: the transaction would revert: {message}")
        raise RetryLater(f"zks_estimateFee failed: {error}")
    result = response.get("result")
    try:
        return ZkSyncFee(
            gas_limit=int(result["gas_limit"], 16),
            gas_per_pubdata_limit=int(result["gas_per_pubdata_limit"], 16),
            max_fee_per_gas=int(result["max_fee_per_gas"], 16),
            max_priority_fee_per_gas=int(result["max_priority_fee_per_gas"], 16),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise Halt(f"zks_estimateFee answered in an unknown format: {result!r}") from exc


# the gas per pubdata byte a type 2 (EIP-1559) transaction carries on zkSync Era: it has no field
# for it, and the node fills in this default (zksync-era core/lib/constants,
# DEFAULT_L2_TX_GAS_PER_PUBDATA_BYTE = 50_000: "large enough to fill into any batch regardless of
# the pubdata price"). Only an EIP-712 (type 113) transaction can sign a higher limit.
ZKSYNC_TYPE2_GAS_PER_PUBDATA = 50_000


@dataclass(frozen=True, slots=True)
class ZkSyncGasModel:
    """zkSync Era: ``zks_estimateFee``'s gas limit at its max fee per gas.

    The gas limit includes the pubdata (L1) cost, so ``l1_fee_wei`` is 0 and the whole fee is
    in ``l2_fee_wei``. It is an upper bound: the operator refunds unused gas, and the node pads
    its estimate. Without ``zks_estimateFee``: ``eth_estimateGas`` at ``eth_gasPrice``.

    lpbot sends type 2 transactions, which zkSync Era accepts: a type 113 (EIP-712) transaction is
    needed only for a paymaster, factory dependencies, or a gas per pubdata above what a type 2
    one carries (``ZKSYNC_TYPE2_GAS_PER_PUBDATA``). lpbot uses none of the first two; when the
    node asks for more gas per pubdata than that, the transaction waits (retry later) rather than
    go out as one the operator would refuse.
    """

    def fetch_cost(self, w3: Web3, tx: TxParams) -> GasCost:
        fee = fetch_zksync_fee(w3, tx)
        if fee is not None and fee.gas_per_pubdata_limit > ZKSYNC_TYPE2_GAS_PER_PUBDATA:
            raise RetryLater(
                f"zkSync Era asks {fee.gas_per_pubdata_limit:,} gas per pubdata byte, more than "
                f"the {ZKSYNC_TYPE2_GAS_PER_PUBDATA:,} a type 2 transaction carries: waiting "
                "for the L1 price to fall"
            )
        if fee is None:
            log.warning("zks_estimateFee not served: eth_estimateGas at eth_gasPrice instead")
            gas = fetch_gas_estimate(w3, tx)
            price = int(_rpc("eth_gasPrice", lambda: w3.eth.gas_price))
            return GasCost(gas, gas * price, 0, gas * price, price, 0)
        total = fee.gas_limit * fee.max_fee_per_gas
        return GasCost(
            gas_units=fee.gas_limit,
            l2_fee_wei=total,
            l1_fee_wei=0,
            total_wei=total,
            max_fee_per_gas=fee.max_fee_per_gas,
            max_priority_fee_per_gas=fee.max_priority_fee_per_gas,
        )


_MODELS: dict[str, Callable[[], GasModel]] = {
    "eip1559": Eip1559GasModel,
    "arbitrum": ArbitrumGasModel,
    "zksync": ZkSyncGasModel,
}


def gas_model_for(chain_id: int) -> GasModel:
    """The gas model of ``chain_id`` (the registry's ``gas_model``; the devnet is EIP-1559)."""
    if chain_id == DEVNET_CHAIN_ID:
        return Eip1559GasModel()
    kind = chain(chain_id).gas_model
    try:
        return _MODELS[kind]()
    except KeyError:
        raise Halt(f"chain {chain_id} names an unknown gas model {kind!r}") from None


def usd_cost(cost: GasCost, native_usd: Decimal) -> Decimal:
    """``cost.total_wei`` in USD at ``native_usd`` per native coin (ETH); exact, no rounding."""
    if not native_usd.is_finite() or native_usd < 0:
        raise ConfigError(f"native coin price must be a finite USD amount >= 0, got {native_usd}")
    with localcontext() as ctx:
        ctx.prec = 100
        return Decimal(cost.total_wei) * native_usd / WEI_PER_ETH


def _data(tx: TxParams) -> bytes:
    data = tx.get("data", b"")
    return bytes(data) if isinstance(data, bytes | bytearray) else to_bytes(hexstr=str(data))


def _call_request(tx: TxParams) -> dict[str, str]:
    """``tx`` as a JSON-RPC call object: checksummed addresses, hex data and value."""
    request: dict[str, str] = {}
    for key in ("from", "to"):
        value = tx.get(key)
        if value:
            request[key] = to_checksum_address(str(value))
    request["data"] = "0x" + _data(tx).hex()
    value = tx.get("value")
    if value:
        request["value"] = hex(int(value))
    return request


def _rpc(what: str, call: Callable[[], T]) -> T:
    """Run one JSON-RPC call; a revert is refused, any other failure is retried later."""
    try:
        return call()
    except ContractLogicError as exc:
        raise Refused(f"{what}: the transaction would revert: {exc}") from exc
    except (OSError, ValueError, Web3Exception) as exc:
        raise RetryLater(f"{what} failed: {exc}") from exc

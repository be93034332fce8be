"""A node's refusals of ``eth_sendRawTransaction`` are read by their meaning: "already known"
is pending (wait on it), "nonce too low" is checked against our receipts (ours mined: go on;
someone else's: alert and stop), "replacement transaction underpriced" is re-priced from the
fee market. A JSON-RPC stand-in in front of Anvil answers the errors Anvil would not."""

from __future__ import annotations

from typing import Any

import pytest
from web3 import HTTPProvider, Web3

from lpbot.chain.submit import (
    Fees,
    NonceUsedElsewhere,
    SendFault,
    SentTx,
    Submitter,
    classify_send_error,
)
from lpbot.devnet.keys import dev_signer
from lpbot.testing.rpc import decode_raw
from tests.chain.rpc_standin import RpcError, RpcStandIn, serve
from tests.conftest import Devnet

pytestmark = pytest.mark.devnet
GWEI = 10**9


@pytest.mark.parametrize(
    ("message", "fault"),
    [
        ("already known", SendFault.ALREADY_KNOWN),  # geth, reth
        ("known transaction: 0xab", SendFault.ALREADY_KNOWN),  # older geth, Besu
        ("AlreadyKnown", SendFault.ALREADY_KNOWN),  # Nethermind
        ("nonce too low: next nonce 7, tx nonce 5", SendFault.NONCE_TOO_LOW),  # geth
        ("OldNonce", SendFault.NONCE_TOO_LOW),  # Nethermind
        ("replacement transaction underpriced", SendFault.UNDERPRICED),  # geth, Anvil
        ("transaction underpriced", SendFault.UNDERPRICED),
        ("Replacement fee too low", SendFault.UNDERPRICED),  # Besu
        ("FeeTooLowToCompete", SendFault.UNDERPRICED),  # Nethermind
        ("max fee per gas less than block base fee", SendFault.UNDERPRICED),
        ("insufficient funds for gas * price + value", SendFault.OTHER),
    ],
)
def test_each_refusal_is_read_by_its_meaning(message: str, fault: SendFault) -> None:
    assert classify_send_error(message) is fault


def _submitter(url: str, **kw: Any) -> tuple[Submitter, list[SentTx]]:
    recorded: list[SentTx] = []
    signer = dev_signer(9)
    submitter = Submitter(
        Web3(HTTPProvider(url)), signer, preflight=lambda tx: None, replace_after=5.0, **kw
    )
    return submitter, recorded


def test_already_known_is_pending_and_waited_on(chain: Devnet) -> None:
    standin = RpcStandIn(forward_to=chain.url)

    def took_it_then_says_known(params: list[Any]) -> Any:
        standin.forward("eth_sendRawTransaction", params)  # it is in the node's pool
        raise RpcError(-32000, "already known")

    standin.answer("eth_sendRawTransaction", took_it_then_says_known)
    with serve(standin):
        submitter, recorded = _submitter(standin.url)
        me = submitter.signer.address
        receipt, mined = submitter.send_and_confirm(me, b"", 21_000, on_sent=recorded.append)
    assert receipt["status"] == 1 and "0x" + bytes(receipt["transactionHash"]).hex() == mined.hash
    assert [s.hash for s in recorded] == [mined.hash]  # waited on, never signed again
    assert len(standin.params_of("eth_sendRawTransaction")) == 1


def test_nonce_too_low_with_our_transaction_mined_goes_on_with_its_receipt(
    chain: Devnet,
) -> None:
    standin = RpcStandIn(forward_to=chain.url)

    def mined_then_says_too_low(params: list[Any]) -> Any:
        h = standin.forward("eth_sendRawTransaction", params)  # Anvil mines it at once
        chain.w3.eth.wait_for_transaction_receipt(h)
        raise RpcError(-32000, "nonce too low")

    standin.answer("eth_sendRawTransaction", mined_then_says_too_low)
    with serve(standin):
        submitter, recorded = _submitter(standin.url)
        me = submitter.signer.address
        receipt, mined = submitter.send_and_confirm(me, b"", 21_000, on_sent=recorded.append)
    assert receipt["status"] == 1 and mined.hash == recorded[0].hash
    assert "0x" + bytes(receipt["transactionHash"]).hex() == mined.hash


def test_nonce_too_low_used_by_someone_else_stops(chain: Devnet) -> None:
    """Anvil itself refuses: the account's nonce was used by a transfer lpbot did not send."""
    w3 = chain.w3
    submitter, recorded = _submitter(chain.url)
    me = submitter.signer.address
    nonce = w3.eth.get_transaction_count(me, "pending")  # type: ignore[arg-type]
    other = w3.eth.send_transaction({"from": me, "to": me, "value": 1, "nonce": nonce})  # type: ignore[typeddict-item]
    assert w3.eth.wait_for_transaction_receipt(other)["status"] == 1
    with pytest.raises(NonceUsedElsewhere, match=f"nonce {nonce} .* did not send"):
        submitter.send_and_confirm(me, b"", 21_000, on_sent=recorded.append, nonce=nonce)
    assert len(recorded) == 1  # recorded before it was sent; nothing more was signed


def test_replacement_underpriced_is_repriced_from_the_fee_market(chain: Devnet) -> None:
    standin = RpcStandIn(forward_to=chain.url)
    base, tip = 40 * GWEI, 2 * GWEI  # the market now: far above the fees first signed
    standin.answer(
        "eth_feeHistory",
        {
            "oldestBlock": "0x1",
            "baseFeePerGas": [hex(base)] * 6,
            "gasUsedRatio": [0.5] * 5,
            "reward": [[hex(tip)]] * 5,
        },
    )
    refusals: list[str] = []

    def refuse_once(params: list[Any]) -> Any:
        if not refusals:
            refusals.append(params[0])
            raise RpcError(-32000, "replacement transaction underpriced")
        return standin.forward("eth_sendRawTransaction", params)

    standin.answer("eth_sendRawTransaction", refuse_once)
    low = Fees(2 * GWEI, GWEI)
    with serve(standin):
        submitter, recorded = _submitter(standin.url, fees=lambda: low)
        me = submitter.signer.address
        receipt, mined = submitter.send_and_confirm(me, b"", 21_000, on_sent=recorded.append)
    assert receipt["status"] == 1
    first, second = (decode_raw(p[0]) for p in standin.params_of("eth_sendRawTransaction"))
    assert first.nonce == second.nonce and first.max_fee_per_gas == low.max_fee_per_gas
    # re-priced from the market (2 x next base fee + median tip), not only bumped by 15%
    assert second.max_fee_per_gas == 2 * base + tip > low.bumped().max_fee_per_gas
    assert [s.kind for s in recorded] == ["send", "replacement"] and mined.hash == recorded[1].hash

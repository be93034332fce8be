"""The MPC key on the devnet: a mined transaction from its address, and a Safe owner's signature."""

from __future__ import annotations

from typing import Any

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from web3 import Web3
from web3.logs import DISCARD

from lpbot.chain import artifacts
from lpbot.devnet.anvil import DEV_MNEMONIC
from lpbot.signing.base import Signature
from lpbot.signing.local import LocalKeySigner
from lpbot.signing.mpc import MpcSigner, SafeTx
from tests.conftest import Devnet
from tests.signing.conftest import needs_backend

pytestmark = [pytest.mark.devnet, needs_backend]

SENTINEL = "0x0000000000000000000000000000000000000001"
ZERO = "0x0000000000000000000000000000000000000000"


def fund(chain: Devnet, to: str, wei: int) -> None:
    w3 = chain.w3
    tx = w3.eth.send_transaction({"from": chain.manifest.accounts.deployer, "to": to, "value": wei})
    assert w3.eth.wait_for_transaction_receipt(tx)["status"] == 1


def eip1559(w3: Web3, sender: str, to: str, value: int) -> dict[str, Any]:
    base = int(w3.eth.get_block("latest")["baseFeePerGas"])
    return {
        "type": 2,
        "chainId": w3.eth.chain_id,
        "nonce": w3.eth.get_transaction_count(sender),
        "to": to,
        "value": value,
        "data": b"",
        "gas": 21000,
        "maxPriorityFeePerGas": 10**9,
        "maxFeePerGas": 2 * base + 10**9,
    }


def test_mpc_address_sends_a_mined_transaction(chain: Devnet, signer3: MpcSigner) -> None:
    w3 = chain.w3
    recipient = chain.manifest.accounts.traders[0]
    fund(chain, signer3.address, 10**18)
    before = w3.eth.get_balance(recipient)

    signed = signer3.sign_transaction(eip1559(w3, signer3.address, recipient, 10**15))
    tx_hash = w3.eth.send_raw_transaction(signed.raw)
    receipt = w3.eth.wait_for_transaction_receipt(tx_hash)

    assert bytes(tx_hash) == signed.hash
    assert receipt["status"] == 1
    assert w3.eth.get_transaction(tx_hash)["from"] == signer3.address
    assert w3.eth.get_balance(recipient) - before == 10**15


def _owner_keys(chain: Devnet) -> dict[str, LocalAccount]:
    Account.enable_unaudited_hdwallet_features()  # type: ignore[no-untyped-call]
    keys = {}
    for i in (9, 10, 11):
        acct = Account.from_mnemonic(DEV_MNEMONIC, account_path=f"m/44'/60'/0'/0/{i}")  # type: ignore[no-untyped-call]
        keys[acct.address] = acct
    assert sorted(keys) == sorted(chain.manifest.accounts.safe_owners)
    return keys


def _local_signature(acct: LocalAccount, digest: bytes) -> Signature:
    return LocalKeySigner.from_key(acct.key).sign_digest(digest)


def _exec(chain: Devnet, safe: Any, tx: SafeTx, signatures: dict[str, Signature]) -> Any:
    # Safe.checkNSignatures wants the owners' signatures sorted by owner address, ascending
    packed = b"".join(
        signatures[o].to_bytes() for o in sorted(signatures, key=lambda a: int(a, 16))
    )
    call = safe.functions.execTransaction(
        tx.to,
        tx.value,
        tx.data,
        tx.operation,
        tx.safe_tx_gas,
        tx.base_gas,
        tx.gas_price,
        tx.gas_token,
        tx.refund_receiver,
        packed,
    )
    receipt = chain.w3.eth.wait_for_transaction_receipt(
        call.transact({"from": chain.manifest.accounts.deployer, "gas": 500_000})
    )
    assert receipt["status"] == 1
    return receipt


def _safe_tx(chain: Devnet, safe: Any, to: str, value: int, data: bytes) -> SafeTx:
    tx = SafeTx(
        chain_id=chain.w3.eth.chain_id,
        safe=safe.address,
        to=to,
        value=value,
        data=data,
        operation=0,
        nonce=safe.functions.nonce().call(),
    )
    # the hash built here is the one the Safe computes
    onchain = safe.functions.getTransactionHash(
        tx.to, tx.value, tx.data, tx.operation, 0, 0, 0, ZERO, ZERO, tx.nonce
    ).call()
    assert bytes(onchain) == tx.hash()
    return tx


def test_mpc_key_cosigns_a_safe_transaction(chain: Devnet, signer3: MpcSigner) -> None:
    w3 = chain.w3
    assert chain.manifest.safe is not None
    safe = w3.eth.contract(
        address=Web3.to_checksum_address(chain.manifest.safe), abi=artifacts.abi("SafeL2")
    )
    keys = _owner_keys(chain)
    owners = safe.functions.getOwners().call()
    assert safe.functions.getThreshold().call() == 2

    # 1. two of the existing owners swap the first owner for the MPC address
    old, kept = owners[0], owners[1:]
    swap_data = safe.encode_abi(fn_name="swapOwner", args=[SENTINEL, old, signer3.address])
    swap = _safe_tx(chain, safe, safe.address, 0, bytes.fromhex(swap_data[2:]))
    _exec(chain, safe, swap, {o: _local_signature(keys[o], swap.hash()) for o in kept})
    assert signer3.address in safe.functions.getOwners().call()
    assert old not in safe.functions.getOwners().call()

    # 2. the MPC key and one local owner move ETH out of the Safe
    fund(chain, safe.address, 10**18)
    recipient = chain.manifest.accounts.traders[1]
    before = w3.eth.get_balance(recipient)
    pay = _safe_tx(chain, safe, recipient, 3 * 10**17, b"")
    receipt = _exec(
        chain,
        safe,
        pay,
        {
            signer3.address: signer3.sign_safe_tx(pay),
            kept[0]: _local_signature(keys[kept[0]], pay.hash()),
        },
    )
    success = safe.events.ExecutionSuccess().process_receipt(receipt, errors=DISCARD)
    assert [bytes(e["args"]["txHash"]) for e in success] == [pay.hash()]
    assert w3.eth.get_balance(recipient) - before == 3 * 10**17


def test_an_mpc_owned_account_executes_a_rebalance(
    chain: Devnet, signer3: MpcSigner, tmp_path: Any
) -> None:
    """The MPC address sends the Safe's rebalance: threshold ECDSA signs the EIP-1559 tx."""
    from lpbot.devnet.context import devnet_context
    from lpbot.devnet.keys import dev_signer
    from lpbot.devnet.market import run_market
    from lpbot.execution import service
    from lpbot.strategy.base import Range
    from lpbot.testing.fakes import MemoryRebalanceRepo

    m = chain.manifest
    assert m.safe_position is not None
    run_market(chain.w3, m, m.pool("USDC/WETH-500"), steps=4, vol=0.8, seed=2, step_seconds=600)
    fund(chain, signer3.address, 10**18)
    ctx = devnet_context(chain.w3, m, MemoryRebalanceRepo(), tmp_path, executor=signer3)
    pool = chain.w3.eth.contract(
        address=m.pool("USDC/WETH-500").address, abi=artifacts.abi("UniswapV3Pool")
    )
    centre = pool.functions.slot0().call()[1] // 10 * 10
    _, report, _ = service.plan_rebalance(
        ctx, m.safe_position, Range(centre - 500, centre + 500, 10), "mpc executor"
    )
    service.approve(ctx, report["report_id"], approver="alice")
    record = service.execute(ctx, report["report_id"], signers=[dev_signer(9), dev_signer(10)])
    assert record.state.value == "CONFIRMED"
    assert record.result is not None
    sent = chain.w3.eth.get_transaction(record.result["tx_hash"])
    assert sent["from"] == signer3.address

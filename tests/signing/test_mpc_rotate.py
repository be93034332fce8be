"""Rotation of the MPC Safe owner on the devnet (the DKLs23 build has no share refresh): ``lpbot
mpc rotate plan`` generates a new key and dry-runs ``swapOwner(old -> new)`` into a report; a
person approves it for the co-signer; ``lpbot mpc rotate execute`` has the old MPC owner (party
1 + the co-signer) and a keystore owner sign it and sends it. Afterwards the new address is an
owner and the old one is not, and a Safe transaction signed with the old key is refused
(GS026)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from web3.exceptions import ContractLogicError

from lpbot.cli import main
from lpbot.devnet.anvil import free_port
from lpbot.devnet.keys import dev_signer
from lpbot.signing.local import LocalKeySigner, write_keystore
from lpbot.signing.mpc import MpcSigner
from lpbot.signing.mpc.rotate import SWAP_OWNER_SELECTOR
from lpbot.signing.safe import CALL, SafeTransaction, exec_transaction_data, sign
from lpbot.store.models import Transaction, TxStatus
from lpbot.store.session import make_engine, session_factory
from tests.conftest import Devnet
from tests.signing.conftest import MpcKey, needs_backend, running_cosigner
from tests.signing.test_mpc_run import POLICY, _cosigner_config, _setup, keystores

pytestmark = [pytest.mark.devnet, needs_backend]
PERSON_KEY = "0x" + "b2" * 32  # a person's development approver key (never a real one)
PERSON = LocalKeySigner.from_key(PERSON_KEY)
keystores = keystores  # the bot's, owner 1's and the policy key's keystores (module fixture)


def test_rotation_swaps_the_owner_and_the_old_key_is_refused(
    chain: Devnet,
    key3: MpcKey,
    tmp_path: Path,
    keystores: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    w3 = chain.w3
    assert chain.manifest.safe is not None
    home = tmp_path / "cosigner"
    home.mkdir()
    # the co-signer signs an owner swap on this Safe only: swapOwner, nothing else
    cosigner = _cosigner_config(
        chain,
        key3,
        home,
        allowed_calls={chain.manifest.safe: [SWAP_OWNER_SELECTOR]},
        # a person's approver key next to the bot's policy key: an owner swap is a person's
        approvers=[POLICY.address, PERSON.address],
    )
    cosigner["port"] = free_port()
    with running_cosigner(cosigner, home) as url:
        owned = _setup(chain, key3, tmp_path, keystores, url, monkeypatch, move_price=False)
        old = owned.mpc
        nonce = owned.safe.functions.nonce().call()
        for i in (1, 2, 3):
            monkeypatch.setenv(f"LPBOT_MPC_PASSPHRASE_{i}", f"passphrase of new party {i} here")
        new_key = tmp_path / "new-key" / "mpc.json"
        lpbot = ("--config", str(owned.config), "mpc", "rotate")

        # 1. plan: a new key, the swap dry-run into its report
        assert main([*lpbot, "plan", "--new-key", str(new_key), "--insecure-single-host"]) == 0
        planned = capsys.readouterr().out
        new = json.loads(new_key.read_text())["address"]
        assert new != old
        report_id = planned.split("report  ")[1].split()[0]
        report_path = tmp_path / "data" / "reports" / f"{report_id}.json"
        report = json.loads(report_path.read_text())
        assert (report["old_owner"], report["new_owner"]) == (old, new)
        assert report["checks"] == [
            {"name": "simulation", "ok": True, "detail": "swapOwner runs in the Safe's context"}
        ]
        assert report["owners_after"] == [new if o == old else o for o in report["owners_before"]]

        # 2. a person approves it for the co-signer (EIP-712, the report and SafeTx hashes)
        monkeypatch.setenv("LPBOT_TEST_ROTATE_APPROVER_PW", "approver password")
        write_keystore(
            tmp_path / "approver.json", bytes.fromhex(PERSON_KEY[2:]), "approver password"
        )
        approve = ["cosigner", "approve", "--report", str(report_path), "--ttl", "600"]
        approve += ["--keystore", str(tmp_path / "approver.json")]
        approve += ["--password-env", "LPBOT_TEST_ROTATE_APPROVER_PW"]
        assert main(approve) == 0
        approval = report_path.with_suffix(".approval.json")
        assert json.loads(approval.read_text())["approver"] == PERSON.address

        # 3. the old MPC owner (party 1 + the co-signer) and owner 1 sign; the swap is sent
        execute = [*lpbot, "execute", report_id, "--mpc", "--approval", str(approval)]
        assert main([*execute, "--keystore", "owner1"]) == 0, capsys.readouterr().err
        done = capsys.readouterr().out
        assert f"signed by {', '.join(sorted([old, dev_signer(9).address]))}" in done
        # the swap was recorded before it was broadcast, and settled from its receipt
        sent = done.split("owner swap sent in ")[1].split()[0]
        db = make_engine(f"sqlite:///{tmp_path / 'data' / 'lpbot.db'}")
        with session_factory(db)() as s:
            [row] = s.scalars(select(Transaction).where(Transaction.rebalance_id.is_(None)))
        receipt = w3.eth.get_transaction_receipt(sent)  # type: ignore[arg-type]
        assert row.tx_hash == sent and row.status == TxStatus.CONFIRMED and row.raw_tx
        assert row.gas_paid == receipt["gasUsed"] * receipt["effectiveGasPrice"]

    owners = owned.safe.functions.getOwners().call()
    assert new in owners and old not in owners
    assert owned.safe.functions.nonce().call() == nonce + 1
    assert owned.safe.functions.getThreshold().call() == 2

    # 4. whoever still holds the old shares signs a Safe transaction: the Safe refuses it
    trader = chain.manifest.accounts.traders[0]
    tx = SafeTransaction(
        31337, owned.safe.address, trader, 0, b"", CALL, owned.safe.functions.nonce().call()
    )
    with MpcSigner.open(key3.config) as old_key:  # all three old shares, no co-signer needed
        assert old_key.address == old
        old_sig = old_key.sign_digest(tx.safe_tx_hash)
    owner1 = sign(tx, dev_signer(9))
    pair = sorted(
        [(old, old_sig.to_bytes()), (owner1.owner, owner1.signature)], key=lambda p: int(p[0], 16)
    )
    data = exec_transaction_data(tx, b"".join(sig for _, sig in pair))
    call: Any = {"from": chain.manifest.accounts.deployer, "to": owned.safe.address, "data": data}
    with pytest.raises(ContractLogicError, match="GS026"):
        w3.eth.call(call)
    # the same transaction signed by the new owners' side would pass the owner check: the old
    # key alone is what the Safe no longer accepts
    assert owned.safe.functions.nonce().call() == nonce + 1

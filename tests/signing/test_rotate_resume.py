"""``lpbot mpc rotate execute`` run again after it was killed once its owner swap was sent: the
swap took effect, so the second run reports it (the same transaction, the owners now) instead of
refusing with "plan it again" (a plan that can no longer be made: the old key is no owner), and
it signs and sends nothing more. The owners here are plain keys: the swap is the same Safe
transaction whichever key retires."""

from __future__ import annotations

from pathlib import Path

import pytest
from eth_account import Account

from lpbot.devnet.keys import dev_signer
from lpbot.errors import NeedsAttention, Refused
from lpbot.signing.mpc.rotate import execute_rotation, plan_rotation
from tests.conftest import Devnet

pytestmark = pytest.mark.devnet


def test_a_rotation_run_again_after_its_swap_was_sent_reports_it_and_sends_nothing(
    chain: Devnet, tmp_path: Path
) -> None:
    w3, m = chain.w3, chain.manifest
    assert m.safe is not None
    old, new = dev_signer(11).address, Account.create().address
    report = plan_rotation(
        w3, chain_id=m.chain_id, safe=m.safe, old=old, new=new, reports_dir=tmp_path
    )
    sender = dev_signer(9)
    owners = [dev_signer(9), dev_signer(10)]
    first = execute_rotation(w3, report, sender=sender, signers=owners)
    assert new in first["owners"] and old not in first["owners"]
    sent = w3.eth.get_transaction_count(sender.address)

    again = execute_rotation(w3, report, sender=sender, signers=owners)
    assert again["tx_hash"] == first["tx_hash"] and again["owners"] == first["owners"]
    assert w3.eth.get_transaction_count(sender.address) == sent  # nothing signed or sent

    # a Safe that moved on some other way is still refused
    other = plan_rotation(
        w3,
        chain_id=m.chain_id,
        safe=m.safe,
        old=new,
        new=Account.create().address,
        reports_dir=tmp_path,
    )
    execute_rotation(w3, other, sender=sender, signers=owners)
    with pytest.raises(Refused, match="plan it again"):
        execute_rotation(w3, report, sender=sender, signers=owners)


class Killed(BaseException):
    """Stands for the process being killed right after the swap was broadcast."""


def test_a_rotation_run_again_while_its_swap_is_pending_signs_nothing_more(
    chain: Devnet, tmp_path: Path
) -> None:
    w3, m = chain.w3, chain.manifest
    assert m.safe is not None
    old, new = dev_signer(11).address, Account.create().address
    report = plan_rotation(
        w3, chain_id=m.chain_id, safe=m.safe, old=old, new=new, reports_dir=tmp_path
    )
    sender = dev_signer(9)
    owners = [dev_signer(9), dev_signer(10)]

    def send_then_die(to: str, data: bytes) -> None:
        w3.eth.send_transaction({"from": sender.address, "to": to, "data": data, "gas": 500_000})
        raise Killed

    w3.provider.make_request("evm_setAutomine", [False])  # type: ignore[arg-type]
    try:
        with pytest.raises(Killed):
            execute_rotation(w3, report, sender=sender, signers=owners, send=send_then_die)
        pending = w3.eth.get_transaction_count(sender.address, "pending")
        with pytest.raises(NeedsAttention, match="is pending"):
            execute_rotation(w3, report, sender=sender, signers=owners)
        assert w3.eth.get_transaction_count(sender.address, "pending") == pending
    finally:
        w3.provider.make_request("evm_setAutomine", [True])  # type: ignore[arg-type]
        w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]
    done = execute_rotation(w3, report, sender=sender, signers=owners)
    assert done.get("already_done") and new in done["owners"] and old not in done["owners"]

"""The co-signer's policy on a real dry-run report: a rebalance planned and dry-run on the devnet
(the real contracts, the real report) is accepted as planned and refused once its SafeTx is
tampered with, although the tampered hash was approved."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest

from lpbot.errors import Refused
from lpbot.execution import service
from lpbot.signing.local import LocalKeySigner
from lpbot.signing.mpc.approval import sign_approval
from lpbot.signing.mpc.decode import unpack_multisend
from lpbot.signing.mpc.policy import CosignerPolicy, Ledger, check
from lpbot.signing.mpc.safe_tx import SafeTx
from lpbot.signing.safe import InnerCall, build_safe_transaction
from tests.execution import conftest as execution
from tests.execution.conftest import Setup
from tests.signing.conftest import APPROVER_KEY

pytestmark = pytest.mark.devnet
repo = execution.repo  # the execution tests' fixtures: a Safe-owned position, moved price
setup = execution.setup
APPROVER = LocalKeySigner.from_key(APPROVER_KEY)
ATTACKER = "0x90F79bf6EB2c4f870365E785982E1f101E93b906"


@pytest.mark.parametrize("repo", ["memory"], indirect=True)
def test_real_report_passes_and_a_tampered_batch_does_not(setup: Setup, tmp_path: Path) -> None:
    ctx = setup.ctx
    m = setup.chain.manifest
    _, report, _ = service.plan_rebalance(ctx, setup.token_id, setup.new_range, "test")
    policy = CosignerPolicy(
        approvers=(APPROVER.address,),
        position_manager=m.contracts["NonfungiblePositionManager"],
        swap_router=m.contracts["SwapRouter02"],
        multisend_call_only=m.contracts["MultiSendCallOnly"],
        chain_ids=(report["chain_id"],),
    )
    now = datetime.fromtimestamp(setup.chain.w3.eth.get_block("latest")["timestamp"], UTC)
    ledger = Ledger(tmp_path / "cosigner.sqlite")

    def ask(st: SafeTx) -> None:
        digest = "0x" + st.hash().hex()
        approval = sign_approval(
            APPROVER,
            report_hash=report["report_hash"],
            digest=digest,
            chain_id=st.chain_id,
            expires_at=int(now.timestamp()) + 600,
        )
        context = {
            "kind": "safe_tx",
            "safe_tx": st.to_json(),
            "report": report,
            "approval": approval.model_dump(),
        }
        check(policy, ledger, digest, context, now=now)

    planned = SafeTx.from_json(report["safe_tx"])
    assert "0x" + planned.hash().hex() == report["safe_tx"]["safe_tx_hash"]
    ask(planned)  # the planned batch, every call read against the report

    # the same batch with the mint paying someone else
    calls = unpack_multisend(_multisend_payload(planned.data))
    mint = calls[-1]
    tampered_mint = mint.data.replace(
        bytes(12) + bytes.fromhex(ctx.safe[2:].lower()), bytes(12) + bytes.fromhex(ATTACKER[2:])
    )
    assert tampered_mint != mint.data
    inner = [InnerCall(c.to, c.data) for c in calls[:-1]] + [InnerCall(mint.to, tampered_mint)]
    st = build_safe_transaction(
        chain_id=planned.chain_id,
        safe=planned.safe,
        nonce=planned.nonce,
        calls=inner,
        multisend_call_only=m.contracts["MultiSendCallOnly"],
    )
    tampered = replace(planned, data=st.data)
    with pytest.raises(Refused, match=rf"call {len(calls)} \(mint\): recipient is {ATTACKER}"):
        ask(tampered)


def _multisend_payload(data: bytes) -> bytes:
    from eth_abi.abi import decode

    (payload,) = decode(["bytes"], data[4:])
    return bytes(payload)


@pytest.mark.parametrize("repo", ["memory"], indirect=True)
def test_a_compound_is_signed_automatically_once_the_chain_shows_the_safe_owns_the_nft(
    setup: Setup, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from lpbot.signing.mpc.policy import PoolKey

    ctx = setup.ctx
    m = setup.chain.manifest
    _, report, _ = service.plan_compound(ctx, setup.token_id, "test")
    monkeypatch.setenv("LPBOT_TEST_COSIGNER_RPC_URL", m.rpc_url)
    policy = CosignerPolicy(
        approvers=(APPROVER.address,),
        auto_approvers=(APPROVER.address,),  # as the bot's policy key would
        position_manager=m.contracts["NonfungiblePositionManager"],
        swap_router=m.contracts["SwapRouter02"],
        multisend_call_only=m.contracts["MultiSendCallOnly"],
        pools=(PoolKey(token0=setup.tokens[0], token1=setup.tokens[1], fee=500),),
        rpc_url_env="LPBOT_TEST_COSIGNER_RPC_URL",
        chain_ids=(report["chain_id"],),
    )
    now = datetime.fromtimestamp(setup.chain.w3.eth.get_block("latest")["timestamp"], UTC)
    planned = SafeTx.from_json(report["safe_tx"])
    digest = "0x" + planned.hash().hex()
    approval = sign_approval(
        APPROVER,
        report_hash=report["report_hash"],
        digest=digest,
        chain_id=planned.chain_id,
        expires_at=int(now.timestamp()) + 600,
    )
    context = {
        "kind": "safe_tx",
        "safe_tx": planned.to_json(),
        "report": report,
        "approval": approval.model_dump(),
    }
    ledger = Ledger(tmp_path / "cosigner.sqlite")
    ok = check(policy, ledger, digest, context, now=now)  # ownerOf read from the chain: the Safe
    assert (ok.kind, ok.calls) == ("safe_tx", len(report["calls"]))
    # the same approval, with the chain unreachable: refused, nothing counted
    monkeypatch.setenv("LPBOT_TEST_COSIGNER_RPC_URL", "http://127.0.0.1:9")
    with pytest.raises(Refused, match=f"cannot read the owner of NFT {setup.token_id}"):
        check(policy, ledger, digest, context, now=now)
    assert ledger.count(now.date().isoformat()) == 1

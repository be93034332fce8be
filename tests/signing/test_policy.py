"""The co-signer's policy: signed approvals, every inner call read against the report, limits,
its own store. No processes: the real calldata encoders of the execution path, the real
MultiSendCallOnly packing, real EIP-712 signatures."""

from __future__ import annotations

import sqlite3
from dataclasses import asdict, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from lpbot.errors import Refused
from lpbot.execution.plan import PlanAmounts, _encode_calls
from lpbot.report.dryrun import canonical_hash
from lpbot.signing.local import LocalKeySigner
from lpbot.signing.mpc.approval import SignedApproval, sign_approval
from lpbot.signing.mpc.decode import unpack_multisend
from lpbot.signing.mpc.policy import CosignerPolicy, Ledger, PoolKey, check
from lpbot.signing.mpc.safe_tx import SafeTx
from lpbot.signing.mpc.signer import jsonable_tx, tx_digest
from lpbot.signing.safe import InnerCall, build_safe_transaction
from lpbot.strategy.base import Range

SAFE = "0x5FbDB2315678afecb367f032d93F642f64180aa3"
NPM = "0xC36442b4a4522E871399CD717aBDD847Ab11FE88"
ROUTER = "0x68b3465833fb72A70ecDF485E0e4C7bD8665Fc45"
MULTISEND = "0x9641d764fc13c8B624c04430C7356C1C7C8102e2"
MODULE = "0x1111111111111111111111111111111111111111"
TOKEN0 = "0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48"
TOKEN1 = "0xC02aaA39b223FE8D0A0e5C4F27eAD9083C756Cc2"
ATTACKER = "0x90F79bf6EB2c4f870365E785982E1f101E93b906"
TO = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"
NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
T = int(NOW.timestamp())
DEADLINE = T + 600

APPROVER = LocalKeySigner.from_key("0x" + "11" * 32)
AUTO = LocalKeySigner.from_key("0x" + "22" * 32)
STRANGER = LocalKeySigner.from_key("0x" + "33" * 32)

POLICY = CosignerPolicy(
    approvers=(APPROVER.address, AUTO.address),
    auto_approvers=(AUTO.address,),
    max_auto_signatures_per_day=1,
    max_approval_ttl_s=3600,
    max_deadline_s=1800,
    position_manager=NPM,
    swap_router=ROUTER,
    multisend_call_only=MULTISEND,
    rebalance_module=MODULE,
    max_value_wei=10**16,
    pools=(PoolKey(token0=TOKEN0, token1=TOKEN1, fee=500),),
    allowed_calls={TO: ("0x",)},
    max_signatures_per_day=3,
    chain_ids=(31337,),
)

AMOUNTS = PlanAmounts(
    decrease0=5_000_000,
    decrease1=2 * 10**18,
    fees0=1000,
    fees1=10**15,
    decrease_min0=4_975_000,
    decrease_min1=199 * 10**16,
    swap_zero_for_one=False,
    swap_in=3 * 10**17,
    swap_out=900_000,
    swap_out_min=895_500,
    mint0=5_900_000,
    mint1=17 * 10**17,
    mint_min0=5_870_500,
    mint_min1=1_691_500_000_000_000_000,
    new_liquidity=123_456,
    dust0=0,
    dust1=0,
)
NEW_RANGE = Range(tick_lower=-1000, tick_upper=1000, tick_spacing=10)


def _calls(amounts: PlanAmounts = AMOUNTS, deadline: int = DEADLINE) -> list[InnerCall]:
    calls = _encode_calls(
        token_id=21,
        liquidity=10**12,
        amounts=amounts,
        new_range=NEW_RANGE,
        token0=TOKEN0,
        token1=TOKEN1,
        fee=500,
        safe=SAFE,
        npm=NPM,
        router=ROUTER,
        deadline=deadline,
        allowances={},
    )
    return [InnerCall(c.to, c.data) for c in calls]


def _report(inner: list[InnerCall], **over: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "chain_id": 31337,
        "safe": SAFE,
        "fee": 500,
        "tokens": [{"address": TOKEN0}, {"address": TOKEN1}],
        "position": {"token_id": 21, "old_liquidity": str(10**12), "new_range": [-1000, 1000]},
        "plan": {
            k: (str(v) if isinstance(v, int) and not isinstance(v, bool) else v)
            for k, v in asdict(AMOUNTS).items()
        },
        "deadline": DEADLINE,
        "calls": [
            {"label": f"call {i}", "to": c.to, "data": "0x" + c.data.hex()}
            for i, c in enumerate(inner)
        ],
    }
    body.update(over)
    return {**body, "report_hash": canonical_hash(body)}


def _safe_tx(calls: list[InnerCall], nonce: int = 4) -> SafeTx:
    st = build_safe_transaction(
        chain_id=31337, safe=SAFE, nonce=nonce, calls=calls, multisend_call_only=MULTISEND
    )
    out = SafeTx(
        chain_id=31337,
        safe=SAFE,
        to=st.to,
        value=st.value,
        data=st.data,
        operation=st.operation,
        nonce=nonce,
    )
    assert out.hash() == st.safe_tx_hash  # the co-signer hashes as the Safe does
    return out


def _approve(
    report: dict[str, Any],
    digest: str,
    signer: LocalKeySigner = APPROVER,
    expires_at: int = T + 600,
    chain_id: int = 31337,
) -> SignedApproval:
    return sign_approval(
        signer,
        report_hash=report["report_hash"],
        digest=digest,
        chain_id=chain_id,
        expires_at=expires_at,
    )


@pytest.fixture
def ledger(tmp_path: Path) -> Ledger:
    return Ledger(tmp_path / "cosigner.sqlite")


def _ctx_safe(
    st: SafeTx, report: dict[str, Any], approval: SignedApproval | None
) -> dict[str, Any]:
    ctx: dict[str, Any] = {"kind": "safe_tx", "safe_tx": st.to_json(), "report": report}
    if approval is not None:
        ctx["approval"] = approval.model_dump()
    return ctx


def _sign_batch(
    ledger: Ledger, calls: list[InnerCall], report: dict[str, Any] | None = None
) -> None:
    """Ask the policy about a batch whose SafeTx hash IS approved (for the report given)."""
    report = report or _report(_calls())
    st = _safe_tx(calls)
    digest = "0x" + st.hash().hex()
    check(POLICY, ledger, digest, _ctx_safe(st, report, _approve(report, digest)), now=NOW)


# ---- the honest batch --------------------------------------------------------------------


def test_the_reports_batch_passes_and_is_counted(ledger: Ledger) -> None:
    calls = _calls()
    report = _report(calls)
    st = _safe_tx(calls)
    digest = "0x" + st.hash().hex()
    ok = check(POLICY, ledger, digest, _ctx_safe(st, report, _approve(report, digest)), now=NOW)
    assert (ok.report_hash, ok.approver, ok.calls) == (
        report["report_hash"],
        APPROVER.address,
        len(calls),
    )
    assert len(calls) >= 4  # close, approve, swap, approve(s), mint
    assert ledger.count(NOW.date().isoformat()) == 1


# ---- #22: every inner call is read; each tamper refused although its hash was approved ----


def test_a_call_swapped_for_a_transfer_is_refused(ledger: Ledger) -> None:
    calls = _calls()
    i = next(k for k, c in enumerate(calls) if c.to == TOKEN1)  # the approve to the router
    transfer = (
        bytes.fromhex("a9059cbb")
        + bytes(12)
        + bytes.fromhex(ATTACKER[2:])
        + (10**18).to_bytes(32, "big")
    )
    calls[i] = InnerCall(TOKEN1, transfer)
    with pytest.raises(Refused, match=rf"call {i + 1} \(transfer on {TOKEN1}\): function"):
        _sign_batch(ledger, calls)
    assert ledger.count(NOW.date().isoformat()) == 0


def test_a_changed_recipient_is_refused(ledger: Ledger) -> None:
    calls = _calls()
    mint = _encode_calls_with(safe_for_mint=ATTACKER)[-1]
    calls[-1] = mint
    with pytest.raises(Refused, match=rf"call {len(calls)} \(mint\): recipient is {ATTACKER}"):
        _sign_batch(ledger, calls)


def test_a_lowered_minimum_is_refused(ledger: Ledger) -> None:
    lowered = replace(AMOUNTS, mint_min0=AMOUNTS.mint_min0 - 1)
    calls = _calls(lowered)
    with pytest.raises(
        Refused, match=rf"call {len(calls)} \(mint\): amount0Min {AMOUNTS.mint_min0 - 1} is below"
    ):
        _sign_batch(ledger, calls)
    # and in the swap inside the router's multicall
    calls = _calls(replace(AMOUNTS, swap_out_min=1))
    with pytest.raises(Refused, match=r"call 3\.1 \(exactInputSingle\): amountOutMinimum 1"):
        _sign_batch(ledger, calls)
    # and in decreaseLiquidity inside the position manager's multicall
    calls = _calls(replace(AMOUNTS, decrease_min1=0))
    with pytest.raises(Refused, match=r"call 1\.1 \(decreaseLiquidity\): amount1Min 0"):
        _sign_batch(ledger, calls)


def test_an_extra_approve_is_refused(ledger: Ledger) -> None:
    calls = _calls()
    approve = (
        bytes.fromhex("095ea7b3")
        + bytes(12)
        + bytes.fromhex(ATTACKER[2:])
        + (2**256 - 1).to_bytes(32, "big")
    )
    with pytest.raises(Refused, match=rf"call {len(calls) + 1} \(approve\): spender {ATTACKER}"):
        _sign_batch(ledger, [*calls, InnerCall(TOKEN0, approve)])
    # an approve that is plausible on its own is still not one the report lists
    legit = calls[1]
    with pytest.raises(
        Refused, match=rf"makes {len(calls) + 1} calls, the report lists {len(calls)}"
    ):
        _sign_batch(ledger, [*calls, legit])


def test_a_late_deadline_is_refused(ledger: Ledger) -> None:
    late = DEADLINE + 1
    calls = _calls(deadline=late)
    with pytest.raises(
        Refused, match=rf"call 1\.1 \(decreaseLiquidity\): deadline {late} is later"
    ):
        _sign_batch(ledger, calls)
    # the report's own deadline beyond the co-signer's limit
    far = T + 7200
    calls = _calls(deadline=far)
    report = _report(calls, deadline=far)
    with pytest.raises(Refused, match="beyond this co-signer's limit"):
        _sign_batch(ledger, calls, report)


def test_a_swap_without_a_deadline_is_refused_even_when_the_report_lists_it(
    ledger: Ledger,
) -> None:
    # SwapRouter02's exactInputSingle and multicall(bytes[]) carry no deadline: a signed batch
    # holding only such a swap could be sent whenever the price suits whoever holds it
    from eth_abi.abi import encode
    from eth_hash.auto import keccak

    calls = _calls()
    i = next(k for k, c in enumerate(calls) if c.to == ROUTER)
    swap = keccak(b"exactInputSingle((address,address,uint24,address,uint256,uint256,uint160))")[
        :4
    ] + encode(
        ["(address,address,uint24,address,uint256,uint256,uint160)"],
        [(TOKEN1, TOKEN0, 500, SAFE, AMOUNTS.swap_in, AMOUNTS.swap_out_min, 0)],
    )
    no_deadline = keccak(b"multicall(bytes[])")[:4] + encode(["bytes[]"], [[swap]])
    for data, name in ((swap, "exactInputSingle"), (no_deadline, "multicall_nodeadline")):
        bare = [*calls[:i], InnerCall(ROUTER, data), *calls[i + 1 :]]
        with pytest.raises(Refused, match=rf"call {i + 1} \({name}\): deadline is missing"):
            _sign_batch(ledger, bare, _report(bare))
    assert ledger.count(NOW.date().isoformat()) == 0


def test_a_report_whose_calls_send_elsewhere_is_refused(ledger: Ledger) -> None:
    # a compromised planner writes the bad call into the report itself: the report's own
    # fields (the Safe as recipient) still decide
    calls = _calls()
    calls[-1] = _encode_calls_with(safe_for_mint=ATTACKER)[-1]
    with pytest.raises(Refused, match=r"\(mint\): recipient"):
        _sign_batch(ledger, calls, _report(calls))


def test_a_pool_the_cosigner_does_not_list_is_refused(ledger: Ledger) -> None:
    # a compromised planner writes a report of its own pool (the Safe's USDC against a token
    # it made) and approves it with the bot's policy key: every call matches that report
    evil = "0xEeeeeEeeeEeEeeEeEeEeeEEEeeeeEeeeeeeeEEeE"
    calls = [
        InnerCall(c.to, c.data)
        for c in _encode_calls(
            token_id=21,
            liquidity=10**12,
            amounts=AMOUNTS,
            new_range=NEW_RANGE,
            token0=TOKEN0,
            token1=evil,
            fee=10_000,
            safe=SAFE,
            npm=NPM,
            router=ROUTER,
            deadline=DEADLINE,
            allowances={},
        )
    ]
    report = _report(calls, fee=10_000, tokens=[{"address": TOKEN0}, {"address": evil}])
    st = _safe_tx(calls)
    digest = "0x" + st.hash().hex()
    for approver in (AUTO, APPROVER):
        with pytest.raises(Refused, match=r"fee 10000 is not one this co-signer signs for"):
            check(
                POLICY,
                ledger,
                digest,
                _ctx_safe(st, report, _approve(report, digest, approver)),
                now=NOW,
            )
    # without its own list of pools, automatic approvals sign nothing it decodes
    unlisted = POLICY.model_copy(update={"pools": ()})
    with pytest.raises(Refused, match=r"automatic approval needs .* \(policy\.pools\)"):
        check(
            unlisted, ledger, digest, _ctx_safe(st, report, _approve(report, digest, AUTO)), now=NOW
        )
    assert ledger.count(NOW.date().isoformat()) == 0


def test_a_safe_tx_paying_a_refund_is_refused(ledger: Ledger) -> None:
    # the calls are the report's, but the SafeTx's refund fields would have the Safe pay
    # (gasUsed + baseGas) * gasPrice of its USDC to the attacker when it executes
    calls = _calls()
    report = _report(calls)
    honest = _safe_tx(calls)
    for field, value in (
        ("gas_price", 1),
        ("base_gas", 10**12),
        ("gas_token", TOKEN0),
        ("refund_receiver", ATTACKER),
        ("safe_tx_gas", 500_000),
    ):
        st = replace(honest, **{field: value})
        digest = "0x" + st.hash().hex()
        for approver in (AUTO, APPROVER):
            with pytest.raises(Refused, match=rf"SafeTx: {field} is {value}"):
                check(
                    POLICY,
                    ledger,
                    digest,
                    _ctx_safe(st, report, _approve(report, digest, approver)),
                    now=NOW,
                )
    assert ledger.count(NOW.date().isoformat()) == 0


def test_liquidity_is_added_only_to_an_nft_the_safe_owns(ledger: Ledger) -> None:
    # the position manager's increaseLiquidity checks no owner: a compound "of" the attacker's
    # own NFT in a listed pool would put the Safe's tokens into the attacker's position
    calls = [
        InnerCall(c.to, c.data)
        for c in _encode_calls(
            token_id=21,
            liquidity=10**12,
            compound=True,
            amounts=AMOUNTS,
            new_range=NEW_RANGE,
            token0=TOKEN0,
            token1=TOKEN1,
            fee=500,
            safe=SAFE,
            npm=NPM,
            router=ROUTER,
            deadline=DEADLINE,
            allowances={},
        )
    ]
    report = _report(calls)
    st = _safe_tx(calls)
    digest = "0x" + st.hash().hex()

    def ask(approver: LocalKeySigner, owner: str | None) -> None:
        ctx = _ctx_safe(st, report, _approve(report, digest, approver))
        check(POLICY, ledger, digest, ctx, now=NOW, owner_of=owner and (lambda _id: owner))

    increase = rf"call {len(calls)} \(increaseLiquidity\): tokenId 21"
    with pytest.raises(Refused, match=rf"{increase} is owned by {ATTACKER}, not the Safe"):
        ask(AUTO, ATTACKER)
    # with no chain to read the owner from, an automatic approval is refused
    with pytest.raises(Refused, match=rf"{increase}: this co-signer has no chain"):
        ask(AUTO, None)
    assert ledger.count(NOW.date().isoformat()) == 0
    ask(AUTO, SAFE)
    ask(APPROVER, None)  # a person approved this NFT
    assert ledger.count(NOW.date().isoformat()) == 2


def test_hand_packed_batches_are_read_call_by_call(ledger: Ledger) -> None:
    """MultiSendCallOnly's packing written by hand: an inner delegatecall, a nested MultiSend,
    an unlisted contract, bytes after the last call; each refused though the report lists it."""
    from eth_abi.abi import encode
    from eth_hash.auto import keccak

    def pack(op: int, to: str, data: bytes) -> bytes:
        head = bytes([op]) + bytes.fromhex(to[2:]) + bytes(32)  # operation, to, value 0
        return head + len(data).to_bytes(32, "big") + data

    def multisend(payload: bytes) -> bytes:
        return keccak(b"multiSend(bytes)")[:4] + encode(["bytes"], [payload])

    calls = _calls()
    honest = b"".join(pack(0, c.to, c.data) for c in calls)
    cases = [
        (
            pack(1, calls[0].to, calls[0].data)
            + honest[len(pack(0, calls[0].to, calls[0].data)) :],
            r"call 1 \(call\): operation is a delegatecall",
        ),
        (
            honest + pack(0, MULTISEND, multisend(pack(0, ATTACKER, b""))),
            rf"call {len(calls) + 1} \(call\): to {MULTISEND} is no contract of the report",
        ),
        (
            honest + pack(0, ATTACKER, b"\x01\x02\x03\x04"),
            rf"call {len(calls) + 1} \(call\): to {ATTACKER} is no contract",
        ),
        (honest + b"\x00" * 40, rf"multiSend: call {len(calls) + 1} is truncated"),
    ]
    for payload, refusal in cases:
        st = replace(_safe_tx(calls), data=multisend(payload))
        report = _report(calls)
        if "truncated" not in refusal:  # a compromised planner lists the batch it sends
            listed = [{"to": c.to, "data": "0x" + c.data.hex()} for c in unpack_multisend(payload)]
            report = _report(calls, calls=listed)
        digest = "0x" + st.hash().hex()
        with pytest.raises(Refused, match=refusal):
            check(POLICY, ledger, digest, _ctx_safe(st, report, _approve(report, digest)), now=NOW)
    assert ledger.count(NOW.date().isoformat()) == 0


def test_delegatecall_elsewhere_is_refused(ledger: Ledger) -> None:
    calls = _calls()
    st = replace(_safe_tx(calls), to=ATTACKER)
    report = _report(calls)
    digest = "0x" + st.hash().hex()
    with pytest.raises(Refused, match=r"delegatecall to .* not MultiSendCallOnly"):
        check(POLICY, ledger, digest, _ctx_safe(st, report, _approve(report, digest)), now=NOW)


def test_module_calls_are_read(ledger: Ledger) -> None:
    from eth_abi.abi import encode
    from eth_hash.auto import keccak

    def sel(sig: str) -> bytes:
        return keccak(sig.encode())[:4]

    swap = (TOKEN1, TOKEN0, 500, SAFE, AMOUNTS.swap_in, AMOUNTS.swap_out_min, 0)
    fn = "swapExactInputSingle((address,address,uint24,address,uint256,uint256,uint160),uint256)"
    types = ["(address,address,uint24,address,uint256,uint256,uint160)", "uint256"]
    good = sel(fn) + encode(types, [swap, DEADLINE])
    bad = sel(fn) + encode(types, [(*swap[:3], ATTACKER, *swap[4:]), DEADLINE])
    late = sel(fn) + encode(types, [swap, DEADLINE + 1])
    report = _report(_calls())

    def execute(inner: list[bytes], nonce: int) -> str:
        data = sel("execute(bytes[])") + encode(["bytes[]"], [inner])
        tx = {
            "type": 2,
            "chainId": 31337,
            "nonce": nonce,
            "to": MODULE,
            "value": 0,
            "data": data,
            "gas": 900_000,
            "maxFeePerGas": 3 * 10**9,
            "maxPriorityFeePerGas": 10**9,
        }
        digest = "0x" + tx_digest(tx).hex()
        ctx = {"kind": "transaction", "tx": jsonable_tx(tx), "report": report}
        ctx["approval"] = _approve(report, digest).model_dump()
        check(POLICY, ledger, digest, ctx, now=NOW)
        return digest

    execute([good], 0)
    with pytest.raises(
        Refused, match=rf"call 1\.2 \(swapExactInputSingle\): recipient is {ATTACKER}"
    ):
        execute([good, bad], 1)
    with pytest.raises(Refused, match=r"call 1\.1 \(swapExactInputSingle\): deadline"):
        execute([late], 2)


def test_every_decoded_function_is_in_the_compiled_abis() -> None:
    """The co-signer's signatures are the contracts' own (official artifacts, forge output)."""
    from eth_utils import function_abi_to_4byte_selector, function_signature_to_4byte_selector

    from lpbot.chain import artifacts
    from lpbot.signing.mpc.decode import _FUNCTIONS

    sources = {
        "position_manager": ["NonfungiblePositionManager"],
        "router": ["SwapRouter02"],
        "token": ["TestERC20"],
        "module": ["LPRebalanceModule"],
        "multisend": ["MultiSendCallOnly"],
    }
    for role, functions in _FUNCTIONS.items():
        known = {
            function_abi_to_4byte_selector(f)
            for name in sources[role]
            for f in artifacts.abi(name)
            if f.get("type") == "function"
        }
        for signature in functions.values():
            if role == "token" and signature.startswith("increaseAllowance"):
                continue  # not in every ERC-20; decoded so that it is refused by name
            assert function_signature_to_4byte_selector(signature) in known, (role, signature)


# ---- signed approvals --------------------------------------------------------------------


def _honest() -> tuple[SafeTx, dict[str, Any], str]:
    calls = _calls()
    st = _safe_tx(calls)
    return st, _report(calls), "0x" + st.hash().hex()


def test_an_approval_by_someone_else_is_refused(ledger: Ledger) -> None:
    st, report, digest = _honest()
    with pytest.raises(Refused, match="not one of this co-signer's approvers"):
        check(
            POLICY,
            ledger,
            digest,
            _ctx_safe(st, report, _approve(report, digest, STRANGER)),
            now=NOW,
        )


def test_a_forged_approval_is_refused(ledger: Ledger) -> None:
    st, report, digest = _honest()
    forged = _approve(report, digest, STRANGER).model_copy(update={"approver": APPROVER.address})
    with pytest.raises(Refused, match=f"recovers to {STRANGER.address}, not to the approver"):
        check(POLICY, ledger, digest, _ctx_safe(st, report, forged), now=NOW)
    garbage = forged.model_copy(update={"signature": "0x" + "ff" * 65})
    with pytest.raises(Refused, match="approval signature is malformed"):
        check(POLICY, ledger, digest, _ctx_safe(st, report, garbage), now=NOW)
    # a genuine signature over other fields (expiry moved) does not carry over
    moved = _approve(report, digest).model_copy(update={"expires_at": T + 1200})
    with pytest.raises(Refused, match="recovers to"):
        check(POLICY, ledger, digest, _ctx_safe(st, report, moved), now=NOW)


def test_an_expired_approval_is_refused(ledger: Ledger) -> None:
    st, report, digest = _honest()
    with pytest.raises(Refused, match="expired"):
        check(
            POLICY,
            ledger,
            digest,
            _ctx_safe(st, report, _approve(report, digest, expires_at=T)),
            now=NOW,
        )
    with pytest.raises(Refused, match="more than this co-signer's limit of 3600 s"):
        check(
            POLICY,
            ledger,
            digest,
            _ctx_safe(st, report, _approve(report, digest, expires_at=T + 3601)),
            now=NOW,
        )


def test_a_mismatched_approval_is_refused(ledger: Ledger) -> None:
    st, report, digest = _honest()
    other = "0x" + _safe_tx(_calls(), nonce=5).hash().hex()
    with pytest.raises(Refused, match=f"the approval is for digest {other}"):
        check(POLICY, ledger, digest, _ctx_safe(st, report, _approve(report, other)), now=NOW)
    with pytest.raises(Refused, match="for chain 1, not 31337"):
        check(
            POLICY,
            ledger,
            digest,
            _ctx_safe(st, report, _approve(report, digest, chain_id=1)),
            now=NOW,
        )
    # the report sent is not the one approved
    changed = {**report, "deadline": DEADLINE - 1}
    with pytest.raises(Refused, match="does not hash to the approved"):
        check(POLICY, ledger, digest, _ctx_safe(st, changed, _approve(report, digest)), now=NOW)
    with pytest.raises(Refused, match="no valid signed approval"):
        check(POLICY, ledger, digest, _ctx_safe(st, report, None), now=NOW)
    assert ledger.count(NOW.date().isoformat()) == 0


def test_digest_must_be_the_hash_of_what_is_sent(ledger: Ledger) -> None:
    _st, report, digest = _honest()
    other = _safe_tx(_calls(), nonce=9)
    with pytest.raises(Refused, match="not the hash of the SafeTx"):
        check(POLICY, ledger, digest, _ctx_safe(other, report, _approve(report, digest)), now=NOW)
    with pytest.raises(Refused, match="carries no transaction"):
        check(POLICY, ledger, digest, {"kind": "digest"}, now=NOW)


def test_plain_transfer_needs_the_allow_list_and_the_report(ledger: Ledger) -> None:
    def tx(value: int, nonce: int, to: str = TO) -> dict[str, Any]:
        return {
            "type": 2,
            "chainId": 31337,
            "nonce": nonce,
            "to": to,
            "value": value,
            "data": b"",
            "gas": 21000,
            "maxFeePerGas": 3 * 10**9,
            "maxPriorityFeePerGas": 10**9,
        }

    def ask(t: dict[str, Any], listed: dict[str, Any]) -> None:
        report = _report([], calls=[listed])
        digest = "0x" + tx_digest(t).hex()
        ctx = {"kind": "transaction", "tx": jsonable_tx(t), "report": report}
        ctx["approval"] = _approve(report, digest).model_dump()
        check(POLICY, ledger, digest, ctx, now=NOW)

    ask(tx(10**15, 0), {"to": TO, "data": "0x", "value": 10**15})
    with pytest.raises(Refused, match="exceeds the limit"):
        ask(tx(10**17, 1), {"to": TO, "data": "0x", "value": 10**17})
    with pytest.raises(Refused, match=r"calls to .* are not allowed"):
        ask(tx(1, 2, ATTACKER), {"to": ATTACKER, "data": "0x", "value": 1})
    with pytest.raises(Refused, match="differs from the report's call 1"):
        ask(tx(10**15, 3), {"to": TO, "data": "0x", "value": 10**14})


def test_an_automatic_approval_signs_no_allow_listed_call(ledger: Ledger) -> None:
    # the README has the MPC owner's co-signer list swapOwner on the Safe for a rotation; the
    # bot's policy key alone must not swap an owner for its own second key (a quorum)
    from eth_abi.abi import encode
    from eth_hash.auto import keccak

    policy = POLICY.model_copy(update={"allowed_calls": {SAFE: ("0xe318b52b",)}})
    data = keccak(b"swapOwner(address,address,address)")[:4] + encode(
        ["address", "address", "address"], ["0x" + "00" * 19 + "01", TO, ATTACKER]
    )
    st = SafeTx(chain_id=31337, safe=SAFE, to=SAFE, value=0, data=data, operation=0, nonce=4)
    report = _report([], calls=[{"to": SAFE, "data": "0x" + data.hex(), "value": 0}])
    digest = "0x" + st.hash().hex()

    def ask(approver: LocalKeySigner) -> None:
        check(
            policy,
            ledger,
            digest,
            _ctx_safe(st, report, _approve(report, digest, approver)),
            now=NOW,
        )

    with pytest.raises(Refused, match=rf"call 1: .* {SAFE} needs a person's approval"):
        ask(AUTO)
    assert ledger.count(NOW.date().isoformat()) == 0
    ask(APPROVER)
    assert ledger.count(NOW.date().isoformat()) == 1


# ---- limits in the co-signer's own store ---------------------------------------------------


def test_daily_limits_are_kept_in_its_own_store(ledger: Ledger, tmp_path: Path) -> None:
    def sign(nonce: int, signer: LocalKeySigner = APPROVER) -> None:
        calls = _calls()
        st = _safe_tx(calls, nonce=nonce)
        report = _report(calls)
        digest = "0x" + st.hash().hex()
        check(
            POLICY, ledger, digest, _ctx_safe(st, report, _approve(report, digest, signer)), now=NOW
        )

    sign(0, AUTO)
    with pytest.raises(Refused, match="daily limit of 1 auto signatures"):
        sign(1, AUTO)  # the bot's policy key has its own, lower limit
    sign(2)
    sign(3)
    with pytest.raises(Refused, match="daily limit of 3 signatures"):
        sign(4)
    path = tmp_path / "cosigner.sqlite"
    assert path.stat().st_mode & 0o077 == 0
    with sqlite3.connect(path) as db:
        rows = db.execute("SELECT kind, approver FROM signatures ORDER BY at").fetchall()
    assert sorted(rows) == sorted([("auto", AUTO.address), *[("approved", APPROVER.address)] * 2])


def test_approval_schema_is_strict() -> None:
    _st, report, digest = _honest()
    good = _approve(report, digest).model_dump()
    with pytest.raises(ValidationError):
        SignedApproval.model_validate({**good, "extra": 1})
    with pytest.raises(ValidationError):
        SignedApproval.model_validate({**good, "digest": "0x1234"})
    with pytest.raises(ValidationError):
        SignedApproval.model_validate({**good, "approver": "alice"})


def _encode_calls_with(*, safe_for_mint: str) -> list[InnerCall]:
    calls = _encode_calls(
        token_id=21,
        liquidity=10**12,
        amounts=AMOUNTS,
        new_range=NEW_RANGE,
        token0=TOKEN0,
        token1=TOKEN1,
        fee=500,
        safe=safe_for_mint,
        npm=NPM,
        router=ROUTER,
        deadline=DEADLINE,
        allowances={},
    )
    return [InnerCall(c.to, c.data) for c in calls]

"""Signature files from owners on other machines: a bare recovery id (v = 0/1) is normalised to
27/28 before it can reach the Safe (which reads v = 0 as a contract signature and v = 1 as an
approved hash, and reverts); any other v, a high s or a stranger's key is refused."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lpbot.devnet.keys import dev_signer
from lpbot.errors import Refused
from lpbot.signing.base import SECP256K1_N
from lpbot.signing.safe import (
    InnerCall,
    build_safe_transaction,
    combine,
    read_signature_file,
    sign,
)

SAFE = "0x1B8d3a0a1A3Cbd8fD9E2e4aB4d5B3f2c1E0d9A8b"
MULTISEND = "0x9641d764fc13c8B624c04430C7356C1C7C8102e2"
TX = build_safe_transaction(
    chain_id=31337,
    safe=SAFE,
    nonce=7,
    calls=[InnerCall(SAFE, b"\x01\x02"), InnerCall(SAFE, b"\x03")],
    multisend_call_only=MULTISEND,
)


def _file(tmp_path: Path, owner: str, signature: bytes, name: str = "sig.json") -> Path:
    path = tmp_path / name
    path.write_text(
        json.dumps(
            {
                "owner": owner,
                "safe_tx_hash": "0x" + TX.safe_tx_hash.hex(),
                "signature": "0x" + signature.hex(),
            }
        )
    )
    return path


@pytest.mark.parametrize("index", [9, 10, 11, 12])
def test_a_bare_recovery_id_is_normalised_to_27_or_28(tmp_path: Path, index: int) -> None:
    signer = dev_signer(index)
    good = sign(TX, signer)
    v = good.signature[64]
    assert v in (27, 28)
    bare = good.signature[:64] + bytes([v - 27])
    read = read_signature_file(_file(tmp_path, signer.address, bare), TX, [signer.address])
    assert read.signature == good.signature  # what the Safe's ecrecover branch expects
    assert combine([read], 1) == good.signature


def test_other_forms_and_bad_signatures_are_refused(tmp_path: Path) -> None:
    signer = dev_signer(9)
    good = sign(TX, signer).signature
    r, s, v = good[:32], int.from_bytes(good[32:64], "big"), good[64]
    owners = [signer.address]
    # eth_sign form (v + 4): a different message, refused rather than sent to revert
    with pytest.raises(Refused, match="v = 3"):
        read_signature_file(_file(tmp_path, signer.address, good[:64] + bytes([v + 4])), TX, owners)
    # the high-s twin of a valid signature (EIP-2): refused
    high = r + (SECP256K1_N - s).to_bytes(32, "big") + bytes([55 - v])
    with pytest.raises(Refused, match="not a valid signature"):
        read_signature_file(_file(tmp_path, signer.address, high), TX, owners)
    # a signature by someone else than the owner it claims
    other = sign(TX, dev_signer(12)).signature
    with pytest.raises(Refused, match="not an owner"):
        read_signature_file(_file(tmp_path, signer.address, other), TX, owners)

"""The co-signer API's request authentication, without a server: a captured request is not
accepted twice, not even by a co-signer restarted within the request's 30 s window (the nonces
it saw are in its own store, not in its memory)."""

from __future__ import annotations

from pathlib import Path

from lpbot.signing.mpc.auth import Verifier, sign_request
from lpbot.signing.mpc.policy import Ledger

KEY = b"\x07" * 32
BODY = b'{"op":"sign","digest":"0x' + b"00" * 32 + b'"}'


def test_a_request_accepted_before_a_restart_is_refused_after_it(tmp_path: Path) -> None:
    store = tmp_path / "cosigner.sqlite"
    header = sign_request(KEY, "POST", "/v1/sign", BODY)
    assert (
        Verifier(KEY, Ledger(store).remember_nonce).check(header, "POST", "/v1/sign", BODY) is None
    )
    restarted = Verifier(KEY, Ledger(store).remember_nonce)  # the same co-signer, a new process
    assert "replayed" in (restarted.check(header, "POST", "/v1/sign", BODY) or "")
    fresh = sign_request(KEY, "POST", "/v1/sign", BODY)
    assert restarted.check(fresh, "POST", "/v1/sign", BODY) is None
    assert "replayed" in (restarted.check(fresh, "POST", "/v1/sign", BODY) or "")

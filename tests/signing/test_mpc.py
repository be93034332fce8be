"""MPC signer: DKG, t-of-n signing, failure modes, shares at rest, what the coordinator sees."""

from __future__ import annotations

import base64
import json
import os
import re
import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_keys import keys

from lpbot.errors import Halt, NeedsAttention, Refused
from lpbot.signing.base import SECP256K1_N, Signer
from lpbot.signing.mpc import (
    Coordinator,
    LocalParty,
    MpcAborted,
    MpcConfig,
    MpcSigner,
    PartyUnavailable,
    RemoteParty,
    SafeTx,
    commands,
)
from lpbot.signing.mpc.config import fingerprint, local_parties
from lpbot.signing.mpc.coordinator import Envelope
from tests.signing.conftest import MpcKey, needs_backend

pytestmark = needs_backend

EVIL_PARTY = Path(__file__).with_name("evil_party.js")
MAIL = {
    "types": {
        "EIP712Domain": [
            {"name": "name", "type": "string"},
            {"name": "version", "type": "string"},
            {"name": "chainId", "type": "uint256"},
            {"name": "verifyingContract", "type": "address"},
        ],
        "Mail": [{"name": "contents", "type": "string"}, {"name": "nonce", "type": "uint256"}],
    },
    "primaryType": "Mail",
    "domain": {
        "name": "lpbot test",
        "version": "1",
        "chainId": 31337,
        "verifyingContract": "0xCcCCccccCCCCcCCCCCCcCcCccCcCCCcCcccccccC",
    },
    "message": {"contents": "rebalance approved", "nonce": 7},
}


def _tx(nonce: int = 0) -> dict[str, object]:
    return {
        "type": 2,
        "chainId": 31337,
        "nonce": nonce,
        "to": "0x70997970C51812dc3A010C7d01b50e0d17dc79C8",
        "value": 12345,
        "data": b"",
        "gas": 21000,
        "maxFeePerGas": 3 * 10**9,
        "maxPriorityFeePerGas": 10**9,
    }


# ---- key generation and signing ---------------------------------------------------------


def test_dkg_address_is_the_public_keys(key3: MpcKey) -> None:
    public_key = keys.PublicKey.from_compressed_bytes(bytes.fromhex(key3.info.public_key))
    assert public_key.to_checksum_address() == key3.info.address == key3.config.address
    assert (key3.info.threshold, key3.info.share_count) == (2, 3)


def test_mpc_signer_is_a_signer(signer3: MpcSigner, key3: MpcKey) -> None:
    assert isinstance(signer3, Signer)
    assert signer3.address == key3.info.address


@pytest.mark.parametrize("signers", [(1, 2), (1, 3), (2, 3)])
def test_any_two_of_three_sign_a_digest(
    signer3: MpcSigner, key3: MpcKey, signers: tuple[int, int]
) -> None:
    digest = os.urandom(32)
    sig = signer3._coordinator.sign(digest, signers)
    assert sig.v in (27, 28) and sig.s <= SECP256K1_N // 2
    assert Account._recover_hash(digest, vrs=(sig.v, sig.r, sig.s)) == key3.info.address


def test_eip712_signature_recovers(signer3: MpcSigner) -> None:
    signable = encode_typed_data(full_message=MAIL)
    digest = keccak_eip191(signable)
    sig = signer3.sign_digest(digest)
    assert Account.recover_message(signable, vrs=(sig.v, sig.r, sig.s)) == signer3.address


def test_safe_tx_signature_recovers(signer3: MpcSigner) -> None:
    safe_tx = SafeTx(
        chain_id=31337,
        safe="0x5FbDB2315678afecb367f032d93F642f64180aa3",
        to="0x70997970C51812dc3A010C7d01b50e0d17dc79C8",
        value=10**15,
        data=b"",
        operation=0,
        nonce=3,
    )
    # the typed data and the hand-built hash agree (EIP-712 as eth-account encodes it)
    assert keccak_eip191(encode_typed_data(full_message=safe_tx.typed_data())) == safe_tx.hash()
    sig = signer3.sign_digest(safe_tx.hash())
    assert Account._recover_hash(safe_tx.hash(), vrs=(sig.v, sig.r, sig.s)) == signer3.address


def test_transaction_signature_recovers_to_the_mpc_address(signer3: MpcSigner) -> None:
    signed = signer3.sign_transaction(_tx())
    assert signed.raw[0] == 2  # EIP-1559 envelope
    assert Account.recover_transaction(signed.raw) == signer3.address


def test_two_of_two(key2: MpcKey) -> None:
    with MpcSigner.open(key2.config) as signer:
        digest = os.urandom(32)
        sig = signer.sign_digest(digest)
        assert Account._recover_hash(digest, vrs=(sig.v, sig.r, sig.s)) == key2.info.address
        signed = signer.sign_transaction(_tx(5))
        assert Account.recover_transaction(signed.raw) == key2.info.address


# ---- not enough parties -----------------------------------------------------------------


def test_one_party_of_three_cannot_sign(signer3: MpcSigner) -> None:
    with pytest.raises(NeedsAttention, match="needs 2 signing parties; got 1"):
        signer3._coordinator.sign(os.urandom(32), [1])
    # asked directly, a party refuses to start a signature with fewer than t signers
    with pytest.raises(Halt, match="exactly 2 parties"):
        signer3._coordinator.link(1).request(
            "start",
            10.0,
            session="ab" * 32,
            kind="sign",
            digest="cd" * 32,
            signers=[1],
            address=signer3.address,
        )


def test_only_one_party_can_open_its_share(key3: MpcKey, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LPBOT_TEST_MPC3_2")
    monkeypatch.setenv("LPBOT_TEST_MPC3_3", "not the passphrase of party 3")
    with (
        MpcSigner.open(key3.config) as signer,
        pytest.raises(NeedsAttention, match=r"only 1 of the 2 parties") as err,
    ):
        signer.sign_digest(os.urandom(32))
    assert "LPBOT_TEST_MPC3_2" in str(err.value) and "wrong passphrase" in str(err.value)


# ---- tampering --------------------------------------------------------------------------


def test_tampered_envelope_aborts_the_run(key3: MpcKey) -> None:
    def tamper(env: Envelope) -> Envelope:
        if env["round"] == 2 and env["from"] == 2 and env["to"] == 1:
            raw = bytearray(base64.b64decode(env["sealed"]))
            raw[len(raw) // 2] ^= 0x01
            return {**env, "sealed": base64.b64encode(bytes(raw)).decode()}
        return env

    with (
        MpcSigner.open(key3.config, signers=(1, 2), relay_hook=tamper) as signer,
        pytest.raises(MpcAborted, match=r"party 1: message from party 2 .* failed authentication"),
    ):
        signer.sign_digest(os.urandom(32))


def test_cheating_party_is_caught_by_the_protocol(key3: MpcKey) -> None:
    # party 2 reveals an instance point other than the one it committed to: party 1 aborts
    with MpcSigner.open(key3.config, signers=(1, 2), scripts={2: EVIL_PARTY}) as signer:
        with pytest.raises(
            MpcAborted, match=r"party 1: signing aborted: .*commitment from Party 2"
        ):
            signer.sign_digest(os.urandom(32))
        # the honest pair still signs
        signer._coordinator.unlock([3])
        digest = os.urandom(32)
        sig = signer._coordinator.sign(digest, [1, 3])
        assert Account._recover_hash(digest, vrs=(sig.v, sig.r, sig.s)) == key3.info.address


def test_relay_that_swaps_in_its_own_key_cannot_read_or_forge(key3: MpcKey) -> None:
    # a man in the middle replaces party 1's ephemeral key with its own; without party 1's
    # static key it cannot derive the channel key, and party 2 cannot open what party 1 sends
    mitm = X25519PrivateKey.generate().public_key().public_bytes_raw()
    mitm_b64 = base64.urlsafe_b64encode(mitm).decode().rstrip("=")

    def swap(env: Envelope) -> Envelope:
        if env["round"] == 0 and env["from"] == 1:
            return {**env, "eph": mitm_b64}
        return env

    with (
        MpcSigner.open(key3.config, signers=(1, 2), relay_hook=swap) as signer,
        pytest.raises(MpcAborted, match="failed authentication"),
    ):
        signer.sign_digest(os.urandom(32))


# ---- shares at rest and passphrases -----------------------------------------------------


def test_shares_are_sealed_at_rest(key3: MpcKey) -> None:
    for party in key3.config.parties:
        assert isinstance(party, LocalParty)
        state = party.dir / "state.enc.json"
        assert stat.S_IMODE(state.stat().st_mode) == 0o600
        assert stat.S_IMODE(party.dir.stat().st_mode) == 0o700
        text = state.read_text()
        sealed = json.loads(text)
        assert sealed["header"]["kdf"] == {
            "name": "scrypt",
            "N": 2**17,
            "r": 8,
            "p": 1,
            "salt": sealed["header"]["kdf"]["salt"],
        }
        assert sealed["header"]["cipher"]["name"] == "aes-256-gcm"
        for marker in ("poly_point", "zero_share", "identity", "mul_senders"):
            assert marker not in text
        public = json.loads((party.dir / "party.json").read_text())
        assert public["address"] == key3.info.address
        assert set(public) == {
            "index",
            "identity",
            "address",
            "public_key",
            "key_id",
            "threshold",
            "share_count",
            "peers",
        }


def test_wrong_passphrase_fails_clearly(key3: MpcKey, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LPBOT_TEST_MPC3_1", "a wrong passphrase for party 1")
    with pytest.raises(
        PartyUnavailable, match=r"party 1: .*wrong passphrase \(LPBOT_TEST_MPC3_1\)"
    ):
        MpcSigner.open(key3.config, signers=(1, 2))


def test_missing_passphrase_fails_clearly(key3: MpcKey, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LPBOT_TEST_MPC3_2")
    with pytest.raises(PartyUnavailable, match="party 2: set LPBOT_TEST_MPC3_2"):
        MpcSigner.open(key3.config, signers=(1, 2))


def test_missing_share_fails_clearly(key3: MpcKey, tmp_path: Path) -> None:
    parties = tuple(
        p.model_copy(update={"dir": tmp_path / "empty"}) if p.index == 3 else p
        for p in key3.config.parties
    )
    config = key3.config.model_copy(update={"parties": parties})
    with pytest.raises(PartyUnavailable, match="party 3: no party state"):
        MpcSigner.open(config, signers=(1, 3))


def test_share_of_another_key_fails_clearly(key3: MpcKey, key2: MpcKey) -> None:
    # party 1's directory of the 2-of-2 key, put where party 1 of the 2-of-3 key should be
    other = key2.config.party(1)
    parties = tuple(other if p.index == 1 else p for p in key3.config.parties)
    config = key3.config.model_copy(update={"parties": parties})
    with pytest.raises(PartyUnavailable, match=f"holds a share of {key2.info.address}"):
        MpcSigner.open(config, signers=(1, 2))


# ---- what the coordinator sees ----------------------------------------------------------


def test_coordinator_relays_only_sealed_envelopes(key2: MpcKey, key3: MpcKey) -> None:
    seen: list[Envelope] = list(key2.relayed)

    def record(env: Envelope) -> Envelope:
        seen.append(env)
        return env

    with MpcSigner.open(key3.config, signers=(2, 3), relay_hook=record) as signer:
        signer.sign_digest(os.urandom(32))
    assert len(seen) > 10
    for env in seen:
        assert set(env) in ({"from", "to", "round", "eph"}, {"from", "to", "round", "sealed"})
        assert isinstance(env["from"], int) and isinstance(env["to"], int)
        if "eph" in env:  # an X25519 public key, nothing else
            assert len(base64.urlsafe_b64decode(env["eph"] + "=")) == 32
        else:  # AES-GCM output: no JSON text in the clear
            sealed = base64.b64decode(env["sealed"])
            assert len(sealed) > 16
            # ciphertext may start with any byte; what must not appear is the protocol's JSON
            assert not _json_in_clear(sealed)
            assert b'"parties"' not in sealed and b"poly_point" not in sealed


def test_keygen_refuses_a_directory_that_holds_a_share(key2: MpcKey) -> None:
    with (
        Coordinator.open(key2.config) as coordinator,
        pytest.raises(PartyUnavailable, match="already holds a share"),
    ):
        coordinator.keygen()


def keccak_eip191(signable: object) -> bytes:
    from eth_account.messages import _hash_eip191_message

    return bytes(_hash_eip191_message(signable))  # type: ignore[arg-type]


def test_cli_address_and_sign_test(key3: MpcKey, capsys: pytest.CaptureFixture[str]) -> None:
    config = str(key3.home / "mpc.json")
    assert commands.main(["mpc", "--config", config, "address"]) == 0
    assert capsys.readouterr().out.strip() == key3.info.address
    assert commands.main(["mpc", "--config", config, "sign-test", "--signers", "2,3"]) == 0
    out = capsys.readouterr().out
    assert f"recovers  {key3.info.address} (ok)" in out


def test_cli_keygen_needs_passphrases(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for i in (1, 2, 3):
        monkeypatch.delenv(f"LPBOT_MPC_PASSPHRASE_{i}", raising=False)
    config = str(tmp_path / "mpc.json")
    argv = ["mpc", "--config", config, "keygen", "--parties", "3", "--insecure-single-host"]
    assert commands.main(argv) == 2
    err = capsys.readouterr().err
    assert "INSECURE" in err and "LPBOT_MPC_PASSPHRASE_1" in err


def test_cli_keygen_refuses_every_share_on_one_host(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "mpc.json"
    assert commands.main(["mpc", "--config", str(config), "keygen"]) == 2
    assert "--insecure-single-host" in capsys.readouterr().err
    assert not config.exists() and not (tmp_path / "party-1").exists()


def test_coordinator_refuses_two_local_shares_without_the_flag(tmp_path: Path) -> None:
    config = local_parties(tmp_path, 3, 2)  # all three on this host, not marked insecure
    with pytest.raises(Refused, match="3 parties' shares on this host"):
        Coordinator.open(config)
    assert not (tmp_path / "party-1").exists()  # no sidecar was started


def test_quorum_without_the_cosigner_is_refused(key3: MpcKey) -> None:
    config = key3.config.model_copy(update={"cosigner": 2})
    digest = os.urandom(32)
    coordinator = Coordinator(config, links={})  # refused before any party is asked
    with pytest.raises(Refused, match="leave out the co-signer"):
        coordinator.sign(digest, [1, 3])
    coordinator.close()
    assert commands_refuse_signers(key3, config, "1,3")


def commands_refuse_signers(key3: MpcKey, config: MpcConfig, signers: str) -> bool:
    path = key3.home / "mpc-cosigner-2.json"
    config.write(path)
    return commands.main(["mpc", "--config", str(path), "sign-test", "--signers", signers]) == 2


def test_unavailable_cosigner_is_not_replaced(
    key3: MpcKey, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = key3.config.model_copy(update={"cosigner": 2})
    monkeypatch.delenv("LPBOT_TEST_MPC3_2")  # the co-signer's share cannot be opened
    with Coordinator.open(config) as coordinator:
        coordinator.unlock(strict=False)
        with pytest.raises(NeedsAttention, match="co-signer \\(party 2\\) cannot sign"):
            coordinator.available_signers()


def test_no_sidecar_holds_a_passphrase_in_its_environment_or_argv(signer3: MpcSigner) -> None:
    """Each party's passphrase reaches its sidecar through a pipe read once at start: no
    sidecar's /proc/<pid>/environ or cmdline holds any party's passphrase (its own included),
    and yet each sidecar opened its share."""
    secrets = [os.environ[f"LPBOT_TEST_MPC3_{j}"].encode() for j in (1, 2, 3)]
    assert all(b"test passphrase of party" in p for p in secrets)
    for i in (1, 2, 3):
        link = signer3._coordinator.link(i)
        assert link.request("status", 30)["unlocked"]
        proc = Path(f"/proc/{link.pid}")  # type: ignore[attr-defined]
        environ = (proc / "environ").read_bytes()
        argv = (proc / "cmdline").read_bytes().split(b"\0")
        names = {e.split(b"=", 1)[0].decode() for e in environ.split(b"\0") if e}
        assert not {n for n in names if n.startswith("LPBOT_TEST_MPC3_")}, names
        for secret in secrets:
            assert secret not in environ
            assert not any(secret in arg for arg in argv)
        # argv names the variable (for messages) and the descriptor, never the value
        assert argv[argv.index(b"--passphrase-env") + 1] == f"LPBOT_TEST_MPC3_{i}".encode()
        assert b"--passphrase-fd" in argv
        # the pipe was read to its end and closed: the descriptor is gone
        fd = argv[argv.index(b"--passphrase-fd") + 1].decode()
        assert not (proc / "fd" / fd).exists() or "pipe:" not in os.readlink(proc / "fd" / fd)


def _json_in_clear(data: bytes) -> bool:
    """True when ``data`` holds readable text: a parseable JSON document, or a run of 24 printable
    ASCII bytes (the protocol's JSON in the clear would; random ciphertext of this size has one
    with a probability of about 1e-6)."""
    try:
        json.loads(data)
        return True
    except ValueError:
        pass
    return re.search(rb"[\x20-\x7e]{24}", data) is not None


def test_an_offline_party_is_never_asked(key3: MpcKey) -> None:
    parties = tuple(
        RemoteParty(index=3, url="http://127.0.0.1:9", offline=True) if p.index == 3 else p
        for p in key3.config.parties
    )
    config = key3.config.model_copy(update={"parties": parties})
    with MpcSigner.open(config) as signer:
        digest = os.urandom(32)
        sig = signer.sign_digest(digest)
        assert Account._recover_hash(digest, vrs=(sig.v, sig.r, sig.s)) == key3.info.address
        with pytest.raises(NeedsAttention, match=r"\[3\] are offline"):
            signer._coordinator.sign(digest, [1, 3])
        with pytest.raises(NeedsAttention, match="key generation needs every party online"):
            signer._coordinator.keygen()


def test_cli_identity_shows_this_hosts_party(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LPBOT_TEST_IDENTITY_1", "passphrase of this host's party")
    config = MpcConfig(
        threshold=2,
        share_count=2,
        parties=(
            LocalParty(index=1, dir=tmp_path / "party-1", passphrase_env="LPBOT_TEST_IDENTITY_1"),
            RemoteParty(index=2, url="http://127.0.0.1:9", offline=True),
        ),
    )
    config.write(tmp_path / "mpc.json")
    argv = ["mpc", "--config", str(tmp_path / "mpc.json"), "identity"]
    assert commands.main(argv) == 0
    shown = capsys.readouterr().out.split()[-1]
    identity = json.loads((tmp_path / "party-1" / "party.json").read_text())["identity"]
    assert shown == fingerprint(identity)
    assert commands.main(argv) == 0  # the same identity the second time
    assert capsys.readouterr().out.split()[-1] == shown

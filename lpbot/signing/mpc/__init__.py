"""Threshold ECDSA (t-of-n, secp256k1) where no machine ever holds the whole key.

Key generation and signing are 0xCarbon's DKLs23 (``@0xcarbon/dkls23-wasm``), run by one Node
sidecar per party (``sidecar/mpc/party.js``); each party keeps its share sealed in its own
directory (scrypt + AES-256-GCM). The coordinator relays the parties' messages, sealed
party-to-party (X25519 + AES-256-GCM), and learns only the public key and the signatures.
``MpcSigner`` is the ``Signer``; a co-signer party (``lpbot cosigner serve``) signs only digests
that an approved dry-run report covers, within its limits. See ``sidecar/mpc/README.md``.
"""

from lpbot.signing.mpc.config import LocalParty, MpcConfig, RemoteParty
from lpbot.signing.mpc.coordinator import Coordinator, KeyInfo
from lpbot.signing.mpc.errors import CosignerRefused, MpcAborted, PartyUnavailable
from lpbot.signing.mpc.safe_tx import SafeTx
from lpbot.signing.mpc.signer import MpcSigner

__all__ = [
    "Coordinator",
    "CosignerRefused",
    "KeyInfo",
    "LocalParty",
    "MpcAborted",
    "MpcConfig",
    "MpcSigner",
    "PartyUnavailable",
    "RemoteParty",
    "SafeTx",
]

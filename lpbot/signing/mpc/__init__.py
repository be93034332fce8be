"""The policy co-signer, and threshold ECDSA (t-of-n, secp256k1) with one share per host.

The co-signer (``lpbot cosigner serve``, ``cosigner.py``) signs only what a signed approval of a
dry-run report covers, after decoding every call against the report (``policy.py``,
``approval.py``, ``decode.py``); by default it holds its own Safe owner key (``owner.py`` is the
bot's client). Optionally it is one MPC party instead: key generation and signing are 0xCarbon's
DKLs23 (an optional backend, ``make mpc``), run by one Node sidecar per party
(``sidecar/mpc/party.js``); each party keeps its share sealed in its own directory (scrypt +
AES-256-GCM). The coordinator relays the parties' messages, sealed party-to-party (X25519 +
AES-256-GCM), never signs without the co-signer, and learns only the public key and the
signatures. ``MpcSigner`` is the ``Signer``. See ``sidecar/mpc/README.md``.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lpbot.signing.mpc.config import LocalParty, MpcConfig, RemoteParty
    from lpbot.signing.mpc.coordinator import Coordinator, KeyInfo
    from lpbot.signing.mpc.errors import CosignerRefused, MpcAborted, PartyUnavailable
    from lpbot.signing.mpc.safe_tx import SafeTx
    from lpbot.signing.mpc.signer import MpcSigner

# loaded on first use: lpbot.config reads the key's schema (``config``) without the rest
_WHERE = {
    "Coordinator": "coordinator",
    "CosignerRefused": "errors",
    "KeyInfo": "coordinator",
    "LocalParty": "config",
    "MpcAborted": "errors",
    "MpcConfig": "config",
    "MpcSigner": "signer",
    "PartyUnavailable": "errors",
    "RemoteParty": "config",
    "SafeTx": "safe_tx",
}
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


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_WHERE[name]}"), name)

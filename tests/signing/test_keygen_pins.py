"""Key generation with a remote party refuses to start unless that party's identity key is
pinned on the bot's side: whoever answers on the co-signer's port (a process that bound it
while the tunnel was down) would otherwise take part as the co-signer. No process runs: the
refusal comes before any party is asked."""

from __future__ import annotations

from pathlib import Path

import pytest

from lpbot.errors import Refused
from lpbot.signing.mpc.config import LocalParty, MpcConfig, RemoteParty
from lpbot.signing.mpc.coordinator import Coordinator


def test_keygen_with_an_unpinned_remote_party_is_refused(tmp_path: Path) -> None:
    config = MpcConfig(
        threshold=2,
        share_count=2,
        parties=(
            LocalParty(index=1, dir=tmp_path / "party-1", passphrase_env="LPBOT_TEST_PIN_1"),
            RemoteParty(index=2, url="http://127.0.0.1:9"),
        ),
    )
    with Coordinator(config, {}) as coordinator, pytest.raises(Refused, match=r"parties \[2\]"):
        coordinator.keygen()
    assert not (tmp_path / "party-1").exists()  # nothing was started or written

"""The MPC backend is optional: the default install has no package without a licence grant, and
a missing backend is one clear message, from Python and from the sidecar."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from lpbot.chain.artifacts import project_root
from lpbot.errors import NeedsAttention
from lpbot.signing.mpc.links import SidecarLink, backend_missing, node_binary, party_script

UNLICENSED_BACKEND = "@0xcarbon/dkls23-wasm"


def test_the_default_install_does_not_pull_the_backend() -> None:
    root = project_root()
    package = json.loads((root / "package.json").read_text())
    lock = json.loads((root / "package-lock.json").read_text())
    for deps in ("dependencies", "devDependencies", "optionalDependencies"):
        assert UNLICENSED_BACKEND not in package.get(deps, {})
    assert not any(UNLICENSED_BACKEND in k for k in lock["packages"])
    # it is pinned only in the optional component that `make mpc` installs
    optional = json.loads((root / "sidecar/mpc/backend/package.json").read_text())
    assert optional["dependencies"] == {UNLICENSED_BACKEND: "1.0.2"}


def test_a_missing_backend_is_one_clear_message(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LPBOT_MPC_BACKEND", str(tmp_path))
    why = backend_missing()
    assert why is not None and "make mpc" in why
    with pytest.raises(NeedsAttention, match="make mpc"):
        SidecarLink(1, tmp_path / "party-1", "LPBOT_TEST_NOTHING")
    assert not (tmp_path / "party-1").exists()
    proc = subprocess.run(
        [node_binary(), str(party_script()), "--dir", str(tmp_path / "p"), "--passphrase-env", "X"],
        env={"LPBOT_MPC_BACKEND": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert proc.returncode == 2 and "make mpc" in proc.stderr

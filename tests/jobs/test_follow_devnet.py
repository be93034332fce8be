"""The daemon follows the devnet's manifest: ``lpbot devnet down``, its port taken meanwhile,
``lpbot devnet up`` on another port; the running daemon's next job reconnects at the address
the manifest names now (one ``rpc_moved`` alert), and a later start connects there at once."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest
from web3 import Web3

from lpbot.app import App, devnet_config_text
from lpbot.chain.artifacts import project_root
from lpbot.devnet import service
from lpbot.devnet.anvil import anvil_binary, free_port
from lpbot.jobs.alerts import MemoryNotifier
from lpbot.jobs.guard import JobGuard
from lpbot.store import migrate

pytestmark = pytest.mark.devnet


def _config(tmp_path: Path, manifest: Path) -> Path:
    config = tmp_path / "lpbot.toml"
    text = devnet_config_text(manifest, None).replace(
        'data_dir = ".lpbot"', f'data_dir = "{tmp_path / "data"}"'
    )
    config.write_text(text)
    return config


def test_a_devnet_back_on_another_port_is_followed_through_its_manifest(tmp_path: Path) -> None:
    home = tmp_path / "devnet"
    cache = project_root() / ".lpbot" / "test-devnet" / "cache"
    if cache.exists():
        shutil.copytree(cache, home / "cache")  # the deployed state, loaded rather than deployed
    record, manifest, _ = service.up(home)
    taken = socket.socket()
    try:
        app = App.load(_config(tmp_path, Path(record.manifest)), environ={})
        migrate.upgrade(app.engine)
        w3 = app.w3("devnet")
        safe_nonce = w3.eth.get_transaction_count(manifest.accounts.traders[0])
        block = w3.eth.block_number
        notifier = MemoryNotifier()
        guard = JobGuard(app.sessions, notifier, "test", follow=app.follow_manifests)
        assert guard.run("monitor:devnet", lambda: w3.eth.block_number) == block

        # down; its port taken by another server meanwhile; up again on another port, with
        # the chain's state (then the other server goes: a request to the old port is refused)
        assert service.down(home) is True
        taken.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # past its TIME_WAIT
        for _ in range(50):
            try:
                taken.bind(("127.0.0.1", record.port))
                break
            except OSError:  # the old Anvil's socket is still closing
                time.sleep(0.1)
        taken.listen(1)
        moved, manifest2, _ = service.up(home)
        taken.close()
        assert moved.port != record.port and manifest2.rpc_url == moved.rpc_url

        # the running daemon's next job fails once, finds the new address in the manifest and
        # says so once; the job after it runs against the same chain at its new port
        assert guard.run("monitor:devnet", lambda: w3.eth.block_number) is None
        assert [a.kind for a in notifier.alerts] == ["rpc_moved"]
        assert str(moved.port) in notifier.alerts[0].body
        assert not guard.rpc_down
        assert guard.run("monitor:devnet", lambda: w3.eth.block_number) >= block
        assert w3.eth.get_transaction_count(manifest.accounts.traders[0]) == safe_nonce
        assert guard.run("monitor:devnet", lambda: w3.eth.block_number) >= block
        assert [a.kind for a in notifier.alerts] == ["rpc_moved"]  # and nothing more
        assert app.follow_manifests() == []
        app.close()

        # the next start connects at the manifest's address
        again = App.load(_config(tmp_path, Path(record.manifest)), environ={})
        assert again.w3("devnet").eth.block_number >= block
        again.close()
    finally:
        taken.close()
        service.down(home)


def test_a_manifest_naming_another_chain_is_not_followed(tmp_path: Path) -> None:
    """Someone rewrites the manifest to name a node serving another chain (its id in the
    manifest unchanged, or changed too): the running daemon stays on its chain."""
    home = tmp_path / "devnet"
    cache = project_root() / ".lpbot" / "test-devnet" / "cache"
    if cache.exists():
        shutil.copytree(cache, home / "cache")
    record, manifest, _ = service.up(home)
    port = free_port()
    other = subprocess.Popen(
        [str(anvil_binary()), "--port", str(port), "--chain-id", "999", "--silent"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        app = App.load(_config(tmp_path, Path(record.manifest)), environ={})
        w3 = app.w3("devnet")
        before = str(w3.provider.endpoint_uri)  # type: ignore[attr-defined]
        elsewhere = f"http://127.0.0.1:{port}"
        for _ in range(100):
            try:
                if Web3(Web3.HTTPProvider(elsewhere)).eth.chain_id == 999:
                    break
            except Exception:  # still starting
                time.sleep(0.1)
        for chain_id in (manifest.chain_id, 999):
            manifest.model_copy(update={"rpc_url": elsewhere, "chain_id": chain_id}).write(
                Path(record.manifest)
            )
            assert app.follow_manifests() == []
            assert str(w3.provider.endpoint_uri) == before  # type: ignore[attr-defined]
            assert w3.eth.chain_id == manifest.chain_id
        app.close()
    finally:
        other.terminate()
        other.wait(timeout=10)
        manifest.write(Path(record.manifest))
        service.down(home)

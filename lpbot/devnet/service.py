"""``lpbot devnet up|down|status|reset``: one local chain per data directory.

The running chain is described by ``<home>/devnet.json`` (pid, port, manifest path); ``down`` stops
that pid and only it. The first ``up`` deploys and seeds everything and keeps Anvil's state next
to the manifest, keyed by the lock file and the deployment code, so later starts load it instead
of deploying again.

The chain outlives ``down``: it dumps Anvil's state (accounts, contracts, storage, blocks) to
``<home>/state.json`` first, and the next ``up`` loads it, on the same port when that is still
free, so a bot restarted against it finds the rebalances it made. ``reset`` and ``up --fresh``
start from the seeded state again.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from web3 import Web3

from lpbot.chain.artifacts import project_root
from lpbot.chain.rpc import connect, redact_url
from lpbot.devnet import anvil, deploy
from lpbot.devnet.manifest import Manifest
from lpbot.devnet.market import push_feeds
from lpbot.devnet.shapes import shape_chain
from lpbot.errors import NeedsAttention, Refused

log = logging.getLogger(__name__)

# bump when deploy.py changes what a fresh devnet contains
DEPLOY_VERSION = "6"


def anvil_chain_id(shape: str | None) -> int:
    """The chain id Anvil starts with: the shape's real chain's, else Anvil's own."""
    return shape_chain(shape).chain_id if shape is not None else anvil.CHAIN_ID


def default_home() -> Path:
    return Path.cwd() / ".lpbot" / "devnet"


@dataclass(frozen=True)
class DevnetRecord:
    pid: int
    port: int
    rpc_url: str
    manifest: str
    started_at: float
    fork_url: str | None = None
    shape: str | None = None  # the real chain it copies (``lpbot.devnet.shapes``)


def _record_path(home: Path) -> Path:
    return home / "devnet.json"


def read_record(home: Path) -> DevnetRecord | None:
    path = _record_path(home)
    if not path.exists():
        return None
    return DevnetRecord(**json.loads(path.read_text()))


def _saved_paths(home: Path) -> tuple[Path, Path]:
    """The chain's state at the last ``down``, and its port and manifest then."""
    return home / "state.json", home / "saved.json"


def _port_free(port: int) -> bool:
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        # as Anvil binds: the last run's connections in TIME_WAIT do not make it busy
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _port_freed(port: int, wait: float = 3.0) -> bool:
    """Whether ``port`` is free, or becomes free within ``wait`` seconds (a stopped Anvil
    closes its socket a moment after its process looks gone)."""
    deadline = time.monotonic() + wait
    while not _port_free(port):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def _forget_saved(home: Path) -> None:
    for p in _saved_paths(home):
        p.unlink(missing_ok=True)


def _cache_key(shape: str | None = None) -> str:
    root = project_root()
    h = hashlib.sha256(DEPLOY_VERSION.encode())
    h.update((shape or "").encode())
    rels = ["package-lock.json", "lpbot/devnet/deploy.py"]
    if shape is not None:
        rels += ["lpbot/devnet/shapes.py", "lpbot/chain/registry.py"]
    for rel in rels:
        h.update((root / rel).read_bytes())
    for sol in sorted((root / "contracts" / "src").glob("*.sol")):
        h.update(sol.read_bytes())
    return h.hexdigest()[:16]


def _cache_paths(home: Path, shape: str | None = None) -> tuple[Path, Path]:
    key = (f"{shape}-" if shape else "") + _cache_key(shape)
    return home / "cache" / f"state-{key}.hex", home / "cache" / f"manifest-{key}.json"


def load_or_deploy(
    w3: Web3, rpc_url: str, home: Path, shape: str | None = None
) -> tuple[Manifest, bool]:
    """Bring a fresh Anvil (with the shape's chain id, ``anvil_chain_id``) to the seeded devnet
    state; True when it came from the cache."""
    state_path, manifest_path = _cache_paths(home, shape)
    if state_path.exists() and manifest_path.exists():
        w3.provider.make_request("anvil_loadState", [state_path.read_text()])  # type: ignore[arg-type]
        # the saved head block is as old as the cache; mine one now so that "latest" (and any
        # deadline derived from it) is the present, as it is on a live chain
        w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]
        manifest = Manifest.read(manifest_path).model_copy(update={"rpc_url": rpc_url})
        # the feeds' answers are as old as the cache too: the keeper writes them now, so a
        # devnet brought up from an old cache does not start with stale feeds
        push_feeds(w3, manifest)
        return manifest, True
    manifest = deploy.deploy_devnet(w3, rpc_url, shape)
    dump = w3.provider.make_request("anvil_dumpState", [])  # type: ignore[arg-type]
    state_path.parent.mkdir(parents=True, exist_ok=True)
    state_path.write_text(dump["result"])
    manifest.write(manifest_path)
    return manifest, False


def up(
    home: Path | None = None,
    *,
    fork_url: str | None = None,
    fork_block: int | None = None,
    fresh: bool = False,
    shape: str | None = None,
) -> tuple[DevnetRecord, Manifest, float]:
    """Start the devnet (or a fork) in the background; return its record, manifest and seconds.
    ``shape``: a devnet shaped like that real chain (``lpbot.devnet.shapes``)."""
    home = home or default_home()
    if shape is not None:
        if fork_url:
            raise Refused("--shape and --fork-url exclude each other: a fork is already real")
        shape_chain(shape)  # an unknown shape is refused before anything starts
    home.mkdir(parents=True, exist_ok=True)
    existing = read_record(home)
    if existing and anvil.is_anvil_pid(existing.pid):
        raise Refused(
            f"a devnet already runs here (pid {existing.pid}, {existing.rpc_url}); "
            "`lpbot devnet down` first, or `lpbot devnet reset`"
        )
    if fork_url:
        from lpbot.devnet.fork import fork_manifest

        t0 = time.monotonic()
        # no log file: Anvil's banner repeats the fork URL, which may carry an API key
        proc = anvil.start(fork_url=fork_url, fork_block=fork_block, detach=True)
        w3 = connect(proc.url)
        try:
            manifest = fork_manifest(w3, proc.url, redact_url(fork_url))
        except BaseException:
            proc.stop()
            raise
    else:
        if fresh:
            for p in _cache_paths(home, shape):
                p.unlink(missing_ok=True)
            _forget_saved(home)
        state_path, saved_path = _saved_paths(home)
        saved = json.loads(saved_path.read_text()) if saved_path.exists() else None
        if saved is not None and state_path.exists() and saved.get("shape") != shape:
            was = saved.get("shape") or "the default"
            raise Refused(
                f"the devnet saved in {home} has {was} shape, not "
                f"{shape or 'the default'}: `lpbot devnet up --fresh` drops it, or give "
                "another --home"
            )
        port = None
        if saved is not None and state_path.exists() and _port_freed(int(saved["port"])):
            port = int(saved["port"])  # where a bot's configuration still points
        t0 = time.monotonic()
        proc = anvil.start(
            port=port, log_path=home / "anvil.log", detach=True, chain_id=anvil_chain_id(shape)
        )
        w3 = connect(proc.url)
        try:
            if saved is not None and state_path.exists():
                answer = w3.provider.make_request(
                    "anvil_loadState",  # type: ignore[arg-type]
                    [state_path.read_text()],
                )
                if "error" in answer:
                    raise NeedsAttention(
                        f"the devnet's saved state {state_path} cannot be loaded "
                        f"({answer['error']}); `lpbot devnet up --fresh` starts from the seed"
                    )
                manifest = Manifest.read(Path(saved["manifest"])).model_copy(
                    update={"rpc_url": proc.url}
                )
            else:
                manifest, _cached = load_or_deploy(w3, proc.url, home, shape)
        except BaseException:
            proc.stop()
            raise
    manifest_path = home / "manifest.json"
    manifest.write(manifest_path)
    record = DevnetRecord(
        pid=proc.pid,
        port=proc.port,
        rpc_url=proc.url,
        manifest=str(manifest_path),
        started_at=time.time(),
        fork_url=redact_url(fork_url) if fork_url else None,
        shape=shape,
    )
    _record_path(home).write_text(json.dumps(asdict(record), indent=2) + "\n")
    return record, manifest, time.monotonic() - t0


def down(home: Path | None = None) -> bool:
    """Stop the devnet recorded in ``home``; False when none was running."""
    home = home or default_home()
    record = read_record(home)
    if record is None:
        return False
    if record.fork_url is None and anvil.is_anvil_pid(record.pid):
        save(home, record)
    stopped = anvil.stop_pid(record.pid)
    _record_path(home).unlink(missing_ok=True)
    return stopped


def save(home: Path, record: DevnetRecord) -> None:
    """Dump the running devnet's state (and its port and manifest) for the next ``up``."""
    state_path, saved_path = _saved_paths(home)
    try:
        dump = connect(record.rpc_url).provider.make_request(
            "anvil_dumpState",  # type: ignore[arg-type]
            [],
        )
    except OSError as exc:  # it does not answer: stopped without its state
        log.warning("devnet state not saved: %s", type(exc).__name__)
        return
    if "result" not in dump:
        log.warning("devnet state not saved: %s", dump.get("error"))
        return
    tmp = state_path.with_suffix(".tmp")
    tmp.write_text(dump["result"])
    tmp.replace(state_path)  # whole or not at all
    saved_path.write_text(
        json.dumps(
            {
                "port": record.port,
                "manifest": record.manifest,
                "saved_at": time.time(),
                "shape": record.shape,
            }
        )
        + "\n"
    )


def status(home: Path | None = None) -> tuple[DevnetRecord, Manifest, int] | None:
    """The running devnet's record, manifest and current block, or None."""
    home = home or default_home()
    record = read_record(home)
    if record is None or not anvil.is_anvil_pid(record.pid):
        return None
    w3 = connect(record.rpc_url)
    return record, Manifest.read(Path(record.manifest)), w3.eth.block_number


def reset(home: Path | None = None) -> tuple[DevnetRecord, Manifest, float]:
    """Stop the devnet and start it again from the seeded state (of the same shape)."""
    home = home or default_home()
    record = read_record(home)
    down(home)
    _forget_saved(home)
    return up(home, shape=record.shape if record is not None else None)


def require_running(home: Path | None = None) -> tuple[DevnetRecord, Manifest]:
    found = status(home)
    if found is None:
        raise NeedsAttention("no devnet is running here: start one with `lpbot devnet up`")
    record, manifest, _block = found
    return record, manifest

"""Starting and stopping Anvil, from the pinned npm package, on a free loopback port."""

from __future__ import annotations

import logging
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import requests

from lpbot.chain.artifacts import project_root
from lpbot.errors import NeedsAttention, RetryLater

log = logging.getLogger(__name__)

CHAIN_ID = 31337
# Anvil's well-known development mnemonic: its keys are public and fund nothing outside a devnet.
DEV_MNEMONIC = "test test test test test test test test test test test junk"
ACCOUNTS = 12
BALANCE_ETH = 10_000_000


def anvil_binary() -> Path:
    """The native anvil binary that ``@foundry-rs/anvil`` installs for this platform."""
    nm = project_root() / "node_modules" / "@foundry-rs"
    for path in (
        nm / "anvil-linux-amd64" / "bin" / "anvil",
        nm / "anvil-linux-arm64" / "bin" / "anvil",
    ):
        if path.exists():
            return path
    raise NeedsAttention(f"anvil not found under {nm}: run `make setup` (npm ci)")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class AnvilProcess:
    """A running Anvil: its process, port and RPC URL."""

    process: subprocess.Popen[bytes]
    port: int
    states: Path | None = None  # where Anvil spills old states; removed when it stops

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        return self.process.pid

    def stop(self, timeout: float = 10.0) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout)
        if self.states is not None:
            shutil.rmtree(self.states, ignore_errors=True)


def start(
    *,
    port: int | None = None,
    log_path: Path | None = None,
    fork_url: str | None = None,
    fork_block: int | None = None,
    detach: bool = False,
    extra_args: list[str] | None = None,
    ready_timeout: float = 30.0,
    die_with_parent: bool = False,
    chain_id: int = CHAIN_ID,
) -> AnvilProcess:
    """Start Anvil on 127.0.0.1 and wait until it answers JSON-RPC; ``chain_id`` where it does
    not fork (a devnet shaped like a real chain takes that chain's); ``die_with_parent``: the
    kernel kills it when this process dies, even by SIGKILL (Linux; a disposable fork)."""
    port = port or free_port()
    args = [
        str(anvil_binary()),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--accounts",
        str(ACCOUNTS),
        "--balance",
        str(BALANCE_ETH),
        "--mnemonic",
        DEV_MNEMONIC,
        "--code-size-limit",
        "100000",  # NonfungiblePositionManager's official bytecode is larger than 24 KiB
    ]
    if fork_url:
        args += ["--fork-url", fork_url]
        if fork_block is not None:
            args += ["--fork-block-number", str(fork_block)]
    else:
        args += ["--chain-id", str(chain_id)]
    # Anvil spills old block states to disk and leaves them behind when it is stopped: give
    # each process its own folder (a background devnet's beside its log, emptied here at
    # start; any other a fresh one, removed when stopped through this handle), so that
    # stopped test chains and forks never fill the disk
    if detach and log_path is not None:  # one background devnet per home
        states = log_path.parent / f"{log_path.stem}-states"
        shutil.rmtree(states, ignore_errors=True)
        states.mkdir(parents=True, exist_ok=True)
    else:
        states = Path(tempfile.mkdtemp(prefix="lpbot-anvil-"))
    args += ["--cache-path", str(states)]
    args += extra_args or []
    out = open(log_path, "ab") if log_path else subprocess.DEVNULL  # noqa: SIM115
    process = subprocess.Popen(
        args,
        stdout=out,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=detach,
        preexec_fn=_pdeathsig_hook() if die_with_parent else None,
    )
    anvil = AnvilProcess(process, port, None if detach else states)
    deadline = time.monotonic() + ready_timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise NeedsAttention(
                f"anvil exited with code {process.returncode} on start"
                + (f"; see {log_path}" if log_path else "")
            )
        try:
            r = requests.post(
                anvil.url,
                json={"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []},
                timeout=1,
            )
            if r.ok:
                return anvil
        except requests.RequestException:
            pass
        time.sleep(0.05)
    anvil.stop()
    raise RetryLater(f"anvil did not answer on port {port} within {ready_timeout:.0f} s")


def _pdeathsig_hook() -> Callable[[], None] | None:
    """A ``preexec_fn`` that makes the kernel SIGKILL the child when its parent dies (Linux
    ``prctl(PR_SET_PDEATHSIG)``), or None elsewhere. libc is loaded here, in the parent: the
    hook itself runs between fork and exec, where an import or a dlopen could deadlock on a
    lock another thread held at the fork."""
    import ctypes

    try:
        prctl = ctypes.CDLL("libc.so.6", use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    kill = int(signal.SIGKILL)

    def hook() -> None:
        prctl(1, kill)  # PR_SET_PDEATHSIG

    return hook


def is_anvil_pid(pid: int) -> bool:
    """True when ``pid`` is a live process whose command line is an anvil binary."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return bool(cmdline) and os.path.basename(cmdline[0].decode(errors="replace")) == "anvil"


def stop_pid(pid: int, timeout: float = 10.0) -> bool:
    """Stop the anvil with this pid, and only it; False when no such anvil runs."""
    if not is_anvil_pid(pid):
        return False
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and is_anvil_pid(pid):
        time.sleep(0.05)
    if is_anvil_pid(pid):
        os.kill(pid, signal.SIGKILL)
    return True

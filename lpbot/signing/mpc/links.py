"""Links from the coordinator to the parties: a sidecar on stdin/stdout, or a co-signer over HTTP.

Both carry the same JSON requests (``{"op": ..., ...}``) and replies (``{"ok": true, "result":
...}`` or ``{"ok": false, "error": {"code", "message"}}``); see ``sidecar/mpc/README.md``. A
link never sees a share: replies hold public data (status, addresses) or sealed envelopes.
"""

from __future__ import annotations

import collections
import json
import logging
import os
import queue
import shutil
import subprocess
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol

import requests

from lpbot.chain.artifacts import project_root
from lpbot.errors import Halt, LpbotError, NeedsAttention
from lpbot.signing.mpc.auth import HEADER, sign_request
from lpbot.signing.mpc.errors import CosignerRefused, MpcAborted, PartyUnavailable

log = logging.getLogger(__name__)

_UNAVAILABLE = {
    "no_passphrase",
    "wrong_passphrase",
    "weak_passphrase",
    "no_state",
    "bad_state",
    "no_share",
    "locked",
    "wrong_key",
    "has_share",
    "unavailable",
}
_ABORTED = {"aborted", "auth_failed", "internal"}


def translate(index: int, code: str, message: str) -> LpbotError:
    """Map a party's error reply to lpbot's error for what happens next."""
    if code == "refused":
        return CosignerRefused(index, message)
    if code in _ABORTED:
        return MpcAborted(index, message)
    if code in _UNAVAILABLE:
        return PartyUnavailable(index, message)
    return Halt(f"MPC party {index} rejected a request ({code}): {message}")


def party_script() -> Path:
    return project_root() / "sidecar" / "mpc" / "party.js"


BACKEND_PACKAGE = "@0xcarbon/dkls23-wasm"
BACKEND_FILES = ("dkls23_wasm.js", "dkls23_wasm_bg.wasm")


def backend_dir() -> Path:
    """Where the sidecar loads the DKLs23 build from (the same rule as ``sidecar/mpc/dkls.js``):
    ``LPBOT_MPC_BACKEND`` if set, else what ``make mpc`` installed."""
    named = os.environ.get("LPBOT_MPC_BACKEND")
    if named:
        return Path(named)
    return project_root() / "sidecar" / "mpc" / "backend" / "node_modules" / BACKEND_PACKAGE


def backend_missing() -> str | None:
    """Why the optional MPC backend cannot be loaded, or ``None`` when it can."""
    where = backend_dir()
    for name in BACKEND_FILES:
        if not (where / name).is_file():
            return (
                f"the MPC backend is not installed ({where / name} is missing): run `make mpc` "
                "or set LPBOT_MPC_BACKEND to a licensed DKLs23 build (README, Custody)"
            )
    return None


def node_binary() -> str:
    node = shutil.which("node")
    if node is None:
        raise NeedsAttention("node (>= 20) is not on PATH; the MPC parties run on Node")
    return node


class PartyLink(Protocol):
    """A connection to one party."""

    @property
    def index(self) -> int: ...

    def request(self, op: str, timeout: float, **fields: Any) -> dict[str, Any]:
        """Send one request; return its result, or raise the translated error."""
        ...

    def close(self) -> None: ...


def _result(index: int, reply: dict[str, Any]) -> dict[str, Any]:
    if reply.get("ok") is True:
        result: dict[str, Any] = reply.get("result") or {}
        return result
    err = reply.get("error") or {}
    raise translate(index, str(err.get("code", "unknown")), str(err.get("message", "")))


# what a sidecar inherits from the process that starts it: a few neutral variables, no secret
_INHERITED = ("PATH", "HOME", "LANG", "LC_ALL", "TZ", "TMPDIR", "SYSTEMROOT", "LPBOT_MPC_BACKEND")
MAX_PASSPHRASE_BYTES = 4096  # it is written to a pipe before the sidecar starts


def sidecar_env(source: Mapping[str, str]) -> dict[str, str]:
    """The environment of a party's sidecar: a few neutral variables, and no passphrase (its
    own comes through a pipe, see ``SidecarLink``), nor any other secret of the starting
    process."""
    return {k: source[k] for k in _INHERITED if k in source}


def passphrase_pipe(passphrase: str) -> int:
    """A pipe holding ``passphrase`` and then its end: returns the read end, for the sidecar to
    inherit (``pass_fds``) and read once; the write end is already closed."""
    data = passphrase.encode()
    if len(data) > MAX_PASSPHRASE_BYTES:
        raise NeedsAttention(f"a party's passphrase is longer than {MAX_PASSPHRASE_BYTES} bytes")
    read_end, write_end = os.pipe()
    try:
        os.write(write_end, data)
    finally:
        os.close(write_end)
    return read_end


class SidecarLink:
    """A party sidecar started here: ``node party.js --dir D --passphrase-env NAME
    --passphrase-fd N``.

    The passphrase (the value of ``passphrase_env`` in this process's environment, or in
    ``env``) reaches the sidecar through a pipe it inherits as descriptor N and reads once: it
    is in no sidecar's environment or argv (``/proc/<pid>/environ``, ``cmdline``), and a sidecar
    never sees another party's. Its environment holds a few neutral variables (``sidecar_env``).
    The link writes requests to its stdin and reads replies from its stdout; its stderr
    (diagnostics, no secrets) goes to this module's logger at debug level.
    """

    def __init__(
        self,
        index: int,
        directory: Path,
        passphrase_env: str,
        *,
        script: Path | None = None,
        env: dict[str, str] | None = None,
    ) -> None:
        self._index = index
        self._lock = threading.Lock()
        self._replies: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self._stderr: collections.deque[str] = collections.deque(maxlen=20)
        self._next_id = 0
        missing = backend_missing()
        if missing is not None:
            raise NeedsAttention(missing)
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        source = env if env is not None else os.environ
        cmd = [
            node_binary(),
            str(script or party_script()),
            "--dir",
            str(directory),
            "--passphrase-env",
            passphrase_env,  # its name, for messages; the value comes through the pipe
        ]
        passphrase = source.get(passphrase_env)
        fds: tuple[int, ...] = ()
        if passphrase:
            fds = (passphrase_pipe(passphrase),)
            cmd += ["--passphrase-fd", str(fds[0])]
        try:
            self._proc = subprocess.Popen(
                cmd,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                env=sidecar_env(source),
                cwd=project_root(),
                pass_fds=fds,
            )
        finally:
            for fd in fds:
                os.close(fd)
        threading.Thread(target=self._read_stdout, daemon=True).start()
        threading.Thread(target=self._read_stderr, daemon=True).start()

    def __repr__(self) -> str:
        return f"SidecarLink(party {self._index}, pid {self._proc.pid})"

    @property
    def index(self) -> int:
        return self._index

    @property
    def pid(self) -> int:
        return self._proc.pid

    def _read_stdout(self) -> None:
        assert self._proc.stdout is not None
        for line in self._proc.stdout:
            try:
                self._replies.put(json.loads(line))
            except ValueError:
                log.warning("party %d wrote a line that is not JSON", self._index)
        self._replies.put(None)

    def _read_stderr(self) -> None:
        assert self._proc.stderr is not None
        for raw in self._proc.stderr:
            line = raw.decode("utf-8", "replace").rstrip()
            self._stderr.append(line)
            log.debug("party %d: %s", self._index, line)

    def _gone(self, why: str) -> PartyUnavailable:
        tail = " | ".join(self._stderr)
        return PartyUnavailable(self._index, f"{why}{f' ({tail})' if tail else ''}")

    def request(self, op: str, timeout: float, **fields: Any) -> dict[str, Any]:
        return _result(self._index, self.call(op, timeout, **fields))

    def call(self, op: str, timeout: float, **fields: Any) -> dict[str, Any]:
        """Send one request; return the raw reply (``ok`` and ``result`` or ``error``)."""
        with self._lock:
            if self._proc.poll() is not None:
                raise self._gone(f"sidecar exited with status {self._proc.returncode}")
            self._next_id += 1
            rid = self._next_id
            line = json.dumps({"id": rid, "op": op, **fields}, separators=(",", ":")) + "\n"
            assert self._proc.stdin is not None
            try:
                self._proc.stdin.write(line.encode())
                self._proc.stdin.flush()
            except (BrokenPipeError, OSError) as exc:
                raise self._gone(f"sidecar closed its input: {exc}") from exc
            while True:
                try:
                    reply = self._replies.get(timeout=timeout)
                except queue.Empty:
                    self._kill()
                    raise self._gone(f"no reply to {op!r} in {timeout:.0f} s; stopped it") from None
                if reply is None:
                    self._proc.wait(timeout=5)
                    raise self._gone(f"sidecar exited with status {self._proc.returncode}")
                if reply.get("id") == rid:
                    return reply

    def _kill(self) -> None:
        if self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait(timeout=5)

    def close(self) -> None:
        if self._proc.poll() is None:
            try:
                assert self._proc.stdin is not None
                self._proc.stdin.close()
                self._proc.wait(timeout=5)
            except (OSError, subprocess.TimeoutExpired):
                self._kill()


class HttpLink:
    """A co-signer served by ``lpbot cosigner serve`` on the loopback interface; every request
    is signed with the deployment's API key (``lpbot.signing.mpc.auth``)."""

    def __init__(self, index: int, url: str, api_key: bytes, path: str = "/v1/party") -> None:
        self._index = index
        self._path = path
        self._url = url.rstrip("/") + path
        self._key = api_key
        self._http = requests.Session()

    def __repr__(self) -> str:
        return f"HttpLink(party {self._index}, {self._url})"

    @property
    def index(self) -> int:
        return self._index

    def request(self, op: str, timeout: float, **fields: Any) -> dict[str, Any]:
        try:
            body = json.dumps({"op": op, **fields}, separators=(",", ":")).encode()
            headers = {
                "Content-Type": "application/json",
                HEADER: sign_request(self._key, "POST", self._path, body),
            }
            resp = self._http.post(self._url, data=body, headers=headers, timeout=timeout)
            reply = resp.json()
        except requests.RequestException as exc:
            raise PartyUnavailable(self._index, f"co-signer at {self._url}: {exc}") from exc
        except ValueError as exc:
            raise PartyUnavailable(
                self._index, f"co-signer at {self._url} did not reply JSON"
            ) from exc
        return _result(self._index, reply)

    def close(self) -> None:
        self._http.close()

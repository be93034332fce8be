"""The MPC coordinator: starts or reaches the parties and relays their sealed messages.

The coordinator is a post office. Each protocol run (key generation or one signature) is a fixed
number of rounds; in each round every party returns an outbox of envelopes ``{from, to, round,
sealed}``, and the coordinator delivers each envelope to its addressee in the next round. Payloads
are sealed party-to-party (X25519 + AES-256-GCM, see ``sidecar/mpc/channel.js``), so the
coordinator learns only who talks to whom, the public key and the final signature. It checks the
envelopes' routing, never their content; a party that finds a message forged or inconsistent
aborts the run, and the coordinator then aborts every other party and raises. A signature is
returned only when every signing party produced the same one and it recovers to the key's address.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

from eth_account import Account
from eth_utils.address import to_checksum_address

from lpbot.errors import Halt, LpbotError, NeedsAttention, Refused
from lpbot.signing.base import SECP256K1_N, Signature
from lpbot.signing.mpc.auth import load_key
from lpbot.signing.mpc.config import (
    SINGLE_HOST_WARNING,
    LocalParty,
    MpcConfig,
    RemoteParty,
    fingerprint,
)
from lpbot.signing.mpc.errors import CosignerRefused, MpcAborted, PartyUnavailable
from lpbot.signing.mpc.links import HttpLink, PartyLink, SidecarLink

log = logging.getLogger(__name__)

Envelope = dict[str, Any]
# sees every envelope the coordinator relays and returns the one it delivers (a test can tamper)
RelayHook = Callable[[Envelope], Envelope]

ROUNDS = 4  # DKLs23 key generation and signing both take four rounds after the key exchange
KEYGEN_TIMEOUT_S = 300.0
SIGN_TIMEOUT_S = 60.0
UNLOCK_TIMEOUT_S = 60.0


@dataclass(frozen=True, slots=True)
class KeyInfo:
    """The public result of key generation."""

    address: str
    public_key: str  # compressed secp256k1 point, hex
    key_id: str  # the key generation's session id, hex
    threshold: int
    share_count: int


def _severity(exc: BaseException) -> int:
    order = (CosignerRefused, MpcAborted, Halt, PartyUnavailable)
    for rank, kind in enumerate(order):
        if isinstance(exc, kind):
            return rank
    return len(order)


class Coordinator:
    """Relays protocol messages between the parties of one threshold key."""

    def __init__(
        self,
        config: MpcConfig,
        links: Mapping[int, PartyLink],
        *,
        relay_hook: RelayHook | None = None,
    ) -> None:
        self.config = config
        self._links = dict(links)
        self._relay_hook = relay_hook
        self._unlock_errors: dict[int, LpbotError] = {}  # why a party could not be opened
        self._pool = ThreadPoolExecutor(max_workers=max(2, len(links)), thread_name_prefix="mpc")

    @classmethod
    def open(
        cls,
        config: MpcConfig,
        *,
        relay_hook: RelayHook | None = None,
        scripts: Mapping[int, Path] | None = None,
        env: dict[str, str] | None = None,
    ) -> Coordinator:
        """Start a sidecar for each local party and connect to each remote one (nothing unlocked
        yet). ``scripts`` replaces a party's sidecar script (tests run a cheating party).

        Refuses a config that puts more than one party's share on this host unless it says
        ``insecure_single_host``: one host must never hold two shares, let alone a quorum."""
        check_placement(config)
        links: dict[int, PartyLink] = {}
        try:
            for p in config.parties:
                if isinstance(p, LocalParty):
                    script = (scripts or {}).get(p.index)
                    links[p.index] = SidecarLink(
                        p.index, p.dir, p.passphrase_env, script=script, env=env
                    )
                elif not p.offline:
                    links[p.index] = HttpLink(p.index, p.url, load_key(p.api_key_env))
        except BaseException:
            for link in links.values():
                link.close()
            raise
        return cls(config, links, relay_hook=relay_hook)

    def __enter__(self) -> Coordinator:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        for link in self._links.values():
            link.close()
        self._pool.shutdown(wait=False)

    def link(self, index: int) -> PartyLink:
        return self._links[index]

    # ---- fan-out -------------------------------------------------------------------------

    def _each(
        self,
        parties: Iterable[int],
        op: str,
        timeout: float,
        fields: Callable[[int], dict[str, Any]] | None = None,
    ) -> tuple[dict[int, dict[str, Any]], dict[int, LpbotError]]:
        """Send ``op`` to every party in parallel; return the results and the errors."""
        parties = list(parties)
        errors: dict[int, LpbotError] = {
            i: PartyUnavailable(i, "it is marked offline") for i in parties if i not in self._links
        }
        futures = {
            i: self._pool.submit(
                self._links[i].request, op, timeout, **(fields(i) if fields else {})
            )
            for i in parties
            if i in self._links
        }
        results: dict[int, dict[str, Any]] = {}
        for i, fut in futures.items():
            try:
                results[i] = fut.result()
            except LpbotError as exc:
                errors[i] = exc
        return results, errors

    def _all(
        self,
        parties: Sequence[int],
        op: str,
        timeout: float,
        fields: Callable[[int], dict[str, Any]] | None = None,
        *,
        session: str | None = None,
    ) -> dict[int, dict[str, Any]]:
        results, errors = self._each(parties, op, timeout, fields)
        if errors:
            if session is not None:
                self._each(parties, "abort", 10.0, lambda _i: {"session": session})
            worst = min(errors.values(), key=_severity)
            raise worst
        return results

    # ---- opening the parties ---------------------------------------------------------------

    def statuses(
        self, parties: Iterable[int] | None = None
    ) -> dict[int, dict[str, Any] | LpbotError]:
        """Each party's public status, or the error that stands in the way."""
        results, errors = self._each(list(parties or self._links), "status", UNLOCK_TIMEOUT_S)
        out: dict[int, dict[str, Any] | LpbotError] = {}
        out.update(results)
        out.update(errors)
        return dict(sorted(out.items()))

    def unlock(
        self, parties: Iterable[int] | None = None, *, strict: bool = True
    ) -> dict[int, LpbotError]:
        """Open the local parties' shares (each sidecar reads its passphrase from its own
        environment) and check that every party holds a share of this key.

        Returns the parties that cannot sign and why; with ``strict``, raises the worst instead.
        """
        wanted = list(parties or self._links)
        results, errors = self._each(wanted, "status", UNLOCK_TIMEOUT_S)
        local = [
            i
            for i, st in results.items()
            if isinstance(self.config.party(i), LocalParty) and not st.get("unlocked")
        ]
        unlocked, more = self._each(local, "unlock", UNLOCK_TIMEOUT_S, lambda i: {"index": i})
        results.update(unlocked)
        errors.update(more)
        for i, st in results.items():
            problem = None if i in errors else self._status_problem(i, st)
            if problem:
                errors[i] = PartyUnavailable(i, problem)
        for i in wanted:
            self._unlock_errors.pop(i, None)
        self._unlock_errors.update(errors)
        for i, exc in sorted(errors.items()):
            log.warning("MPC party %d cannot sign: %s", i, exc)
        if errors and strict:
            raise min(errors.values(), key=_severity)
        return errors

    def _status_problem(self, index: int, st: Mapping[str, Any]) -> str | None:
        if not st.get("unlocked"):
            return "its share is locked"
        if st.get("index") != index:
            return f"its directory belongs to party {st.get('index')}"
        if not st.get("has_share"):
            return "it holds no key share (run key generation)"
        want = self.config.address
        got = st.get("address")
        if want and (not got or got.lower() != want.lower()):
            return f"it holds a share of {got}, not of {want}"
        if (st.get("threshold"), st.get("share_count")) != (
            self.config.threshold,
            self.config.share_count,
        ):
            return (
                f"its share is {st.get('threshold')}-of-{st.get('share_count')}, the config says "
                f"{self.config.threshold}-of-{self.config.share_count}"
            )
        return None

    def available_signers(self) -> list[int]:
        """The first ``threshold`` parties (config order of preference) that can sign now."""
        order = list(self.config.signers) or [p.index for p in self.config.parties]
        order += [p.index for p in self.config.parties if p.index not in order]
        order = [i for i in order if i in self._links]  # offline parties are never asked
        required = self.config.required_party
        if required is not None:  # asked first, and never replaced by another party
            order = [required] + [i for i in order if i != required]
        statuses = self.statuses(order)
        ready: list[int] = []
        reasons: list[str] = []
        for i in order:
            st = statuses[i]
            if isinstance(st, LpbotError):
                problem: str | None = str(st)
            elif i in self._unlock_errors and not st.get("unlocked"):
                problem = str(self._unlock_errors[i])
            else:
                problem = self._status_problem(i, st)
            if problem is None:
                ready.append(i)
            elif i == required:
                raise NeedsAttention(
                    f"the co-signer (party {i}) cannot sign, and no signature is made without it: "
                    f"{problem}"
                )
            else:
                reasons.append(f"party {i}: {problem}")
            if len(ready) == self.config.threshold:
                return ready
        raise NeedsAttention(
            f"only {len(ready)} of the {self.config.threshold} parties needed can sign; "
            + "; ".join(reasons)
        )

    # ---- protocol runs -------------------------------------------------------------------

    def _run(self, parties: Sequence[int], timeout: float, **start: Any) -> dict[int, Any]:
        """Run one session among ``parties``; return each party's final result."""
        session = secrets.token_hex(32)
        started = self._all(
            parties, "start", timeout, lambda _i: {"session": session, **start}, session=session
        )
        outboxes = {i: r.get("outbox", []) for i, r in started.items()}
        for rnd in range(1, ROUNDS + 1):
            inboxes = self._route(parties, outboxes, rnd - 1, session)
            replies = self._all(
                parties,
                "step",
                timeout,
                _step_fields(session, rnd, inboxes),
                session=session,
            )
            done = {i for i, r in replies.items() if r.get("done")}
            if done:
                if done != set(parties):
                    self._each(parties, "abort", 10.0, lambda _i: {"session": session})
                    raise Halt(f"MPC parties {sorted(done)} finished before the others")
                return {i: r["result"] for i, r in replies.items()}
            outboxes = {i: r.get("outbox", []) for i, r in replies.items()}
        self._each(parties, "abort", 10.0, lambda _i: {"session": session})
        raise Halt(f"MPC run did not finish in {ROUNDS} rounds")

    def _route(
        self,
        parties: Sequence[int],
        outboxes: Mapping[int, list[Envelope]],
        rnd: int,
        session: str,
    ) -> dict[int, list[Envelope]]:
        inboxes: dict[int, list[Envelope]] = {i: [] for i in parties}
        for sender, outbox in outboxes.items():
            for env in outbox:
                to = env.get("to")
                if env.get("from") != sender or to not in inboxes or to == sender:
                    self._each(parties, "abort", 10.0, lambda _i: {"session": session})
                    raise MpcAborted(
                        sender, f"sent a misaddressed envelope {env.get('from')}->{to}"
                    )
                if env.get("round") != rnd:
                    self._each(parties, "abort", 10.0, lambda _i: {"session": session})
                    raise MpcAborted(sender, f"sent a round {env.get('round')} envelope in {rnd}")
                inboxes[to].append(self._relay_hook(env) if self._relay_hook else env)
        return inboxes

    def keygen(self) -> KeyInfo:
        """Run distributed key generation among all parties; return the new key's public data.

        Local parties are initialised first (an X25519 identity key, sealed with the passphrase);
        remote co-signers must already be running with ``allow_keygen``. No party ever holds the
        whole private key; each ends with its own share, sealed in its own directory.
        """
        cfg = self.config
        everyone = [p.index for p in cfg.parties]
        unpinned = [
            p.index for p in cfg.parties if isinstance(p, RemoteParty) and p.identity is None
        ]
        if unpinned and not cfg.insecure_single_host:
            # whoever answers on a remote party's port could otherwise take its place
            raise Refused(
                f"parties {unpinned} have no pinned identity: set `identity` in the MPC config to "
                "the fingerprint each shows itself (`lpbot cosigner serve` prints it), compared "
                "out of band"
            )
        offline = [i for i in everyone if i not in self._links]
        if offline:
            raise NeedsAttention(
                f"parties {offline} are marked offline; key generation needs every party online"
            )
        local = [p.index for p in cfg.parties if isinstance(p, LocalParty)]
        remote = [i for i in everyone if i not in local]
        statuses = self._all(local, "init", UNLOCK_TIMEOUT_S, lambda i: {"index": i})
        statuses.update(self._all(remote, "status", UNLOCK_TIMEOUT_S))
        for i, st in statuses.items():
            if st.get("index") != i or not st.get("unlocked"):
                raise PartyUnavailable(i, "not initialised as this party, or locked")
            if st.get("has_share"):
                raise PartyUnavailable(i, f"already holds a share of {st.get('address')}")
        for p in cfg.parties:
            pin = getattr(p, "identity", None)
            got = str(statuses[p.index].get("identity"))
            if pin is not None and pin not in (got, fingerprint(got)):
                raise Refused(
                    f"party {p.index} presents identity {fingerprint(got)}, not the pinned {pin}"
                )
        identities = {str(i): statuses[i]["identity"] for i in everyone}
        t0 = time.monotonic()
        results = self._run(
            everyone,
            KEYGEN_TIMEOUT_S,
            kind="keygen",
            threshold=cfg.threshold,
            share_count=cfg.share_count,
            identities=identities,
        )
        addresses = {r["address"] for r in results.values()}
        keys = {(r["public_key"], r["key_id"]) for r in results.values()}
        if len(addresses) != 1 or len(keys) != 1:
            raise Halt(f"MPC parties disagree on the new key: {sorted(addresses)}")
        (public_key, key_id), address = keys.pop(), to_checksum_address(addresses.pop())
        log.info(
            "generated %d-of-%d MPC key %s in %.1f s",
            cfg.threshold,
            cfg.share_count,
            address,
            time.monotonic() - t0,
        )
        return KeyInfo(address, public_key, key_id, cfg.threshold, cfg.share_count)

    def sign(
        self,
        digest: bytes,
        signers: Sequence[int],
        *,
        context: Mapping[str, Any] | None = None,
    ) -> Signature:
        """Sign a 32-byte digest with exactly ``threshold`` parties; return a low-s signature
        whose v (27/28) recovers to the key's address. ``context`` (the transaction or SafeTx the
        digest is derived from) lets a co-signer check its policy; local parties ignore it."""
        cfg = self.config
        if len(digest) != 32:
            raise ValueError(f"digest must be 32 bytes, got {len(digest)}")
        if cfg.address is None:
            raise NeedsAttention("the MPC config has no address yet (run key generation)")
        signers = sorted(set(signers))
        if len(signers) < cfg.threshold:
            raise NeedsAttention(
                f"a {cfg.threshold}-of-{cfg.share_count} key needs {cfg.threshold} signing "
                f"parties; got {len(signers)} ({signers})"
            )
        if len(signers) > cfg.threshold:
            raise ValueError(f"sign with exactly {cfg.threshold} parties, not {len(signers)}")
        required = cfg.required_party
        if required is not None and required not in signers:
            raise Refused(
                f"signers {signers} leave out the co-signer (party {required}); every signature "
                "of this key needs it"
            )
        offline = [i for i in signers if i not in self._links]
        if offline:
            raise NeedsAttention(f"parties {offline} are offline and cannot sign")
        results = self._run(
            signers,
            SIGN_TIMEOUT_S,
            kind="sign",
            digest=digest.hex(),
            signers=signers,
            address=cfg.address,
            context=dict(context or {"kind": "digest"}),
        )
        outputs = {(r["r"], r["s"], r["recovery_id"]) for r in results.values()}
        if len(outputs) != 1:
            raise Halt("MPC parties finished with different signatures")
        r_hex, s_hex, rec = outputs.pop()
        return assemble(digest, int(r_hex, 16), int(s_hex, 16), int(rec), cfg.address)


def check_placement(config: MpcConfig) -> None:
    """Refuse two or more local parties (shares on this host) unless explicitly insecure."""
    local = config.local_count()
    if local > 1:
        if not config.insecure_single_host:
            raise Refused(
                f"this MPC config puts {local} parties' shares on this host; each party belongs on "
                "its own host (the bot's party here, the co-signer and the recovery party "
                "elsewhere). For a demo or a test only: --insecure-single-host"
            )
        log.warning(SINGLE_HOST_WARNING)


def _step_fields(
    session: str, rnd: int, inboxes: Mapping[int, list[Envelope]]
) -> Callable[[int], dict[str, Any]]:
    return lambda i: {"session": session, "round": rnd, "inbox": inboxes[i]}


def assemble(digest: bytes, r: int, s: int, recovery_id: int, address: str) -> Signature:
    """Normalise to low s (EIP-2; flipping s flips the y-parity), set v = 27 + parity, and check
    the signature recovers to ``address`` (else ``Halt``: a wrong signature is never returned)."""
    if s > SECP256K1_N // 2:
        s, recovery_id = SECP256K1_N - s, recovery_id ^ 1
    if recovery_id not in (0, 1):
        raise Halt(f"MPC recovery id {recovery_id} is not a y-parity")
    sig = Signature(r=r, s=s, v=27 + recovery_id)
    recovered = Account._recover_hash(digest, vrs=(sig.v, sig.r, sig.s))
    if recovered.lower() != address.lower():
        raise Halt(f"MPC signature recovers to {recovered}, not to the key's address {address}")
    return sig

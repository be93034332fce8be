"""The one application context, built from the one validated configuration.

Every command, job and page gets its chain, store, signers, prices, strategy, policy, hedge,
schedule and alerts from an ``App``; this is the only place that wires concrete adapters
together. ``App.load`` finds the configuration the same way for everyone: ``--config PATH``, else
``$LPBOT_CONFIG``, else ``./lpbot.toml``, else (when none exists and a devnet runs in
``./.lpbot/devnet``) the devnet's own configuration. A flag may override one value
(``Overrides``); the command's ``--help`` says which key it replaces.

Everything is built on first use and kept: a command that only reads the database never connects
to a chain, and one that never signs never asks for a password. The database migrates itself
the first time it is opened. The chain is checked when first connected: it must answer, with the
configured chain id.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lpbot.config import (
    CONFIG_ENV,
    DEFAULT_CONFIG_NAME,
    ChainSigner,
    Config,
    KeystoreRef,
    PositionConfig,
    ResolvedChain,
    load_config,
    parse_config,
)
from lpbot.errors import ConfigError, NeedsAttention, RetryLater

log = logging.getLogger(__name__)

if TYPE_CHECKING:
    from sqlalchemy import Engine
    from sqlalchemy.orm import Session, sessionmaker
    from web3 import Web3

    from lpbot.chain.book import AddressBook
    from lpbot.devnet.manifest import Manifest
    from lpbot.execution.service import ExecutionContext
    from lpbot.jobs.alerts import Notifier
    from lpbot.signing.base import Signature, SignedTransaction, Signer
    from lpbot.signing.mpc.approval import SignedApproval
    from lpbot.signing.mpc.safe_owner import MpcSafeOwner
    from lpbot.store.rebalances import SqlRebalanceRepo
    from lpbot.strategy.rebalance import RebalancePolicy

__all__ = ["App", "KeystoreSigner", "Overrides", "devnet_config_text", "keystore_address"]

DEVNET_HOME = Path(".lpbot") / "devnet"
# crash tests (``make chaos``): the process SIGKILLs itself when a rebalance reaches this
# checkpoint ("dry-run", "simulated", "approved", "signed", "submitted", "confirmed", ...)
KILL_AT_ENV = "LPBOT_KILL_AT"
# standby tests: the process stops itself (SIGSTOP, as a suspended VM) at this checkpoint; a
# SIGCONT resumes it where it stopped
PAUSE_AT_ENV = "LPBOT_PAUSE_AT"


def _killer(names: str, pause: str = "") -> Callable[[str], None]:
    """A checkpoint that kills this process, as hard as a power cut, at one of ``names``, or
    stops it (SIGSTOP) at one of ``pause``."""
    wanted = {n.strip() for n in names.split(",") if n.strip()}
    paused = {n.strip() for n in pause.split(",") if n.strip()}

    def checkpoint(name: str) -> None:
        import signal

        if name in wanted:
            os.kill(os.getpid(), signal.SIGKILL)
        if name in paused:
            os.kill(os.getpid(), signal.SIGSTOP)

    return checkpoint


@dataclass(frozen=True)
class Overrides:
    """Single values a command-line flag replaces; None keeps the configuration's."""

    rpc_url: str | None = None  # the chain's RPC URL (rpc_url / rpc_url_env / the manifest's)
    database_url: str | None = None  # database_url
    report_dir: Path | None = None  # report_dir
    slippage_bps: float | None = None  # positions.policy.slippage_bps


# ------------------------------------------------------------------------------- keystores


def keystore_address(path: Path) -> str:
    """The checksummed address a V3 keystore declares, read without decrypting it.

    ``ConfigError`` when the file is missing, unreadable, not JSON or not a keystore."""
    from eth_utils.address import to_checksum_address

    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(
            f"keystore {path} does not exist; create it with `lpbot keys new`"
        ) from None
    except (OSError, ValueError) as exc:
        raise ConfigError(f"keystore {path} cannot be read: {exc}") from None
    if not isinstance(data, dict) or ("crypto" not in data and "Crypto" not in data):
        raise ConfigError(f"{path} is not a V3 keystore (no 'crypto' section)")
    address = data.get("address")
    if not isinstance(address, str) or len(address.removeprefix("0x")) != 40:
        raise ConfigError(f"keystore {path} declares no address")
    return str(to_checksum_address("0x" + address.removeprefix("0x")))


def _chain_id_at(url: str) -> int | None:
    """The chain id the node at ``url`` serves; None when it does not answer."""
    from lpbot.chain.rpc import connect

    try:
        return int(connect(url, timeout=5.0).eth.chain_id)
    except Exception:  # not answering: not followed
        return None


def _no_answer_reason(exc: Exception) -> str:
    """Why an RPC gave no answer, in a few words: the socket's own error ("Connection
    refused", "Name or service not known"), a timeout, else the error's first line."""
    import re

    from lpbot.chain.rpc import RpcConnectionError

    text = str(exc)
    if isinstance(exc, RpcConnectionError):
        if exc.timeout:
            return "timed out"
        found = re.search(r"\[Errno -?\d+\] ([^'\"()]+)", text)
        if found:
            return found.group(1).strip().rstrip(".")
    return text.splitlines()[0][:160] if text else type(exc).__name__


class KeystoreSigner:
    """A keystore's signer, decrypted on its first signature (the password from the
    environment variable the configuration names). Its address is known without decrypting."""

    def __init__(self, name: str, ref: KeystoreRef) -> None:
        self.name, self.ref = name, ref
        self._address = ref.address or keystore_address(ref.path)
        self._signer: Signer | None = None

    def __repr__(self) -> str:
        return f"KeystoreSigner({self.name}, {self._address})"

    @property
    def address(self) -> str:
        return self._address

    def unlock(self) -> Signer:
        if self._signer is None:
            from lpbot.signing.local import LocalKeySigner

            signer = LocalKeySigner.from_keystore(self.ref.path, self.ref.password_env)
            if signer.address != self._address:
                raise ConfigError(
                    f"signer.keystores.{self.name}: {self.ref.path} holds {signer.address}, "
                    f"not {self._address}"
                )
            self._signer = signer
        return self._signer

    def sign_digest(self, digest: bytes) -> Signature:
        return self.unlock().sign_digest(digest)

    def sign_transaction(self, tx: dict[str, Any]) -> SignedTransaction:
        return self.unlock().sign_transaction(tx)


# ----------------------------------------------------------------------- the devnet's own


def devnet_config_text(manifest_path: Path, token_id: int | None) -> str:
    """The configuration used when there is no lpbot.toml and a devnet runs: its chain, its
    Safe's position (if it has one), the devnet's development accounts signing."""
    position = ""
    if token_id is not None:
        position = f"""
[[positions]]
name = "devnet"
chain = "devnet"
pool = "USDC/WETH-500"
token_id = {token_id}
[positions.strategy]
kind = "vol_band"
"""
    return f"""version = 1
data_dir = ".lpbot"
[chains.devnet]
manifest = {json.dumps(str(manifest_path))}
{position}"""


def _head_revision() -> str | None:
    """The newest migration's revision id, read from the versions directory's files (Alembic
    itself takes a fifth of a second to load)."""
    import re

    versions = Path(__file__).parent / "store" / "migrations" / "versions"
    revisions: dict[str, str | None] = {}
    for f in versions.glob("*.py"):
        text = f.read_text()
        rev = re.search(r"^revision(?:: str)? = ['\"]([^'\"]+)['\"]", text, re.M)
        down = re.search(r"^down_revision[^=]*= ['\"]([^'\"]+)['\"]", text, re.M)
        if rev:
            revisions[rev.group(1)] = down.group(1) if down else None
    heads = set(revisions) - {d for d in revisions.values() if d}
    return heads.pop() if len(heads) == 1 else None


def running_devnet(home: Path) -> tuple[Path, int | None] | None:
    """The manifest path and Safe position of the devnet running from ``home``, or None.

    Read from its record and manifest files without connecting (``lpbot.devnet.service``
    connects; this stays cheap for every command's start)."""
    try:
        record = json.loads((home / "devnet.json").read_text())
        cmdline = Path(f"/proc/{int(record['pid'])}/cmdline").read_bytes().split(b"\0")
        manifest_path = Path(record["manifest"])
        manifest = json.loads(manifest_path.read_text())
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if os.path.basename(cmdline[0].decode(errors="replace")) != "anvil":
        return None
    position = manifest.get("safe_position")
    return manifest_path, int(position) if isinstance(position, int) else None


# ------------------------------------------------------------------------------------ App


@dataclass
class App:
    """Everything a command or job needs, built on first use from one ``Config``."""

    config: Config
    source: str  # the file it came from, or "the running devnet"
    overrides: Overrides = field(default_factory=Overrides)
    environ: Mapping[str, str] = field(default_factory=lambda: os.environ)
    devnet_defaults: bool = False  # the devnet's own config: its development accounts sign
    _cache: dict[str, Any] = field(default_factory=dict, repr=False)

    # ----------------------------------------------------------------------------- loading

    @classmethod
    def load(
        cls,
        config_arg: str | Path | None = None,
        *,
        overrides: Overrides | None = None,
        environ: Mapping[str, str] | None = None,
        cwd: Path | None = None,
    ) -> App:
        """The configuration from ``--config``, ``$LPBOT_CONFIG``, ``./lpbot.toml`` or the
        running devnet, in that order; ``ConfigError`` says which was tried."""
        env = os.environ if environ is None else environ
        cwd = cwd or Path.cwd()
        overrides = overrides or Overrides()
        explicit = config_arg or env.get(CONFIG_ENV)
        if explicit:
            path = Path(explicit).expanduser()
            if not path.is_absolute():
                path = cwd / path
            return cls(load_config(path), str(path), overrides, env)
        path = cwd / DEFAULT_CONFIG_NAME
        if path.exists():
            return cls(load_config(path), str(path), overrides, env)
        found = running_devnet(cwd / DEVNET_HOME)
        if found is None:
            raise ConfigError(
                f"no configuration: pass --config PATH, set ${CONFIG_ENV}, or write "
                f"{DEFAULT_CONFIG_NAME} here with `lpbot init` (or start a devnet with "
                "`lpbot devnet up` to use its own)"
            )
        manifest_path, safe_position = found
        text = devnet_config_text(manifest_path, safe_position)
        config = parse_config(text, base_dir=cwd, source="the running devnet's configuration")
        return cls(config, "the running devnet", overrides, env, devnet_defaults=True)

    def _cached(self, key: str, build: Callable[[], Any]) -> Any:
        if key not in self._cache:
            self._cache[key] = build()
        return self._cache[key]

    # ------------------------------------------------------------------------------- store

    @property
    def database_url(self) -> str:
        return self.overrides.database_url or self.config.resolve_database_url(self.environ)

    @property
    def engine(self) -> Engine:
        """The database, migrated to the newest schema the first time it is opened."""
        return self._cached("engine", self._open_engine)  # type: ignore[no-any-return]

    def _open_engine(self) -> Engine:
        from sqlalchemy.exc import DatabaseError, OperationalError

        from lpbot.store import migrate
        from lpbot.store.session import make_engine, redact_url

        url = self.database_url
        if url.startswith("sqlite:///"):
            db = Path(url.removeprefix("sqlite:///"))
            if db.exists() and not os.access(db, os.R_OK | os.W_OK):
                raise NeedsAttention(f"database {db} cannot be read and written by this user")
            db.parent.mkdir(parents=True, exist_ok=True)
        engine = make_engine(url)
        try:
            migrate.upgrade(engine)
        except (OperationalError, DatabaseError) as exc:
            engine.dispose()
            reason = str(exc.orig).splitlines()[0] if exc.orig else str(exc).splitlines()[0]
            raise NeedsAttention(
                f"database {redact_url(url)} cannot be opened: {reason}; check database_url "
                "in the configuration (or the file's permissions)"
            ) from None
        return engine

    def read_engine(self) -> Engine | None:
        """The database as it is, for commands that only read (``status``): opened with
        SQLAlchemy Core alone, and migrated first only when it is not at lpbot's schema; None
        when no database exists yet."""
        if "engine" in self._cache:
            return self.engine
        from sqlalchemy import create_engine, text
        from sqlalchemy.exc import DatabaseError

        url = self.database_url
        if url.startswith("sqlite:///"):
            db = Path(url.removeprefix("sqlite:///"))
            if not db.exists():
                return None
            if not os.access(db, os.R_OK):
                raise NeedsAttention(f"database {db} cannot be read by this user")
        engine = create_engine(url)
        try:
            with engine.connect() as c:
                revision = c.execute(text("SELECT version_num FROM alembic_version")).scalar()
        except DatabaseError:
            revision = None
        if revision is None or revision != _head_revision():
            engine.dispose()
            return self.engine
        return engine

    @property
    def sessions(self) -> sessionmaker[Session]:
        from lpbot.store.session import session_factory

        return self._cached("sessions", lambda: session_factory(self.engine))  # type: ignore[no-any-return]

    def rebalance_repo(self, actor: str) -> SqlRebalanceRepo:
        from lpbot.store.rebalances import SqlRebalanceRepo

        return SqlRebalanceRepo(self.sessions, actor=actor)

    @property
    def reports_dir(self) -> Path:
        return self.overrides.report_dir or self.config.reports_path

    # ------------------------------------------------------------------------------ chains

    def chain_name(self, position: str | None = None) -> str:
        if position is not None:
            return self.config.position(position).chain
        if self.config.positions:
            return self.config.positions[0].chain
        return next(iter(self.config.chains))

    def chain(self, name: str | None = None) -> ResolvedChain:
        name = name or self.chain_name()
        chain = self.config.resolve_chain(name, self.environ)
        if self.overrides.rpc_url:
            chain = chain.model_copy(update={"rpc_url": self.overrides.rpc_url})
        return chain

    def w3(self, name: str | None = None) -> Web3:
        """A connection to the chain, checked: it answers, with the configured chain id."""
        name = name or self.chain_name()
        return self._cached(f"w3:{name}", lambda: self._connect(name))  # type: ignore[no-any-return]

    def _connect(self, name: str) -> Web3:
        from lpbot.chain.rpc import connect, redact_url

        chain = self.chain(name)
        w3 = connect(chain.rpc_url)
        where = redact_url(chain.rpc_url)
        try:
            answered = int(w3.eth.chain_id)
        except Exception as exc:
            reason = _no_answer_reason(exc)
            hint = (
                "start it with `lpbot devnet up`"
                if chain.manifest is not None
                else f"check chains.{name} in {self.source}"
            )
            raise RetryLater(
                f"the RPC of chain {name} at {where} does not answer ({reason}); {hint}"
            ) from None
        if answered != chain.chain_id:
            raise NeedsAttention(
                f"the RPC of chain {name} at {where} serves chain id {answered}, not the "
                f"configured {chain.chain_id}; point chains.{name} at the right node"
            )
        self._cache[f"chain_id:{name}"] = answered  # what a moved node must serve too
        return w3

    def manifest(self, name: str | None = None) -> Manifest:
        """The chain's addresses: the devnet's manifest, or the registry's for a live chain."""
        name = name or self.chain_name()

        def build() -> Manifest:
            chain = self.chain(name)
            if chain.manifest is not None:
                if self.overrides.rpc_url:
                    return chain.manifest.model_copy(update={"rpc_url": chain.rpc_url})
                return chain.manifest
            from lpbot.chain.book import registry_manifest

            return registry_manifest(self.w3(name), chain.rpc_url)

        return self._cached(f"manifest:{name}", build)  # type: ignore[no-any-return]

    def book(self, name: str | None = None) -> AddressBook:
        """The chain's address book: the manifest's tokens and pools, and every other token
        and pool read from the chain when first asked (``lpbot.chain.book``); one per chain."""
        from lpbot.chain.book import AddressBook

        name = name or self.chain_name()
        return self._cached(  # type: ignore[no-any-return]
            f"book:{name}", lambda: AddressBook.of(self.w3(name), self.manifest(name))
        )

    # --------------------------------------------------------------------------- positions

    def position(self, name: str | None = None) -> PositionConfig:
        """Position ``name``, or the only (first) one when no name is given."""
        if name is not None:
            return self.config.position(name)
        if not self.config.positions:
            raise ConfigError(f"no [[positions]] in {self.source}")
        return self.config.positions[0]

    def position_for(self, *, token_id: int | None = None, pool: str | None = None) -> str | None:
        """The configured position that a command about NFT ``token_id`` or ``pool`` (a
        manifest's pool name, or an address) is about: the one whose ``token_id`` it is or
        whose NFTs the store has managed, else the one in that pool (on its chain); None when
        none is (the defaults apply then)."""
        positions = self.config.positions
        if token_id is not None:
            from lpbot.jobs.runtime import known_tokens

            for pos in positions:
                if pos.token_id == token_id or token_id in known_tokens(self.sessions, pos.name):
                    return pos.name
        if pool is not None:
            for pos in positions:
                manifest = self.manifest(pos.chain)
                if _same_pool(manifest, pos.pool, pool):
                    return pos.name
        return None

    def rebalance_position(self, key: int | str) -> str | None:
        """The configured position a command about rebalance ``key`` (its id, or its report's
        id) is about: one on the rebalance's chain, the one managing its NFT first; None when
        no configured chain is the rebalance's (the defaults apply then)."""
        if not self.config.positions:
            return None
        from lpbot.report.chains import configured_chains

        repo = self.rebalance_repo("lpbot")
        record = repo.get(key) if isinstance(key, int) else repo.by_report(key)
        if record is None:
            return None
        chains = configured_chains(self.config, self.environ)
        names = {c.name for c in chains if c.chain_id == record.chain_id}
        on_chain = [p.name for p in self.config.positions if p.chain in names]
        if not on_chain:
            return None
        mine = self.position_for(token_id=record.token_id)
        return mine if mine in on_chain else on_chain[0]

    def policy(self, position: str | None = None) -> RebalancePolicy:
        """The position's rebalance policy and strategy, with any slippage override."""
        import dataclasses

        policy = self.position(position).build_policy()
        if self.overrides.slippage_bps is not None:
            policy = dataclasses.replace(policy, slippage_bps=self.overrides.slippage_bps)
        return policy

    def slippage_setting(self, position: str | None = None) -> tuple[float | None, str]:
        """The slippage set for ``position`` and where: ``--slippage-bps``, or the policy's
        ``slippage_bps`` when written; else (None, why): each plan derives its own from the
        range's width (``execution.max_sandwich_bps``)."""
        if self.overrides.slippage_bps is not None:
            return self.overrides.slippage_bps, "--slippage-bps"
        if self.config.positions:
            pos = self.position(position)
            if "slippage_bps" in pos.policy.model_fields_set:
                return pos.policy.slippage_bps, f"positions.{pos.name}.policy.slippage_bps"
        m = self.config.execution.max_sandwich_bps
        return None, (
            "no slippage_bps set: derived per plan from the range's width, a sandwich taking at "
            f"most {m} bps of the position (execution.max_sandwich_bps), at most "
            "300 bps"
        )

    def slippage_bps(self, position: str | None = None) -> float:
        if self.overrides.slippage_bps is not None:
            return self.overrides.slippage_bps
        if not self.config.positions:
            return PositionConfig.model_fields["policy"].default.slippage_bps  # type: ignore[no-any-return]
        return self.position(position).policy.slippage_bps

    # ----------------------------------------------------------------------------- signers

    def keystore(self, name: str) -> KeystoreRef:
        ref = self.config.signer.keystores.get(name)
        if ref is None:
            known = ", ".join(sorted(self.config.signer.keystores)) or "none"
            raise ConfigError(f"no keystore {name!r} in [signer.keystores] (have: {known})")
        return ref

    def signer(self, name: str) -> KeystoreSigner:
        """Keystore ``name``'s signer; decrypted on its first signature."""
        return self._cached(  # type: ignore[no-any-return]
            f"signer:{name}", lambda: KeystoreSigner(name, self.keystore(name))
        )

    def expected_addresses(self) -> dict[str, str]:
        """Keystore name -> the address the configuration expects it to hold."""
        out = {n: r.address for n, r in self.config.signer.keystores.items() if r.address}
        for _where, safe in self.config.safes():
            for owner in safe.owners:
                if owner.keystore is not None:
                    out.setdefault(owner.keystore, owner.address)
        return out

    def chain_signer(self, chain: str | None = None) -> ChainSigner:
        """Chain ``chain``'s Safe, module and sender (None: ``chain_name()``'s)."""
        return self.config.chain_signer(chain or self.chain_name())

    def sender(self, chain: str | None = None) -> Signer | None:
        """The keystore that sends and pays gas on ``chain`` (None: the first chain)."""
        name = self.chain_signer(chain).sender
        return self.signer(name) if name else None

    def owner_signers(
        self, approval: SignedApproval | None = None, chain: str | None = None
    ) -> list[Signer]:
        """The owners of ``chain``'s Safe (None: the first chain's) the bot signs for: each
        keystore owner, and the MPC owner (this host's party and the co-signer) with
        ``approval`` (a person's) or, without it, the approvals of the bot's policy key
        (``auto_execute.approver``)."""
        safe = self.chain_signer(chain).safe
        if safe is None:
            return []
        out: list[Signer] = []
        for o in safe.owners:
            if o.keystore is not None:
                out.append(self.signer(o.keystore))
            elif o.mpc:
                out.append(self.mpc_owner(approval))
        return out

    def mpc_owner(
        self, approval: SignedApproval | None = None, *, policy: bool = True
    ) -> MpcSafeOwner:
        """The MPC Safe owner of ``[signer.mpc]``. Its co-signer signs only an approved report:
        ``approval`` (a person's, for that report alone), else (with ``policy``, the daemon)
        approvals signed by the bot's policy key (``auto_execute.approver``), else none
        (signing then says what is missing)."""
        from lpbot.signing.mpc.safe_owner import (
            MpcSafeOwner,
            given_approval,
            no_approval,
            policy_approvals,
        )

        mpc = self.config.signer.mpc
        if mpc is None:
            raise ConfigError(f"no [signer.mpc] in {self.source}")
        auto = self.config.auto_execute
        if approval is not None:
            return MpcSafeOwner(mpc, given_approval(approval))
        if policy and auto.approver is not None:
            key = self.signer(auto.approver)
            return MpcSafeOwner(mpc, policy_approvals(key, auto.approval_ttl_seconds))
        return MpcSafeOwner(mpc, no_approval)

    def operator(self, chain: str | None = None) -> Signer | None:
        """The module operator's keystore on ``chain`` (None: the first chain)."""
        module = self.chain_signer(chain).module
        return self.signer(module.operator) if module is not None else None

    # ------------------------------------------------------------------------------ prices

    def pricer(self, chain: str | None = None) -> Any:
        """The chain's price source (``lpbot.pricing``) as ``[pricing]`` configures it: its
        pools, its Chainlink feeds, or (the devnet only) fixed marks; the same marks every
        surface uses. A token none of the chain's known pools prices is priced through the
        pools its factory has of it (``AddressBook.price_routes``)."""
        from lpbot.pricing.marks import chain_pricer

        name = chain or self.chain_name()
        settings = self.config.pricing.pricing_config()
        return self._cached(
            f"pricer:{name}",
            lambda: chain_pricer(
                self.w3(name), self.manifest(name), settings, book=self.book(name)
            ),
        )

    def chain_tokens(self, name: str) -> list[str]:
        """The token symbols of chain ``name``: the devnet manifest's, or the registry's (no
        RPC is asked)."""
        from lpbot.chain.registry import CHAINS

        chain = self.chain(name)
        if chain.manifest is not None:
            return sorted(chain.manifest.tokens)
        info = CHAINS.get(chain.chain_id)
        return sorted(t.symbol for t in info.tokens.values()) if info else []

    def pricing_problems(
        self, *, online: bool = False, chains: Collection[str] | None = None
    ) -> list[str]:
        """What ``[pricing]`` cannot do here, each naming its key: ``pricing.stable`` that is
        not a token of a configured chain; with ``online``, an enabled position's token the
        configured source has no price route for (the chain is asked for the pool's tokens),
        of the positions on ``chains`` (default: every chain)."""
        pricing = self.config.pricing
        problems: list[str] = []
        stable_ok: set[str] = set()
        for name in self.config.chains:
            try:
                tokens = self.chain_tokens(name)
            except ConfigError:
                continue  # the chain's own check says why
            if pricing.source != "fixed" and pricing.stable not in tokens:
                problems.append(
                    f"pricing.stable: {pricing.stable!r} is not a token of chain {name} "
                    f"(its tokens: {', '.join(tokens)})"
                )
            else:
                stable_ok.add(name)
        if not online:
            return problems
        for pos in self.config.positions:
            if not pos.enabled or pos.chain not in stable_ok:
                continue
            if chains is not None and pos.chain not in chains:
                continue
            pricer = self.pricer(pos.chain)
            for symbol in self.position_symbols(pos.name):
                routed = pricer.pools.has_route(symbol) or (
                    pricer.feeds is not None and pricer.feeds.has_route(symbol)
                )
                if routed:
                    continue
                key = "pricing.source" if pricing.source != "pools" else "pricing.stable"
                value = pricing.source if key == "pricing.source" else pricing.stable
                problems.append(
                    f"{key} = {value!r}: no price route for {symbol} on {pos.chain}, a token of "
                    f"position {pos.name} (its marks could not be taken)"
                )
        return problems

    def position_symbols(self, position: str) -> tuple[str, ...]:
        """The symbols of ``position``'s pool tokens: a known pool's, else read from the pool
        and its tokens' contracts (``AddressBook.pool``)."""
        from lpbot.chain.book import NotAToken, UnknownPool

        pos = self.position(position)
        try:
            info = self.book(pos.chain).pool(pos.pool)
        except (UnknownPool, NotAToken) as exc:
            raise ConfigError(f"positions.{pos.name}.pool: {exc}") from None
        return info.token0, info.token1

    # --------------------------------------------------------------------------- execution

    def execution_context(self, position: str | None = None, *, actor: str) -> ExecutionContext:
        """The rebalance steps' context for ``position``'s chain (or the first chain): its
        Safe, sender and operator keys (unlocked on first use) and gas limits, the reports
        directory and the policy's slippage."""
        from lpbot.execution.service import chain_context
        from lpbot.jobs.alerts import Alert

        chain_name = self.chain_name(position) if position else self.chain_name()
        chain = self.chain(chain_name)
        w3, manifest = self.w3(chain_name), self.manifest(chain_name)
        from lpbot.execution.plan import MAX_SLIPPAGE_BPS

        which = position if position or self.config.positions else None
        explicit, source = self.slippage_setting(which)
        twap = self.config.execution.max_twap_deviation_bps
        overrides: dict[str, object] = {"pricer": self.pricer(chain_name)}
        if explicit is None:
            # each plan's slippage from its range's width; its TWAP bound at most that
            overrides.update(
                max_sandwich_bps=self.config.execution.max_sandwich_bps,
                max_twap_deviation_bps=MAX_SLIPPAGE_BPS if twap is None else twap,
                slippage_source=source,
            )
        else:
            slippage = round(explicit)
            overrides.update(
                slippage_bps=slippage,
                slippage_source=source,
                # spot vs TWAP, at plan time and right before sending: never looser than it
                max_twap_deviation_bps=slippage if twap is None else min(twap, slippage),
            )
        signers = self.chain_signer(chain_name)
        limits = self.config.chain_limits(chain_name)
        safe_cfg = signers.safe
        # the execution policy ([execution]) and the chain's submit endpoint
        ex = self.config.execution
        notifier = self.notifier
        chain_cfg = self.config.chains[chain_name]
        overrides.update(
            max_price_move_share_bps=round(ex.max_price_move_share_pct * 100),
            gas_margin_bps=round(ex.gas_margin_pct * 100),
            max_fee_usd=limits.max_fee_usd,
            max_gas_price_wei=limits.max_gas_price_wei,
            replace_after=ex.replace_after_seconds,
            max_replacements=ex.max_replacements,
            public_fallback=chain_cfg.public_fallback,
            private_submission=chain.private_submission,
            submit_endpoint=chain.submit_endpoint,
            alert=lambda kind, text: notifier.notify(Alert(kind, text.split("\n")[0], text)),
        )
        if chain.submit_url:
            from lpbot.chain.rpc import connect

            # the configured endpoint, or the chain's default private one (Ethereum's)
            overrides["submit_w3"] = connect(chain.submit_url)
        executor: Signer | None = None
        operator: Signer | None = None
        if not self.devnet_defaults:
            executor, operator = self.sender(chain_name), self.operator(chain_name)
        module_cfg = signers.module
        if module_cfg is not None and module_cfg.address != "devnet":
            overrides["contracts"] = {
                **manifest.contracts,
                "LPRebalanceModule": str(module_cfg.address),
            }
        if chain.manifest is None:
            # a chain configured by its RPC URL: only the configured keys send, sign and
            # operate, never the devnet's development accounts
            if executor is None:
                raise ConfigError(
                    f"{signers.where['sender']}: name the keystore that sends transactions on "
                    f"chain {chain_name}"
                )
            operator = self.operator(chain_name)
            if safe_cfg is None or safe_cfg.address == "devnet":
                raise ConfigError(
                    f"{signers.where['safe']}.address: chain {chain_name} has no devnet Safe; "
                    "give the address of the Safe that owns the positions"
                )
            safe = str(safe_cfg.address)
        else:
            # a devnet (configured by its manifest): its bot account sends and operates where
            # no key is configured, and its demo Safe owns the positions unless one is given
            from lpbot.devnet.context import bot_signer

            executor = executor or bot_signer()
            operator = operator or bot_signer()
            if safe_cfg is not None and safe_cfg.address != "devnet":
                safe = str(safe_cfg.address)
            elif manifest.safe is not None:
                safe = manifest.safe
            else:
                raise ConfigError(
                    f"{signers.where['safe']}.address: chain {chain_name} (a fork?) has no demo "
                    "Safe; give the address of the Safe that owns the positions"
                )
        if chain.dry_run == "call":
            # only eth_call on the chain's node (zkSync Era, which Anvil cannot fork, or a
            # chain configured so): nothing is executed anywhere, no fork is started
            overrides["dry_run"] = "call"
        else:
            # every fork dry-run runs on a disposable Anvil forking the managed chain (the
            # devnet too): the impersonated approvals and the execution it makes can never land
            # on the chain itself, whatever is killed when; one fork process per context,
            # reset per dry-run
            from lpbot.chain.forksim import ForkSimulator

            sim = ForkSimulator(chain.rpc_url)
            self._cache.setdefault("simulators", []).append(sim)
            overrides["simulator"] = sim.fresh
        kill_at, pause_at = self.environ.get(KILL_AT_ENV), self.environ.get(PAUSE_AT_ENV)
        if kill_at or pause_at:
            overrides["checkpoint"] = _killer(kill_at or "", pause_at or "")
        pricer = overrides.pop("pricer")
        overrides["on_reconciled"] = self._ledger_recorder(position, w3, pricer, chain_name)
        return chain_context(
            w3, manifest, self.rebalance_repo(actor), self.reports_dir, safe=safe,
            executor=executor, operator=operator, pricer=pricer, book=self.book(chain_name),
            **overrides,
        )  # fmt: skip

    def _ledger_recorder(self, position: str | None, w3: Web3, pricer: Any, chain: str) -> Any:
        """Every reconciled rebalance on ``chain`` into the store's ledger of the position
        managing its NFT (``jobs.ledger.reconciled_recorder``), whoever executed it; NFT ids
        are per chain, so only that chain's positions are candidates."""
        from lpbot.jobs import ledger as ledger_store
        from lpbot.jobs.runtime import known_tokens

        candidates = (
            [position] if position else [p.name for p in self.config.positions if p.chain == chain]
        )

        def names(token_id: int) -> list[str]:
            return [
                n
                for n in candidates
                if self.config.position(n).token_id == token_id
                or token_id in known_tokens(self.sessions, n)
            ]

        return ledger_store.reconciled_recorder(self.sessions, w3, pricer, names)

    # ------------------------------------------------------------------------ hedge, jobs

    @property
    def notifier(self) -> Notifier:
        from lpbot.jobs.alerts import WebhookNotifier

        return self._cached("notifier", WebhookNotifier)  # type: ignore[no-any-return]

    def jobs(self) -> list[tuple[str, str, int]]:
        """Every job the configuration schedules: (job id, what, every N seconds)."""
        sched = self.config.schedule
        out: list[tuple[str, str, int]] = []
        hedged = (
            set(self.config.hedge.positions or [p.name for p in self.config.positions])
            if (self.config.hedge is not None)
            else set()
        )
        for p in self.config.positions:
            if not p.enabled:
                continue
            out.append((f"monitor:{p.name}", "monitor", sched.monitor_seconds))
            out.append(
                (f"rebalance_check:{p.name}", "rebalance check", sched.rebalance_check_seconds)
            )
            if p.name in hedged:
                out.append((f"hedge_sync:{p.name}", "hedge sync", sched.hedge_sync_seconds))
        return out

    def follow_manifests(self) -> list[str]:
        """Point every connected devnet chain at the RPC URL its manifest names now (``lpbot
        devnet up`` found its port taken and started on another): the clients, and the dry-run
        forks of the old URL, follow. One line per chain that moved (empty: none did)."""
        from lpbot.chain.rpc import CountingHTTPProvider, redact_url
        from lpbot.devnet.manifest import Manifest

        moved = []
        for name, chain in self.config.chains.items():
            w3 = self._cache.get(f"w3:{name}")
            if chain.manifest is None or w3 is None or self.overrides.rpc_url:
                continue
            try:
                read = Manifest.read(chain.manifest)
            except (OSError, ValueError):  # being rewritten, or gone with the devnet: next time
                continue
            url = read.rpc_url
            old = str(getattr(w3.provider, "endpoint_uri", ""))
            if not url or url == old:
                continue
            served = self._cache.get(f"chain_id:{name}")
            answered = read.chain_id if read.chain_id != served else _chain_id_at(url)
            if answered != served:  # another chain: never followed, the node stays "down"
                log.error(
                    "chain %s: its manifest now names %s, which serves chain id %s, not %s: "
                    "not followed",
                    name,
                    redact_url(url),
                    answered,
                    served,
                )
                continue
            if isinstance(w3.provider, CountingHTTPProvider):
                w3.provider.follow(url)
            else:
                w3.provider.endpoint_uri = url
            for sim in self._cache.get("simulators", []):
                if sim.rpc_url == old:
                    sim.follow(url)
            log.warning("chain %s: its manifest moved the node to %s", name, redact_url(url))
            moved.append(f"chain {name}: {redact_url(old)} -> {redact_url(url)} (its manifest)")
        return moved

    def close(self) -> None:
        for sim in self._cache.pop("simulators", []):
            sim.close()
        engine = self._cache.pop("engine", None)
        if engine is not None:
            engine.dispose()


def _same_pool(manifest: Any, a: str, b: str) -> bool:
    """Whether pool names or addresses ``a`` and ``b`` are one pool of ``manifest``'s chain."""
    from eth_utils.address import is_address

    def address(pool: str) -> str | None:
        if is_address(pool):
            return pool.lower()
        try:
            return str(manifest.pool(pool).address).lower()
        except KeyError:
            return None

    found = address(a)
    return found is not None and found == address(b)

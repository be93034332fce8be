"""From a validated configuration to the live objects the jobs use (the one place that wires
concrete adapters together, with ``lpbot.cli``)."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker
from web3 import Web3

from lpbot.chain.forksim import ForkSimulator
from lpbot.chain.registry import chain as registry_chain
from lpbot.chain.rpc import connect
from lpbot.config import Config
from lpbot.devnet.context import devnet_context
from lpbot.devnet.fork import registry_manifest
from lpbot.errors import ConfigError
from lpbot.execution import service
from lpbot.jobs.alerts import Alert, Notifier, WebhookNotifier
from lpbot.jobs.tasks import ManagedPosition
from lpbot.signing.base import Signer
from lpbot.signing.local import LocalKeySigner
from lpbot.store import migrate
from lpbot.store.rebalances import SqlRebalanceRepo
from lpbot.store.session import make_engine, session_factory

log = logging.getLogger(__name__)


@dataclass
class Runtime:
    config: Config
    engine: Engine
    sessions: sessionmaker[Session]
    positions: dict[str, ManagedPosition] = field(default_factory=dict)
    notifier: Notifier = field(default_factory=WebhookNotifier)
    simulators: list[ForkSimulator] = field(default_factory=list)

    def close(self) -> None:
        for sim in self.simulators:
            sim.close()


def _keystore_signer(config: Config, name: str) -> Signer:
    ref = config.signer.keystores.get(name)
    if ref is None:
        raise ConfigError(f"signer: no keystore named {name!r} in [signer.keystores]")
    signer = LocalKeySigner.from_keystore(Path(ref.path), ref.password_env)
    if ref.address is not None and signer.address != ref.address:
        raise ConfigError(f"signer.keystores.{name}: holds {signer.address}, not {ref.address}")
    return signer


def _current_token(sessions: sessionmaker[Session], name: str) -> int | None:
    from lpbot.store import repo

    with sessions() as s:
        positions = repo.open_positions(s, label=name)
        return int(positions[-1].token_id) if positions else None


def build_runtime(
    config: Config, *, engine: Engine | None = None, notifier: Notifier | None = None
) -> Runtime:
    """Open the database (migrated), unlock the keys, and build every enabled position."""
    engine = engine or make_engine(config.resolve_database_url())
    migrate.upgrade(engine)
    sessions = session_factory(engine)
    runtime = Runtime(config, engine, sessions, notifier=notifier or WebhookNotifier())
    if config.signer.sender is None:
        raise ConfigError("signer.sender: name the keystore that sends transactions")
    executor = _keystore_signer(config, config.signer.sender)
    owners: list[Signer] = []
    if config.signer.safe is not None:
        owners = [
            _keystore_signer(config, o.keystore)
            for o in config.signer.safe.owners
            if o.keystore is not None
        ]
    auto = config.auto_execute
    auto_max = auto.max_value_usd if auto.enabled else None
    operator: Signer | None = None
    if config.signer.module is not None:
        operator = _keystore_signer(config, config.signer.module.operator)
    for pos in config.positions:
        if not pos.enabled:
            continue
        chain = config.resolve_chain(pos.chain)
        w3 = connect(chain.rpc_url)
        simulator = None
        if chain.manifest is not None:  # the devnet, or a fork started by `lpbot devnet up`
            manifest = chain.manifest
        else:  # a live chain: the registry's addresses, dry-runs on a local fork of it
            if not registry_chain(chain.chain_id).anvil_fork_supported:
                raise ConfigError(
                    f"positions.{pos.name}: chain {chain.chain_id} cannot be forked by Anvil, "
                    "and nothing is signed without a dry-run; lpbot cannot manage it yet"
                )
            manifest = registry_manifest(w3, chain.rpc_url)
            sim = ForkSimulator(chain.rpc_url)
            runtime.simulators.append(sim)
            simulator = sim.fresh
            if pos.token_id is None:
                raise ConfigError(f"positions.{pos.name}.token_id: required on a live chain")
        repo = SqlRebalanceRepo(sessions, actor=f"lpbot run ({pos.name})")
        safe_cfg = config.signer.safe
        safe = safe_cfg.address if safe_cfg is not None and safe_cfg.address != "devnet" else None
        ex = config.execution
        notifier_ = runtime.notifier
        ctx = devnet_context(
            w3,
            manifest,
            repo,
            config.reports_path,
            executor=executor,
            operator=operator,
            safe=safe,
            simulator=simulator,
            max_price_move_share_bps=round(ex.max_price_move_share_pct * 100),
            gas_margin_bps=round(ex.gas_margin_pct * 100),
            max_fee_usd=ex.max_fee_usd,
            replace_after=ex.replace_after_seconds,
            max_replacements=ex.max_replacements,
            submit_w3=connect(chain.submit_url) if chain.submit_url else None,
            public_fallback=chain.public_fallback,
            alert=lambda kind, text, n=notifier_: n.notify(Alert(kind, text.split("\n")[0], text)),
        )
        # after a rebalance the position lives on in a new NFT: the store knows which
        token_id = _current_token(sessions, pos.name) or pos.token_id or manifest.safe_position
        if token_id is None:
            raise ConfigError(f"positions.{pos.name}: no token_id, and the devnet has none")
        pool, token0, token1, _fee = service.pool_of_position(ctx, token_id)
        runtime.positions[pos.name] = ManagedPosition(
            name=pos.name,
            ctx=ctx,
            sessions=sessions,
            policy=pos.build_policy(),
            token_id=token_id,
            pool=pool,
            token0=token0,
            token1=token1,
            notifier=runtime.notifier,
            owner_signers=owners,
            auto_execute_max_usd=Decimal(auto_max) if auto_max is not None else None,
            auto_via=auto.via,
            ledger_from_first_snapshot=True,
        )
        if config.hedge is not None and (
            not config.hedge.positions or pos.name in config.hedge.positions
        ):
            _attach_hedge(config, runtime.positions[pos.name], w3, manifest.chain_id)
    return runtime


def _attach_hedge(config: Config, mp: ManagedPosition, w3: Web3, chain_id: int) -> None:
    """The ``[hedge]`` job of this position (``lpbot.hedge.wiring``)."""
    from lpbot.hedge.delta import risky_index
    from lpbot.hedge.wiring import build_hedge_runner

    assert config.hedge is not None
    risky = risky_index(*mp.symbols)
    npm = mp.ctx.contracts["NonfungiblePositionManager"]
    runner = build_hedge_runner(
        config.hedge,
        data_dir=config.data_dir,
        position_id=f"{chain_id}:{npm}:{mp.token_id}",
        token_id=mp.token_id,
        decimals=mp.decimals,
        risky=risky,
        now_ms=int(w3.eth.get_block("latest")["timestamp"]) * 1000,
    )
    mp.hedge, mp.hedge_runner, mp.hedge_risky = runner.controller, runner, risky

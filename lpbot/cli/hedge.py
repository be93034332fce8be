"""``lpbot hedge status|sync|flatten``: the delta hedge of one LP position, from the CLI.

Each command builds its objects from the one application context: the chain, the configured
position (its pool and current NFT; ``--position``, ``--pool``, ``--token-id`` override) and the
venue. Unset flags take the ``[hedge]`` section of the configuration when there is one, else
its defaults, and
the state directory is its ``data_dir/hedge``: the hedge ``lpbot run`` keeps is the one these
commands show, flatten and resume, through the same files and lock
(``lpbot.hedge.wiring.hedge_files``). The default venue is paper: its account
(``paper-<chain>-<npm>-<token id>.json``) continues from call to call, and its clock is the
chain's (the block timestamp), so funding accrues with devnet time. The controller's state
(step, order in flight, PnL ledger, alerts, kill switch) is
``hedge-<venue>-<chain>-<npm>-<token id>.json``.
``sync --dry-run`` runs the same controller against a ``DryRunExchange`` and an in-memory copy of
the state: reads are real, nothing is sent or saved.

Live venues (``--exchange binanceusdm|okx|bybit``, ``--sandbox`` for their testnet) take their
keys from the environment variables ``LPBOT_<VENUE>_KEY``/``_SECRET`` (and
``LPBOT_OKX_PASSWORD``, or those the configuration names) and use the wall clock. The LP delta
counts the position's uncollected fees in the hedged token unless the configuration says not.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from lpbot.cli.common import app, config_option, emit_json, json_option
from lpbot.errors import ConfigError
from lpbot.hedge.base import Clock, Exchange, ManualClock, SystemClock
from lpbot.hedge.controller import HedgeController, HedgeStatus, SyncResult
from lpbot.hedge.delta import (
    check_perp_symbol,
    lp_delta,
    perp_symbol,
    risky_index,
    risky_price,
)
from lpbot.hedge.dry import DryRunExchange
from lpbot.hedge.paper import (
    PAPER_MARKETS,
    FundingSeries,
    PaperAccount,
    PaperExchange,
)
from lpbot.hedge.plan import HedgeAction, HedgeConfig
from lpbot.hedge.state import (
    AlertKind,
    JsonStateStore,
    MemoryStateStore,
    StateStore,
    write_json_atomic,
)
from lpbot.hedge.wiring import HedgeFiles, default_setting, hedge_files, hedge_lock

if TYPE_CHECKING:
    from lpbot.chain.book import AddressBook
    from lpbot.chain.reader import PoolReader
    from lpbot.config import HedgeConfig as HedgeSection
    from lpbot.devnet.manifest import PoolInfo

__all__ = ["hedge"]

EXCHANGES = ("paper", "binanceusdm", "okx", "bybit")


@dataclass
class _Session:
    controller: HedgeController
    lp_delta: Decimal
    venue: str
    save: Callable[[], None]


def _nothing() -> None:
    pass


def _configured() -> tuple[Path, HedgeSection | None]:
    """The configuration's ``data_dir/hedge`` and ``[hedge]`` (the one application context)."""
    config = app().config
    return config.data_dir / "hedge", config.hedge


def _default(section: HedgeSection | None, name: str) -> Any:
    """A ``[hedge]`` setting: the configuration's, else the section's default (one place)."""
    return getattr(section, name) if section is not None else default_setting(name)


def _exact(value: object) -> Decimal:
    return value if isinstance(value, Decimal) else Decimal(repr(value))


@contextmanager
def _session(args: argparse.Namespace, *, dry_run: bool = False) -> Iterator[_Session]:
    """The hedge, under its lock from reading its files to ``save`` (``hedge_files``)."""
    from lpbot.chain.reader import PoolReader

    home, section = _configured()
    home = Path(args.home) if args.home else home
    venue = args.exchange or (section.exchange if section is not None else "paper")
    if section is not None and section.exchange != venue:
        section = None  # the configuration's hedge is on another venue: defaults only
    w3, manifest = app().w3(args.chain), app().manifest(args.chain)
    book = app().book(args.chain)  # a pool the manifest does not list is read from the chain
    pool = book.pool(args.pool)
    npm = manifest.contracts["NonfungiblePositionManager"]
    reader = PoolReader(
        w3,
        multicall=manifest.contracts["Multicall3"],
        tick_lens=manifest.contracts["TickLens"],
        position_manager=npm,
    )
    position_id = f"{manifest.chain_id}:{npm}:{args.token_id}"
    files = hedge_files(home, venue, position_id)
    with hedge_lock(files):
        yield _open(args, reader, pool, book, section, venue, position_id, files, dry_run)


def _open(
    args: argparse.Namespace,
    reader: PoolReader,
    pool: PoolInfo,
    book: AddressBook,
    section: HedgeSection | None,
    venue: str,
    position_id: str,
    files: HedgeFiles,
    dry_run: bool,
) -> _Session:
    snapshot = reader.fetch_pool_state(pool.address, token_ids=[args.token_id])
    risky = risky_index(pool.token0, pool.token1, args.hedge_token)
    d0, d1 = book.symbol_token(pool.token0).decimals, book.symbol_token(pool.token1).decimals
    include_fees = bool(_default(section, "include_uncollected_fees"))
    delta = lp_delta(
        snapshot, args.token_id, decimals0=d0, decimals1=d1, risky=risky, include_fees=include_fees
    )
    price = risky_price(snapshot, decimals0=d0, decimals1=d1, risky=risky)
    symbol = args.symbol or (
        section.symbol if section is not None else perp_symbol((pool.token0, pool.token1)[risky])
    )
    check_perp_symbol(
        symbol, (pool.token0, pool.token1)[risky], key="--symbol" if args.symbol else "hedge.symbol"
    )

    clock: Clock
    exchange: Exchange
    save: Callable[[], None] = _nothing
    if venue == "paper":
        clock = ManualClock(snapshot.block_timestamp * 1000)
        paper = _paper(args, files.paper, symbol, price, clock)
        exchange = paper

        def save() -> None:
            write_json_atomic(files.paper, paper.account().model_dump(mode="json"))
    else:
        from lpbot.hedge.ccxt_exchange import CcxtConfig, CcxtExchange, ExchangeId

        clock = SystemClock()
        keys: dict[str, Any] = {}
        if section is not None:  # the environment variables the configuration names
            keys = {"key_env": section.api_key_env, "secret_env": section.api_secret_env}
            keys["password_env"] = section.api_password_env
        sandbox = args.sandbox or (section is not None and section.sandbox)
        live: ExchangeId = venue  # type: ignore[assignment]  # one of EXCHANGES, not paper
        exchange = CcxtExchange(CcxtConfig.for_exchange(live, sandbox=sandbox, **keys))
    config = _plan_config(args, section, symbol)
    store: StateStore = JsonStateStore(files.state)
    if dry_run:
        exchange = DryRunExchange(exchange, clock)
        store = MemoryStateStore(store.load())
        save = _nothing
    controller = HedgeController(exchange, config, store, position_id=position_id, clock=clock)
    return _Session(controller, delta, exchange.name, save)


def _plan_config(
    args: argparse.Namespace, section: HedgeSection | None, symbol: str
) -> HedgeConfig:
    """The controller's configuration: each flag, else the configuration's ``[hedge]``, else
    its default (as ``lpbot run`` has it: ``lpbot.hedge.wiring.plan_config``)."""

    def pick(flag: Decimal | None, name: str) -> Decimal:
        return flag if flag is not None else _exact(_default(section, name))

    funding = args.max_funding_apr
    return HedgeConfig(
        symbol=symbol,
        band_abs=pick(args.band, "band_abs"),
        band_pct=pick(args.band_pct, "band_pct"),
        max_leverage=pick(args.max_leverage, "max_leverage"),
        max_funding_cost_apr=funding
        if funding is not None
        else _exact(_default(section, "max_funding_apr_pct")) / 100,
    )


def _paper(
    args: argparse.Namespace, path: Path, symbol: str, price: Decimal, clock: ManualClock
) -> PaperExchange:
    if path.exists():
        account = PaperAccount.model_validate_json(path.read_text())
        if account.spec.symbol != symbol:
            raise ConfigError(f"{path} holds a {account.spec.symbol} account, not {symbol}")
        return PaperExchange.from_account(account, reference_price=lambda: price, clock=clock)
    if symbol not in PAPER_MARKETS:
        known = ", ".join(PAPER_MARKETS)
        raise ConfigError(f"no paper market for {symbol}; known: {known}")
    spec, book = PAPER_MARKETS[symbol]
    return PaperExchange(
        reference_price=lambda: price,
        clock=clock,
        spec=spec,
        book=book,
        funding=FundingSeries.constant(args.paper_funding_rate),
        seed=args.seed,
        initial_balance=args.paper_balance,
    )


def _fmt(x: Decimal | None, places: int = 4) -> str:
    return "-" if x is None else f"{x:,.{places}f}"


def render_status(s: HedgeStatus, venue: str, symbol: str) -> list[str]:
    distance = "-" if s.liquidation_distance is None else f"{s.liquidation_distance:.1%}"
    lines = [
        f"hedge of the LP position on {venue} {symbol}"
        + ("  [KILL SWITCH ENGAGED]" if s.killed else ""),
        f"  LP delta     {_fmt(s.lp_delta)}",
        f"  hedge        {_fmt(s.hedge)}",
        f"  net          {_fmt(s.net)}   (band +/-{_fmt(s.band)})",
        f"  mark         {_fmt(s.mark_price, 2)}",
        f"  funding      {s.funding_rate:.4%} next; last 24 h costs {s.funding_apr:.2%} a year",
        f"  margin       {_fmt(s.isolated_margin, 2)} isolated; equity {_fmt(s.equity, 2)}; "
        f"position leverage {_fmt(s.leverage, 2)}x",
        f"  liquidation  {_fmt(s.liquidation_price, 2)} ({distance} from the mark)",
        f"  PnL          realised {_fmt(s.pnl.realised, 2)}, unrealised {_fmt(s.pnl.unrealised, 2)}"
        f", fees -{_fmt(s.pnl.fees, 2)}, funding {_fmt(s.pnl.funding, 2)}"
        f" = {_fmt(s.pnl.total, 2)}",
    ]
    if s.pending is not None:
        lines.append(f"  in flight    {s.pending.client_order_id} (resolved on the next sync)")
    lines += [f"  alert        {a.kind.value}: {a.message}" for a in s.alerts]
    return lines


def render_sync(result: SyncResult, *, dry_run: bool = False, flatten: bool = False) -> list[str]:
    prefix = "[dry run] " if dry_run else ""
    d = result.decision
    if isinstance(d, HedgeAction):
        lines = [prefix + "; ".join(d.reasons)]
    else:
        lines = [prefix + f"no trade: {d.reason}"]
    for o in result.orders:
        lines.append(
            f"{prefix}{o.side.value} {o.filled}/{o.amount} at {_fmt(o.average_price, 2)} "
            f"(fee {_fmt(o.fee, 4)}, {o.status.value}, {o.client_order_id})"
        )
    if flatten:
        lines.append(f"hedge {_fmt(result.hedge)}; syncing is off until `hedge sync --resume`")
    else:
        lines.append(
            f"{prefix}LP delta {_fmt(result.lp_delta)}, hedge {_fmt(result.hedge)}, "
            f"net {_fmt(result.net)}"
        )
    lines += [f"ALERT {a.kind.value}: {a.message}" for a in result.alerts]
    return lines


def _cmd_status(args: argparse.Namespace) -> int:
    with _session(args) as s:
        status = s.controller.status(s.lp_delta)
        s.save()
    print("\n".join(render_status(status, s.venue, s.controller.config.symbol)))
    return 0


def _cmd_sync(args: argparse.Namespace) -> int:
    with _session(args, dry_run=args.dry_run) as s:
        if args.resume:
            s.controller.resume()
        result = s.controller.sync(s.lp_delta)
        s.save()
    print("\n".join(render_sync(result, dry_run=args.dry_run)))
    return 1 if result.alerts else 0


def _cmd_flatten(args: argparse.Namespace) -> int:
    with _session(args) as s:
        result = s.controller.flatten()
        s.save()
    print("\n".join(render_sync(result, flatten=True)))
    alerts = [a for a in result.alerts if a.kind is not AlertKind.KILL_SWITCH]
    return 1 if alerts else 0


# ----------------------------------------------------------------------------------- CLI


def _args(**given: Any) -> argparse.Namespace:
    """The command's options; the position (``--position``, else the first hedged one) gives
    the chain, pool and current NFT when they are not given. Everything else unset is taken
    from ``[hedge]`` (or its defaults) by ``_session``."""
    a = app()
    c = a.config
    names = [p.name for p in c.positions]
    if c.hedge is not None and c.hedge.positions:
        names = list(c.hedge.positions)
    name = given.pop("position") or (names[0] if names else None)
    pos = a.position(name) if name is not None else None
    if given["token_id"] is None and pos is not None:
        from lpbot.jobs.runtime import current_token

        given["token_id"] = current_token(a.sessions, pos.name) or pos.token_id
    if given["pool"] is None and pos is not None:
        given["pool"] = pos.pool
    if given["pool"] is None or given["token_id"] is None:
        raise ConfigError(
            "which position? give --pool and --token-id, or configure [[positions]] with token_id"
        )
    given["chain"] = pos.chain if pos is not None else None
    return argparse.Namespace(**given)


class _DecimalIn(click.ParamType):  # type: ignore[type-arg]
    """A finite decimal above ``low`` (or at it, unless ``strict``) and at most ``high``, so
    that a bad value is one usage line before anything is read or sent."""

    name = "decimal"

    def __init__(self, low: Decimal, high: Decimal | None = None, *, strict: bool = True):
        self.low, self.high, self.strict = low, high, strict

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, Decimal):
            return value
        try:
            number = Decimal(str(value))
        except ArithmeticError:
            self.fail(f"not a number: {value!r}", param, ctx)
        below = number <= self.low if self.strict else number < self.low
        if not number.is_finite() or below or (self.high is not None and number > self.high):
            bound = f"> {self.low}" if self.strict else f">= {self.low}"
            if self.high is not None:
                bound += f" and <= {self.high}"
            self.fail(f"must be {bound}, got {value}", param, ctx)
        return number


def _common(f: Any) -> Any:
    options = [
        config_option,
        click.option("--position", help="the configured position (default: the first hedged)"),
        click.option("--pool", help="pool name or address (overrides positions.pool)"),
        click.option("--token-id", type=int, help="the NFT (default: the position's current one)"),
        click.option("--exchange", type=click.Choice(EXCHANGES), help="overrides hedge.exchange"),
        click.option(
            "--sandbox/--no-sandbox",
            default=None,
            help="the exchange's testnet (overrides hedge.testnet)",
        ),
        click.option("--hedge-token", help="pool token to hedge (default: the non-stablecoin)"),
        click.option("--symbol", help="perp symbol (overrides hedge.symbol)"),
        click.option(
            "--band", type=_DecimalIn(Decimal(0)), help="band in tokens (overrides hedge.band_abs)"
        ),
        click.option(
            "--band-pct",
            type=_DecimalIn(Decimal(0), strict=False),
            help="band, % of delta (overrides hedge.band_pct)",
        ),
        click.option(
            "--max-leverage",
            type=_DecimalIn(Decimal(0), Decimal(125)),
            help="overrides hedge.max_leverage",
        ),
        click.option(
            "--max-funding-apr",
            type=Decimal,
            help="as a fraction a year (overrides hedge.max_funding_apr_pct / 100)",
        ),
        click.option(
            "--state-dir", "home", help="hedge state directory (overrides <data_dir>/hedge)"
        ),
        click.option(
            "--paper-balance",
            type=_DecimalIn(Decimal(0)),
            default=Decimal(100_000),
            show_default=True,
            help="paper venue, first use only",
        ),
        click.option(
            "--paper-funding-rate",
            type=Decimal,
            default=Decimal("0.0001"),
            show_default=True,
            help="paper venue, first use only",
        ),
        click.option("--seed", type=int, default=0, show_default=True),
    ]
    for option in reversed(options):
        f = option(f)
    return f


@click.group()
@config_option
def hedge() -> None:
    """The perp hedge of a position: status, sync, flatten (from [hedge] and the position)."""


def _status_json(s: HedgeStatus, venue: str, symbol: str) -> dict[str, Any]:
    from dataclasses import asdict, is_dataclass

    body = asdict(s) if is_dataclass(s) else dict(vars(s))
    return {"venue": venue, "symbol": symbol, **body}


@hedge.command()
@_common
@json_option
def status(as_json: bool, **given: Any) -> int:
    """LP delta, hedge, net, funding, margin, liquidation."""
    args = _args(**given)
    if not as_json:
        return _cmd_status(args)
    with _session(args) as s:
        st = s.controller.status(s.lp_delta)
        s.save()
    emit_json(_status_json(st, s.venue, s.controller.config.symbol))
    return 0


@hedge.command()
@_common
@click.option("--dry-run", is_flag=True, help="simulate orders; save nothing")
@click.option("--resume", is_flag=True, help="release the kill switch first")
def sync(dry_run: bool, resume: bool, **given: Any) -> int:
    """Trade the hedge back into its band."""
    return _cmd_sync(_args(dry_run=dry_run, resume=resume, **given))


@hedge.command()
@_common
def flatten(**given: Any) -> int:
    """Kill switch: close the hedge, stop syncing."""
    return _cmd_flatten(_args(**given))

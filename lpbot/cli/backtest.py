"""``lpbot data fetch|import-csv`` and ``lpbot backtest run|sweep|study``: parse, call, print.

A backtest's parameters come from ``--backtest-config`` (a JSON file of ``BacktestConfig``
fields) and the options, which override single fields.
"""

from __future__ import annotations

import argparse
import csv
import json
import re
import sys
from pathlib import Path
from typing import Any

import click

from lpbot.cli.common import config_option, emit_json, progress
from lpbot.errors import ConfigError, LpbotError, Refused


def _value(text: str) -> Any:
    low = text.strip().lower()
    if low in ("none", "null"):
        return None
    if low in ("true", "false"):
        return low == "true"
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def _pairs(items: list[str] | None, what: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"{what} {item!r}: expected KEY=VALUE")
        out[key.strip()] = _value(value)
    return out


def _series_csv(path: str | None) -> tuple[tuple[float, float], ...] | None:
    """A two-column CSV (unix timestamp, value), with or without a header."""
    if not path:
        return None
    rows: list[tuple[float, float]] = []
    try:
        with open(path, newline="") as f:
            for row in csv.reader(f):
                try:
                    rows.append((float(row[0]), float(row[1])))
                except (ValueError, IndexError):
                    continue  # the header
    except OSError as exc:
        raise ConfigError(f"{path}: {exc.strerror or exc}") from None
    if not rows:
        raise ConfigError(f"{path}: no (timestamp, value) rows")
    return tuple(rows)


_SERIES_OPTIONS = (("gas_price_series", "gas_price_csv"), ("native_usd_series", "native_usd_csv"))


def _config_file(args: argparse.Namespace) -> dict[str, Any]:
    """The --backtest-config JSON file: BacktestConfig fields and an optional "sweep" section."""
    if not args.config:
        return {}
    try:
        data = json.loads(Path(args.config).read_text())
    except (OSError, ValueError) as exc:
        raise ConfigError(f"--backtest-config {args.config}: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{args.config}: expected a JSON object")
    return data


def sweep_executor(args: argparse.Namespace) -> tuple[str, str | None]:
    """The sweep's executor and Ray address: the options, else the config file's "sweep"
    section (``{"executor": "ray", "ray_address": "ray://head:10001"}``), else processes."""
    section = _config_file(args).get("sweep") or {}
    executor = args.executor or section.get("executor") or "process"
    address = args.ray_address or section.get("ray_address")
    if executor not in ("process", "ray"):
        raise ConfigError(f"sweep executor {executor!r}: process or ray")
    return executor, address


def _config(args: argparse.Namespace) -> Any:
    from lpbot.backtest.config import BacktestConfig

    data = {k: v for k, v in _config_file(args).items() if k != "sweep"}
    config = BacktestConfig().with_overrides(data)
    overrides: dict[str, Any] = {}
    if args.strategy:
        overrides["strategy.kind"] = args.strategy
    overrides.update({f"strategy.{k}": v for k, v in _pairs(args.param, "--param").items()})
    overrides.update({f"policy.{k}": v for k, v in _pairs(args.policy, "--policy").items()})
    for name in (
        "capital_usd", "volatile_share", "quote_token", "quote_usd", "chain", "gas_price_gwei",
        "native_usd", "slippage_bps", "hedge_ratio", "hedge_band", "hedge_fee_bps",
        "funding_rate_8h", "label",
    ):  # fmt: skip
        value = getattr(args, name)
        if value is not None:
            overrides[name] = value
    if args.interval is not None:
        overrides["decision_interval_seconds"] = args.interval
    if args.start is not None:
        overrides["start_timestamp"] = args.start
    if args.end is not None:
        overrides["end_timestamp"] = args.end
    if args.no_costs:
        overrides["no_costs"] = True
    _check_chain(getattr(args, "data", None), overrides, data.get("chain"))
    from lpbot.backtest.store import data_series

    stored = data_series(args.data) if getattr(args, "data", None) else {}
    for key, option in (
        ("gas_price_series", "gas_price_csv"),
        ("native_usd_series", "native_usd_csv"),
    ):
        series = _series_csv(getattr(args, option)) or stored.get(key)
        if series:
            overrides[key] = series
    funding = _series_csv(args.funding_csv)
    if funding:
        overrides["funding_series"] = funding
    return config.with_overrides(overrides)


def _data_chain(path: str | None) -> tuple[str, int | None] | None:
    """The chain a dataset comes from (its name, and its id when fetched), when it says."""
    from lpbot.backtest.store import EventStore
    from lpbot.chain.registry import CHAINS

    if not path or not Path(path).is_file():
        return None
    with EventStore(path) as store:
        meta = store.meta()
        named = store.get_json("chain")
    if meta is not None:
        known = CHAINS.get(meta.chain_id)
        name = known.name if known else ("devnet" if meta.chain_id == 31337 else "")
        return name, meta.chain_id
    return (str(named), None) if named else None


def _check_chain(path: str | None, overrides: dict[str, Any], configured: Any) -> None:
    """Costs are the data's chain's: ``chain`` from the dataset unless given; refused when
    given as another live chain, or when the data's chain has no typical costs here."""
    from lpbot.backtest.costs import GAS_UNITS

    found = _data_chain(path)
    if found is None:
        return
    name, chain_id = found
    given = overrides.get("chain", configured)
    where = f"chain {chain_id}" if chain_id is not None else "its file names"
    if given is None:
        if name not in GAS_UNITS:
            raise ConfigError(
                f"{path} is from {name or 'a chain'} ({where}), which has no typical costs "
                "here: give --chain (whose gas units to use) and --gas-price-gwei"
            )
        overrides["chain"] = name
    elif name in GAS_UNITS and name != "devnet" and given != name:
        raise ConfigError(
            f"{path} is from {name} ({where}), not {given}: leave --chain out, or give {name}"
        )


# ------------------------------------------------------------------------------- commands


def _cmd_fetch(args: argparse.Namespace) -> int:
    from lpbot.backtest.fetch import fetch_pool_events
    from lpbot.chain.rpc import connect, redact_url

    out = Path(args.out or Path.cwd() / ".lpbot" / "data" / f"{args.pool}-{args.from_block}.sqlite")
    w3 = connect(args.rpc)
    where = redact_url(args.rpc)
    print(f"fetching {args.pool} blocks {args.from_block}..{args.to_block} from {where}")
    r = fetch_pool_events(
        w3, args.pool, args.from_block, args.to_block, out, multicall=args.multicall,
        creation_block=args.creation_block, max_range=args.max_range, progress=_progress,
    )  # fmt: skip
    if sys.stderr.isatty():
        print(file=sys.stderr)
    state = (
        "empty (from the pool's creation)"
        if r.start_state_empty
        else f"block {r.start_state_block}"
    )
    print(
        f"{r.events_total} events ({r.events_new} new) in {r.log_requests} eth_getLogs "
        f"({r.halvings} halvings, {r.retries} retries), {r.round_trips} round trips, "
        f"{r.seconds:.1f} s"
    )
    print(
        f"pool created at block {r.creation_block}; start state {state}; events up to block "
        f"{r.to_block} ({r.confirmations} confirmations behind the head)"
    )
    print(f"dataset: {out}")
    return 0


def _progress(p: Any) -> None:
    """One line on a terminal: blocks of logs fetched, requests, the time left."""
    if not sys.stderr.isatty() or not p.blocks_total:
        return
    eta = "?" if p.eta_seconds is None else f"{p.eta_seconds:,.0f} s"
    print(
        f"\r{p.blocks_done:,}/{p.blocks_total:,} blocks ({p.blocks_done / p.blocks_total:.0%}), "
        f"{p.requests} requests, ETA {eta}   ",
        end="", file=sys.stderr, flush=True,
    )  # fmt: skip


# demeter-fetch's file names: {chain}-{pool}-{date}.minute.csv
_DEMETER_NAME = re.compile(r"^([a-z]+)-0x[0-9a-fA-F]{40}-")


def _cmd_import_csv(args: argparse.Namespace) -> int:
    from lpbot.backtest.bars import import_csv, save_bars
    from lpbot.backtest.store import EventStore

    bars = import_csv(
        args.paths, fee=args.fee, decimals0=args.decimals0, decimals1=args.decimals1,
        tick_spacing=args.tick_spacing, fee_protocol=args.fee_protocol, fmt=args.format,
        symbol0=args.symbol0, symbol1=args.symbol1,
    )  # fmt: skip
    from lpbot.backtest.store import save_data_series

    series = {key: _series_csv(getattr(args, option)) for key, option in _SERIES_OPTIONS}
    chains = {m.group(1) for m in (_DEMETER_NAME.match(Path(p).name) for p in args.paths) if m}
    if len(chains) > 1:
        raise ConfigError(f"files of several chains: {', '.join(sorted(chains))}")
    save_bars(bars, args.out)  # every input read and checked first
    with EventStore(args.out) as store:
        store.set_json("chain", chains.pop() if chains else None)
    print(f"{len(bars)} bars of {bars.interval} s ({bars.source}) written to {args.out}")
    for key, rows in series.items():
        if rows:
            save_data_series(args.out, key, rows)
            print(f"{key.replace('_', ' ')}: {len(rows)} points kept with the bars")
    return 0


def _ratio(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}"


def _print_result(result: Any) -> None:
    m, b = result.metrics, result.breakdown
    period = (
        f"{m.period_seconds / 3600:g} h" if m.period_seconds >= 3600 else f"{m.period_seconds:g} s"
    )
    print(
        f"[{result.engine}] {m.days:.2f} days: ${b.initial_usd:,.2f} -> ${b.final_usd:,.2f} "
        f"({m.net_return:+.3%}, APR {m.apr:+.2%}); max drawdown {m.max_drawdown:.2%}, "
        f"Sharpe {_ratio(m.sharpe)}, Sortino {_ratio(m.sortino)} ({period} log returns), "
        f"in range {m.time_in_range:.1%}, {m.rebalances} rebalances, {m.compounds} compounds, "
        f"turnover {m.turnover:.2f}x"
    )
    if m.ruined_at is not None:
        from datetime import UTC, datetime

        at = datetime.fromtimestamp(m.ruined_at, UTC).strftime("%Y-%m-%d %H:%M UTC")
        print(f"  RUINED: the value fell to zero at {at}; the bot stopped there (return -100%)")
    print(
        f"  price {b.price:+,.2f}  IL {b.impermanent_loss:+,.2f}  fees {b.fees:+,.2f}  "
        f"swap fees and impact {-b.swap_costs:+,.2f}  hedge {b.hedge_pnl:+,.2f} (after its fees "
        f"{b.hedge_fees:,.2f})  funding {b.funding:+,.2f}  gas {-b.gas:+,.2f}  "
        f"slippage {-b.slippage:+,.2f}"
    )
    print(
        f"  LP minus hold {m.lp_vs_hold:+.3%} (hold {m.hold_return:+.3%}), minus 50/50 "
        f"{m.lp_vs_fifty:+.3%}, minus passive full range {m.lp_vs_full_range:+.3%}, net of costs"
    )
    costs = ", ".join(f"{k.replace('_', ' ')} ${v:,.2f}" for k, v in m.costs_usd.items() if v)
    print(f"  costs: {costs or 'none'}")
    regime = result.notes.get("regime")
    if regime:
        hours = regime.get("seconds_in", {})
        line = (
            f"  market regime: {len(regime['transitions'])} changes, elevated "
            f"{hours.get('elevated', 0.0) / 3600:.1f} h, stressed "
            f"{hours.get('stressed', 0.0) / 3600:.1f} h, {regime['withdrawals']} withdrawals, "
            f"{regime['reentries']} re-entries"
        )
        missing = regime.get("signals_unavailable") or []
        if missing:
            line += f"; never measured on these bars (no reading, not calm): {', '.join(missing)}"
        print(line)
    from lpbot.backtest.validate import SMALL_SHARE

    share = result.notes.get("position_share", 0.0)
    if share > SMALL_SHARE:
        print(
            f"  warning: the position reaches {share:.1%} of the pool's in-range liquidity; the "
            f"bars engine is checked below {SMALL_SHARE:.0%} (it keeps history's volume): "
            "compare with --engine both, or use a smaller --capital-usd"
        )
    for key, source in result.notes.get("defaults", {}).items():
        print(f"  {key.replace('_', ' ')}: {source}")


def _cmd_run(args: argparse.Namespace) -> int:
    import contextlib
    import io
    import tempfile

    from lpbot.backtest.report import write_report

    if args.print_json:  # the summary on stdout, nothing else
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "summary.json"
            args.print_json, args.json = False, str(path)
            with contextlib.redirect_stdout(io.StringIO()):
                _cmd_run(args)
            click.echo(path.read_text().rstrip())
        return 0
    config = _config(args)
    saved_in = _saved_dir(args)  # a bad configuration stops here, before the run
    comparison: dict[str, Any] | None = None
    if args.engine == "both":
        from lpbot.backtest.dataset import load_dataset
        from lpbot.backtest.validate import compare_engines

        with progress("backtest: both engines"):
            exact, approx, diff = compare_engines(
                load_dataset(args.data), config, bar_interval=args.bar_interval
            )
        _print_result(exact)
        _print_result(approx)
        comparison = diff.as_dict()
        print(
            f"  bars vs exact: fees {diff.fees_diff:+.2%}, value {diff.value_diff:+.3%} of "
            f"capital ({'within' if diff.within_tolerance else 'OUTSIDE'} tolerance)"
        )
        if diff.why:
            print(f"  why: {diff.why}")
        result = exact
    elif args.engine == "exact":
        from lpbot.backtest.dataset import load_dataset
        from lpbot.backtest.exact import run_exact

        with progress("backtest: exact replay"):
            result = run_exact(load_dataset(args.data), config)
        _print_result(result)
    else:
        from lpbot.backtest.bars import load_bars
        from lpbot.backtest.vector import run_bars

        with progress("backtest: bars"):
            result = run_bars(load_bars(args.data, interval=args.bar_interval), config)
        _print_result(result)
    write_report(result, args.html, args.json, comparison)
    for path in (args.html, args.json):
        if path:
            print(f"wrote {path}")
    if saved_in is not None:
        from lpbot.backtest.saved import save_run

        print(f"saved for the dashboard: {save_run(saved_in, result, comparison)}")
    if comparison is not None and not comparison["within_tolerance"] and not args.allow_divergence:
        raise Refused(
            "the bars and exact engines disagree beyond the stated tolerance (see 'why' above); "
            "rerun with --allow-divergence to accept the numbers"
        )
    return 0


def _cmd_sweep(args: argparse.Namespace) -> int:
    from dataclasses import asdict

    from lpbot.backtest.sweep import sweep

    grid: dict[str, list[Any]] = {}
    for item in args.grid or []:
        key, sep, values = item.partition("=")
        if not sep:
            raise ConfigError(f"--grid {item!r}: expected KEY=V1,V2,...")
        grid[key.strip()] = [_value(v) for v in values.split(",")]
    if not grid:
        raise ConfigError("give at least one --grid KEY=V1,V2,...")
    executor, address = sweep_executor(args)
    saved_in = _saved_dir(args)  # a bad configuration stops here, before the sweep
    rows = sweep(
        grid, args.data, _config(args), engine=args.engine, workers=args.workers,
        bar_interval=args.bar_interval, executor=executor, ray_address=address,
    )  # fmt: skip
    saved = None
    if saved_in is not None:
        from lpbot.backtest.saved import save_sweep

        saved = save_sweep(
            saved_in, rows, grid=grid, data=str(args.data), engine=args.engine, label=args.label
        )
    if args.print_json:
        emit_json([asdict(r) for r in rows])
        return 0
    from lpbot.backtest.saved import sweep_line

    for row in rows:
        print(sweep_line(asdict(row)))
    if args.json:
        Path(args.json).write_text(json.dumps([asdict(r) for r in rows], indent=2) + "\n")
        if not args.print_json:
            print(f"wrote {args.json}")
    if saved is not None:
        print(f"saved for the dashboard: {saved}")
    return 0


def _saved_dir(args: argparse.Namespace) -> Path | None:
    """Where a run or sweep is kept for the dashboard: ``<report_dir>/backtests`` of the
    configuration (``--config``, ``$LPBOT_CONFIG`` or ./lpbot.toml); None without one, or with
    ``--no-save``."""
    import os

    from lpbot.app import App
    from lpbot.backtest.saved import FOLDER
    from lpbot.config import CONFIG_ENV, DEFAULT_CONFIG_NAME

    if getattr(args, "no_save", False):
        return None
    ctx = click.get_current_context(silent=True)
    given = (ctx.meta.get("lpbot.config") if ctx else None) or os.environ.get(CONFIG_ENV)
    if not given and not Path(DEFAULT_CONFIG_NAME).exists():
        return None
    a = App.load(given)  # the configuration only: no database, no chain
    try:
        return a.reports_dir / FOLDER
    finally:
        a.close()


# ----------------------------------------------------------------------------- commands


def _config_options(f: Any) -> Any:
    """The options of ``BacktestConfig``; each overrides one field of --backtest-config."""
    options = [
        click.option("--data", required=True,
                     help="a dataset from `data fetch` or `data import-csv`"),
        click.option(
            "--backtest-config",
            "config",
            help="a JSON file of BacktestConfig fields (and a \"sweep\" section); options "
            "override it",
        ),
        click.option("--strategy",
                     type=click.Choice(["fixed", "vol_band", "skewed", "full_range"])),
        click.option("--param", multiple=True, help="strategy parameter KEY=VALUE (repeatable)"),
        click.option("--policy", multiple=True, help="RebalancePolicy field KEY=VALUE"),
        click.option("--capital-usd", type=float),
        click.option("--volatile-share", type=float),
        click.option("--quote-token", type=click.IntRange(0, 1),
                     help="the token worth --quote-usd (a USD stablecoin)"),
        click.option("--quote-usd", type=float),
        click.option("--interval", type=int, help="seconds between decisions (default 3600)"),
        click.option("--bar-interval", type=int, default=60, show_default=True,
                     help="bar length when bars are aggregated from events"),
        click.option("--start", type=int, help="unix time to open the position"),
        click.option("--end", type=int, help="unix time to stop"),
        click.option("--chain", type=click.Choice(["ethereum", "arbitrum", "zksync", "devnet"])),
        click.option("--gas-price-gwei", type=float),
        click.option("--gas-price-csv", help="CSV: unix time, gwei"),
        click.option("--native-usd", type=float),
        click.option("--native-usd-csv", help="CSV: unix time, USD"),
        click.option("--slippage-bps", type=float,
                     help="default: the pool's realised volatility over one block"),
        click.option("--no-costs", is_flag=True,
                     help="zero gas, slippage and hedge fees (a study, not a forecast)"),
        click.option("--hedge-ratio", type=float),
        click.option("--hedge-band", type=float),
        click.option("--hedge-fee-bps", type=float),
        click.option("--funding-rate-8h", type=float),
        click.option("--funding-csv", help="CSV: unix time, rate per 8 h"),
        click.option("--label"),
        click.option("--no-save", is_flag=True,
                     help="do not keep it in the configuration's report_dir/backtests (the "
                     "dashboard's backtests page)"),
    ]  # fmt: skip
    for option in reversed(options):
        f = option(f)
    return f


def parse(command: click.Command, argv: list[str]) -> argparse.Namespace:
    """The arguments ``command`` (``run``, ``sweep``) would get from ``argv``, as its body
    reads them (for tests and tools)."""
    with command.make_context(command.name or "", argv) as ctx:
        return _ns(dict(ctx.params))


def _ns(kw: dict[str, Any]) -> argparse.Namespace:
    for key in ("param", "policy", "grid"):
        if key in kw:
            kw[key] = list(kw[key])
    return argparse.Namespace(**kw)


@click.group()
def data() -> None:
    """Pool history for backtests: fetch or import."""


@data.command()
@click.option("--rpc", required=True, help="JSON-RPC URL (an archive node for past state)")
@click.option("--pool", required=True, help="the pool's address")
@click.option("--from-block", type=int, required=True)
@click.option("--to-block", type=int, required=True)
@click.option("--out", help="SQLite file (default ./.lpbot/data/POOL-FROM.sqlite)")
@click.option("--multicall", help="Multicall3 address if not the registry's for the chain")
@click.option("--creation-block", type=int)
@click.option("--max-range", type=int, default=10_000, show_default=True,
              help="largest eth_getLogs block range")  # fmt: skip
def fetch(**kw: Any) -> int:
    """Pool events and start state from an RPC node."""
    return _cmd_fetch(_ns(kw))


@data.command("import-csv")
@click.argument("paths", nargs=-1, required=True)
@click.option("--out", required=True, help="SQLite file to write the bars to")
@click.option("--fee", type=int, required=True, help="fee tier in pips (500 = 0.05%)")
@click.option("--decimals0", type=int, required=True)
@click.option("--decimals1", type=int, required=True)
@click.option("--tick-spacing", type=int)
@click.option("--fee-protocol", type=int, default=0)
@click.option("--format", "format", type=click.Choice(["auto", "demeter", "subgraph"]),
              default="auto")  # fmt: skip
@click.option("--symbol0", default="")
@click.option("--symbol1", default="")
@click.option("--gas-price-csv", help="CSV: unix time, gwei; kept with the bars for backtests")
@click.option("--native-usd-csv", help="CSV: unix time, USD a native token; kept with the bars")
def import_csv(**kw: Any) -> int:
    """Minute or hour bars from CSV files (demeter-fetch .minute.csv or subgraph poolHourData)."""
    kw["paths"] = list(kw["paths"])
    return _cmd_import_csv(_ns(kw))


@click.group()
def backtest() -> None:
    """Replay history through the strategy code."""


@backtest.command()
@_config_options
@click.option("--engine", type=click.Choice(["exact", "bars", "both"]), default="bars",
              show_default=True)  # fmt: skip
@click.option("--html", help="write the HTML report here")
@click.option("--json-out", "json", help="write the JSON summary here")
@click.option("--json", "print_json", is_flag=True, help="print the JSON summary instead of text")
@click.option("--allow-divergence", is_flag=True,
              help="with --engine both: exit 0 even when the engines disagree")  # fmt: skip
def run(**kw: Any) -> int:
    """One backtest; HTML and JSON reports."""
    return _cmd_run(_ns(kw))


@backtest.command()
@_config_options
@click.option("--grid", multiple=True,
              help="KEY=V1,V2,... e.g. strategy.half_width_pct=2,5 (repeatable)")  # fmt: skip
@click.option("--engine", type=click.Choice(["exact", "bars"]), default="bars", show_default=True)
@click.option("--workers", type=int)
@click.option("--executor", type=click.Choice(["process", "ray"]),
              help="process pool here (default) or Ray (the ray extra)")  # fmt: skip
@click.option(
    "--ray-address",
    help="a Ray cluster (default: sweep.ray_address in --backtest-config, else local)",
)
@click.option("--json-out", "json", help="write all rows here")
@click.option("--json", "print_json", is_flag=True, help="print all rows as JSON instead of text")
def sweep(**kw: Any) -> int:
    """A grid of parameters in parallel processes."""
    return _cmd_sweep(_ns(kw))


@backtest.command("study")
@click.option("--seeds", type=click.IntRange(1), default=20, show_default=True)
@click.option("--days", type=click.IntRange(1), default=14, show_default=True)
@click.option("--chain", "chains", multiple=True, type=click.Choice(["arbitrum", "ethereum",
              "zksync"]), help="costs of (repeatable; default arbitrum and ethereum)")  # fmt: skip
@click.option("--strategy", "strategies", multiple=True,
              help="a study strategy by name (repeatable; default all)")  # fmt: skip
@click.option("--vol", "vols", multiple=True, type=float,
              help="annual volatility (repeatable; default 0.4, 0.8, 1.2)")  # fmt: skip
@click.option("--fee-to-lvr", "ratios", multiple=True, type=float,
              help="the pool's fee-to-LVR ratio (repeatable; default 0.5, 2)")  # fmt: skip
@click.option("--path", "paths", multiple=True,
              type=click.Choice(["trend", "mean_revert", "driftless"]),
              help="path shape (repeatable; default trend and mean_revert)")  # fmt: skip
@click.option("--data", type=click.Path(dir_okay=False),
              help="a pool's history (lpbot data fetch / import-csv) instead of synthetic "
              "ones: each consecutive --days window is a sample")  # fmt: skip
@click.option("--bar-interval", type=click.IntRange(60), default=300, show_default=True,
              help="seconds per bar for --data")  # fmt: skip
@click.option("--workers", type=int, help="processes (default: the CPU count)")
@click.option("--json-out", "json", help="write every run's row here")
@click.option("--markdown-out", "markdown", help="write the summary table here")
@click.option("--check-target", is_flag=True,
              help="exit 1 when the default strategy misses the target")  # fmt: skip
def study(**kw: Any) -> int:
    """Each strategy over many seeds and market regimes on synthetic histories: the
    distribution (median, quartiles, worst) of net vs hold and vs passive full range."""
    from lpbot.backtest import study as st

    names = kw["strategies"] or tuple(st.STRATEGIES)
    unknown = [n for n in names if n not in st.STRATEGIES]
    if unknown:
        raise ConfigError(f"unknown study strategies {unknown}; known: {list(st.STRATEGIES)}")
    chains = kw["chains"] or ("arbitrum", "ethereum")
    if kw["data"] is not None:
        given = [f"--{k}" for k, v in (("vol", kw["vols"]), ("fee-to-lvr", kw["ratios"]),
                                         ("path", kw["paths"])) if v]  # fmt: skip
        if given:
            raise ConfigError(f"{', '.join(given)}: the market of --data is its own history")
        from lpbot.backtest.bars import load_bars

        bars = load_bars(kw["data"], interval=kw["bar_interval"])
        try:
            rows = st.study_history(
                bars, days=kw["days"], chains=chains, strategies=names, workers=kw["workers"]
            )
        except LpbotError as exc:
            raise ConfigError(f"--data {kw['data']}: {exc}") from None
        print(f"{len({r.seed for r in rows})} windows of {kw['days']} days from {kw['data']}")
    else:
        market = st.regimes(
            kw["vols"] or (0.4, 0.8, 1.2), kw["ratios"] or (0.5, 2.0),
            kw["paths"] or ("trend", "mean_revert"),
        )  # fmt: skip
        rows = st.study(
            seeds=kw["seeds"], days=kw["days"], chains=chains,
            strategies=names, market=market, workers=kw["workers"],
        )  # fmt: skip
    summaries = st.summarise(rows)
    table = (
        "net vs passive full range, points of the capital: median [q1, q3] worst\n\n"
        + st.render_wide(summaries)
        + "\nper strategy, vs full range and vs hold\n\n"
        + st.render_markdown(summaries)
    )
    if kw["json"]:
        Path(kw["json"]).write_text(json.dumps(st.as_json(rows), indent=1))
    if kw["markdown"]:
        Path(kw["markdown"]).write_text(table)
    print(table, end="")
    misses = st.target_misses(summaries) if st.DEFAULT in names else []
    for miss in misses:
        print(f"target missed: {miss}")
    if kw["check_target"] and st.DEFAULT in names:
        print("target met" if not misses else f"target missed in {len(misses)} regime(s)")
        return 1 if misses else 0
    return 0


@backtest.command("crash")
@click.option("--risk", "runs", type=click.Choice(["both", "on", "off"]), default="both",
              show_default=True,
              help="run with the market regime, without it, or both")  # fmt: skip
@click.option("--days", type=click.IntRange(2), default=4, show_default=True)
@click.option("--seed", type=int, default=7, show_default=True)
@click.option("--fall", type=click.FloatRange(0.01, 0.95), default=0.35, show_default=True,
              help="the volatile token's fall over the crash")  # fmt: skip
@click.option("--crash-hours", type=click.FloatRange(0.25, 48), default=4.0, show_default=True)
@click.option("--half-width-pct", type=click.FloatRange(0.1, 99), default=5.0,
              show_default=True, help="the fixed range's half-width")  # fmt: skip
@click.option("--interval", type=click.IntRange(60), default=300, show_default=True,
              help="seconds between decisions (a multiple of 60)")  # fmt: skip
@click.option("--chain", type=click.Choice(["ethereum", "arbitrum", "zksync"]),
              default="arbitrum", show_default=True, help="whose gas costs")  # fmt: skip
@click.option("--json", "print_json", is_flag=True, help="print the JSON summary instead of text")
@config_option
@click.pass_context
def crash(ctx: click.Context, /, **kw: Any) -> int:
    """LP through a synthetic crash and liquidation cascade, with the market regime ([risk] of
    lpbot.toml when there is one, even with enabled = false, else its defaults) and without:
    max drawdown, fees, net vs hold, and the regime's changes with their reasons."""
    from lpbot.backtest.crash import crash_comparison, render

    if kw["interval"] % 60:
        raise ConfigError(f"--interval {kw['interval']} is not a multiple of the 60 s bars")
    risk = _risk_settings(ctx)
    try:
        result = crash_comparison(
            days=kw["days"], seed=kw["seed"], fall=kw["fall"], crash_hours=kw["crash_hours"],
            crash_at_hours=min(36.0, kw["days"] * 24 / 2), half_width_pct=kw["half_width_pct"],
            decision_interval_seconds=kw["interval"], chain=kw["chain"], risk=risk,
            runs=kw["runs"],
        )  # fmt: skip
    except ValueError as exc:  # the scenario's shape: the crash must fit in the days
        raise ConfigError(f"crash scenario: {exc}") from exc
    if kw["print_json"]:
        emit_json(result.summary())
    else:
        print(render(result), end="")
    return 0


def _risk_settings(ctx: click.Context) -> Any:
    """The [risk] section of the configuration the command line names, if it names one that
    exists; else None (the defaults)."""
    from lpbot.config import load_config, resolve_config_path

    given = ctx.meta.get("lpbot.config")
    path = resolve_config_path(given)
    if not path.exists():
        if given:
            raise ConfigError(f"no configuration at {path}")
        return None
    return load_config(path).risk


__all__ = ["backtest", "data", "emit_json"]

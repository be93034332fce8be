"""Historical replay through the same strategy code, with exact fees, gas and hedging.

Data: ``fetch_pool_events`` (RPC logs and start state into a SQLite dataset), ``import_csv``
(demeter-fetch minute bars, subgraph poolHourData), ``bars_from_events``. Engines: ``run_exact``
(exact event replay with the bot's position inside an ``lpbot.uniswap.Pool``) and ``run_bars``
(vectorised, for sweeps), checked against each other by ``compare_engines``. ``sweep`` runs a
grid in parallel processes; ``write_report`` writes the HTML page and JSON summary.
"""

from lpbot.backtest.bars import Bars, bars_from_events, import_csv, load_bars, save_bars
from lpbot.backtest.config import BacktestConfig, StrategyConfig
from lpbot.backtest.dataset import Dataset, load_dataset
from lpbot.backtest.events import EventKind, PoolEvent, PoolMeta, StartState
from lpbot.backtest.exact import run_exact
from lpbot.backtest.fetch import FetchReport, fetch_pool_events
from lpbot.backtest.ledger import BacktestResult
from lpbot.backtest.replay import EventReplayer, ReplayMismatch, replay_dataset
from lpbot.backtest.report import render_html, write_report
from lpbot.backtest.store import EventStore
from lpbot.backtest.sweep import SweepRow, sweep
from lpbot.backtest.validate import EngineComparison, compare_engines
from lpbot.backtest.vector import run_bars

__all__ = [
    "BacktestConfig",
    "BacktestResult",
    "Bars",
    "Dataset",
    "EngineComparison",
    "EventKind",
    "EventReplayer",
    "EventStore",
    "FetchReport",
    "PoolEvent",
    "PoolMeta",
    "ReplayMismatch",
    "StartState",
    "StrategyConfig",
    "SweepRow",
    "bars_from_events",
    "compare_engines",
    "fetch_pool_events",
    "import_csv",
    "load_bars",
    "load_dataset",
    "render_html",
    "replay_dataset",
    "run_bars",
    "run_exact",
    "save_bars",
    "sweep",
    "write_report",
]

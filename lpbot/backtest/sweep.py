"""Parameter sweeps: one backtest per point of a grid, in parallel processes or on Ray.

``executor="process"`` (the default): worker processes on this machine, each loading the data
once (from a path, or from the object sent to it once). ``executor="ray"``: tasks on a Ray
cluster (the ``ray`` extra): a local one started for the sweep and stopped after it, or the
cluster at ``ray_address`` (``ray://host:10001`` or ``host:6379``; its workers need lpbot
installed); the data is loaded here and shared through Ray's object store once. Results come
back in the grid's order either way. A point whose configuration is refused is reported with
its error rather than stopping the sweep.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lpbot.backtest.bars import Bars, load_bars
from lpbot.backtest.config import BacktestConfig
from lpbot.backtest.dataset import Dataset, load_dataset
from lpbot.errors import ConfigError, LpbotError

Data = Bars | Dataset | str | Path


@dataclass(frozen=True)
class SweepRow:
    """One grid point: its overrides and the run's headline numbers (or its error)."""

    params: dict[str, Any]
    metrics: dict[str, Any]
    breakdown: dict[str, float]
    error: str | None = None


def expand(grid: Mapping[str, Sequence[Any]] | Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """A grid as dotted keys to value lists (their product) or an explicit list of points."""
    if isinstance(grid, Mapping):
        keys = list(grid)
        return [
            dict(zip(keys, values, strict=True)) for values in itertools.product(*grid.values())
        ]
    return [dict(point) for point in grid]


_DATA: Bars | Dataset | None = None


def _init(data: Data, engine: str, bar_interval: int) -> None:
    global _DATA
    if isinstance(data, str | Path):
        _DATA = load_dataset(data) if engine == "exact" else load_bars(data, interval=bar_interval)
    else:
        _DATA = data


def _run_one(base: BacktestConfig, params: dict[str, Any], engine: str) -> SweepRow:
    assert _DATA is not None
    return run_point(_DATA, base, params, engine)


def run_point(
    data: Bars | Dataset, base: BacktestConfig, params: dict[str, Any], engine: str
) -> SweepRow:
    """One grid point on loaded data (what each worker runs)."""
    from dataclasses import asdict

    from lpbot.backtest.exact import run_exact
    from lpbot.backtest.vector import run_bars

    try:
        config = base.with_overrides(params)
        if engine == "exact":
            assert isinstance(data, Dataset)
            result = run_exact(data, config)
        else:
            assert isinstance(data, Bars)
            result = run_bars(data, config)
    except (LpbotError, ValueError) as exc:
        return SweepRow(params, {}, {}, error=str(exc))
    b = asdict(result.breakdown)
    b["total"] = result.breakdown.total
    return SweepRow(params, asdict(result.metrics), b)


def sweep(
    grid: Mapping[str, Sequence[Any]] | Sequence[Mapping[str, Any]],
    data: Data,
    base: BacktestConfig | None = None,
    *,
    engine: str = "bars",
    workers: int | None = None,
    bar_interval: int = 60,
    executor: str = "process",
    ray_address: str | None = None,
) -> list[SweepRow]:
    """Run ``base`` with each grid point's overrides on ``data`` (bars or a fetched dataset).

    ``engine`` is ``"bars"`` (vectorised) or ``"exact"`` (event replay); ``workers`` defaults to
    the machine's CPU count (for Ray: the CPUs of the local instance it starts); ``workers=1``
    with the process executor runs in this process. ``executor``: module docstring.
    """
    if engine not in ("bars", "exact"):
        raise ValueError(f"engine must be 'bars' or 'exact', got {engine!r}")
    if executor not in ("process", "ray"):
        raise ValueError(f"executor must be 'process' or 'ray', got {executor!r}")
    base = base or BacktestConfig()
    points = expand(grid)
    if isinstance(data, Dataset) and engine == "bars":
        from lpbot.backtest.bars import bars_from_events

        data = bars_from_events(data, bar_interval)
    if executor == "ray":
        return _ray_sweep(points, data, base, engine, bar_interval, workers, ray_address)
    workers = workers or os.cpu_count() or 1
    if workers == 1 or len(points) == 1:
        _init(data, engine, bar_interval)
        return [_run_one(base, p, engine) for p in points]
    with ProcessPoolExecutor(
        max_workers=min(workers, len(points)),
        initializer=_init,
        initargs=(data, engine, bar_interval),
    ) as pool:
        futures = [pool.submit(_run_one, base, p, engine) for p in points]
        return [f.result() for f in futures]


def _ray_sweep(
    points: list[dict[str, Any]],
    data: Data,
    base: BacktestConfig,
    engine: str,
    bar_interval: int,
    workers: int | None,
    address: str | None,
) -> list[SweepRow]:
    try:
        import ray
    except ImportError:
        raise ConfigError(
            'the Ray executor needs Ray: pip install -e ".[ray]" (or use --executor process)'
        ) from None
    if isinstance(data, str | Path):
        loaded: Bars | Dataset = (
            load_dataset(data) if engine == "exact" else load_bars(data, interval=bar_interval)
        )
    else:
        loaded = data
    started = not ray.is_initialized()
    if started:
        options: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False}
        if address:
            ray.init(address=address, **options)
        else:
            ray.init(num_cpus=workers or os.cpu_count() or 1, **options)
    try:
        shared = ray.put(loaded)
        task = ray.remote(run_point)
        return list(ray.get([task.remote(shared, base, p, engine) for p in points]))
    finally:
        if started:
            ray.shutdown()

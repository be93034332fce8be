"""A devnet market's history, fetched once for the engine tests of this package."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from lpbot.backtest.dataset import Dataset, load_dataset
from lpbot.backtest.fetch import fetch_pool_events
from lpbot.devnet.market import run_market
from tests.conftest import Devnet


@pytest.fixture(scope="session")
def market_path(devnet: Devnet, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """48 hourly steps of the devnet market on USDC/WETH 0.05%, fetched from its creation.

    The chain is put back as it was afterwards, so other tests see the seeded devnet.
    """
    m = devnet.manifest
    info = m.pool("USDC/WETH-500")
    snap = devnet.snapshot()
    try:
        # start half an hour after a UTC midnight, so that bars, hourly decisions and 8-hour
        # funding fall the same way on every run, whenever the devnet was deployed. The market
        # jumps on the full hour; decisions fall between jumps, where both engines see the same
        # price (at the instant of a jump, engine (b) sees the bar's close and engine (a) the
        # events, and their rebalance counts can differ by one)
        latest = devnet.w3.eth.get_block("latest")["timestamp"]
        midnight = (latest // 86400 + 1) * 86400 + 1800
        devnet.w3.provider.make_request("evm_setNextBlockTimestamp", [midnight])  # type: ignore[arg-type]
        devnet.w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]
        run_market(devnet.w3, m, info, steps=48, vol=0.9, seed=17)
        path = tmp_path_factory.mktemp("market") / "usdc-weth-500.sqlite"
        fetch_pool_events(
            devnet.w3, info.address, 0, devnet.w3.eth.block_number, path,
            multicall=m.contracts["Multicall3"],
        )  # fmt: skip
    finally:
        devnet.revert(snap)
    yield path


@pytest.fixture(scope="session")
def market(market_path: Path) -> Dataset:
    return load_dataset(market_path)


def _require_extras() -> None:
    """`make test` installs the optional extras and sets LPBOT_REQUIRE_EXTRAS: then a missing
    one is an error, not a silent skip of the tests that need it."""
    import importlib.util
    import os

    if not os.environ.get("LPBOT_REQUIRE_EXTRAS"):
        return
    missing = [m for m in ("demeter", "ray") if importlib.util.find_spec(m) is None]
    if missing:
        raise RuntimeError(f"LPBOT_REQUIRE_EXTRAS is set but {', '.join(missing)} not installed")


_require_extras()

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

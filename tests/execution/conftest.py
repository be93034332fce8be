"""Shared fixtures of the execution tests: a Safe-owned position whose price has moved."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from web3.logs import DISCARD

from lpbot.devnet.context import devnet_context
from lpbot.devnet.deploy import GAS, contract
from lpbot.devnet.market import run_market
from lpbot.execution.service import ExecutionContext
from lpbot.execution.state import RebalanceRepo
from lpbot.store import migrate
from lpbot.store.rebalances import SqlRebalanceRepo
from lpbot.store.session import make_engine, session_factory
from lpbot.strategy.base import Range
from lpbot.testing.fakes import MemoryRebalanceRepo
from tests.conftest import Devnet


class Crash(BaseException):
    """Stands for the process being killed at a checkpoint."""


@dataclass
class Setup:
    chain: Devnet
    ctx: ExecutionContext
    token_id: int
    new_range: Range
    pool: str
    tokens: tuple[str, str]

    def balances(self) -> tuple[int, int]:
        m = self.chain.manifest
        return tuple(  # type: ignore[return-value]
            contract(self.chain.w3, "TestERC20", t).functions.balanceOf(m.safe).call()
            for t in self.tokens
        )

    def safe_nonce(self) -> int:
        return self.ctx.safe_contract.functions.nonce().call()


@pytest.fixture(params=["sqlite", "memory"])
def repo(request: pytest.FixtureRequest, tmp_path: Path) -> RebalanceRepo:
    """The store the CLI uses (SQLite, migrated), and the in-memory fake."""
    if request.param == "memory":
        return MemoryRebalanceRepo()
    engine = make_engine(f"sqlite:///{tmp_path / 'lpbot.db'}")
    migrate.upgrade(engine)
    return SqlRebalanceRepo(session_factory(engine))


@pytest.fixture
def setup(chain: Devnet, tmp_path: Path, repo: RebalanceRepo) -> Iterator[Setup]:
    m = chain.manifest
    w3 = chain.w3
    info = m.pool("USDC/WETH-500")
    npm = contract(w3, "NonfungiblePositionManager", m.contracts["NonfungiblePositionManager"])
    pool = contract(w3, "UniswapV3Pool", info.address)
    tick = pool.functions.slot0().call()[1]
    t0, t1 = m.token(info.token0).address, m.token(info.token1).address
    lower, upper = (tick - 300) // 10 * 10, (tick + 300) // 10 * 10
    tx = npm.functions.mint(
        (t0, t1, 500, lower, upper, 5_000 * 10**6, 2 * 10**18, 0, 0, m.safe, 2**40)
    ).transact({"from": m.accounts.bot, "gas": GAS})
    receipt = w3.eth.wait_for_transaction_receipt(tx)
    token_id = npm.events.IncreaseLiquidity().process_receipt(receipt, errors=DISCARD)[0]["args"][
        "tokenId"
    ]
    # the market trades for two hours of chain time: fees accrue, the TWAP has history
    run_market(w3, m, info, steps=12, vol=1.2, seed=4, step_seconds=600)
    tick = pool.functions.slot0().call()[1]
    centre = tick // 10 * 10
    ctx = devnet_context(w3, m, repo, tmp_path / "reports", replace_after=5.0)
    yield Setup(chain, ctx, token_id, Range(centre - 400, centre + 400, 10), info.address, (t0, t1))

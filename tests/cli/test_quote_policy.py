"""``lpbot position quote`` and ``lpbot rebalance plan`` for a configured position's pool use that
position's policy (before: the default policy, or the first position's), and the quote's width
and verdict are the ones its open takes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from lpbot.app import App
from lpbot.chain.reader import PoolReader
from lpbot.devnet.deploy import GAS, contract
from lpbot.devnet.market import run_market
from lpbot.position_commands import Chain, quote_position
from lpbot.strategy.rebalance import RebalancePolicy
from tests.cli.test_cli import cli as cli
from tests.conftest import Devnet

pytestmark = pytest.mark.devnet

CONFIG = """
version = 1
data_dir = "{data}"
[chains.devnet]
manifest = "{manifest}"
[[positions]]
name = "first"
chain = "devnet"
pool = "USDC/WETH-3000"
[positions.open]
capital = {{ USDC = "3000", WETH = "1" }}
[positions.strategy]
kind = "fixed"
half_width_ticks = 600
[[positions]]
name = "second"
chain = "devnet"
pool = "USDC/WETH-500"
[positions.open]
capital = {{ USDC = "3000", WETH = "1" }}
accept_expected_loss = true
[positions.strategy]
kind = "vol_band"
k = "auto"
[positions.policy]
horizon_seconds = 21600
vol_short_halflife_seconds = 900
vol_long_halflife_seconds = 7200
slippage_bps = 100                   # the market moves: spot up to ~80 bps off its TWAP
"""


@pytest.fixture
def config(chain: Devnet, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    m = chain.manifest
    manifest = tmp_path / "manifest.json"
    m.write(manifest)
    run_market(chain.w3, m, m.pool("USDC/WETH-500"), steps=12, vol=1.2, seed=4, step_seconds=600)
    trader = m.accounts.traders[0]
    for symbol, amount in (("USDC", 5_000 * 10**6), ("WETH", 2 * 10**18)):  # the open's capital
        token = contract(chain.w3, "TestERC20", m.token(symbol).address)
        tx = token.functions.transfer(m.safe, amount).transact({"from": trader, "gas": GAS})
        chain.w3.eth.wait_for_transaction_receipt(tx)
    path = tmp_path / "lpbot.toml"
    path.write_text(CONFIG.format(data=tmp_path / "data", manifest=manifest))
    return path


def _chain(app: App) -> Chain:
    w3, m = app.w3("devnet"), app.manifest("devnet")
    c = m.contracts
    reader = PoolReader(
        w3,
        multicall=c["Multicall3"],
        tick_lens=c["TickLens"],
        position_manager=c["NonfungiblePositionManager"],
    )
    return Chain(w3, m, reader, app.pricer("devnet"))


def test_the_quote_of_a_configured_pool_uses_its_policy_and_matches_its_open(
    config: Path, cli: Any
) -> None:
    c = ("--config", str(config))
    capital = ("--capital", "3000 USDC", "--capital", "1 WETH")
    run = cli(*c, "position", "quote", "--pool", "USDC/WETH-500", *capital, "--json")
    assert run.code == 0, run.err + run.out
    quoted = json.loads(run.out)
    assert quoted["outlook"] is not None

    app = App.load(config)
    try:
        policy = app.policy("second")
        capital_text = ["3000 USDC", "1 WETH"]
        mine = quote_position(
            _chain(app), "USDC/WETH-500", capital_text, "vol_band", policy.strategy, policy=policy
        )
        default = quote_position(
            _chain(app),
            "USDC/WETH-500",
            capital_text,
            "vol_band",
            policy.strategy,
            policy=RebalancePolicy(strategy=policy.strategy),
        )
    finally:
        app.close()
    # the position's own volatility half-lives: the default policy's differ, and so would
    # the verdict's figures (the test would see the old behaviour)
    assert quoted["outlook"]["volatility"] == mine.outlook.sigma_annual  # type: ignore[union-attr]
    assert mine.outlook.sigma_annual != default.outlook.sigma_annual  # type: ignore[union-attr]
    assert quoted["range"]["tick_lower"] == mine.plan.range.tick_lower
    assert quoted["range"]["tick_upper"] == mine.plan.range.tick_upper

    # the open of that position takes the quote's width (same block: nothing was mined)
    run = cli(*c, "position", "open", "--position", "second", "--json")
    assert run.code == 0, run.err + run.out
    opened = json.loads(run.out)["open"]
    report = json.loads(
        (config.parent / "data" / "reports" / f"{opened['report_id']}.json").read_text()
    )
    assert report["position"]["new_range"] == [
        quoted["range"]["tick_lower"],
        quoted["range"]["tick_upper"],
    ]


def test_the_position_a_pool_or_nft_belongs_to(config: Path, chain: Devnet) -> None:
    """``rebalance plan`` and ``position plan`` of an NFT, and ``position quote`` of a pool,
    take the configured position it belongs to: by the NFT, else by its pool."""
    m = chain.manifest
    app = App.load(config)
    try:
        assert app.position_for(pool="USDC/WETH-500") == "second"
        assert app.position_for(pool=m.pool("USDC/WETH-500").address) == "second"
        assert app.position_for(pool=m.pool("USDC/WETH-3000").address.lower()) == "first"
        assert app.position_for(pool="WBTC/USDC-3000") is None
        assert app.position_for(token_id=10**9) is None
    finally:
        app.close()

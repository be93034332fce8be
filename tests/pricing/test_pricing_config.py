"""``[pricing]`` in lpbot.toml: the app builds the source it names, a bad one is refused naming
its key, and `lpbot rebalance`'s decision is priced by that source at the block it reads."""

from __future__ import annotations

import json
import logging
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from lpbot.app import App
from lpbot.chain.reader import PoolReader
from lpbot.cli import main
from lpbot.cli.rebalance import decide
from lpbot.config import EXAMPLE_TOML, parse_config
from lpbot.devnet.context import devnet_context
from lpbot.devnet.manifest import Manifest
from lpbot.devnet.market import run_market
from lpbot.errors import ConfigError
from lpbot.execution import service
from lpbot.hedge.controller import HedgeController
from lpbot.hedge.state import MemoryStateStore
from lpbot.jobs import tasks
from lpbot.jobs.alerts import MemoryNotifier
from lpbot.pricing.base import NoPriceRoute
from lpbot.pricing.marks import chain_pricer
from lpbot.strategy.rebalance import RebalancePolicy
from lpbot.strategy.vol_band import VolatilityBand
from tests.conftest import Devnet
from tests.hedge.fakes import Sleeps
from tests.hedge.test_leverage import CONFIG, ETH, eth_venue

BASE = """
version = 1
data_dir = "{data}"
[chains.devnet]
manifest = "{manifest}"
"""


def _write(tmp_path: Path, chain: Devnet, pricing: str) -> Path:
    manifest = tmp_path / "manifest.json"
    chain.manifest.write(manifest)
    path = tmp_path / "lpbot.toml"
    path.write_text(BASE.format(data=tmp_path / "data", manifest=manifest) + pricing)
    return path


def test_the_example_configuration_names_the_pricing_source() -> None:
    config = parse_config(EXAMPLE_TOML, base_dir=Path("/tmp"))
    assert config.pricing.source == "pools" and config.pricing.max_age_seconds == 10_800
    assert "[pricing]" in EXAMPLE_TOML


@pytest.mark.parametrize(
    ("section", "key"),
    [
        ('[pricing]\nsource = "oracle"\n', "pricing.source"),
        ("[pricing]\nmax_age_seconds = 0\n", "pricing.max_age_seconds"),
        ("[pricing]\nmax_deviation_bps = -5\n", "pricing.max_deviation_bps"),
        ('[pricing]\nsource = "chainlink"\ntwap_seconds = 600\n', "twap_seconds"),
        ('[pricing]\nsource = "fixed"\n', "fixed"),
        ('[pricing]\nfixed = { WETH = "3000" }\n', "fixed"),
        ('[pricing]\nsource = "fixed"\nfixed = { WETH = "-1" }\n', "pricing.fixed.WETH"),
        ("[pricing]\nmax_age = 60\n", "pricing.max_age"),
    ],
)
def test_a_bad_pricing_section_fails_config_check_naming_the_key(
    section: str, key: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "lpbot.toml"
    path.write_text(BASE.format(data=tmp_path, manifest=tmp_path / "m.json") + section)
    assert main(["config", "check", "--config", str(path)]) == 2
    err = capsys.readouterr().err
    assert key in err, err


def test_fixed_marks_are_refused_on_a_live_chain() -> None:
    text = (
        'version = 1\n[chains.arbitrum]\nrpc_url_env = "X_RPC"\n'
        '[pricing]\nsource = "fixed"\nfixed = { WETH = "3000" }\n'
    )
    with pytest.raises(ConfigError, match=r"pricing.source: 'fixed' marks are for the devnet"):
        parse_config(text, base_dir=Path("/tmp"))


@pytest.mark.devnet
def test_the_app_builds_the_configured_source(chain: Devnet, tmp_path: Path) -> None:
    chain.increase_time(120)  # a fresh devnet's pool oracle reaches back only to its deployment
    block = chain.w3.eth.block_number
    feeds = App.load(_write(tmp_path, chain, '[pricing]\nsource = "chainlink"\n'))
    marks = feeds.pricer().fetch_marks(["WETH"], block)
    assert {m.source for m in marks.marks.values()} == {"chainlink"}
    # USDC has its own USD feed on the devnet; WBTC (marked for BTC figures) too
    got = feeds.pricer().fetch_marks(["USDC"], block)
    assert got.usd("USDC") == 1 and set(got.marks) == {"USDC", "WETH", "WBTC"}
    with pytest.raises(NoPriceRoute, match="DAI"):  # no feed for it
        feeds.pricer().fetch_marks(["DAI"], block)
    twap = App.load(_write(tmp_path, chain, "[pricing]\ntwap_seconds = 60\n"))
    assert twap.pricer().fetch_marks(["WETH"], block).marks["WETH"].source == "pool:twap60"
    pricing = '[pricing]\nsource = "fixed"\nfixed = { USDC = "1", WETH = "2500" }\n'
    fixed = App.load(_write(tmp_path, chain, pricing))
    got = fixed.pricer().fetch_marks(["USDC", "WETH"], block)
    assert got.usd("WETH") == Decimal(2500) and got.marks["WETH"].source == "fixed"
    spot = App.load(_write(tmp_path, chain, ""))  # no section: the pools at spot
    assert spot.pricer().fetch_marks(["WETH"], block).marks["WETH"].source == "pool:spot"


def _decision(app: App, chain: Devnet) -> tuple[Any, Any]:
    ctx = app.execution_context(None, actor="test")
    m = chain.manifest
    reader = PoolReader(
        ctx.w3,
        multicall=m.contracts["Multicall3"],
        tick_lens=m.contracts["TickLens"],
        position_manager=m.contracts["NonfungiblePositionManager"],
    )
    policy = RebalancePolicy(strategy=VolatilityBand(k=2.0))
    token_id = m.safe_position
    assert token_id is not None
    pool, _t0, _t1, _fee = service.pool_of_position(ctx, token_id)
    return decide(ctx, reader, pool, token_id, policy)


@pytest.mark.devnet
def test_the_rebalance_decision_is_priced_by_the_source_at_its_block(
    chain: Devnet, tmp_path: Path
) -> None:
    # a few hours of market, so the pool's oracle covers the volatility window on a devnet
    # deployed a moment ago (CI's) as on an older one
    info = chain.manifest.pool("USDC/WETH-500")
    run_market(chain.w3, chain.manifest, info, steps=4, vol=0.5, seed=3)
    # marks far from the pools' (WETH ~3000 USDC there): the decision must carry these
    pricing = '[pricing]\nsource = "fixed"\nfixed = { USDC = "0.99", WETH = "2500" }\n'
    view, marks = _decision(App.load(_write(tmp_path, chain, pricing)), chain)
    assert (view.market.token0_usd, view.market.token1_usd) == (0.99, 2500.0)  # USDC, WETH
    assert marks.block == view.snapshot.block_number
    # the pools' marks: the decision's USD figures are the price source's at the pool's block
    app = App.load(_write(tmp_path, chain, ""))
    view, marks = _decision(app, chain)
    again = app.pricer().fetch_marks(["USDC", "WETH"], view.snapshot.block_number)
    assert view.market.token0_usd == float(again.usd("USDC")) == float(marks.usd("USDC"))
    assert view.market.token1_usd == float(again.usd("WETH")) == float(marks.usd("WETH"))
    assert 2_000 < view.market.token1_usd < 4_000


POSITION = """
[[positions]]
name = "p"
chain = "devnet"
pool = "USDC/WETH-500"
token_id = {token_id}
[positions.strategy]
kind = "vol_band"
"""


def _write_with(tmp_path: Path, manifest: Manifest, pricing: str) -> Path:
    manifest_path = tmp_path / "manifest.json"
    manifest.write(manifest_path)
    path = tmp_path / "lpbot.toml"
    position = POSITION.format(token_id=manifest.safe_position)
    path.write_text(
        BASE.format(data=tmp_path / "data", manifest=manifest_path) + position + pricing
    )
    return path


def _no_usdc_feed(manifest: Manifest) -> Manifest:
    feeds = {s: a for s, a in manifest.price_feeds.items() if s != "USDC"}
    return manifest.model_copy(update={"price_feeds": feeds})


@pytest.mark.devnet
def test_a_stablecoin_the_chain_does_not_have_fails_config_check_naming_the_key(
    devnet: Devnet, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _write_with(tmp_path, devnet.manifest, '[pricing]\nstable = "USCD"\n')
    assert main(["config", "check", "--config", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("lpbot: pricing.stable: 'USCD' is not a token of chain devnet"), err
    assert "USDC" in err and "\n" not in err
    # `lpbot run` refuses to start, in one line naming the key
    assert main(["run", "--config", str(path), "--seconds", "1"]) == 2
    err = capsys.readouterr().err.strip()
    assert "pricing.stable" in err and "\n" not in err, err


@pytest.mark.devnet
def test_a_source_that_cannot_price_the_position_fails_online_check_and_run(
    devnet: Devnet, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # a chain whose feeds do not include USDC: source "chainlink" cannot value a USDC/WETH LP
    path = _write_with(
        tmp_path, _no_usdc_feed(devnet.manifest), '[pricing]\nsource = "chainlink"\n'
    )
    assert main(["config", "check", "--config", str(path)]) == 0  # offline: nothing to see
    capsys.readouterr()
    assert main(["config", "check", "--config", str(path), "--online", "--json"]) == 1
    rows = {r["check"]: r for r in json.loads(capsys.readouterr().out)["online"]}
    assert not rows["pricing"]["ok"]
    assert rows["pricing"]["finding"].startswith(
        "pricing.source = 'chainlink': no price route for USDC on devnet, a token of position p"
    )
    assert main(["run", "--config", str(path), "--seconds", "1"]) == 2
    err = capsys.readouterr().err.strip()
    assert (
        err.startswith("lpbot: pricing.source = 'chainlink': no price route for USDC")
        and "\n" not in err
    )
    # the pools can: the same check passes
    path = _write_with(tmp_path, _no_usdc_feed(devnet.manifest), "")
    assert main(["config", "check", "--config", str(path), "--online", "--json"]) == 0
    rows = {r["check"]: r for r in json.loads(capsys.readouterr().out)["online"]}
    assert rows["pricing"] == {
        "check": "pricing",
        "finding": "every position token has a route",
        "ok": True,
    }


def test_a_job_failing_with_lpbots_own_error_logs_one_line_and_alerts(
    caplog: pytest.LogCaptureFixture,
) -> None:
    notifier = MemoryNotifier()

    def body() -> None:
        raise NoPriceRoute("USDC", "devnet")

    with caplog.at_level(logging.INFO, logger="lpbot.jobs.tasks"):
        assert tasks.run_safely("monitor", body, notifier) is None
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1 and errors[0].exc_info is None  # no traceback
    assert [(a.kind, a.title) for a in notifier.alerts] == [("failure", "job monitor failed")]


@pytest.mark.devnet
def test_the_hedge_does_not_trade_a_position_it_cannot_value(chain: Devnet) -> None:
    m = chain.manifest
    info = m.pool("USDC/WETH-500")
    assert m.safe_position is not None
    ex, _price, _clock = eth_venue(Decimal(200_000))
    mp = tasks.ManagedPosition(
        name="p",
        ctx=devnet_context(chain.w3, m, None, Path("/nonexistent")),  # type: ignore[arg-type]
        sessions=None,  # type: ignore[arg-type]
        policy=None,  # type: ignore[arg-type]
        token_id=m.safe_position,
        pool=info.address,
        token0=m.token(info.token0).address,
        token1=m.token(info.token1).address,
        notifier=MemoryNotifier(),
        # no feed anchors USDC to USD: the position has no value in USD
        pricer=chain_pricer(chain.w3, m.model_copy(update={"price_feeds": {}})),
        hedge=HedgeController(
            ex, CONFIG, MemoryStateStore(), position_id="1:npm:1", clock=ex.clock, sleep=Sleeps()
        ),
    )
    outcome = tasks.hedge_sync(mp)
    assert outcome.startswith("not traded: no price route for USDC on devnet")
    assert ex.fetch_position(ETH).size == 0
    assert [a.kind for a in mp.notifier.alerts] == ["failure"]  # type: ignore[attr-defined]
    # valued, the same position is hedged
    mp.pricer = chain_pricer(chain.w3, m)
    assert "(traded)" in tasks.hedge_sync(mp)
    assert ex.fetch_position(ETH).size < 0

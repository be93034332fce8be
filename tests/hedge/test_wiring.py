"""The ``[hedge]`` section becomes a runner: venue, keys by name, sandbox, band, state paths."""

from __future__ import annotations

import argparse
from decimal import Decimal
from pathlib import Path

import pytest

from lpbot.cli import hedge as hedge_cli
from lpbot.cli.hedge import _plan_config
from lpbot.config import HedgeConfig as HedgeSection
from lpbot.errors import ConfigError
from lpbot.hedge.ccxt_exchange import CcxtExchange
from lpbot.hedge.paper import PaperExchange
from lpbot.hedge.state import AlertKind
from lpbot.hedge.wiring import build_hedge_runner, delta_includes_fees, plan_config
from tests.hedge import binance_standin
from tests.hedge.fakes import BTC, T0, Sleeps, paper
from tests.hedge.standin import Fault

D60K = Decimal(60_000)


def _build(section: HedgeSection, tmp_path: Path):  # type: ignore[no-untyped-def]
    return build_hedge_runner(
        section,
        data_dir=tmp_path,
        position_id="31337:0xnpm:7",
        token_id=7,
        decimals=(6, 18),
        risky=1,
        now_ms=T0,
    )


def test_a_live_venue_with_sandbox_uses_its_testnet_and_the_named_keys(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MY_KEY", "k")
    monkeypatch.setenv("MY_SECRET", "s")
    section = HedgeSection(
        exchange="binanceusdm",
        symbol="ETH/USDT:USDT",
        api_key_env="MY_KEY",
        api_secret_env="MY_SECRET",
        band_abs=Decimal("0.05"),
        max_leverage=2.5,
        sandbox=True,
    )
    runner = _build(section, tmp_path)
    exchange = runner.controller.exchange
    assert isinstance(exchange, CcxtExchange) and exchange.config.sandbox
    assert "testnet" in str(exchange._client.urls["api"])
    assert runner.controller.config.venue_leverage == 2 and runner.include_fees
    assert runner.controller.store.path.parent == tmp_path / "hedge"  # type: ignore[attr-defined]


def test_paper_without_a_band_uses_the_minimum_order_and_refuses_unknown_markets(
    tmp_path: Path,
) -> None:
    runner = _build(HedgeSection(exchange="paper", symbol="ETH/USDT:USDT", band_pct=5), tmp_path)
    assert isinstance(runner.controller.exchange, PaperExchange)
    assert runner.controller.config.band_abs == 0  # the venue's, when its market is loaded
    assert runner.price is not None
    runner.price.value = Decimal(2_000)
    status = runner.status(Decimal(0))
    # ETH paper market: 0.001 ETH and 20 USDT at least, so 0.01 ETH at 2,000
    assert runner.controller.config.band_abs == Decimal("0.010") == status.band
    with pytest.raises(ConfigError, match="no paper market"):
        _build(HedgeSection(exchange="paper", symbol="ETH/USDC:USDC", band_pct=5), tmp_path)


def test_an_unreachable_venue_is_an_alert_of_the_first_sync_and_retried_at_the_next(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ex, price, clock = paper()
    standin = binance_standin.BinanceStandIn(ex, clock)
    for k, v in {
        "MY_KEY": binance_standin.API_KEY,
        "MY_SECRET": binance_standin.API_SECRET,
    }.items():
        monkeypatch.setenv(k, v)
    section = HedgeSection(
        exchange="binanceusdm",
        symbol=BTC,
        api_key_env="MY_KEY",
        api_secret_env="MY_SECRET",
        band_pct=5,
    )
    with standin.running():
        standin.inject(Fault("GET", "/fapi/v1/exchangeInfo", "status", status=503, times=99))
        runner = build_hedge_runner(
            section,
            data_dir=tmp_path,
            position_id="31337:0xnpm:7",
            token_id=7,
            decimals=(6, 18),
            risky=1,
            now_ms=T0,
            api_urls=standin.api_urls(),
        )  # no band configured, the venue down: the daemon still starts
        assert standin.requests == []
        runner.controller.executor.sleep = Sleeps()
        client = runner.controller.exchange
        assert isinstance(client, CcxtExchange)
        client._client.enableRateLimit = False  # the stand-in has no rate limit to respect
        with runner.session() as controller:
            result = controller.sync(Decimal(2))
        assert [a.kind for a in result.alerts] == [AlertKind.RETRIES_EXHAUSTED]
        assert result.orders == () and ex.fetch_position(BTC).size == 0
        assert runner.pnl(Decimal(2)).total == 0  # the monitor goes on: nothing booked yet
        standin.faults.clear()  # the venue is back: the next run hedges
        with runner.session() as controller:
            result = controller.sync(Decimal(2))
        assert result.alerts == () and ex.fetch_position(BTC).size == Decimal(-2)
        # BTC paper market: 0.001 BTC and 100 USDT at least, so 0.002 BTC at 60,000
        assert controller.config.band_abs == Decimal("0.002")
        read = runner.pnl(Decimal(2))
        assert read.unrealised == 2 * (controller.state.ledger.entry_price - D60K) and read.fees > 0
        price.value = Decimal(61_000)
        standin.inject(Fault("GET", "/fapi/v3/positionRisk", "status", status=503, times=99))
        assert runner.pnl(Decimal(2)) == read  # venue down again: the booked ledger, last mark


def test_cli_and_daemon_defaults_are_the_configuration_s(tmp_path: Path) -> None:
    with hedge_cli.sync.make_context(
        "sync", ["--pool", "USDC/WETH-500", "--token-id", "1"]
    ) as ctx:  # the options as `lpbot hedge sync` parses them
        args = argparse.Namespace(**ctx.params)
    # the daemon's [hedge] left at its defaults (only the venue and symbol named)
    section = HedgeSection.model_construct(exchange="paper", symbol="ETH/USDT:USDT")
    cli = _plan_config(args, None, "ETH/USDT:USDT")
    assert cli == plan_config(section)
    assert cli.max_funding_cost_apr == Decimal("0.5") and cli.band_abs == 0
    # and both take a configured section's values the same way
    configured = HedgeSection(
        exchange="paper", symbol="ETH/USDT:USDT", band_abs=Decimal("0.3"), max_funding_apr_pct=12.5
    )
    assert _plan_config(args, configured, "ETH/USDT:USDT") == plan_config(configured)
    # the monitor's and `lpbot status`'s LP delta counts uncollected fees as the hedge does
    assert (
        delta_includes_fees(None) is HedgeSection.model_fields["include_uncollected_fees"].default
    )
    runner = _build(
        HedgeSection(
            exchange="paper", symbol="ETH/USDT:USDT", band_pct=5, include_uncollected_fees=False
        ),
        tmp_path,
    )
    assert delta_includes_fees(runner) is False


def test_a_rebalanced_position_takes_its_hedge_to_the_new_nft(tmp_path: Path) -> None:
    """A rebalance burns NFT 7 and mints 8: the hedge (state and paper account) moves to 8, so
    the new NFT's delta tops up the same short rather than opening a second one."""
    section = HedgeSection(
        exchange="paper", symbol="ETH/USDT:USDT", band_abs=Decimal("0.05"), band_pct=5
    )
    runner = _build(section, tmp_path)
    assert runner.price is not None
    runner.price.value = Decimal(2_000)
    with runner.session() as hedge:
        assert [o.filled for o in hedge.sync(Decimal(3)).orders] == [Decimal(3)]
    old_files = runner.files
    assert runner.follow(8)
    assert not old_files.state.exists() and not old_files.paper.exists()
    assert runner.token_id == 8 and runner.files.state.name.endswith("-8.json")
    with runner.session() as hedge:
        result = hedge.sync(Decimal("3.5"))  # the new NFT's delta: 0.5 more, not 3.5
        assert [o.filled for o in result.orders] == [Decimal("0.5")]
        assert hedge.exchange.fetch_position("ETH/USDT:USDT").size == Decimal("-3.5")

    # a restart that finds NFT 9 (a rebalance the process was killed after) with no hedge of
    # its own takes NFT 8's
    later = build_hedge_runner(
        section, data_dir=tmp_path, position_id="31337:0xnpm:9", token_id=9,
        decimals=(6, 18), risky=1, now_ms=T0,
    )  # fmt: skip
    assert later.follow(9, from_token=8) and not later.follow(9, from_token=7)
    assert later.price is not None
    later.price.value = Decimal(2_000)
    with later.session() as hedge:
        assert hedge.state.ledger.size == Decimal("-3.5") and hedge.state.position_id.endswith(":9")
        assert hedge.exchange.fetch_position("ETH/USDT:USDT").size == Decimal("-3.5")
        assert not hedge.sync(Decimal("3.5")).orders
    assert sorted(p.name for p in (tmp_path / "hedge").glob("*.json")) == [
        "hedge-paper-31337-0xnpm-9.json",
        "paper-31337-0xnpm-9.json",
    ]


def test_a_move_killed_after_the_new_state_was_written_is_finished_at_the_next_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Killed between writing NFT 8's hedge state and removing NFT 7's: the next start (which
    finds NFT 8 with a state) finishes the move, so no burned NFT keeps a short of its own."""
    section = HedgeSection(
        exchange="paper", symbol="ETH/USDT:USDT", band_abs=Decimal("0.05"), band_pct=5
    )
    runner = _build(section, tmp_path)
    assert runner.price is not None
    runner.price.value = Decimal(2_000)
    with runner.session() as hedge:
        assert [o.filled for o in hedge.sync(Decimal(3)).orders] == [Decimal(3)]
    old_state = runner.files.state

    class Killed(BaseException):
        pass

    real_unlink = Path.unlink

    def killed_at_unlink(self: Path, missing_ok: bool = False) -> None:
        if self == old_state:
            raise Killed
        real_unlink(self, missing_ok=missing_ok)

    monkeypatch.setattr(Path, "unlink", killed_at_unlink)
    with pytest.raises(Killed):
        runner.follow(8)
    monkeypatch.setattr(Path, "unlink", real_unlink)
    assert old_state.exists()  # the kill left both states: two shorts on paper

    later = build_hedge_runner(
        section, data_dir=tmp_path, position_id="31337:0xnpm:8", token_id=8,
        decimals=(6, 18), risky=1, now_ms=T0,
    )  # fmt: skip
    assert later.files.state.exists()
    assert later.follow(8, from_token=7)
    assert not old_state.exists()
    assert sorted(p.name for p in (tmp_path / "hedge").glob("*.json")) == [
        "hedge-paper-31337-0xnpm-8.json",
        "paper-31337-0xnpm-8.json",
    ]
    later.price.value = Decimal(2_000)  # type: ignore[union-attr]
    with later.session() as hedge:
        assert hedge.state.ledger.size == Decimal(-3)
        assert not hedge.sync(Decimal(3)).orders
    # a hedge of its own on the new NFT is never taken for a half-done move
    assert not later.follow(8, from_token=7)

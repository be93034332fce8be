"""The ``[hedge]`` section becomes a runner: venue, keys by name, sandbox, band, state paths."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from lpbot.config import HedgeConfig as HedgeSection
from lpbot.errors import ConfigError
from lpbot.hedge.ccxt_exchange import CcxtExchange
from lpbot.hedge.paper import PaperExchange
from lpbot.hedge.wiring import build_hedge_runner
from tests.hedge.fakes import T0


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
    assert runner.controller.config.band_abs == Decimal("0.001")
    with pytest.raises(ConfigError, match="no paper market"):
        _build(HedgeSection(exchange="paper", symbol="ETH/USDC:USDC", band_pct=5), tmp_path)

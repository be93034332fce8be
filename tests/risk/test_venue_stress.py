"""The perp's stress signals for the regime: the paper venue simulates them from its prices,
ccxt reads them from a venue that serves them (the Binance stand-in), and a venue that does not
serve one leaves it None."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal

import pytest

from lpbot.hedge.base import FundingRate
from lpbot.hedge.ccxt_exchange import CcxtConfig, CcxtExchange
from lpbot.hedge.paper import PaperExchange
from lpbot.hedge.stress import fetch_perp_stress
from lpbot.risk.regime import Level, RegimeConfig, RegimeInputs, RegimeTracker
from tests.hedge.binance_standin import API_KEY, API_SECRET, BinanceStandIn
from tests.hedge.fakes import BTC, T0, Price, paper

D = Decimal
MINUTE = 60_000


def _walk(ex: PaperExchange, price: Price, clock: object, moves: list[float]) -> None:
    """One price a minute, each ``moves[i]`` times the last, seen by the venue."""
    for m in moves:
        clock.advance(MINUTE)  # type: ignore[attr-defined]
        price.value = (price.value * D(repr(m))).quantize(D("0.1"))
        ex.fetch_mark_price(BTC)


def test_the_paper_venue_liquidates_on_price_moves_and_the_regime_sees_a_cascade() -> None:
    ex, price, clock = paper()
    _walk(ex, price, clock, [1.0] * (24 * 60))  # a quiet day: background liquidations only
    quiet = fetch_perp_stress(ex, BTC, clock.now_ms())
    assert quiet.funding_rate_8h == pytest.approx(0.0001)
    assert quiet.open_interest_usd == pytest.approx(100_000 * 60_000)
    assert quiet.open_interest_change_pct == pytest.approx(0.0)
    # 50 base an hour at 60,000: over 30 minutes, $1.5M, as the day's share
    assert quiet.liquidations_usd == pytest.approx(1.5e6, rel=0.01)
    assert quiet.liquidations_baseline_usd == pytest.approx(1.5e6, rel=0.01)
    _walk(ex, price, clock, [0.99] * 20)  # -18% in 20 minutes
    crash = fetch_perp_stress(ex, BTC, clock.now_ms())
    # each 1% move liquidates 0.4% of the open interest: about 8% flushed in 20 steps (in
    # contracts: the 18% fall of their USD value is the price's, not positions closed)
    assert crash.open_interest_change_pct == pytest.approx(-7.7, abs=0.3)
    assert crash.liquidations_usd is not None and crash.liquidations_baseline_usd is not None
    assert crash.liquidations_usd / crash.liquidations_baseline_usd > 20.0
    state = RegimeTracker(RegimeConfig()).update(
        RegimeInputs(**crash.regime_inputs()), clock.now_ms() / 1000
    )
    assert state.level is Level.STRESSED
    assert any("liquidations" in r for r in state.reasons)
    # the account persists its market activity with everything else
    again = PaperExchange.from_account(ex.account(), reference_price=price, clock=clock)
    assert fetch_perp_stress(again, BTC, clock.now_ms()) == crash


@pytest.fixture
def standin() -> Iterator[BinanceStandIn]:
    ex, _price, clock = paper()
    with BinanceStandIn(ex, clock).running() as server:
        yield server


def test_ccxt_reads_open_interest_from_binance_and_no_liquidations(
    standin: BinanceStandIn,
) -> None:
    config = CcxtConfig.for_exchange(
        "binanceusdm", api_urls=standin.api_urls(), enable_rate_limit=False, timeout_ms=2000
    )
    env = {"LPBOT_BINANCE_KEY": API_KEY, "LPBOT_BINANCE_SECRET": API_SECRET}
    ex = CcxtExchange(config, env=env)
    price = standin.paper._reference
    assert isinstance(price, Price)
    clock = standin.clock
    oi = ex.fetch_open_interest(BTC)
    assert oi is not None and oi.usd == pytest.approx(100_000 * 60_000)
    assert oi.timestamp_ms == T0
    for _ in range(40):  # the price falls 0.5% a minute for 40 minutes
        clock.advance(MINUTE)
        price.value = (price.value * D("0.995")).quantize(D("0.1"))
        standin.paper.fetch_mark_price(BTC)
    history = ex.fetch_open_interest_history(BTC, clock.now_ms() - 30 * MINUTE)
    assert history is not None and len(history) >= 6  # every 5 minutes
    assert [h.timestamp_ms for h in history] == sorted(h.timestamp_ms for h in history)
    assert ex.fetch_liquidations(BTC, T0) is None  # Binance: a websocket stream only
    stress = fetch_perp_stress(ex, BTC, clock.now_ms())
    assert stress.funding_rate_8h == pytest.approx(0.0001)
    assert stress.liquidations_usd is None and stress.liquidations_baseline_usd is None
    # 30 minutes of 0.5% steps flush about 6% of the contracts (the price fell 14% besides)
    assert stress.open_interest_change_pct is not None
    assert -7.0 < stress.open_interest_change_pct < -5.5
    paper_oi = standin.paper.fetch_open_interest(BTC)
    assert paper_oi is not None
    assert stress.open_interest_usd == pytest.approx(paper_oi.usd, rel=1e-6)
    assert standin.calls("GET", "/futures/data/openInterestHist")


class _HourlyFundingVenue:
    """A venue that settles funding every hour (as Bybit, OKX and Binance do on some markets,
    and Binance on more of them in a stressed market) and serves nothing else."""

    def __init__(self, rate: str, interval_hours: float | None) -> None:
        self.rate, self.interval_hours = D(rate), interval_hours

    def fetch_funding_rate(self, symbol: str) -> FundingRate:
        return FundingRate(symbol, self.rate, 0, interval_hours=self.interval_hours)

    def fetch_open_interest(self, symbol: str) -> None:
        return None

    def fetch_open_interest_history(self, symbol: str, since_ms: int) -> None:
        return None

    def fetch_liquidations(self, symbol: str, since_ms: int) -> None:
        return None


def test_a_funding_rate_per_hour_is_compared_per_8_hours() -> None:
    # 5 bps an hour is 40 bps per 8 h: past the stressed threshold (15), not a calm 5
    hourly = fetch_perp_stress(_HourlyFundingVenue("0.0005", 1.0), BTC, 0)
    assert hourly.funding_rate_8h == pytest.approx(0.004)
    state = RegimeTracker(RegimeConfig()).update(RegimeInputs(**hourly.regime_inputs()), 0)
    assert state.level is Level.STRESSED
    # a venue that does not say its interval: the common 8 h
    assert fetch_perp_stress(_HourlyFundingVenue("0.0005", None), BTC, 0).funding_rate_8h == (
        pytest.approx(0.0005)
    )
    assert fetch_perp_stress(_HourlyFundingVenue("0.0005", 4.0), BTC, 0).funding_rate_8h == (
        pytest.approx(0.001)
    )


@pytest.mark.parametrize(
    ("raw", "hours"), [("1h", 1.0), ("4h", 4.0), ("8h", 8.0), (None, None), ("weird", None)]
)
def test_ccxt_funding_interval_is_read_from_the_rate(raw: str | None, hours: float | None) -> None:
    from lpbot.hedge.ccxt_exchange import funding_interval_hours

    assert funding_interval_hours(raw) == hours


def test_a_price_move_alone_is_no_open_interest_change() -> None:
    # no position is liquidated (no flush), the price falls 10%: the USD value of the open
    # interest falls 10% but no contract closed, which the signal must not read as a flush
    from lpbot.hedge.paper import MarketModel, PaperMarketSpec

    spec = PaperMarketSpec(market_model=MarketModel(liquidated_per_pct=0.0))
    ex, price, clock = paper(spec=spec)
    _walk(ex, price, clock, [1.0] * 60 + [0.9] + [1.0] * 29)
    stress = fetch_perp_stress(ex, BTC, clock.now_ms())
    assert stress.open_interest_usd == pytest.approx(100_000 * 54_000)
    assert stress.open_interest_change_pct == pytest.approx(0.0)

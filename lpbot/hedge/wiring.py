"""The hedge job of ``lpbot run``: one controller per position, built from the ``[hedge]``
configuration, with its state and (on paper) its venue account kept under ``data_dir/hedge``.

``build_hedge_runner`` is called by the runtime for each position the hedge covers;
``HedgeRunner.sync(snapshot)`` is the job body: it marks the paper venue at the pool price and
clock of the snapshot, computes the LP delta (with uncollected fees unless configured otherwise),
syncs, and saves the paper account. Live venues (``binanceusdm``, ``okx``, ``bybit``) take their
keys from the environment variables the configuration names, use the wall clock, and their
testnet with ``sandbox = true``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from lpbot.errors import ConfigError
from lpbot.hedge.base import Clock, Exchange, ManualClock, SystemClock
from lpbot.hedge.controller import HedgeController, SyncResult
from lpbot.hedge.delta import lp_delta, risky_price
from lpbot.hedge.paper import PAPER_MARKETS, PaperAccount, PaperExchange
from lpbot.hedge.plan import HedgeConfig
from lpbot.hedge.state import JsonStateStore, write_json_atomic

if TYPE_CHECKING:
    from lpbot.chain.reader import PoolSnapshot
    from lpbot.config import HedgeConfig as HedgeSection

__all__ = ["HedgeRunner", "build_hedge_runner"]


@dataclass
class _Price:
    value: Decimal = Decimal(0)

    def __call__(self) -> Decimal:
        if not self.value > 0:
            raise ConfigError("the paper venue has no pool price yet")
        return self.value


@dataclass
class HedgeRunner:
    """One position's hedge job (module docstring)."""

    controller: HedgeController
    token_id: int
    decimals: tuple[int, int]
    risky: Literal[0, 1]
    include_fees: bool
    price: _Price | None = None  # paper: the pool price the venue marks at
    clock: ManualClock | None = None  # paper: the chain's clock
    save: Callable[[], None] = field(default=lambda: None)

    def sync(self, snapshot: PoolSnapshot) -> SyncResult:
        d0, d1 = self.decimals
        if self.price is not None and self.clock is not None:
            self.price.value = risky_price(snapshot, decimals0=d0, decimals1=d1, risky=self.risky)
            self.clock.set(max(self.clock.now_ms(), snapshot.block_timestamp * 1000))
        delta = lp_delta(
            snapshot,
            self.token_id,
            decimals0=d0,
            decimals1=d1,
            risky=self.risky,
            include_fees=self.include_fees,
        )
        try:
            return self.controller.sync(delta)
        finally:
            self.save()


def build_hedge_runner(
    section: HedgeSection,
    *,
    data_dir: Path,
    position_id: str,
    token_id: int,
    decimals: tuple[int, int],
    risky: Literal[0, 1],
    now_ms: int,
) -> HedgeRunner:
    """The runner of one position's hedge (module docstring). ``now_ms``: the chain's time."""
    home = data_dir / "hedge"
    safe_id = position_id.replace(":", "-")
    save: Callable[[], None] = lambda: None  # noqa: E731
    price: _Price | None = None
    manual: ManualClock | None = None
    clock: Clock
    exchange: Exchange
    if section.exchange == "paper":
        if section.symbol not in PAPER_MARKETS:
            known = ", ".join(PAPER_MARKETS)
            raise ConfigError(f"hedge.symbol: no paper market for {section.symbol}; known: {known}")
        price, manual = _Price(), ManualClock(now_ms)
        clock = manual
        path = home / f"paper-{safe_id}.json"
        paper: PaperExchange
        if path.exists():
            account = PaperAccount.model_validate_json(path.read_text())
            paper = PaperExchange.from_account(account, reference_price=price, clock=manual)
        else:
            spec, book = PAPER_MARKETS[section.symbol]
            paper = PaperExchange(reference_price=price, clock=manual, spec=spec, book=book)
        exchange = paper

        def save() -> None:
            write_json_atomic(path, paper.account().model_dump(mode="json"))
    else:
        from lpbot.hedge.ccxt_exchange import CcxtConfig, CcxtExchange

        assert section.api_key_env is not None and section.api_secret_env is not None
        clock = SystemClock()
        exchange = CcxtExchange(
            CcxtConfig(
                exchange_id=section.exchange,
                key_env=section.api_key_env,
                secret_env=section.api_secret_env,
                password_env=section.api_password_env,
                sandbox=section.sandbox,
            )
        )
    # no absolute band configured: the venue's minimum order (the narrowest band it can hold)
    band_abs = section.band_abs or exchange.load_market(section.symbol).min_amount
    config = HedgeConfig(
        symbol=section.symbol,
        band_abs=band_abs,
        band_pct=Decimal(repr(section.band_pct)),
        max_leverage=Decimal(repr(section.max_leverage)),
        max_funding_cost_apr=Decimal(repr(section.max_funding_apr_pct)) / 100,
    )
    controller = HedgeController(
        exchange,
        config,
        JsonStateStore(home / f"hedge-{section.exchange}-{safe_id}.json"),
        position_id=position_id,
        clock=clock,
    )
    return HedgeRunner(
        controller,
        token_id,
        decimals,
        risky,
        section.include_uncollected_fees,
        price,
        manual,
        save,
    )

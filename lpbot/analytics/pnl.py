"""Where an LP's profit came from, in USD and in a numeraire such as BTC (float, analytics).

With ``entry`` the tokens deposited, ``hold`` the same tokens at today's prices, ``principal``
what the position holds now and ``fees`` every fee earned (collected and uncollected):

    price            = hold - entry value               (the tokens' own move)
    impermanent_loss = principal - hold                 (<= 0 without fees)
    fees, hedge, funding as given, gas as a cost (<= 0)
    total            = final - entry value,  final = principal + fees + hedge + funding - gas

In the numeraire ``N`` (its USD price ``N0`` at entry, ``N1`` now) the same identity holds with
``price = hold / N1 - entry / N0`` and the other parts divided by ``N1``, so ``total > 0`` in BTC
means LPing beat simply holding BTC.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from lpbot.analytics.types import TokenAmounts


@dataclass(frozen=True, slots=True)
class UsdPrices:
    """USD prices of the pool's tokens and of the numeraire at one time."""

    token0_usd: float
    token1_usd: float
    numeraire_usd: float

    def __post_init__(self) -> None:
        for name in ("token0_usd", "token1_usd", "numeraire_usd"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be finite and > 0, got {value}")


@dataclass(frozen=True, slots=True)
class PnlComponents:
    """One breakdown in one unit (USD or the numeraire); the parts add up to ``total``."""

    price: float
    impermanent_loss: float
    fees: float
    hedge: float
    funding: float
    gas: float

    @property
    def total(self) -> float:
        return self.price + self.impermanent_loss + self.fees + self.hedge + self.funding + self.gas

    @property
    def lp_vs_hold(self) -> float:
        """Everything but the tokens' own move: how LPing (and hedging) did against holding."""
        return self.total - self.price


@dataclass(frozen=True, slots=True)
class PnlBreakdown:
    numeraire: str
    entry_value_usd: float
    hold_value_usd: float
    final_value_usd: float
    usd: PnlComponents
    in_numeraire: PnlComponents

    @property
    def beat_holding_numeraire(self) -> bool:
        """True when the LP ended with more of the numeraire than holding it from entry would."""
        return self.in_numeraire.total > 0


def _usd(amounts: TokenAmounts, decimals0: int, decimals1: int, prices: UsdPrices) -> float:
    return (
        amounts.amount0 / 10.0**decimals0 * prices.token0_usd
        + amounts.amount1 / 10.0**decimals1 * prices.token1_usd
    )


def pnl_breakdown(
    *,
    entry: TokenAmounts,
    principal: TokenAmounts,
    fees: TokenAmounts,
    decimals0: int,
    decimals1: int,
    entry_prices: UsdPrices,
    prices: UsdPrices,
    hedge_usd: float = 0.0,
    funding_usd: float = 0.0,
    gas_usd: float = 0.0,
    numeraire: str = "BTC",
) -> PnlBreakdown:
    """Break an LP's result down; raw token amounts in, USD and numeraire floats out.

    ``hedge_usd`` is the hedge's realised and unrealised P&L, ``funding_usd`` the perp funding
    received (negative: paid), ``gas_usd`` the gas spent (>= 0), each in USD.
    """
    if not numeraire:
        raise ValueError("numeraire must be named (e.g. 'BTC' or 'ETH')")
    if gas_usd < 0:
        raise ValueError(f"gas_usd is a cost and must be >= 0, got {gas_usd}")
    entry_usd = _usd(entry, decimals0, decimals1, entry_prices)
    hold_usd = _usd(entry, decimals0, decimals1, prices)
    principal_usd = _usd(principal, decimals0, decimals1, prices)
    fees_usd = _usd(fees, decimals0, decimals1, prices)
    usd = PnlComponents(
        price=hold_usd - entry_usd,
        impermanent_loss=principal_usd - hold_usd,
        fees=fees_usd,
        hedge=hedge_usd,
        funding=funding_usd,
        gas=-gas_usd,
    )
    n0, n1 = entry_prices.numeraire_usd, prices.numeraire_usd
    in_numeraire = PnlComponents(
        price=hold_usd / n1 - entry_usd / n0,
        impermanent_loss=usd.impermanent_loss / n1,
        fees=fees_usd / n1,
        hedge=hedge_usd / n1,
        funding=funding_usd / n1,
        gas=-gas_usd / n1,
    )
    return PnlBreakdown(
        numeraire=numeraire,
        entry_value_usd=entry_usd,
        hold_value_usd=hold_usd,
        final_value_usd=entry_usd + usd.total,
        usd=usd,
        in_numeraire=in_numeraire,
    )

"""The expected value of liquidity in a range over a horizon: fees less LVR less costs.

Float, analytics; pure (no I/O, no clock). Prices are raw (token1 per token0 in smallest units,
``(sqrtPriceX96 / 2**96)**2``), sqrt prices their square roots, liquidity the pool's ``L``;
money is USD. The log-price is a driftless Brownian motion with volatility ``sigma`` per
sqrt(second).

Loss-versus-rebalancing (Milionis, Moallemi, Roughgarden, Zhang, "Automated Market Making and
Loss-Versus-Rebalancing", 2022, Theorem 1): a pool holding ``x*(P)`` of the risky token loses to
arbitrageurs, against a portfolio rebalancing to the same holdings at market prices, at the
instantaneous rate ``ell(sigma, P) = sigma**2 P**2 / 2 * |x*'(P)|``. For a constant-product pool
(``x* = L / sqrt P``, value ``V = 2 L sqrt P``) that is ``sigma**2 / 8 * V`` (their Example 2).
Uniswap V3 liquidity ``L`` in ``[pa, pb]`` holds ``x*(P) = L (1/sqrt P - 1/sqrt pb)`` while
``pa <= P < pb``, so ``|x*'(P)| = L / (2 P**1.5)`` and

    ell = sigma**2 P**2 / 2 * L / (2 P**1.5) = sigma**2 / 4 * L * sqrt(P)     (token1 per second)

inside the range and 0 outside it: the same rate as full-range liquidity of the same ``L``,
which is ``sigma**2 / 8`` of ``2 L sqrt P``. A range concentrates: the same capital buys
``L`` larger by ``2 sqrt P / value_per_liquidity`` (``value_per_liquidity``), so LVR per dollar
grows by that factor, while fees per dollar grow by the same factor. Hence the fee-to-LVR ratio
(``fee_to_lvr_ratio``) decides the sign for every width: below 1 every range loses and the
widest loses least; above 1 concentration pays until time out of range and re-centring costs
eat the gain (Fan, Marmolejo-Cossio, Moallemi, Roughgarden, "Strategic Liquidity Provision in
Uniswap v3", 2022; Heimbach, Schertenleib, Wattenhofer, "Risks and Returns of Uniswap V3
Liquidity Providers", 2022; Cartea, Drissi, Monga, "Decentralised Finance and Automated Market
Making: Predictable Loss and Optimal Liquidity Provision", 2023, whose optimal width grows with
``sigma`` and shrinks with the fee rate).

Expected time in range (``time_in_range``): the average over ``[0, T]`` of
``P(-d <= W_t < u)`` for ``W_t ~ N(0, sigma**2 t)``, in closed form: the fraction of time below
``c > 0`` is ``G(z) = Phi(z) + z phi(z) - z**2 (1 - Phi(z))`` with ``z = c / (sigma sqrt T)``
(integrate ``Phi(z / sqrt s)`` over ``s`` in ``[0, 1]`` by parts), and ``1 - G(-z)`` for
``c < 0``. It counts returns into the range, as fees do.

Re-centring (``managed=True``): liquidity moved back to the middle whenever the price leaves the
range stays in range; the expected time to leave ``[-d, u]`` is ``d u / sigma**2`` (first exit
of a Brownian motion), so a range of log-width ``W`` re-centred (``d = u = W / 2``) is re-centred
``T sigma**2 / (W**2 / 4)`` times over ``T`` (renewal approximation), each paying
``recentre_cost_usd`` and realising the divergence loss accumulated since the last re-centre,
``ell * d u / sigma**2 = L sqrt(P) W**2 / 16`` (token1): the expected LVR of one stay in the
range, which is the loss that re-centring makes permanent. A re-centre comes
``reaction_seconds`` after the exit (half the interval between decisions, on average), out of
range meanwhile: each cycle lasts ``d u / sigma**2 + reaction_seconds``, of which the first part
is in range.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from lpbot.analytics.types import SECONDS_PER_YEAR

_SQRT2 = math.sqrt(2.0)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)


def _phi(z: float) -> float:
    return _INV_SQRT_2PI * math.exp(-0.5 * z * z)


def _cdf(z: float) -> float:
    return 0.5 * math.erfc(-z / _SQRT2)


def _time_below(c: float, scale: float) -> float:
    """Fraction of ``[0, T]`` a driftless Brownian motion from 0 spends below ``c``;
    ``scale = sigma sqrt T`` (module docstring)."""
    if scale <= 0:
        return 1.0 if c > 0 else 0.0
    z = abs(c) / scale
    if z > 40.0:  # the tail is below float resolution
        return 1.0 if c >= 0 else 0.0
    g = min(max(_cdf(z) + z * _phi(z) - z * z * 0.5 * math.erfc(z / _SQRT2), 0.5), 1.0)
    return g if c >= 0 else 1.0 - g


def time_in_range(down_log: float, up_log: float, sigma: float, horizon_seconds: float) -> float:
    """Expected fraction of the next ``horizon_seconds`` the log-price spends in
    ``[x0 - down_log, x0 + up_log)`` (closed form, module docstring); in [0, 1].

    Either width may be negative for a range that does not hold today's price.
    """
    _check_nonneg("sigma", sigma)
    _check_positive("horizon_seconds", horizon_seconds)
    if -down_log >= up_log:
        return 0.0
    scale = sigma * math.sqrt(horizon_seconds)
    return min(max(_time_below(up_log, scale) - _time_below(-down_log, scale), 0.0), 1.0)


def expected_exit_seconds(down_log: float, up_log: float, sigma: float) -> float:
    """Expected time for the log-price to leave ``[x0 - down_log, x0 + up_log]``: ``d u / s**2``
    (inf when it cannot leave)."""
    _check_nonneg("sigma", sigma)
    if down_log <= 0 or up_log <= 0:
        return 0.0
    variance = sigma * sigma
    if variance == 0:  # also a volatility whose square underflows
        return math.inf
    return down_log * up_log / variance


def value_per_liquidity(sqrt_price: float, sqrt_lower: float, sqrt_upper: float) -> float:
    """Value in raw token1 of one unit of liquidity in ``[sqrt_lower, sqrt_upper]`` at
    ``sqrt_price`` (amount0 at the price plus amount1; Uniswap V3 whitepaper, eq. 6.29-6.30)."""
    s = min(max(sqrt_price, sqrt_lower), sqrt_upper)
    return sqrt_price * sqrt_price * (1.0 / s - 1.0 / sqrt_upper) + (s - sqrt_lower)


def lvr_rate(liquidity: float, sqrt_price: float, sigma: float) -> float:
    """LVR of in-range liquidity ``L`` in raw token1 per second: ``sigma**2 / 4 * L * sqrt P``
    (module docstring; Milionis et al. 2022, Theorem 1 applied to ``x*(P)`` of a V3 range)."""
    _check_nonneg("sigma", sigma)
    return sigma * sigma / 4.0 * liquidity * sqrt_price


def fee_to_lvr_ratio(fees_per_liquidity: float, sqrt_price: float, sigma: float) -> float:
    """The pool's fee rate over its LVR rate, per unit of in-range liquidity (both in token1 per
    second): above 1 liquidity earns more than arbitrage takes. inf when ``sigma`` is 0 and
    there are fees, 0 when there are none."""
    lvr = lvr_rate(1.0, sqrt_price, sigma)
    if fees_per_liquidity <= 0:
        return 0.0
    return fees_per_liquidity / lvr if lvr > 0 else math.inf


@dataclass(frozen=True, slots=True)
class ExpectedValue:
    """The terms of a range's expected value over ``horizon_seconds`` (USD unless said).

    ``net_usd = fees_usd - lvr_usd - costs_now_usd - recentres * recentre_cost_usd``.
    ``time_in_range`` is the expected fraction of the horizon in range;
    ``realised_loss_usd`` is the divergence loss one re-centre makes permanent (already inside
    ``lvr_usd``: shown, not subtracted again).
    """

    horizon_seconds: float
    value_usd: float
    liquidity: float
    time_in_range: float
    fees_usd: float
    lvr_usd: float
    gas_usd: float
    swap_fee_usd: float
    price_impact_usd: float
    recentres: float
    recentre_cost_usd: float
    realised_loss_usd: float
    managed: bool

    @property
    def costs_now_usd(self) -> float:
        return self.gas_usd + self.swap_fee_usd + self.price_impact_usd

    @property
    def future_costs_usd(self) -> float:
        return self.recentres * self.recentre_cost_usd

    @property
    def net_usd(self) -> float:
        return self.fees_usd - self.lvr_usd - self.costs_now_usd - self.future_costs_usd

    def _apr(self, usd: float) -> float:
        if self.value_usd <= 0:
            return 0.0
        return usd / self.value_usd * SECONDS_PER_YEAR / self.horizon_seconds

    @property
    def fee_apr(self) -> float:
        """Expected fees per year as a fraction of the value (simple)."""
        return self._apr(self.fees_usd)

    @property
    def lvr_apr(self) -> float:
        """Expected LVR per year as a fraction of the value (simple)."""
        return self._apr(self.lvr_usd)

    def describe(self) -> str:
        """One line with every term, for a decision's reasons."""
        h = self.horizon_seconds / 3600
        text = (
            f"EV ${self.net_usd:,.2f} over {h:g} h = fees ${self.fees_usd:,.2f} "
            f"({self.time_in_range:.0%} in range) - LVR ${self.lvr_usd:,.2f} - costs "
            f"${self.costs_now_usd:,.2f} (gas {self.gas_usd:.2f}, swap fee "
            f"{self.swap_fee_usd:.2f}, impact {self.price_impact_usd:.2f})"
        )
        if self.recentres >= 0.005:
            text += (
                f" - {self.recentres:.2f} re-centres x ${self.recentre_cost_usd:,.2f} "
                f"(each realises ${self.realised_loss_usd:,.2f} of divergence loss)"
            )
        return text


def expected_value(
    *,
    sqrt_price: float,
    sqrt_lower: float,
    sqrt_upper: float,
    liquidity: float,
    sigma: float,
    horizon_seconds: float,
    fee_flow_usd: float,
    others_liquidity: float,
    token1_usd: float,
    gas_usd: float = 0.0,
    swap_fee_usd: float = 0.0,
    price_impact_usd: float = 0.0,
    recentre_cost_usd: float = 0.0,
    managed: bool = False,
    reaction_seconds: float = 0.0,
) -> ExpectedValue:
    """The expected value of ``liquidity`` in ``[sqrt_lower, sqrt_upper)`` (module docstring).

    ``fee_flow_usd``: USD per second the pool pays all in-range liquidity (the pool's fee rate
    times its volume); the position earns the share ``L / (others_liquidity + L)`` while in
    range. ``token1_usd``: USD of one raw unit of token1. ``gas_usd``, ``swap_fee_usd`` and
    ``price_impact_usd`` are paid now (to get into the range); ``managed`` re-centres
    ``reaction_seconds`` after every exit at ``recentre_cost_usd`` each, else the liquidity stays
    put for the horizon.
    """
    for name, value in (("sqrt_price", sqrt_price), ("sqrt_lower", sqrt_lower)):
        _check_positive(name, value)
    if not sqrt_upper > sqrt_lower:
        raise ValueError(f"sqrt_upper {sqrt_upper} must exceed sqrt_lower {sqrt_lower}")
    _check_positive("horizon_seconds", horizon_seconds)
    for name, value in (
        ("liquidity", liquidity), ("sigma", sigma), ("fee_flow_usd", fee_flow_usd),
        ("others_liquidity", others_liquidity), ("token1_usd", token1_usd),
        ("gas_usd", gas_usd), ("swap_fee_usd", swap_fee_usd),
        ("price_impact_usd", price_impact_usd), ("recentre_cost_usd", recentre_cost_usd),
        ("reaction_seconds", reaction_seconds),
    ):  # fmt: skip
        _check_nonneg(name, value)
    down = 2.0 * math.log(sqrt_price / sqrt_lower)
    up = 2.0 * math.log(sqrt_upper / sqrt_price)
    width = 2.0 * math.log(sqrt_upper / sqrt_lower)
    if managed:
        half = width / 2.0
        exit_s = expected_exit_seconds(half, half, sigma)
        cycle = exit_s + reaction_seconds
        occupancy = exit_s / cycle if math.isfinite(cycle) and cycle > 0 else 1.0
        recentres = horizon_seconds / cycle if cycle > 0 else 0.0
        sqrt_in = sqrt_price if down >= 0 and up > 0 else math.sqrt(sqrt_lower * sqrt_upper)
    else:
        occupancy = time_in_range(down, up, sigma, horizon_seconds)
        recentres = 0.0
        sqrt_in = min(max(sqrt_price, sqrt_lower), sqrt_upper)
    share = liquidity / (others_liquidity + liquidity) if liquidity > 0 else 0.0
    fees = fee_flow_usd * share * occupancy * horizon_seconds
    lvr = lvr_rate(liquidity, sqrt_in, sigma) * token1_usd * occupancy * horizon_seconds
    realised = liquidity * sqrt_in * width * width / 16.0 * token1_usd
    value = liquidity * value_per_liquidity(sqrt_price, sqrt_lower, sqrt_upper) * token1_usd
    return ExpectedValue(
        horizon_seconds=horizon_seconds,
        value_usd=value,
        liquidity=liquidity,
        time_in_range=occupancy,
        fees_usd=fees,
        lvr_usd=lvr,
        gas_usd=gas_usd,
        swap_fee_usd=swap_fee_usd,
        price_impact_usd=price_impact_usd,
        recentres=recentres,
        recentre_cost_usd=recentre_cost_usd,
        realised_loss_usd=realised,
        managed=managed,
    )


def _check_positive(name: str, value: float) -> None:
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be finite and > 0, got {value}")


def _check_nonneg(name: str, value: float) -> None:
    if not (math.isfinite(value) and value >= 0):
        raise ValueError(f"{name} must be finite and >= 0, got {value}")

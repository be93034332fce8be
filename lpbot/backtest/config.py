"""A backtest's configuration: frozen, validated, and built into the live strategy objects.

The strategy and policy built here are the very ``lpbot.strategy`` classes the bot runs live;
the backtest only supplies their snapshots. ``with_overrides`` applies dotted keys
(``strategy.half_width_pct``, ``policy.edge_pct``, ``decision_interval_seconds``) for sweeps.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from lpbot.backtest.costs import (
    BLOCK_SECONDS,
    DEFAULT_GAS_PRICE_GWEI,
    GAS_UNITS,
    MIN_SLIPPAGE_BPS,
    TYPICAL_NATIVE_USD,
    GasModel,
    HedgeModel,
    StepSeries,
    series_from_pairs,
)
from lpbot.config import RiskConfig
from lpbot.errors import ConfigError
from lpbot.strategy import (
    FixedWidth,
    FullRange,
    RangeStrategy,
    RebalancePolicy,
    SkewedBand,
    VolatilityBand,
)

StrategyKind = Literal["fixed", "vol_band", "skewed", "full_range"]
_BAND_FIELDS = {f.name for f in dataclasses.fields(VolatilityBand)}
_INT_FIELDS = {"half_width_ticks", "min_half_width_ticks", "max_half_width_ticks"}
_POLICY_FIELDS = {f.name for f in dataclasses.fields(RebalancePolicy)} - {"strategy"}


STABLECOINS = frozenset({"USDC", "USDC.E", "USDBC", "USDT", "USDT0", "DAI", "FRAX", "LUSD", "TUSD",
                         "USDP", "GUSD", "PYUSD", "USDE", "CRVUSD", "GHO"})  # fmt: skip
_ETH_SYMBOLS = frozenset({"WETH", "ETH"})


def _stable(symbol: str) -> bool:
    return symbol.upper() in STABLECOINS


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class StrategyConfig(_Frozen):
    """A range strategy by kind and its constructor's parameters."""

    kind: StrategyKind = "fixed"
    params: dict[str, float | int | str | None] = {}  # a width may be "auto"

    def build(self) -> RangeStrategy:
        params = {
            k: (int(v) if k in _INT_FIELDS and v is not None else v) for k, v in self.params.items()
        }
        try:
            if self.kind == "fixed":
                return FixedWidth(**params)  # type: ignore[arg-type]
            if self.kind == "vol_band":
                return VolatilityBand(**params)  # type: ignore[arg-type]
            if self.kind == "skewed":
                band = {k: v for k, v in params.items() if k in _BAND_FIELDS}
                rest = {k: v for k, v in params.items() if k not in _BAND_FIELDS}
                return SkewedBand(band=VolatilityBand(**band), **rest)  # type: ignore[arg-type]
            if params:
                raise ConfigError(f"full_range takes no parameters, got {sorted(params)}")
            return FullRange()
        except TypeError as exc:
            raise ConfigError(f"strategy {self.kind}: {exc}") from exc
        except ValueError as exc:
            raise ConfigError(f"strategy {self.kind}: {exc}") from exc


class BacktestConfig(_Frozen):
    """Everything a run needs besides its data. USD floats, seconds, raw token units.

    ``quote_token`` is the token priced at ``quote_usd`` (a USD stablecoin: 1.0); the other token
    is the volatile one, priced through the pool. ``volatile_share`` of ``capital_usd`` starts in
    the volatile token. ``native_usd`` prices gas; None uses the volatile token's price (right for
    WETH pools on Ethereum, Arbitrum and zkSync, whose gas token is ETH). ``slippage_bps`` is
    charged on the notional of the bot's own swaps beyond the pool's exact price impact (latency,
    MEV).

    Fields left None are filled from the data and the chain by ``resolve`` before a run (and the
    report says where each came from): ``quote_token`` from the pool's symbols (the USD
    stablecoin), the gas price from ``gas_price_series`` or the chain's typical price, the native
    token's price from ``native_usd_series``, the pool's WETH price or a typical ETH price,
    ``slippage_bps`` from the pool's realised volatility over one block. No cost is zero unless
    ``no_costs`` says so (for studies).

    ``risk`` (the ``[risk]`` section of lpbot.toml) runs the market regime on the run's bars and
    applies its actions: elevated widens the next range, stressed withdraws the liquidity to
    tokens (or moves it to the full range) and re-enters when the regime is normal again.
    """

    strategy: StrategyConfig = StrategyConfig(kind="fixed", params={"half_width_pct": 5.0})
    policy: dict[str, float | str | None] = {}
    capital_usd: float = 10_000.0
    volatile_share: float = 0.5
    quote_token: Literal[0, 1] | None = None
    quote_usd: float = 1.0
    decision_interval_seconds: int = 3600
    history_seconds: int = 14 * 86_400
    history_step_seconds: int = 300
    fee_window_seconds: int = 86_400
    start_timestamp: int | None = None
    end_timestamp: int | None = None
    chain: str = "ethereum"
    gas_price_gwei: float | None = None
    gas_price_series: tuple[tuple[float, float], ...] | None = None
    gas_units: dict[str, int] = {}
    native_usd: float | None = None
    native_usd_series: tuple[tuple[float, float], ...] | None = None
    slippage_bps: float | None = None
    no_costs: bool = False
    sources: dict[str, str] = {}  # set by ``resolve``: where each default came from
    unresolved: dict[str, Any] = {}  # set by ``resolve``: the fields it changed, as they were
    hedge_ratio: float = 0.0
    hedge_band: float = 0.1
    hedge_fee_bps: float = 5.0
    hedge_slippage_bps: float = 2.0
    funding_rate_8h: float = 0.0001
    funding_series: tuple[tuple[float, float], ...] | None = None
    label: str = ""
    # the market regime (``lpbot.backtest.risk``) and its actions; None: off
    risk: RiskConfig | None = None
    # how often the daemon's monitor evaluates the regime while it is normal ([schedule]
    # monitor_seconds), whatever the decision interval
    monitor_seconds: int = 60

    @field_validator("slippage_bps", "gas_price_gwei")
    @classmethod
    def _not_negative(cls, v: float | None) -> float | None:
        if v is not None and not v >= 0:
            raise ValueError(f"must be >= 0, got {v}")
        return v

    @field_validator("capital_usd", "quote_usd")
    @classmethod
    def _positive(cls, v: float) -> float:
        if not v > 0:
            raise ValueError(f"must be > 0, got {v}")
        return v

    @field_validator("volatile_share")
    @classmethod
    def _share(cls, v: float) -> float:
        if not 0 <= v <= 1:
            raise ValueError(f"must be in [0, 1], got {v}")
        return v

    @field_validator(
        "decision_interval_seconds", "history_seconds", "history_step_seconds", "monitor_seconds"
    )
    @classmethod
    def _seconds(cls, v: int) -> int:
        if v <= 0:
            raise ValueError(f"must be > 0, got {v}")
        return v

    @field_validator("chain")
    @classmethod
    def _chain(cls, v: str) -> str:
        if v not in GAS_UNITS:
            raise ValueError(f"unknown chain {v!r}; known: {', '.join(GAS_UNITS)}")
        return v

    @field_validator("policy")
    @classmethod
    def _policy(cls, v: dict[str, float | str | None]) -> dict[str, float | str | None]:
        unknown = set(v) - _POLICY_FIELDS
        if unknown:
            raise ValueError(
                f"unknown policy fields {sorted(unknown)}; known: {sorted(_POLICY_FIELDS)}"
            )
        return v

    def resolve(
        self, *, symbol0: str, symbol1: str, sigma_per_sqrt_second: float
    ) -> BacktestConfig:
        """This configuration with every None default filled (class docstring) and ``sources``
        saying where each value came from, for the report; a resolved one is returned as it is.
        Refused when a cost would be zero without ``no_costs``, or when no token is a known USD
        stablecoin and ``quote_token`` is unset."""
        if self.sources:
            return self
        update: dict[str, Any] = {}
        src: dict[str, str] = {}
        update["sources"] = src

        def done() -> BacktestConfig:
            before = {k: getattr(self, k) for k in update if k != "sources"}
            return self.model_copy(update={**update, "unresolved": before})

        quote = self.quote_token
        if quote is None:
            stable0, stable1 = _stable(symbol0), _stable(symbol1)
            if stable0 == stable1:
                raise ConfigError(
                    f"cannot tell which token is the USD quote ({symbol0 or '?'}/"
                    f"{symbol1 or '?'}): give --quote-token 0 or 1 (and --quote-usd)"
                )
            quote = 1 if stable1 else 0
            update["quote_token"] = quote
            src["quote_token"] = (
                f"token{quote} ({symbol1 if quote else symbol0}), a USD stablecoin by its symbol"
            )
        else:
            src["quote_token"] = f"token{quote}, given"
        volatile = symbol0 if quote == 1 else symbol1
        if self.no_costs:
            update.update(gas_price_gwei=0.0, gas_price_series=None, slippage_bps=0.0,
                          hedge_fee_bps=0.0, hedge_slippage_bps=0.0)  # fmt: skip
            src["costs"] = "off (--no-costs): gas, slippage and hedge fees are zero"
            return done()
        if self.gas_price_series:
            gas = [g for _, g in self.gas_price_series]
            src["gas_price"] = (
                f"series of {len(gas)} points, {min(gas):g}..{max(gas):g} gwei, from the data"
            )
            low = min(gas)
        elif self.gas_price_gwei is not None:
            src["gas_price"] = f"{self.gas_price_gwei:g} gwei, given"
            low = self.gas_price_gwei
        else:
            low = DEFAULT_GAS_PRICE_GWEI[self.chain]
            update["gas_price_gwei"] = low
            src["gas_price"] = f"{low:g} gwei, typical for {self.chain} (no series in the data)"
        if not low > 0:
            raise ConfigError(
                f"the gas price is {low:g} gwei: give a positive price, or --no-costs to study "
                "the strategy without costs"
            )
        if self.native_usd_series:
            if not min(v for _, v in self.native_usd_series) > 0:
                raise ConfigError("the native token's price series holds a price <= 0")
            src["native_usd"] = f"series of {len(self.native_usd_series)} points, from the data"
        elif self.native_usd is not None:
            if not self.native_usd > 0:
                raise ConfigError(f"native_usd must be > 0, got {self.native_usd}")
            src["native_usd"] = f"${self.native_usd:,.2f}, given"
        elif volatile.upper() in _ETH_SYMBOLS:
            src["native_usd"] = f"the pool's {volatile} price"
        else:
            update["native_usd"] = TYPICAL_NATIVE_USD
            src["native_usd"] = (
                f"${TYPICAL_NATIVE_USD:,.0f}, a typical ETH price (no WETH in this pool, "
                "no series in the data)"
            )
        if self.slippage_bps is None:
            block = BLOCK_SECONDS[self.chain]
            bps = max(sigma_per_sqrt_second * block**0.5 * 10_000, MIN_SLIPPAGE_BPS)
            update["slippage_bps"] = bps
            src["slippage"] = (
                f"{bps:.2f} bps: the pool's realised volatility over one {block:g} s block "
                f"(at least {MIN_SLIPPAGE_BPS:g} bps); price impact is the pool's own, from its "
                "liquidity"
            )
        else:
            src["slippage"] = f"{self.slippage_bps:g} bps, given"
        return done()

    def build_policy(self) -> RebalancePolicy:
        try:
            policy: dict[str, float | str | None] = {
                "decision_interval_seconds": float(self.decision_interval_seconds),
                **self.policy,
            }
            return RebalancePolicy(strategy=self.strategy.build(), **policy)  # type: ignore[arg-type]
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"policy: {exc}") from exc

    def native_series(self) -> StepSeries | None:
        return series_from_pairs(self.native_usd_series)

    def gas_model(self) -> GasModel:
        return GasModel(
            chain=self.chain,
            gas_price_gwei=self.gas_price_gwei,
            gas_price_series=series_from_pairs(self.gas_price_series),
            units=dict(self.gas_units),
        )

    def hedge_model(self) -> HedgeModel:
        return HedgeModel(
            ratio=self.hedge_ratio,
            band=self.hedge_band,
            fee_bps=self.hedge_fee_bps,
            slippage_bps=self.hedge_slippage_bps,
            rate_per_8h=self.funding_rate_8h,
            rate_series=series_from_pairs(self.funding_series),
        )

    def with_overrides(self, overrides: Mapping[str, Any]) -> BacktestConfig:
        """A copy with dotted keys replaced (``strategy.kind``, ``strategy.<param>``,
        ``policy.<field>``, or a top-level field)."""
        data = self.model_dump()
        data.update(data.pop("unresolved"), sources={}, unresolved={})  # defaults resolve again
        # the kind first: setting it clears the previous kind's parameters
        for key, value in sorted(overrides.items(), key=lambda kv: kv[0] != "strategy.kind"):
            head, _, rest = key.partition(".")
            if head == "strategy" and rest == "kind":
                data["strategy"]["kind"] = value
                data["strategy"]["params"] = {}
            elif head == "strategy" and rest:
                data["strategy"]["params"][rest] = value
            elif head == "policy" and rest:
                data["policy"][rest] = value
            elif not rest and head in BacktestConfig.model_fields:
                data[head] = value
            else:
                raise ConfigError(f"unknown setting {key!r}")
        try:
            return BacktestConfig.model_validate(data)
        except ValidationError as exc:
            problems = (
                f"{'.'.join(str(p) for p in e['loc'])}: {e['msg'].removeprefix('Value error, ')}"
                for e in exc.errors()
            )
            raise ConfigError("; ".join(problems)) from exc

"""A backtest's configuration: frozen, validated, and built into the live strategy objects.

The strategy and policy built here are the very ``lpbot.strategy`` classes the bot runs live;
the backtest only supplies their snapshots. ``with_overrides`` applies dotted keys
(``strategy.half_width_pct``, ``policy.edge_pct``, ``decision_interval_seconds``) for sweeps.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, field_validator

from lpbot.backtest.costs import GAS_UNITS, GasModel, HedgeModel, series_from_pairs
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


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class StrategyConfig(_Frozen):
    """A range strategy by kind and its constructor's parameters."""

    kind: StrategyKind = "fixed"
    params: dict[str, float | int | None] = {}

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
    """

    strategy: StrategyConfig = StrategyConfig(kind="fixed", params={"half_width_pct": 5.0})
    policy: dict[str, float | None] = {}
    capital_usd: float = 10_000.0
    volatile_share: float = 0.5
    quote_token: Literal[0, 1] = 1
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
    slippage_bps: float = 0.0
    hedge_ratio: float = 0.0
    hedge_band: float = 0.1
    hedge_fee_bps: float = 5.0
    hedge_slippage_bps: float = 2.0
    funding_rate_8h: float = 0.0001
    funding_series: tuple[tuple[float, float], ...] | None = None
    label: str = ""

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

    @field_validator("decision_interval_seconds", "history_seconds", "history_step_seconds")
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
    def _policy(cls, v: dict[str, float | None]) -> dict[str, float | None]:
        unknown = set(v) - _POLICY_FIELDS
        if unknown:
            raise ValueError(
                f"unknown policy fields {sorted(unknown)}; known: {sorted(_POLICY_FIELDS)}"
            )
        return v

    def build_policy(self) -> RebalancePolicy:
        try:
            return RebalancePolicy(strategy=self.strategy.build(), **self.policy)  # type: ignore[arg-type]
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"policy: {exc}") from exc

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
        except ValueError as exc:
            raise ConfigError(str(exc)) from exc

"""lpbot's configuration: one TOML file (``lpbot.toml``), validated into frozen models.

``load_config(path)`` reads the file with ``tomllib`` and validates it; any problem raises
``ConfigError`` listing every bad key by its path (``positions[0].strategy.k: must be > 0``).
The file path is ``--config``, else ``$LPBOT_CONFIG``, else ``./lpbot.toml``
(``resolve_config_path``). Relative paths in the file are relative to the file's directory.

Secrets never appear in the file, only references to them: the name of an environment variable
(``*_env`` keys: RPC URLs with API keys, keystore passwords, exchange API keys, a database URL
with a password) or a keystore path. Values that look like secrets are refused.

Money: capital to open a position is given in whole tokens as decimal strings (``"1.5"``,
never a float) and converted exactly to raw ints with the token's decimals.
"""

from __future__ import annotations

import math
import os
import re
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import time
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal
from urllib.parse import parse_qsl, urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AfterValidator,
    AliasChoices,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    model_validator,
)
from pydantic.functional_validators import PlainValidator

from lpbot.chain.registry import CHAINS, DEFAULT_PRIVATE_RPC
from lpbot.devnet.manifest import Manifest
from lpbot.errors import ConfigError
from lpbot.pricing.base import PricingConfig
from lpbot.risk.regime import SIGNAL_BY_NAME
from lpbot.risk.regime import config_problems as regime_config_problems
from lpbot.signing.mpc.config import MpcConfig

if TYPE_CHECKING:
    from lpbot.risk.actions import RegimeActions
    from lpbot.risk.regime import RegimeConfig
    from lpbot.strategy import FixedWidth, FullRange, RebalancePolicy, SkewedBand, VolatilityBand
    from lpbot.strategy.base import RangeStrategy

__all__ = [
    "CONFIG_ENV",
    "DEFAULT_CONFIG_NAME",
    "EXAMPLE_TOML",
    "AutoExecuteConfig",
    "ChainConfig",
    "ChainLimits",
    "ChainSigner",
    "Config",
    "DashboardConfig",
    "FixedStrategyConfig",
    "FullRangeStrategyConfig",
    "HealthConfig",
    "HedgeConfig",
    "KeystoreRef",
    "ModuleConfig",
    "MpcConfig",
    "OpenConfig",
    "PolicyConfig",
    "PositionConfig",
    "ResolvedChain",
    "SafeConfig",
    "SafeOwner",
    "ScheduleConfig",
    "SignerConfig",
    "SkewedStrategyConfig",
    "StrategyConfig",
    "VolBandStrategyConfig",
    "load_config",
    "parse_config",
    "resolve_config_path",
    "write_example",
]

CONFIG_ENV = "LPBOT_CONFIG"
DEFAULT_CONFIG_NAME = "lpbot.toml"
DEVNET = "devnet"  # the Safe or module address "devnet": read it from the devnet manifest

# ------------------------------------------------------------------------------ value types

_ENV_NAME = re.compile(r"^[A-Z_][A-Z0-9_]*$")
_ADDRESS = re.compile(r"^0x[0-9a-fA-F]{40}$")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$")
_SECRETISH_PARAM = re.compile(r"key|token|secret|pass|auth", re.IGNORECASE)
_SECRETISH_SEGMENT = re.compile(r"^[A-Za-z0-9_\-]{24,}$")


def _env_name(value: str) -> str:
    if not _ENV_NAME.match(value):
        raise ValueError("must be the name of an environment variable (A-Z, 0-9, _), not its value")
    return value


def _address(value: str) -> str:
    """A 0x address; mixed case must be a valid EIP-55 checksum. Returned checksummed."""
    from eth_utils.address import is_checksum_address, to_checksum_address

    if not _ADDRESS.match(value):
        raise ValueError(f"must be a 0x address of 40 hex digits, got {value!r}")
    if value[2:] not in (value[2:].lower(), value[2:].upper()) and not is_checksum_address(value):
        raise ValueError(f"{value} has a bad EIP-55 checksum")
    return str(to_checksum_address(value))


def _address_or_devnet(value: str) -> str:
    return value if value == DEVNET else _address(value)


def _name(value: str) -> str:
    if not _NAME.match(value):
        raise ValueError(
            "must be 1-64 letters, digits, '_', '.', '-', starting with a letter/digit"
        )
    return value


def _relative_path(value: Path, info: ValidationInfo) -> Path:
    """Expand ``~``; resolve relative paths against the config file's directory when known."""
    value = value.expanduser()
    base = (info.context or {}).get("base_dir")
    return value if value.is_absolute() or base is None else Path(base) / value


def _no_float_amount(value: Any) -> Any:
    if isinstance(value, float):
        raise ValueError(f'write amounts as strings (e.g. "{value}"): a float is not exact')
    return value


def _exact_decimal(value: Decimal) -> Decimal:
    if not value.is_finite():
        raise ValueError("must be a finite number")
    return value


EnvName = Annotated[str, AfterValidator(_env_name)]
Address = Annotated[str, AfterValidator(_address)]
AddressOrDevnet = Annotated[str, AfterValidator(_address_or_devnet)]
Name = Annotated[str, AfterValidator(_name)]
RelPath = Annotated[Path, AfterValidator(_relative_path)]
TokenAmount = Annotated[
    Decimal, BeforeValidator(_no_float_amount), AfterValidator(_exact_decimal), Field(ge=0)
]
PositiveFloat = Annotated[float, Field(gt=0, allow_inf_nan=False)]
NonNegativeFloat = Annotated[float, Field(ge=0, allow_inf_nan=False)]


def _number_or_auto(low: float, high: float | None) -> Any:
    """A validator: "auto" (a width the policy chooses by expected value, lpbot.strategy.ev) or a
    number in (low, high); one error naming the rule."""

    def check(value: Any) -> float | str:
        if value == "auto":
            return "auto"
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f'must be a number or "auto", got {value!r}')
        number = float(value)
        if not math.isfinite(number) or number <= low:
            raise ValueError(f"must be > {low:g}")
        if high is not None and number >= high:
            raise ValueError(f"must be < {high:g}")
        return number

    return PlainValidator(check)


PositiveFloatOrAuto = Annotated[float | Literal["auto"], _number_or_auto(0.0, None)]
PercentOrAuto = Annotated[float | Literal["auto"], _number_or_auto(0.0, 100.0)]


def _check_url_has_no_secret(url: str) -> None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https", "ws", "wss"):
        raise ValueError(f"must be an http(s) or ws(s) URL, got {url!r}")
    if parts.password or parts.username:
        raise ValueError("carries credentials; put the URL in an environment variable")
    for key, _value in parse_qsl(parts.query):
        if _SECRETISH_PARAM.search(key):
            raise ValueError(f"has a {key!r} parameter; put the URL in an environment variable")
    if any(_SECRETISH_SEGMENT.match(seg) for seg in parts.path.split("/")):
        raise ValueError(
            "looks like it carries an API key; put the URL in an environment variable and "
            "name it with rpc_url_env"
        )


# The strategy classes' defaults (lpbot.strategy), written out so that reading a configuration
# does not load the strategies and numpy (every command reads one; `lpbot status` must start in
# under half a second). tests/test_config.py checks they equal the dataclasses' defaults, and
# that these models accept exactly the parameters the classes accept.
_DEFAULTS: dict[str, dict[str, Any]] = {
    "VolatilityBand": {
        "k": "auto",
        "horizon_seconds": 86400.0,
        "halflife_seconds": 21600.0,
        "min_half_width_ticks": 10,
        "max_half_width_ticks": 200000,
    },
    "SkewedBand": {
        "drift_halflife_seconds": 86400.0,
        "drift_weight": 1.0,
        "max_shift": 0.5,
        "static_skew": 0.0,
    },
    "RebalancePolicy": {
        "edge_pct": 1.0,
        "max_age_seconds": None,
        "vol_ratio_trigger": 2.0,
        "vol_short_halflife_seconds": 3600.0,
        "vol_long_halflife_seconds": 604800.0,
        "horizon_seconds": 86400.0,
        "slippage_bps": 10.0,
        "min_gain_over_cost": 1.0,
        "compound_margin": 2.0,
        "decision_interval_seconds": 3600.0,
        "rebalance_rule": "ev",
    },
}


def _dataclass_default(cls: str, name: str) -> Any:
    """The default of field ``name`` of the strategy class named ``cls``."""
    return _DEFAULTS[cls][name]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


# ----------------------------------------------------------------------------------- chains


class ChainConfig(_Frozen):
    """A chain to connect to. Its key in ``[chains]`` is its name.

    Known chains (``ethereum``, ``arbitrum``, ``zksync``) need only an RPC URL; any other name
    needs ``chain_id`` of a chain lpbot supports. The devnet gives ``manifest`` instead: its
    chain id, RPC URL and addresses come from the running devnet.
    """

    chain_id: int | None = Field(default=None, gt=0)
    rpc_url: str | None = None
    rpc_url_env: EnvName | None = None
    manifest: RelPath | None = None
    confirmations: int | None = Field(default=None, ge=0)
    # where signed transactions are sent: a protected RPC (Flashbots Protect-like) on Ethereum,
    # the sequencer on an L2; the URL may hold a key, so only the variable's name is written
    submit_url_env: EnvName | None = None
    public_fallback: bool = False  # the submit endpoint down: send to the public mempool
    # which transactions go to the private endpoint (``lpbot.chain.submit.submission_route``):
    # "auto" = on Ethereum the swap-bearing ones (to submit_url_env's endpoint, else Flashbots
    # Protect), elsewhere all of them when submit_url_env is set; "always"; "never"
    private_submission: Literal["auto", "always", "never"] = "auto"
    # how a plan is dry-run before anything is signed: "fork" (executed on a local Anvil fork of
    # the chain) or "call" (only ``eth_call`` on the chain's node: the Safe batch through Safe's
    # SimulateTxAccessor, its effects read back; ``lpbot.execution.callsim``). Default: "fork"
    # where Anvil can fork the chain, "call" on zkSync Era (which it cannot)
    dry_run: Literal["fork", "call"] | None = None
    # this chain's own Safe, module, sender (a keystore of [signer.keystores]) and gas limits;
    # unset: the global ones ([signer.safe], [signer.module], signer.sender, [execution])
    safe: SafeConfig | None = None
    module: ModuleConfig | None = None
    sender: str | None = None
    max_fee_usd: UsdLimit | None = None
    max_gas_price_gwei: GweiPrice | None = None

    @model_validator(mode="after")
    def _one_rpc_source(self) -> ChainConfig:
        if self.rpc_url is not None and self.rpc_url_env is not None:
            raise ValueError("rpc_url: give rpc_url or rpc_url_env, not both")
        if self.manifest is None and self.rpc_url is None and self.rpc_url_env is None:
            raise ValueError("rpc_url_env: required (or rpc_url; or manifest for the devnet)")
        if self.manifest is not None and self.chain_id is not None:
            raise ValueError("chain_id: the devnet's comes from its manifest; remove it")
        if self.private_submission == "never" and self.submit_url_env is not None:
            raise ValueError(
                "submit_url_env: private_submission = 'never' sends every transaction to the "
                "public mempool; remove submit_url_env or set private_submission"
            )
        if self.rpc_url is not None:
            try:
                _check_url_has_no_secret(self.rpc_url)
            except ValueError as exc:
                raise ValueError(f"rpc_url: {exc}") from None
        return self

    @property
    def is_devnet(self) -> bool:
        return self.manifest is not None

    def private_endpoint(self, chain_id: int | None) -> str | None:
        """The private endpoint as shown to a person: ``submit_url_env``'s name (its URL may
        hold a key), else the chain's default (Ethereum's), else None."""
        if self.submit_url_env is not None:
            return f"${self.submit_url_env}"
        if self.private_submission != "never" and chain_id in DEFAULT_PRIVATE_RPC:
            return f"{DEFAULT_PRIVATE_RPC[chain_id]} (Flashbots Protect, the chain's default)"
        return None


class ResolvedChain(_Frozen):
    """A chain ready to connect to: the URL read from the environment or the manifest."""

    name: str
    chain_id: int
    rpc_url: str
    manifest: Manifest | None = None
    submit_url: str | None = None
    public_fallback: bool = False
    private_submission: Literal["auto", "always", "never"] = "auto"
    # the private endpoint as shown in reports and `config check`: the environment variable's
    # name, or the chain's default endpoint (never a URL read from the environment)
    submit_endpoint: str | None = None
    dry_run: Literal["fork", "call"] = "fork"


# -------------------------------------------------------------------------------- strategies


def _check_widths(low: int, high: int) -> None:
    if high < low:
        raise ValueError(f"max_half_width_ticks {high} must be >= min_half_width_ticks {low}")


class FixedStrategyConfig(_Frozen):
    """``lpbot.strategy.FixedWidth``: give exactly one of the two half-widths."""

    kind: Literal["fixed"]
    half_width_ticks: int | None = Field(default=None, gt=0)
    half_width_pct: PercentOrAuto | None = None

    @model_validator(mode="after")
    def _one_width(self) -> FixedStrategyConfig:
        if (self.half_width_ticks is None) == (self.half_width_pct is None):
            raise ValueError("give exactly one of half_width_ticks and half_width_pct")
        return self

    def build(self) -> FixedWidth:
        from lpbot.strategy import FixedWidth

        return FixedWidth(
            half_width_ticks=self.half_width_ticks, half_width_pct=self.half_width_pct
        )


_VB = "VolatilityBand"


class VolBandStrategyConfig(_Frozen):
    """``lpbot.strategy.VolatilityBand``: ``ln P +- k * sigma * sqrt(horizon_seconds)``; ``k =
    "auto"`` (the default) lets the policy choose the width by expected value."""

    kind: Literal["vol_band"]
    k: PositiveFloatOrAuto = _dataclass_default(_VB, "k")
    horizon_seconds: PositiveFloat = _dataclass_default(_VB, "horizon_seconds")
    halflife_seconds: PositiveFloat = _dataclass_default(_VB, "halflife_seconds")
    min_half_width_ticks: int = Field(default=_dataclass_default(_VB, "min_half_width_ticks"), ge=1)
    max_half_width_ticks: int = Field(default=_dataclass_default(_VB, "max_half_width_ticks"), ge=1)

    @model_validator(mode="after")
    def _widths(self) -> VolBandStrategyConfig:
        _check_widths(self.min_half_width_ticks, self.max_half_width_ticks)
        return self

    def build(self) -> VolatilityBand:
        from lpbot.strategy import VolatilityBand

        return VolatilityBand(
            k=self.k,
            horizon_seconds=self.horizon_seconds,
            halflife_seconds=self.halflife_seconds,
            min_half_width_ticks=self.min_half_width_ticks,
            max_half_width_ticks=self.max_half_width_ticks,
        )


_SB = "SkewedBand"


class SkewedStrategyConfig(_Frozen):
    """``lpbot.strategy.SkewedBand``: a volatility band (same keys) shifted toward the trend."""

    kind: Literal["skewed"]
    k: PositiveFloatOrAuto = _dataclass_default(_VB, "k")
    horizon_seconds: PositiveFloat = _dataclass_default(_VB, "horizon_seconds")
    halflife_seconds: PositiveFloat = _dataclass_default(_VB, "halflife_seconds")
    min_half_width_ticks: int = Field(default=_dataclass_default(_VB, "min_half_width_ticks"), ge=1)
    max_half_width_ticks: int = Field(default=_dataclass_default(_VB, "max_half_width_ticks"), ge=1)
    drift_halflife_seconds: PositiveFloat = _dataclass_default(_SB, "drift_halflife_seconds")
    drift_weight: NonNegativeFloat = _dataclass_default(_SB, "drift_weight")
    max_shift: float = Field(default=_dataclass_default(_SB, "max_shift"), ge=0, lt=1)
    static_skew: float = Field(default=_dataclass_default(_SB, "static_skew"), gt=-1, lt=1)

    @model_validator(mode="after")
    def _widths_and_shift(self) -> SkewedStrategyConfig:
        _check_widths(self.min_half_width_ticks, self.max_half_width_ticks)
        if abs(self.static_skew) + self.max_shift >= 1:
            raise ValueError(
                f"|static_skew| + max_shift must be < 1 to keep the price inside, got "
                f"{abs(self.static_skew)} + {self.max_shift}"
            )
        return self

    def build(self) -> SkewedBand:
        from lpbot.strategy import SkewedBand, VolatilityBand

        band = VolatilityBand(
            k=self.k,
            horizon_seconds=self.horizon_seconds,
            halflife_seconds=self.halflife_seconds,
            min_half_width_ticks=self.min_half_width_ticks,
            max_half_width_ticks=self.max_half_width_ticks,
        )
        return SkewedBand(
            band=band,
            drift_halflife_seconds=self.drift_halflife_seconds,
            drift_weight=self.drift_weight,
            max_shift=self.max_shift,
            static_skew=self.static_skew,
        )


class FullRangeStrategyConfig(_Frozen):
    """``lpbot.strategy.FullRange``: every usable tick; no parameters."""

    kind: Literal["full_range"]

    def build(self) -> FullRange:
        from lpbot.strategy import FullRange

        return FullRange()


StrategyConfig = Annotated[
    FixedStrategyConfig | VolBandStrategyConfig | SkewedStrategyConfig | FullRangeStrategyConfig,
    Field(discriminator="kind"),
]

_RP = "RebalancePolicy"


def _off_is_none(value: Any) -> Any:
    return None if value == "off" else value


# a trigger's threshold, or "off" (read as None: TOML has no null)
Above0OrOff = Annotated[
    Annotated[float, Field(gt=0, allow_inf_nan=False)] | None, BeforeValidator(_off_is_none)
]
Above1OrOff = Annotated[
    Annotated[float, Field(gt=1, allow_inf_nan=False)] | None, BeforeValidator(_off_is_none)
]


class PolicyConfig(_Frozen):
    """``lpbot.strategy.RebalancePolicy``'s parameters; ``"off"`` disables a trigger."""

    edge_pct: Above0OrOff = _dataclass_default(_RP, "edge_pct")
    max_age_seconds: Above0OrOff = _dataclass_default(_RP, "max_age_seconds")
    vol_ratio_trigger: Above1OrOff = _dataclass_default(_RP, "vol_ratio_trigger")
    vol_short_halflife_seconds: PositiveFloat = _dataclass_default(
        _RP, "vol_short_halflife_seconds"
    )
    vol_long_halflife_seconds: PositiveFloat = _dataclass_default(_RP, "vol_long_halflife_seconds")
    horizon_seconds: PositiveFloat = _dataclass_default(_RP, "horizon_seconds")
    # the cost model's slippage and the execution's tolerance: every minimum is the simulated
    # amount less this; above 300 bps only a --force on the command line plans
    slippage_bps: Annotated[float, Field(ge=0, le=300, allow_inf_nan=False)] = _dataclass_default(
        _RP, "slippage_bps"
    )
    min_gain_over_cost: NonNegativeFloat = _dataclass_default(_RP, "min_gain_over_cost")
    compound_margin: NonNegativeFloat = _dataclass_default(_RP, "compound_margin")
    # how often the policy is asked: a range left is re-centred half of it later, on average
    decision_interval_seconds: NonNegativeFloat = _dataclass_default(
        _RP, "decision_interval_seconds"
    )
    # "ev": move when EV(move) > EV(stay) (fees - LVR - costs); "fees": the older fees-vs-costs rule
    rebalance_rule: Literal["ev", "fees"] = _dataclass_default(_RP, "rebalance_rule")
    # what ``lpbot run`` does when the model expects the managed pool to lose (its fees below
    # its LVR): "alert" a person once, or "withdraw" all the liquidity and fees to the Safe
    # (auto-executed where the auto-execute policy or the module allows, else the owners are
    # asked, once per position)
    on_expected_loss: Literal["alert", "withdraw"] = "alert"

    @model_validator(mode="after")
    def _halflives(self) -> PolicyConfig:
        if not self.vol_long_halflife_seconds > self.vol_short_halflife_seconds:
            raise ValueError(
                f"vol_long_halflife_seconds {self.vol_long_halflife_seconds} must exceed "
                f"vol_short_halflife_seconds {self.vol_short_halflife_seconds}"
            )
        return self

    def build(self, strategy: RangeStrategy) -> RebalancePolicy:
        from lpbot.strategy import RebalancePolicy

        return RebalancePolicy(
            strategy=strategy,
            edge_pct=self.edge_pct,
            max_age_seconds=self.max_age_seconds,
            vol_ratio_trigger=self.vol_ratio_trigger,
            vol_short_halflife_seconds=self.vol_short_halflife_seconds,
            vol_long_halflife_seconds=self.vol_long_halflife_seconds,
            horizon_seconds=self.horizon_seconds,
            slippage_bps=self.slippage_bps,
            min_gain_over_cost=self.min_gain_over_cost,
            compound_margin=self.compound_margin,
            decision_interval_seconds=self.decision_interval_seconds,
            rebalance_rule=self.rebalance_rule,
        )


# --------------------------------------------------------------------------------- positions


class OpenConfig(_Frozen):
    """Open a new position with this capital: whole tokens by symbol, as decimal strings."""

    capital: dict[str, TokenAmount] = Field(min_length=1)
    # open even where the expected-value model expects a loss (fees below LVR); else the
    # daemon alerts and waits, and ``lpbot position open`` refuses without the flag
    accept_expected_loss: bool = False

    @model_validator(mode="after")
    def _some_capital(self) -> OpenConfig:
        if not any(amount > 0 for amount in self.capital.values()):
            raise ValueError("capital: at least one amount must be > 0")
        return self

    def raw_amount(self, symbol: str, decimals: int) -> int:
        """The capital in ``symbol`` as a raw int (0 if none is given); exact or refused."""
        amount = self.capital.get(symbol, Decimal(0))
        try:
            raw = amount.scaleb(decimals)
            exact = raw == raw.to_integral_value()
        except InvalidOperation:
            exact = False
        if not exact:
            raise ConfigError(f"capital {symbol} = {amount} has more than {decimals} decimals")
        return int(raw)


class PositionConfig(_Frozen):
    """A position to manage: an existing NFT (``token_id``) or a new one (``[open]``)."""

    name: Name
    chain: str
    pool: str = Field(min_length=1)
    token_id: int | None = Field(default=None, gt=0)
    open: OpenConfig | None = None
    enabled: bool = True
    strategy: StrategyConfig
    policy: PolicyConfig = PolicyConfig()

    @model_validator(mode="after")
    def _token_or_open(self) -> PositionConfig:
        if (self.token_id is None) == (self.open is None):
            raise ValueError("give token_id (an existing position) or [open] (a new one)")
        return self

    def build_policy(self) -> RebalancePolicy:
        """The rebalance policy with its range strategy, as lpbot.strategy builds them."""
        return self.policy.build(self.strategy.build())


# ---------------------------------------------------------------------------------- signers


class KeystoreRef(_Frozen):
    """An encrypted keystore file (EIP-2335/Web3 secret storage) and where its password is."""

    path: RelPath
    password_env: EnvName
    address: Address | None = None  # when given, checked against the keystore when unlocked


class SafeOwner(_Frozen):
    """A Safe owner. Signs with a keystore of ``[signer.keystores]``, or as the MPC group, or
    (neither) elsewhere: a hardware wallet or the Safe app, so a person approves."""

    address: Address
    keystore: str | None = None
    mpc: bool = False

    @model_validator(mode="after")
    def _one_way(self) -> SafeOwner:
        if self.keystore is not None and self.mpc:
            raise ValueError("mpc: an owner signs with a keystore or the MPC group, not both")
        return self

    @property
    def bot_signs(self) -> bool:
        return self.keystore is not None or self.mpc


class SafeConfig(_Frozen):
    """The Safe holding the positions; ``address = "devnet"`` takes the devnet's Safe."""

    address: AddressOrDevnet
    owners: tuple[SafeOwner, ...] = Field(min_length=1)
    threshold: int = Field(ge=1)

    @model_validator(mode="after")
    def _threshold(self) -> SafeConfig:
        if self.threshold > len(self.owners):
            raise ValueError(f"threshold: {self.threshold} exceeds the {len(self.owners)} owners")
        addresses = [o.address for o in self.owners]
        if len(set(addresses)) != len(addresses):
            raise ValueError("owners: an address is listed twice")
        return self


class ModuleConfig(_Frozen):
    """The Safe module that lets the bot's operator key rebalance within limits.

    The loss budget is the owners' setting on chain (``setLossBudget``): what one operator call,
    and all of them in any 24 hours, may lose at the pool's TWAP, in bps of the Safe's value in
    the pool. Stating it here lets lpbot say when chain and file disagree."""

    address: AddressOrDevnet
    operator: str  # a keystore name in [signer.keystores]
    loss_budget_per_call_bps: int | None = Field(default=None, ge=0, le=10_000)
    loss_budget_per_day_bps: int | None = Field(default=None, ge=0, le=10_000)

    @model_validator(mode="after")
    def _budgets(self) -> ModuleConfig:
        call, day = self.loss_budget_per_call_bps, self.loss_budget_per_day_bps
        if call is not None and day is not None and call > day:
            raise ValueError("loss_budget_per_call_bps is above loss_budget_per_day_bps")
        return self


class SignerConfig(_Frozen):
    """Keys and who signs: named keystores, the Safe, the MPC owner and the module.

    ``sender`` is the keystore that sends transactions and pays their gas. ``mpc`` is the
    threshold-ECDSA key of the Safe owner marked ``mpc = true``, in the schema of ``mpc.json``
    (``lpbot.signing.mpc.config.MpcConfig``): this host's party (``kind = "local"``), the
    co-signer (``kind = "remote"``, its URL) and the recovery party (``offline = true``).
    """

    sender: str | None = None
    keystores: dict[str, KeystoreRef] = Field(default_factory=dict)
    safe: SafeConfig | None = None
    mpc: MpcConfig | None = None
    module: ModuleConfig | None = None
    # the bot's process may hold (or unlock) as many Safe owner keys as the threshold: the
    # multisig is then a hot wallet whose only limit is this process. Off unless set.
    allow_hot_quorum: bool = False

    @model_validator(mode="after")
    def _references(self) -> SignerConfig:
        problems: list[str] = []
        for name in self.keystores:
            try:
                _name(name)
            except ValueError as exc:
                problems.append(f"keystores.{name}: {exc}")
        problems.extend(
            _signer_problems(
                self.keystores,
                self.mpc,
                safe=self.safe,
                module=self.module,
                sender=self.sender,
                where="",
                allow_hot_quorum=self.allow_hot_quorum,
            )
        )
        if self.mpc is not None:
            problems.extend(_mpc_problems(self.mpc))
        if problems:
            raise ValueError("\n".join(problems))
        return self

    def hot_owner_keystores(
        self, owner_addresses: Iterable[str] | None = None, *, safe: SafeConfig | None = None
    ) -> list[str]:
        """The keystores in ``[signer.keystores]`` that sign for an owner of ``safe`` (default
        ``[signer.safe]``): the owners whose entry names one, and any keystore declaring an
        owner's address (``owner_addresses``, e.g. the owners read from chain; default the
        configured ones). Every configured keystore counts: the process is given its
        password's environment variable."""
        return _hot_owner_keystores(safe or self.safe, self.keystores, owner_addresses)


def _hot_owner_keystores(
    safe: SafeConfig | None,
    keystores: Mapping[str, KeystoreRef],
    owner_addresses: Iterable[str] | None = None,
) -> list[str]:
    """``SignerConfig.hot_owner_keystores`` for any Safe."""
    if safe is None:
        return []
    owners = {a.lower() for a in owner_addresses} if owner_addresses is not None else None
    configured = {o.address.lower(): o.keystore for o in safe.owners}
    if owners is None:
        owners = set(configured)
    held = {ks for a, ks in configured.items() if ks is not None and a in owners}
    held |= {
        name
        for name, ref in keystores.items()
        if ref.address is not None and ref.address.lower() in owners
    }
    return sorted(held)


def _signer_problems(
    keystores: Mapping[str, KeystoreRef],
    mpc: MpcConfig | None,
    *,
    safe: SafeConfig | None,
    module: ModuleConfig | None,
    sender: str | None,
    where: str,
    allow_hot_quorum: bool,
) -> list[str]:
    """What is wrong with one Safe, module and sender, each named by its key path under
    ``where`` ("" for [signer], "chains.NAME." for a chain's own): a keystore that is not in
    [signer.keystores], an MPC owner without [signer.mpc] or at another address, and a Safe
    whose threshold of owner keys the bot's process holds (unless ``allow_hot_quorum``)."""
    problems: list[str] = []

    def known(ref: str | None, key: str) -> None:
        if ref is not None and ref not in keystores:
            names = ", ".join(sorted(keystores)) or "none"
            problems.append(f"{where}{key}: no keystore {ref!r} in [signer.keystores] ({names})")

    known(sender, "sender")
    if module is not None:
        known(module.operator, "module.operator")
    if safe is None:
        return problems
    for i, owner in enumerate(safe.owners):
        known(owner.keystore, f"safe.owners[{i}].keystore")
        if owner.mpc and mpc is None:
            problems.append(f"{where}safe.owners[{i}].mpc: there is no [signer.mpc]")
        elif (
            owner.mpc
            and mpc is not None
            and mpc.address is not None
            and owner.address.lower() != mpc.address.lower()
        ):
            problems.append(
                f"{where}safe.owners[{i}].address: {owner.address} is not the MPC key's "
                f"address {mpc.address} ([signer.mpc] address)"
            )
    hot = _hot_owner_keystores(safe, keystores)
    if len(hot) >= safe.threshold and not allow_hot_quorum:
        problems.append(_hot_quorum_problem(f"{where}safe", hot, safe.threshold))
    return problems


def _hot_quorum_problem(key: str, hot: list[str], threshold: int, why: str = "") -> str:
    """The hot-quorum refusal of the Safe at key path ``key``: the bot holds ``hot``."""
    return (
        f"{key}: the bot holds keystores ({', '.join(hot)}) for {len(hot)} Safe "
        f"owners{why}, the threshold is {threshold}: its process alone could "
        "move everything the Safe holds. Give the bot at most "
        f"{threshold - 1} owner key(s) and rebalance through "
        "[signer.module], or set signer.allow_hot_quorum = true to accept it"
    )


def _mpc_problems(mpc: MpcConfig) -> list[str]:
    """What makes an MPC owner unusable by the bot: no address yet, shares of two parties on
    this host (unless the demo's ``insecure_single_host``), no co-signer that every signature
    needs, or no party of this host."""
    problems: list[str] = []
    if mpc.address is None:
        problems.append(
            "mpc.address: no address yet; run `lpbot mpc keygen` and copy the address it prints"
        )
    local = mpc.local_count()
    if local > 1 and not mpc.insecure_single_host:
        problems.append(
            f"mpc.parties: {local} parties' shares on this host; each party belongs on its own "
            "host (this host's party local, the co-signer and the recovery party remote)"
        )
    if local == 0:
        problems.append('mpc.parties: no party of this host (kind = "local")')
    if mpc.required_party is None and not mpc.insecure_single_host:
        problems.append(
            "mpc.cosigner: no co-signer; name the remote party every signature needs "
            "(one remote party that is not offline, or cosigner = its index)"
        )
    return problems


# ------------------------------------------------------------------------------------ hedge

Exchange = Literal["paper", "binanceusdm", "okx", "bybit"]


class HedgeConfig(_Frozen):
    """Keep a perp short against the positions' delta, inside a band.

    ``band_abs`` (base-asset units) and ``band_pct`` (percent of the target) widen the band;
    the larger applies. API keys are environment variable names; ``paper`` needs none.
    """

    exchange: Exchange
    symbol: str = Field(min_length=1)
    positions: tuple[str, ...] = ()  # names in [[positions]]; empty: all of them
    api_key_env: EnvName | None = None
    api_secret_env: EnvName | None = None
    api_password_env: EnvName | None = None
    # the venue's testnet through ccxt's set_sandbox_mode ("testnet" accepted as the old name)
    sandbox: bool = Field(default=False, validation_alias=AliasChoices("sandbox", "testnet"))
    include_uncollected_fees: bool = True  # the LP delta counts fees earned, not yet collected
    band_abs: Annotated[Decimal, AfterValidator(_exact_decimal), Field(ge=0)] = Decimal(0)
    band_pct: NonNegativeFloat = 0.0
    max_leverage: Annotated[float, Field(gt=0, le=125, allow_inf_nan=False)] = 3.0
    max_funding_apr_pct: Annotated[float, Field(allow_inf_nan=False)] = 50.0

    @model_validator(mode="after")
    def _keys_and_band(self) -> HedgeConfig:
        problems = []
        if self.exchange != "paper":
            for key in ("api_key_env", "api_secret_env"):
                if getattr(self, key) is None:
                    problems.append(f"{key}: required for {self.exchange}")
            if self.exchange == "okx" and self.api_password_env is None:
                problems.append("api_password_env: required for okx (the API passphrase)")
        if self.band_abs == 0 and self.band_pct == 0:
            problems.append("band_pct: band_abs or band_pct must be > 0, or every tick trades")
        if problems:
            raise ValueError("\n".join(problems))
        return self


# -------------------------------------------------------------------------------- pricing


class PricingSection(_Frozen):
    """Where every USD, ETH and BTC figure's marks come from (``lpbot.pricing``).

    ``source``: ``pools`` (the chain's Uniswap pools against ``stable``, at spot or a
    ``twap_seconds`` TWAP, checked against its Chainlink feeds), ``chainlink`` (the feeds alone)
    or ``fixed`` (the constant USD marks in ``fixed``: the devnet only). A mark older than
    ``max_age_seconds``, two sources ``max_deviation_bps`` apart or a stablecoin ``depeg_bps``
    off its peg raises an alert.
    """

    source: Literal["pools", "chainlink", "fixed"] = "pools"
    stable: str = Field(default="USDC", min_length=1)
    twap_seconds: int = Field(default=0, ge=0, le=7 * 86_400)
    max_age_seconds: int = Field(default=3 * 3600, gt=0)
    max_deviation_bps: int = Field(default=100, gt=0, le=10_000)
    depeg_bps: int = Field(default=50, gt=0, le=10_000)
    fixed: dict[str, Annotated[Decimal, AfterValidator(_exact_decimal), Field(gt=0)]] = Field(
        default_factory=dict
    )

    @model_validator(mode="after")
    def _source_fits(self) -> PricingSection:
        if self.source == "fixed" and not self.fixed:
            raise ValueError("fixed: source 'fixed' needs the marks, e.g. { WETH = \"3000\" }")
        if self.source != "fixed" and self.fixed:
            raise ValueError(f"fixed: only for source = 'fixed' (source is {self.source!r})")
        if self.source != "pools" and self.twap_seconds:
            raise ValueError("twap_seconds: only for source = 'pools' (a pool TWAP)")
        return self

    def pricing_config(self) -> PricingConfig:
        return PricingConfig(
            stable=self.stable,
            twap_seconds=self.twap_seconds,
            max_age_seconds=self.max_age_seconds,
            max_deviation_bps=self.max_deviation_bps,
            depeg_bps=self.depeg_bps,
            source=self.source,
            fixed=tuple(sorted(self.fixed.items())),
        )


# ----------------------------------------------------------------------- schedule, policy


def _timezone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {value!r}") from None
    return value


class ScheduleConfig(_Frozen):
    """How often the jobs run (seconds) and when the daily report is written.

    ``standby_takeover_seconds``: an ``lpbot run --standby`` takes over within this long of the
    active instance dying or losing its database; the active renews (and checks) its instance
    lock, and a standby tries to take it, every third of it."""

    monitor_seconds: int = Field(default=60, gt=0)
    rebalance_check_seconds: int = Field(default=300, gt=0)
    hedge_sync_seconds: int = Field(default=60, gt=0)
    standby_takeover_seconds: int = Field(default=30, ge=3, le=3600)
    daily_report_time: time = time(0, 5)
    timezone: Annotated[str, AfterValidator(_timezone)] = "UTC"


class AutoExecuteConfig(_Frozen):
    """Rebalances lpbot may execute without a person: up to ``max_value_usd`` each, ``via`` the
    module (the operator key, within the limits the owners set on chain) or the multisig (the
    bot holds enough owner keys: only with ``signer.allow_hot_quorum``, or an MPC owner whose
    co-signer applies its own policy). A rebalance the module refuses is never executed
    through the multisig without a person.

    ``approver`` is the keystore of the bot's policy key: it signs the EIP-712 approval of each
    report the policy allows, which the co-signer (an MPC owner's co-signing party) verifies
    against its own approvers and limits before it signs; ``approval_ttl_seconds`` is how long
    such an approval is valid."""

    enabled: bool = False
    max_value_usd: Annotated[Decimal, AfterValidator(_exact_decimal), Field(ge=0)] = Decimal(0)
    via: Literal["module", "multisig"] = "module"
    approver: str | None = None
    approval_ttl_seconds: int = Field(default=600, gt=0, le=86_400)


UsdLimit = Annotated[Decimal, AfterValidator(_exact_decimal), Field(gt=0)]


def _exact_number(value: Any) -> Any:
    """A number (int, a decimal string, or a float read exactly as written) for a Decimal."""
    if isinstance(value, bool):
        raise ValueError(f"must be a number, got {value!r}")
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError("must be a finite number")
        return Decimal(repr(value))
    return value


def _one_wei_or_more(value: Decimal) -> Decimal:
    """A gas price limit below one wei per gas would hold every transaction for ever."""
    if value * 10**9 < 1:
        raise ValueError("must be at least 0.000000001 gwei (1 wei)")
    return value


GweiPrice = Annotated[
    Decimal,
    BeforeValidator(_exact_number),
    AfterValidator(_exact_decimal),
    Field(gt=0),
    AfterValidator(_one_wei_or_more),
]


class ExecutionConfig(_Frozen):
    """The pre-flight and sending policy of every rebalance.

    ``max_price_move_share_pct``: execution refuses (STALE) when the price moved more than this
    share of the report's slippage tolerance since the report, before simulating.
    ``gas_margin_pct``: gas limit = max(live estimate, dry-run gas used) x (1 + margin).
    ``max_fee_usd``: above this expected fee a rebalance waits (alert) instead of sending.
    ``max_replacements``: then a stuck transaction is cancelled (zero-value self-transfer).
    ``max_twap_deviation_bps``: spot vs TWAP bound, at most each position's slippage.
    ``max_sandwich_bps``: a position without ``slippage_bps`` gets the slippage that keeps a
    sandwich's take under this share of the position, derived from its range's width.
    """

    max_price_move_share_pct: float = Field(default=50.0, gt=0, le=100)
    # spot vs the pool's TWAP, checked when planning and again right before sending; default
    # (unset) the position's slippage, and never looser than it: a pool held off-price within
    # a looser bound would set the price the minimums are computed from
    max_twap_deviation_bps: int | None = Field(default=None, ge=0, le=300)
    # a position whose policy sets no slippage_bps gets, per plan, the widest slippage under
    # which a sandwich takes at most this many bps of the position (derived from the range's
    # width, at most 300 bps: ``lpbot.execution.plan.default_slippage_bps``)
    max_sandwich_bps: int = Field(default=5, ge=1, le=150)
    gas_margin_pct: float = Field(default=20.0, ge=0, le=500)
    max_fee_usd: UsdLimit | None = None
    # above this max fee per gas (gwei) a new transaction waits (alert); replacements and the
    # cancel of a stuck one are always sent. A chain's own max_gas_price_gwei replaces it
    max_gas_price_gwei: GweiPrice | None = None
    replace_after_seconds: float = Field(default=60.0, gt=0)
    max_replacements: int = Field(default=3, ge=0, le=20)


HealthNumber = Annotated[Decimal, BeforeValidator(_exact_number), AfterValidator(_exact_decimal)]


class HealthConfig(_Frozen):
    """The pool health rule (``lpbot.risk.health``): opening and rebalancing into a pool need
    at least ``min_depth_usd_1pct`` USD of depth within 1% of its price (both sides) and an
    effective spread (a buy and a sell of ``spread_trade_usd`` quoted through the pool, fees
    included) of at most ``max_spread_bps``. A pool's round trip pays its fee twice: at the
    default 30 bps only the 0.01% and 0.05% tiers can pass.

    ``on_unhealthy``: what a managed pool falling below the rule does besides refusing new
    opens and rebalances into it: ``"alert"`` (an alert, once, until it recovers) or
    ``"stressed"`` (the alert, and the daemon's market regime is held at stressed while the
    pool is below the rule, with its ``[risk.stressed]`` actions; ``lpbot.jobs.regime``).
    ``accept_unhealthy``: the positions (names in [[positions]]) a person has accepted to open
    and rebalance into an unhealthy pool (as ``--accept-unhealthy-pool`` does for one
    command)."""

    min_depth_usd_1pct: Annotated[HealthNumber, Field(ge=0)] = Decimal(500_000)
    max_spread_bps: Annotated[HealthNumber, Field(gt=0, le=10_000)] = Decimal(30)
    spread_trade_usd: Annotated[HealthNumber, Field(gt=0)] = Decimal(10_000)
    on_unhealthy: Literal["alert", "stressed"] = "alert"
    accept_unhealthy: tuple[str, ...] = ()

    def rule(self) -> Any:
        """The rule as ``lpbot.risk.health.HealthRule`` (imported on use)."""
        from lpbot.risk.health import HealthRule

        return HealthRule(
            min_depth_usd_1pct=self.min_depth_usd_1pct,
            max_spread_bps=self.max_spread_bps,
            spread_trade_usd=self.spread_trade_usd,
            on_unhealthy=self.on_unhealthy,
        )


LOOPBACK_HOSTS = ("127.0.0.1", "::1", "localhost")


class DashboardConfig(_Frozen):
    """The local web dashboard (``lpbot dashboard``, ``lpbot run --dashboard``).

    Bound to ``host`` (loopback by default) on ``port``. Every request needs the access token:
    the value of the environment variable ``token_env`` names, else a random one printed at
    start. Any other host is refused unless TLS (``tls_cert`` and ``tls_key``) and ``token_env``
    are configured. ``poll_seconds``: how often an open page asks whether the store changed."""

    host: str = "127.0.0.1"
    port: int = Field(default=8765, ge=1, le=65_535)
    token_env: EnvName | None = None
    tls_cert: RelPath | None = None
    tls_key: RelPath | None = None
    poll_seconds: float = Field(default=5.0, gt=0, le=3600, allow_inf_nan=False)

    @model_validator(mode="after")
    def _exposed_only_with_tls_and_token(self) -> DashboardConfig:
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ValueError("tls_cert: give tls_cert and tls_key together, or neither")
        if self.host not in LOOPBACK_HOSTS and (self.tls_cert is None or self.token_env is None):
            raise ValueError(
                f"host: {self.host!r} is not loopback; serving it needs tls_cert, tls_key and "
                "token_env (the dashboard approves rebalances)"
            )
        return self


# ----------------------------------------------------------------------------------- config


# ------------------------------------------------------------------------------------- risk

_SIG = SIGNAL_BY_NAME


def _threshold(level: str, name: str) -> Any:
    return getattr(_SIG[name], level)


class _RegimeThresholds(_Frozen):
    """Enter thresholds per signal (``lpbot.risk.regime.SIGNALS``); ``"off"``: the signal does
    not drive this level."""

    def thresholds(self) -> dict[str, float | None]:
        return {name: getattr(self, name) for name in _SIG}


class RiskElevatedConfig(_RegimeThresholds):
    """Enter elevated at these thresholds; then widen the next range and tighten the hedge."""

    vol_5m_ratio: Above0OrOff = _threshold("elevated", "vol_5m_ratio")
    vol_30m_ratio: Above0OrOff = _threshold("elevated", "vol_30m_ratio")
    var_1m_pct: Above0OrOff = _threshold("elevated", "var_1m_pct")
    var_5m_pct: Above0OrOff = _threshold("elevated", "var_5m_pct")
    var_30m_pct: Above0OrOff = _threshold("elevated", "var_30m_pct")
    twap_deviation_bps: Above0OrOff = _threshold("elevated", "twap_deviation_bps")
    volume_ratio: Above0OrOff = _threshold("elevated", "volume_ratio")
    funding_bps_8h: Above0OrOff = _threshold("elevated", "funding_bps_8h")
    open_interest_change_pct: Above0OrOff = _threshold("elevated", "open_interest_change_pct")
    liquidation_ratio: Above0OrOff = _threshold("elevated", "liquidation_ratio")
    hedge_liquidation_distance_pct: Above0OrOff = _threshold(
        "elevated", "hedge_liquidation_distance_pct"
    )
    widen_factor: Annotated[float, Field(ge=1, le=100, allow_inf_nan=False)] = 2.0
    hedge_band_factor: Annotated[float, Field(gt=0, le=1, allow_inf_nan=False)] = 0.5


class RiskStressedConfig(_RegimeThresholds):
    """Enter stressed at these thresholds; then withdraw (or go to the widest range) and
    re-size (or flatten) the hedge."""

    vol_5m_ratio: Above0OrOff = _threshold("stressed", "vol_5m_ratio")
    vol_30m_ratio: Above0OrOff = _threshold("stressed", "vol_30m_ratio")
    var_1m_pct: Above0OrOff = _threshold("stressed", "var_1m_pct")
    var_5m_pct: Above0OrOff = _threshold("stressed", "var_5m_pct")
    var_30m_pct: Above0OrOff = _threshold("stressed", "var_30m_pct")
    twap_deviation_bps: Above0OrOff = _threshold("stressed", "twap_deviation_bps")
    volume_ratio: Above0OrOff = _threshold("stressed", "volume_ratio")
    funding_bps_8h: Above0OrOff = _threshold("stressed", "funding_bps_8h")
    open_interest_change_pct: Above0OrOff = _threshold("stressed", "open_interest_change_pct")
    liquidation_ratio: Above0OrOff = _threshold("stressed", "liquidation_ratio")
    hedge_liquidation_distance_pct: Above0OrOff = _threshold(
        "stressed", "hedge_liquidation_distance_pct"
    )
    action: Literal["withdraw", "widest"] = "withdraw"
    hedge: Literal["flatten", "resize"] = "resize"


class RiskConfig(_Frozen):
    """The market regime (``lpbot.risk.regime``) and what each level does
    (``lpbot.risk.actions``). A level is left only when every signal has stayed below
    ``exit_fraction`` of its threshold for ``min_dwell_seconds``; while not normal, the monitor
    runs every ``stress_monitor_seconds``."""

    enabled: bool = True
    exit_fraction: Annotated[float, Field(gt=0, le=1, allow_inf_nan=False)] = 0.7
    min_dwell_seconds: Annotated[float, Field(ge=0, allow_inf_nan=False)] = 900.0
    stress_monitor_seconds: int = Field(default=60, gt=0)
    elevated: RiskElevatedConfig = RiskElevatedConfig()
    stressed: RiskStressedConfig = RiskStressedConfig()

    @model_validator(mode="after")
    def _consistent(self) -> RiskConfig:
        problems = regime_config_problems(
            self.elevated.thresholds(),
            self.stressed.thresholds(),
            self.exit_fraction,
            self.min_dwell_seconds,
        )
        if problems:
            raise ValueError("\n".join(problems))
        return self

    def regime_config(self) -> RegimeConfig:
        """The pure regime's thresholds (``lpbot.risk.regime.RegimeConfig``)."""
        from lpbot.risk.regime import RegimeConfig

        return RegimeConfig(
            elevated=self.elevated.thresholds(),
            stressed=self.stressed.thresholds(),
            exit_fraction=self.exit_fraction,
            min_dwell_seconds=self.min_dwell_seconds,
        )

    def actions(self) -> RegimeActions:
        """What each level does (``lpbot.risk.actions.RegimeActions``)."""
        from lpbot.risk.actions import RegimeActions

        return RegimeActions(
            widen_factor=self.elevated.widen_factor,
            hedge_band_factor=self.elevated.hedge_band_factor,
            stressed_action=self.stressed.action,
            stressed_hedge=self.stressed.hedge,
        )


ChainConfig.model_rebuild()  # its safe, module and limits are declared below it


@dataclass(frozen=True, slots=True)
class ChainSigner:
    """Who acts on one chain: its Safe, its module and the keystore that sends (the chain's own
    where ``[chains.NAME]`` gives them, else the global ones); ``where`` names each one's key
    path for messages."""

    safe: SafeConfig | None
    module: ModuleConfig | None
    sender: str | None
    where: Mapping[str, str]


@dataclass(frozen=True, slots=True)
class ChainLimits:
    """One chain's gas limits: the most one rebalance may cost (USD) and the highest max fee
    per gas (gwei) a new transaction is sent with; None: no limit."""

    max_fee_usd: Decimal | None
    max_gas_price_gwei: Decimal | None

    @property
    def max_gas_price_wei(self) -> int | None:
        """The gas price limit in wei per gas, rounded down."""
        if self.max_gas_price_gwei is None:
            return None
        return int(self.max_gas_price_gwei * 10**9)


class Config(_Frozen):
    """The whole configuration. Build it with ``load_config``."""

    version: Literal[1] = 1
    data_dir: RelPath = Path(".lpbot")
    report_dir: RelPath | None = None
    database_url: str | None = None
    database_url_env: EnvName | None = None
    chains: dict[str, ChainConfig] = Field(min_length=1)
    positions: tuple[PositionConfig, ...] = ()
    signer: SignerConfig = SignerConfig()
    hedge: HedgeConfig | None = None
    schedule: ScheduleConfig = ScheduleConfig()
    auto_execute: AutoExecuteConfig = AutoExecuteConfig()
    execution: ExecutionConfig = ExecutionConfig()
    pricing: PricingSection = PricingSection()
    dashboard: DashboardConfig = DashboardConfig()
    risk: RiskConfig = RiskConfig()
    health: HealthConfig = HealthConfig()

    @model_validator(mode="after")
    def _cross_references(self) -> Config:
        problems: list[str] = []
        by_name = {c.name: c.chain_id for c in CHAINS.values()}
        for name, chain in self.chains.items():
            if chain.is_devnet:
                continue
            if chain.chain_id is None and name not in by_name:
                problems.append(
                    f"chains.{name}: unknown chain name; set chain_id "
                    f"(known: {', '.join(sorted(by_name))}) or manifest for the devnet"
                )
            elif chain.chain_id is not None and chain.chain_id not in CHAINS:
                known = ", ".join(f"{c.name} ({c.chain_id})" for c in CHAINS.values())
                problems.append(
                    f"chains.{name}.chain_id: {chain.chain_id} is not supported; known: {known}"
                )
            configured = chain.chain_id if chain.chain_id is not None else by_name.get(name)
            info = CHAINS.get(configured) if configured is not None else None
            if chain.dry_run == "fork" and info is not None and not info.anvil_fork_supported:
                problems.append(
                    f"chains.{name}.dry_run: 'fork' is not possible on {info.name}: Anvil cannot "
                    "fork it (EraVM); use 'call' (the default there)"
                )
            if (
                chain.private_submission == "always"
                and chain.submit_url_env is None
                and configured not in DEFAULT_PRIVATE_RPC
            ):
                problems.append(
                    f"chains.{name}.private_submission: 'always' needs a private endpoint and "
                    "this chain has no default one; name it with submit_url_env"
                )
        seen: set[str] = set()
        for i, position in enumerate(self.positions):
            where = f"positions[{i}]"
            if position.name in seen:
                problems.append(f"{where}.name: {position.name!r} is used twice")
            seen.add(position.name)
            on = self.chains.get(position.chain)
            if on is None:
                problems.append(
                    f"{where}.chain: no chain {position.chain!r} in [chains] "
                    f"(have: {', '.join(sorted(self.chains))})"
                )
            elif not on.is_devnet:
                try:
                    _address(position.pool)
                except ValueError as exc:
                    problems.append(f"{where}.pool: {exc} (pool names work on the devnet only)")
        for j, name in enumerate(self.health.accept_unhealthy):
            if name not in seen:
                problems.append(f"health.accept_unhealthy[{j}]: no position named {name!r}")
        if self.hedge is not None:
            for j, name in enumerate(self.hedge.positions):
                if name not in seen:
                    problems.append(f"hedge.positions[{j}]: no position named {name!r}")
            hedged = [
                p.name
                for p in self.positions
                if p.enabled and (not self.hedge.positions or p.name in self.hedge.positions)
            ]
            if self.hedge.exchange != "paper" and len(hedged) > 1:
                # each position's hedge sizes the venue's position against its own delta
                problems.append(
                    f"hedge.positions: {self.hedge.exchange} keeps one {self.hedge.symbol} "
                    f"position per account, and the hedges of {', '.join(map(repr, hedged))} "
                    "would each take it for their own; name one position (the paper venue "
                    "keeps an account per position)"
                )
        if self.database_url is not None and self.database_url_env is not None:
            problems.append("database_url: give database_url or database_url_env, not both")
        if self.database_url is not None and _url_password(self.database_url):
            problems.append(
                "database_url: contains a password; put the URL in an environment variable and "
                "name it with database_url_env"
            )
        if self.pricing.source == "fixed":
            live = [n for n, c in self.chains.items() if not c.is_devnet]
            if live:
                problems.append(
                    f"pricing.source: 'fixed' marks are for the devnet only; chains.{live[0]} "
                    "is a live chain (use 'pools' or 'chainlink')"
                )
        twap = self.execution.max_twap_deviation_bps
        for i, position in enumerate(self.positions):
            explicit = "slippage_bps" in position.policy.model_fields_set
            # a derived slippage (none set) is bounded by the TWAP bound when it is planned
            if explicit and twap is not None and twap > position.policy.slippage_bps:
                problems.append(
                    f"execution.max_twap_deviation_bps: {twap} is looser than "
                    f"positions[{i}].policy.slippage_bps {position.policy.slippage_bps:g}: a pool "
                    "held that far off its TWAP would set the price every minimum is computed "
                    "from; keep it at most the slippage"
                )
        problems.extend(self._chain_problems())
        problems.extend(self._split_quorum_problems())
        problems.extend(self._auto_execute_problems())
        approver = self.auto_execute.approver
        if approver is not None and approver not in self.signer.keystores:
            names = ", ".join(sorted(self.signer.keystores)) or "none"
            problems.append(
                f"auto_execute.approver: no keystore {approver!r} in [signer.keystores] ({names})"
            )
        if problems:
            raise ValueError("\n".join(problems))
        return self

    def _chain_problems(self) -> list[str]:
        """Each chain's own Safe, module and sender (the keystores they name, the hot-quorum
        rule, ``"devnet"`` addresses only on a devnet chain), and two tables of one chain."""
        problems: list[str] = []
        signer = self.signer
        with_positions = {p.chain for p in self.positions}
        first_of: dict[int, str] = {}
        for name, chain in self.chains.items():
            where = f"chains.{name}."
            problems.extend(
                _signer_problems(
                    signer.keystores,
                    signer.mpc,
                    safe=chain.safe,
                    module=chain.module,
                    sender=chain.sender,
                    where=where,
                    allow_hot_quorum=signer.allow_hot_quorum,
                )
            )
            if not chain.is_devnet:
                cs = self.chain_signer(name)
                for key, part in (("safe", cs.safe), ("module", cs.module)):
                    if part is None or part.address != DEVNET:
                        continue
                    own = getattr(chain, key) is not None
                    if not own and name not in with_positions:
                        continue  # the global one, used by no position of this live chain
                    problems.append(
                        f'{cs.where[key]}.address: "devnet" is the devnet\'s {key}, but chain '
                        f"{name} is live; give its 0x address"
                        + ("" if own else f" in [chains.{name}.{key}]")
                    )
                chain_id = chain.chain_id or next(
                    (c.chain_id for c in CHAINS.values() if c.name == name), None
                )
                if chain_id is not None and chain_id in first_of:
                    problems.append(
                        f"chains.{name}: chain id {chain_id}, as chains.{first_of[chain_id]}: "
                        "two tables of one chain would share the sender's nonces; keep one"
                    )
                elif chain_id is not None:
                    first_of[chain_id] = name
        return problems

    def _split_quorum_problems(self) -> list[str]:
        """The hot-quorum rule across Safes: a keystore named for an owner's address in one
        Safe signs for that address wherever it is an owner (the same owners' Safe on another
        chain), so owner keys split between the chains' Safes are counted together."""
        signer = self.signer
        if signer.allow_hot_quorum:
            return []
        safes = self.safes()
        named = {(n, r.address.lower()) for n, r in signer.keystores.items() if r.address}
        named |= {
            (o.keystore, o.address.lower())
            for _where, safe in safes
            for o in safe.owners
            if o.keystore is not None
        }
        problems: list[str] = []
        for where, safe in safes:
            own = _hot_owner_keystores(safe, signer.keystores)
            if len(own) >= safe.threshold:
                continue  # refused by the Safe's own check
            owners = {o.address.lower() for o in safe.owners}
            hot = sorted({*own, *(n for n, address in named if address in owners)})
            if len(hot) >= safe.threshold:
                why = " (keys named for the same owners in another Safe of this file count too)"
                problems.append(_hot_quorum_problem(where, hot, safe.threshold, why))
        return problems

    def _auto_execute_problems(self) -> list[str]:
        auto = self.auto_execute
        if not auto.enabled:
            return []
        names = list(dict.fromkeys(p.chain for p in self.positions if p.chain in self.chains))
        problems: list[str] = []
        for name in names or [next(iter(self.chains))]:
            for problem in self._auto_execute_chain_problems(self.chain_signer(name)):
                if problem not in problems:
                    problems.append(problem)
        return problems

    def _auto_execute_chain_problems(self, cs: ChainSigner) -> list[str]:
        auto = self.auto_execute
        if auto.via == "module":
            if cs.module is None:
                return [f"auto_execute.via: 'module' needs [{cs.where['module']}]"]
            return []
        safe = cs.safe
        if safe is None:
            return [f"auto_execute.via: 'multisig' needs [{cs.where['safe']}]"]
        signable = sum(1 for owner in safe.owners if owner.bot_signs)
        of = "" if cs.where["safe"] == "signer.safe" else f" of [{cs.where['safe']}]"
        if signable < safe.threshold:
            return [
                f"auto_execute.via: 'multisig' needs the bot to sign for {safe.threshold} "
                f"owners{of}; it holds keys for {signable} (keystore or mpc)"
            ]
        if any(owner.mpc for owner in safe.owners) and auto.approver is None:
            return [
                "auto_execute.approver: an MPC owner's co-signer signs only an approved report; "
                "name the keystore of the bot's policy key that signs the approvals"
            ]
        return []

    # -------------------------------------------------------------------------- per chain

    def default_chain(self) -> str:
        """The chain a command without a position works on: the first position's, else the
        first in [chains]."""
        if self.positions:
            return self.positions[0].chain
        return next(iter(self.chains))

    def chain_signer(self, name: str | None = None) -> ChainSigner:
        """Chain ``name``'s Safe, module and sender (None: the default chain's): its own
        ``[chains.NAME.safe]``, ``[chains.NAME.module]``, ``chains.NAME.sender``, else the
        global ones."""
        name = name or self.default_chain()
        chain = self.chains.get(name)
        if chain is None:
            raise ConfigError(f"no chain {name!r} in [chains] (have: {', '.join(self.chains)})")
        s = self.signer
        where = {
            "safe": f"chains.{name}.safe" if chain.safe is not None else "signer.safe",
            "module": f"chains.{name}.module" if chain.module is not None else "signer.module",
            "sender": f"chains.{name}.sender" if chain.sender is not None else "signer.sender",
        }
        return ChainSigner(
            safe=chain.safe if chain.safe is not None else s.safe,
            module=chain.module if chain.module is not None else s.module,
            sender=chain.sender if chain.sender is not None else s.sender,
            where=where,
        )

    def chain_limits(self, name: str | None = None) -> ChainLimits:
        """Chain ``name``'s gas limits: its own ``max_fee_usd`` and ``max_gas_price_gwei``,
        else ``[execution]``'s."""
        name = name or self.default_chain()
        chain = self.chains.get(name)
        if chain is None:
            raise ConfigError(f"no chain {name!r} in [chains] (have: {', '.join(self.chains)})")
        ex = self.execution
        return ChainLimits(
            max_fee_usd=chain.max_fee_usd if chain.max_fee_usd is not None else ex.max_fee_usd,
            max_gas_price_gwei=(
                chain.max_gas_price_gwei
                if chain.max_gas_price_gwei is not None
                else ex.max_gas_price_gwei
            ),
        )

    def safes(self) -> list[tuple[str, SafeConfig]]:
        """Every configured Safe with its key path: [signer.safe], then each chain's own."""
        out = [("signer.safe", self.signer.safe)] if self.signer.safe is not None else []
        out += [(f"chains.{n}.safe", c.safe) for n, c in self.chains.items() if c.safe is not None]
        return out

    # -------------------------------------------------------------------------- accessors

    @property
    def reports_path(self) -> Path:
        return self.report_dir if self.report_dir is not None else self.data_dir / "reports"

    def resolve_database_url(self, environ: Mapping[str, str] | None = None) -> str:
        """The database URL: from ``database_url_env``, ``database_url``, else SQLite in
        ``data_dir`` (``<data_dir>/lpbot.db``)."""
        env = os.environ if environ is None else environ
        if self.database_url_env is not None:
            value = env.get(self.database_url_env)
            if not value:
                raise ConfigError(
                    f"database_url_env: environment variable {self.database_url_env} is not set"
                )
            return value
        if self.database_url is not None:
            return self.database_url
        return f"sqlite:///{self.data_dir / 'lpbot.db'}"

    def position(self, name: str) -> PositionConfig:
        for position in self.positions:
            if position.name == name:
                return position
        known = ", ".join(p.name for p in self.positions) or "none"
        raise ConfigError(f"no position {name!r} in the configuration (have: {known})")

    def resolve_chain(self, name: str, environ: Mapping[str, str] | None = None) -> ResolvedChain:
        """Chain ``name`` with its RPC URL read from the environment or the devnet manifest."""
        env = os.environ if environ is None else environ
        chain = self.chains.get(name)
        if chain is None:
            raise ConfigError(f"no chain {name!r} in [chains] (have: {', '.join(self.chains)})")
        manifest = None
        if chain.manifest is not None:
            try:
                manifest = Manifest.read(chain.manifest)
            except FileNotFoundError:
                raise ConfigError(
                    f"chains.{name}.manifest: {chain.manifest} does not exist; start the devnet "
                    "with `lpbot devnet up`"
                ) from None
            except (ValueError, OSError) as exc:
                raise ConfigError(
                    f"chains.{name}.manifest: cannot read {chain.manifest}: {exc}"
                ) from exc
        if chain.rpc_url_env is not None:
            url = env.get(chain.rpc_url_env)
            if not url:
                raise ConfigError(
                    f"chains.{name}.rpc_url_env: environment variable {chain.rpc_url_env} is "
                    "not set"
                )
        elif chain.rpc_url is not None:
            url = chain.rpc_url
        else:
            assert manifest is not None
            url = manifest.rpc_url
        if manifest is not None:
            chain_id = manifest.chain_id
        elif chain.chain_id is not None:
            chain_id = chain.chain_id
        else:
            chain_id = next(c.chain_id for c in CHAINS.values() if c.name == name)
        self._check_chain_id_unique(name, chain_id)
        submit_url, endpoint = None, None
        if chain.submit_url_env is not None:
            submit_url = env.get(chain.submit_url_env)
            if not submit_url:
                raise ConfigError(
                    f"chains.{name}.submit_url_env: environment variable {chain.submit_url_env} "
                    "is not set"
                )
        elif chain.private_submission != "never":
            submit_url = DEFAULT_PRIVATE_RPC.get(chain_id)
        endpoint = chain.private_endpoint(chain_id)
        dry_run = chain.dry_run
        if dry_run is None:
            info = CHAINS.get(chain_id)
            dry_run = "call" if info is not None and not info.anvil_fork_supported else "fork"
        return ResolvedChain(
            name=name,
            chain_id=chain_id,
            rpc_url=url,
            manifest=manifest,
            submit_url=submit_url,
            public_fallback=chain.public_fallback,
            private_submission=chain.private_submission,
            submit_endpoint=endpoint,
            dry_run=dry_run,
        )

    def _check_chain_id_unique(self, name: str, chain_id: int) -> None:
        """Refuse a chain whose id another [chains] table resolves to as well (a devnet's is
        known from its manifest only): they would share the sender's nonces."""
        for other, chain in self.chains.items():
            if other == name or (not chain.is_devnet and not self.chains[name].is_devnet):
                continue  # two live chains: refused when the file was read
            if chain.manifest is not None:
                try:
                    other_id: int | None = Manifest.read(chain.manifest).chain_id
                except (OSError, ValueError):
                    other_id = None  # not written yet: its own resolve says so
            else:
                other_id = chain.chain_id or next(
                    (c.chain_id for c in CHAINS.values() if c.name == other), None
                )
            if other_id == chain_id:
                raise ConfigError(
                    f"chains.{name}: chain id {chain_id}, as chains.{other}: two tables of one "
                    "chain would share the sender's nonces; keep one"
                )


def _url_password(url: str) -> bool:
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        return make_url(url).password is not None
    except (ArgumentError, ValueError):
        return False


# ------------------------------------------------------------------------------ loading


def resolve_config_path(
    arg: str | Path | None = None, environ: Mapping[str, str] | None = None
) -> Path:
    """The config file: ``arg`` (``--config``), else ``$LPBOT_CONFIG``, else ``./lpbot.toml``."""
    env = os.environ if environ is None else environ
    if arg:
        return Path(arg).expanduser()
    if env.get(CONFIG_ENV):
        return Path(env[CONFIG_ENV]).expanduser()
    return Path.cwd() / DEFAULT_CONFIG_NAME


def load_config(path: str | Path) -> Config:
    """Read and validate the TOML file at ``path``; ``ConfigError`` names every bad key."""
    path = Path(path).expanduser()
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(
            f"no configuration at {path}; write an example with `lpbot init`"
        ) from None
    except OSError as exc:
        raise ConfigError(f"cannot read the configuration {path}: {exc}") from None
    return parse_config(text, base_dir=path.resolve().parent, source=str(path))


def parse_config(text: str, *, base_dir: Path | None = None, source: str = "<config>") -> Config:
    """Validate TOML ``text``; relative paths resolve against ``base_dir`` when given."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{source} is not valid TOML: {exc}") from None
    context = {"base_dir": base_dir} if base_dir is not None else None
    try:
        return Config.model_validate(data, context=context)
    except ValidationError as exc:
        lines = _error_lines(exc, data)
        raise ConfigError(
            f"invalid configuration {source}:\n" + "\n".join(f"  {line}" for line in lines)
        ) from None


def _error_lines(exc: ValidationError, data: Any) -> list[str]:
    """Each error as ``key.path[0].leaf: rule``; union tags (``vol_band``...) left out."""
    lines: list[str] = []
    for error in exc.errors(include_url=False):
        path = _key_path(error["loc"], data, missing=error["type"] == "missing")
        message = _message(error)
        for line in message.splitlines():
            # errors raised by a validator that checks several keys carry their own paths
            own_path = re.match(r"^[A-Za-z_][\w.\[\]]*: ", line) is not None
            if own_path and path:
                lines.append(f"{path}.{line}")
            elif own_path or not path:
                lines.append(line)
            else:
                lines.append(f"{path}: {line}")
    return lines


def _key_path(loc: tuple[int | str, ...], data: Any, *, missing: bool) -> str:
    parts: list[str] = []
    node = data
    for i, key in enumerate(loc):
        last = i == len(loc) - 1
        if isinstance(key, int):
            parts.append(f"[{key}]")
            node = node[key] if isinstance(node, list) and key < len(node) else None
            continue
        if isinstance(node, Mapping) and key not in node and not (last and missing):
            continue  # a tagged union's tag or a type's name: not a key in the file
        parts.append(f".{key}" if parts else key)
        node = node.get(key) if isinstance(node, Mapping) else None
    return "".join(parts)


_RULES = {
    "greater_than": "must be > {gt}",
    "greater_than_equal": "must be >= {ge}",
    "less_than": "must be < {lt}",
    "less_than_equal": "must be <= {le}",
    "missing": "required",
    "extra_forbidden": "unknown key",
    "too_short": "must have at least {min_length} entries",
    "finite_number": "must be a finite number",
    "float_parsing": "must be a number",
    "float_type": "must be a number",
    "int_parsing": "must be an integer",
    "int_type": "must be an integer",
    "int_from_float": "must be an integer",
    "string_type": "must be a string",
    "bool_type": "must be true or false",
    "bool_parsing": "must be true or false",
    "dict_type": "must be a table",
    "model_type": "must be a table",
    "tuple_type": "must be an array",
    "list_type": "must be an array",
}


def _message(error: Any) -> str:
    kind, ctx = error["type"], error.get("ctx") or {}
    if kind in _RULES:
        return _RULES[kind].format(**{k: _fmt(v) for k, v in ctx.items()})
    if kind == "union_tag_invalid":
        return f"kind: must be one of {ctx.get('expected_tags')}, got {ctx.get('tag')!r}"
    if kind == "union_tag_not_found":
        return "kind: required (one of fixed, vol_band, skewed, full_range)"
    if kind == "literal_error":
        return f"must be {ctx.get('expected')}"
    message = str(error["msg"])
    for prefix in ("Value error, ", "Assertion failed, "):
        message = message.removeprefix(prefix)
    return message


def _fmt(value: Any) -> str:
    if isinstance(value, float) and math.isfinite(value) and value == int(value):
        return str(int(value))
    return str(value)


# ------------------------------------------------------------------------------- example

EXAMPLE_TOML = """\
# lpbot configuration: the local devnet (`lpbot devnet up`), one position, paper hedging.
# Relative paths are relative to this file. Secrets never go in this file: keys named *_env
# hold the NAME of an environment variable, keystores are encrypted files.
version = 1
data_dir = ".lpbot"                  # state, keys and the default database
# report_dir = ".lpbot/reports"      # default: <data_dir>/reports
# database_url = "sqlite:///.lpbot/lpbot.db"  # default: SQLite in data_dir
# database_url_env = "LPBOT_DATABASE_URL"     # a PostgreSQL URL with a password: keep it here

[chains.devnet]
manifest = ".lpbot/devnet/manifest.json"     # written by `lpbot devnet up`: chain id, RPC URL

# [chains.arbitrum]
# rpc_url_env = "LPBOT_ARBITRUM_RPC"        # the URL (with its API key) is in the environment
# sender = "arb-bot"                        # this chain's own sender, Safe, module and gas
# max_gas_price_gwei = 0.5                  # limits; unset: [signer] and [execution]'s
# max_fee_usd = "5"
# [chains.arbitrum.safe]                    # a Safe's address differs per chain
# address = "0x..."
# threshold = 2
# owners = [{ address = "0x...", keystore = "owner1" }, { address = "0x..." }]

# [chains.ethereum]
# rpc_url_env = "LPBOT_ETHEREUM_RPC"
# private_submission = "auto"               # a swap goes privately (Flashbots Protect), the rest
#                                           # publicly; "always" | "never"
# submit_url_env = "LPBOT_PROTECT_URL"      # another private endpoint than Flashbots Protect
# public_fallback = false                   # the endpoint down: wait, never the public mempool
# dry_run = "fork"                          # a local Anvil fork; "call": eth_call on the node

# [chains.zksync]
# rpc_url_env = "LPBOT_ZKSYNC_RPC"          # dry-run by eth_call (Anvil cannot fork EraVM)

[[positions]]
name = "eth-usdc"
chain = "devnet"
pool = "USDC/WETH-500"               # a devnet pool name, or a pool address on any chain
# token_id = 1234                    # manage an existing position NFT instead of opening one

[positions.open]                     # open a new position with this capital (whole tokens)
capital = { USDC = "3000", WETH = "1" }

[positions.strategy]
kind = "vol_band"                    # fixed | vol_band | skewed | full_range
k = "auto"                           # the width with the highest expected value (fees - LVR -
                                     # costs); or a number: half-width = k * sigma * sqrt(horizon)
horizon_seconds = 86400
halflife_seconds = 21600
min_half_width_ticks = 10
# fixed:   half_width_ticks = 600  or  half_width_pct = 5  (or "auto")
# skewed:  the vol_band keys, and drift_halflife_seconds, drift_weight, max_shift, static_skew

[positions.policy]
edge_pct = 1.0                       # rebalance when the price is within 1% of an edge
max_age_seconds = "off"              # or a number: rebalance ranges older than this
vol_ratio_trigger = 2.0              # short/long volatility ratio that triggers a rebalance
horizon_seconds = 86400              # expected fee gain is counted over this horizon
slippage_bps = 10                    # unset: derived per plan from the range's width
min_gain_over_cost = 1.0             # rebalance when expected gain > 1.0 x cost
compound_margin = 2.0                # compound when fees > 2 x (gas + swap cost)
on_expected_loss = "alert"           # the pool's fees fall below its LVR: "alert" once, or
                                     # "withdraw" all liquidity and fees to the Safe (asks the
                                     # owners unless auto-execute or the module allows it)

[signer]
sender = "bot"                       # the key that sends transactions and pays gas
# The bot holds ONE owner key (owner1) of a 2-of-3 Safe: it can propose and co-sign, never move
# the Safe's funds alone; small rebalances run through the module's operator key, whose limits
# the chain enforces. lpbot refuses a configuration giving it a threshold of owner keys unless
# allow_hot_quorum = true (the multisig is then a hot wallet).

[signer.keystores.bot]
path = ".lpbot/keys/bot.json"
password_env = "LPBOT_BOT_KEY_PASSWORD"

[signer.keystores.owner1]
path = ".lpbot/keys/owner1.json"
password_env = "LPBOT_OWNER1_KEY_PASSWORD"

[signer.safe]
address = "devnet"                   # the devnet's Safe; elsewhere its 0x address
threshold = 2
owners = [
    { address = "0xa0Ee7A142d267C1f36714E4a8F75612F20a79720", keystore = "owner1" },
    { address = "0xBcd4042DE499D14e55001CcbB24a551F3b954096" },  # signs in the Safe app
    { address = "0x71bE63f3384f5fb98995898A86B02Fb2426c5788" },  # signs in the Safe app
]

[signer.module]
address = "devnet"                   # the rebalance module enabled on the Safe
operator = "bot"                     # the keystore allowed to call it
loss_budget_per_call_bps = 100       # the owners' on-chain loss budget at the TWAP, in bps of
loss_budget_per_day_bps = 300        # the Safe's value in the pool: per call, per 24 hours

# [signer.mpc]                       # a threshold-ECDSA Safe owner (mpc = true on that owner):
# threshold = 2                      # this host's party + the co-signer sign (README, Custody)
# share_count = 3
# address = "0x..."                  # printed by `lpbot mpc keygen`
# parties = [                        # this host's party, the co-signer, the recovery party
#   { kind = "local", index = 1, dir = ".lpbot/mpc/party-1", passphrase_env = "LPBOT_MPC_PW" },
#   { kind = "remote", index = 2, url = "http://127.0.0.1:7410" },  # lpbot cosigner serve
#   { kind = "remote", index = 3, url = "http://127.0.0.1:7411", offline = true },
# ]

[hedge]
exchange = "paper"                   # paper | binanceusdm | okx | bybit
symbol = "ETH/USDT:USDT"             # paper markets: ETH/USDT:USDT, BTC/USDT:USDT
# api_key_env = "LPBOT_EXCHANGE_KEY"         # required for a real exchange
# api_secret_env = "LPBOT_EXCHANGE_SECRET"
# api_password_env = "LPBOT_EXCHANGE_PASSPHRASE"  # okx only
# sandbox = true                     # the exchange's testnet (its own API keys)
band_abs = "0.05"                    # no trade while |short - target| <= max(0.05 ETH, 5%)
band_pct = 5.0
max_leverage = 3.0
max_funding_apr_pct = 50.0           # stop hedging when paying more funding than this

[schedule]
monitor_seconds = 60
rebalance_check_seconds = 300
hedge_sync_seconds = 60
daily_report_time = 00:05:00
timezone = "UTC"

[auto_execute]
enabled = true                       # false: every rebalance waits for a person
max_value_usd = "10000"              # larger rebalances wait for a person
via = "module"                       # module (operator key, on-chain limits) | multisig
                                     # (bot-held owner keys need signer.allow_hot_quorum)
# approver = "policy"                # multisig with an MPC owner: the keystore of the bot's
                                     # policy key, whose EIP-712 approvals the co-signer checks

[pricing]                            # every USD figure's marks: decisions, reports, ledger
source = "pools"                     # pools (checked against Chainlink) | chainlink | fixed
stable = "USDC"                      # pools are quoted against this stablecoin
twap_seconds = 0                     # 0: the pools' spot price; else their TWAP over this
max_age_seconds = 10800              # an older mark raises an alert
max_deviation_bps = 100              # pools and feeds further apart raise an alert
depeg_bps = 50                       # a stablecoin further off 1 USD raises an alert
# fixed = { USDC = "1", WETH = "3000" }  # with source = "fixed": the devnet only

[execution]                          # right before signing and sending, every rebalance is
max_price_move_share_pct = 50        # re-checked: a price move past 50% of the slippage
gas_margin_pct = 20                  # tolerance, or a simulated revert, makes it STALE
# max_fee_usd = "25"                 # above this gas fee a rebalance waits (alert)
# max_gas_price_gwei = 50            # above this max fee per gas it waits too (alert); a
                                     # stuck transaction is still replaced or cancelled
replace_after_seconds = 60
max_replacements = 3                 # then the stuck transaction is cancelled (alert)
max_sandwich_bps = 5                 # a slippage derived from the range's width lets a
                                     # sandwich take at most 5 bps of the position

[risk]                               # the market regime: normal, elevated, stressed
enabled = true
exit_fraction = 0.7                  # a level is left when every signal stays below 70% of
min_dwell_seconds = 900              # its threshold (above 143% for the liquidation distance:
                                     # the threshold / 0.7) this long
stress_monitor_seconds = 60          # the monitor's period while the regime is not normal

[risk.elevated]                      # enter elevated at any of these ("off": not this signal)
vol_5m_ratio = 2.5                   # realised volatility over 5 / 30 minutes vs its baseline
vol_30m_ratio = 2.0
var_1m_pct = 1.0                     # 1/5/30-minute VaR, % of the position's value
var_5m_pct = 2.0
var_30m_pct = 5.0
twap_deviation_bps = 100             # the price's distance from the pool's TWAP
volume_ratio = 3.0                   # the pool's swap volume vs its baseline
funding_bps_8h = 5.0                 # the perp's funding (either sign), bps per 8 hours
open_interest_change_pct = 5.0       # the perp's open interest moved (either way)
liquidation_ratio = 5.0              # the perp's liquidations vs their baseline
hedge_liquidation_distance_pct = 30  # the hedge this close to its liquidation price
widen_factor = 2.0                   # then: the next range is twice as wide
hedge_band_factor = 0.5              # and the hedge band half as wide

[risk.stressed]                      # enter stressed at any of these (at least as severe)
vol_5m_ratio = 5.0
vol_30m_ratio = 3.5
var_1m_pct = 2.0
var_5m_pct = 4.0
var_30m_pct = 10.0
twap_deviation_bps = 300
volume_ratio = 8.0
funding_bps_8h = 15.0
open_interest_change_pct = 12.0
liquidation_ratio = 20.0
hedge_liquidation_distance_pct = 15
action = "withdraw"                  # then: withdraw to the Safe | "widest" (the widest range)
hedge = "resize"                     # and re-size the hedge to the new delta (the tokens
                                     # withdrawn) at once | "flatten" (close it)

[dashboard]                          # `lpbot dashboard`: a local web page over the store
port = 8765                          # bound to 127.0.0.1; any other host needs TLS and a token
# token_env = "LPBOT_DASHBOARD_TOKEN"  # the access token's variable; default: a random one
# tls_cert = "cert.pem"              # with tls_key: HTTPS (required for a non-loopback host)
# tls_key = "key.pem"
poll_seconds = 5                     # how often an open page checks for new data

[health]                             # pool health: opening and rebalancing need a healthy pool
min_depth_usd_1pct = 500000          # USD the liquidity holds within 1% of the price (both sides)
max_spread_bps = 30                  # a buy and a sell of spread_trade_usd through the pool:
spread_trade_usd = 10000             # (buy - sell) / mid, fees included (a 0.3% pool: >= 60)
on_unhealthy = "alert"               # a managed pool below the rule: "alert" | "stressed" (the
                                     # stressed regime, once it runs; until then an alert)
# accept_unhealthy = ["eth-usdc"]    # positions that may open and rebalance in any pool
"""


def write_example(path: str | Path, *, force: bool = False) -> Path:
    """Write ``EXAMPLE_TOML`` to ``path``; refuses to overwrite unless ``force``."""
    path = Path(path).expanduser()
    if path.exists() and not force:
        raise ConfigError(f"{path} exists; pass --force to overwrite it")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(EXAMPLE_TOML, encoding="utf-8")
    return path

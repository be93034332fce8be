"""The module's refusals decoded from its ABI, and its budgets in lpbot.toml."""

from __future__ import annotations

import pytest
from eth_abi.abi import encode
from eth_hash.auto import keccak
from pydantic import ValidationError

from lpbot.config import ModuleConfig
from lpbot.signing.module import decode_module_error


def _error(signature: str, types: list[str], values: list[object]) -> bytes:
    return keccak(signature.encode())[:4] + encode(types, values)


def test_a_budget_refusal_is_named_with_its_numbers() -> None:
    data = _error("CallLossBudgetExceeded(uint256,uint256)", ["uint256", "uint256"], [601, 500])
    assert decode_module_error(data) == "CallLossBudgetExceeded(loss=601, budget=500)"


def test_the_anchor_s_refusals_are_named_with_their_numbers() -> None:
    pool = "0x1B8d837dcd03b2dC9CE5B5CBd62949410FC2699C"
    data = _error(
        "AnchorDeviates(address,int24,int24,int24)",
        ["address", "int24", "int24", "int24"],
        [pool, 189277, 196236, 196199],
    )
    assert decode_module_error(data) == (
        f"AnchorDeviates(pool={pool}, anchorTick=189277, twapTick=196236, blockTick=196199)"
    )
    data = _error(
        "FeedStale(address,uint256,uint256)", ["address", "uint256", "uint256"], [pool, 7, 3600]
    )
    assert decode_module_error(data) == f"FeedStale(feed={pool}, updatedAt=7, maxAge=3600)"
    data = _error("FeedAnswerInvalid(address,int256)", ["address", "int256"], [pool, -1])
    assert decode_module_error(data) == f"FeedAnswerInvalid(feed={pool}, answer=-1)"


def test_an_inner_failure_shows_the_callee_s_reason() -> None:
    inner = keccak(b"Error(string)")[:4] + encode(["string"], ["Too little received"])
    data = _error("CallFailed(bytes)", ["bytes"], [inner])
    assert decode_module_error(data) == "CallFailed(returnData='Too little received')"


def test_what_is_not_the_module_s_error_is_not_named() -> None:
    assert decode_module_error(keccak(b"Nope()")[:4]) is None
    assert decode_module_error(b"") is None
    # the selector alone, arguments cut off: still named
    assert decode_module_error(keccak(b"TooSoon(uint256)")[:4]) == "TooSoon"


def test_module_budgets_in_the_config() -> None:
    cfg = ModuleConfig(
        address="devnet", operator="bot", loss_budget_per_call_bps=100, loss_budget_per_day_bps=300
    )
    assert cfg.loss_budget_per_day_bps == 300
    assert ModuleConfig(address="devnet", operator="bot").loss_budget_per_call_bps is None
    with pytest.raises(ValidationError, match="above loss_budget_per_day_bps"):
        ModuleConfig(
            address="devnet",
            operator="bot",
            loss_budget_per_call_bps=400,
            loss_budget_per_day_bps=300,
        )
    with pytest.raises(ValidationError):
        ModuleConfig(address="devnet", operator="bot", loss_budget_per_day_bps=10_001)

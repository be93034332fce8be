"""Speed of the co-signer's policy check on a full rebalance batch: the SafeTx hash recomputed,
the EIP-712 approval verified, the report hashed, MultiSendCallOnly unpacked and every call
decoded against the report, and the count kept in its SQLite store.

Target (2-core machine): well under 50 ms, small beside the signature itself. Run with
``make bench``.
"""

from __future__ import annotations

from pathlib import Path

from pytest_benchmark.fixture import BenchmarkFixture

from lpbot.signing.mpc.policy import Ledger, check
from tests.signing.test_policy import NOW, POLICY, T, _approve, _calls, _report, _safe_tx

TARGET_S = 0.05


def test_policy_check_of_a_rebalance_batch(benchmark: BenchmarkFixture, tmp_path: Path) -> None:
    calls = _calls()
    report = _report(calls)
    st = _safe_tx(calls)
    digest = "0x" + st.hash().hex()
    approval = _approve(report, digest, expires_at=T + 600)
    context = {
        "kind": "safe_tx",
        "safe_tx": st.to_json(),
        "report": report,
        "approval": approval.model_dump(),
    }
    policy = POLICY.model_copy(update={"max_signatures_per_day": 10**9})
    ledger = Ledger(tmp_path / "bench.sqlite")
    result = benchmark(check, policy, ledger, digest, context, NOW)
    assert result.calls == len(calls)
    assert benchmark.stats is not None
    assert benchmark.stats.stats.median < TARGET_S

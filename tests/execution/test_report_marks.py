"""The dry-run report's USD figures are the price source's marks at the plan's block, each
shown with its source, route and block; a mark the checks flag fails the report."""

from __future__ import annotations

from decimal import Decimal

import pytest

from lpbot.errors import Refused
from lpbot.execution import service
from lpbot.execution.state import RebalanceRepo
from lpbot.pricing.base import PricingConfig
from lpbot.pricing.marks import chain_pricer
from lpbot.report.dryrun import approvable
from lpbot.testing.fakes import MemoryRebalanceRepo
from tests.execution.conftest import Setup

pytestmark = pytest.mark.devnet


@pytest.fixture
def repo() -> RebalanceRepo:
    """One store is enough here: the report's marks do not depend on it."""
    return MemoryRebalanceRepo()


def test_the_report_is_valued_at_the_marks_of_the_plans_block(setup: Setup) -> None:
    ctx = setup.ctx
    _, report, paths = service.plan_rebalance(ctx, setup.token_id, setup.new_range, "test")
    block = report["snapshot"]["block"]
    expected = ctx.pricer.fetch_marks(["USDC", "WETH"], block)
    assert report["marks"]["block"] == block
    used = {m["token"]: m for m in report["marks"]["used"]}
    assert set(used) == {"USDC", "WETH"}
    for token, m in used.items():
        mark = expected.marks[token]
        assert Decimal(m["usd"]) == mark.usd
        assert (m["source"], m["route"], m["block"]) == (mark.source, list(mark.route), block)
    # the second opinion (the devnet's Chainlink stand-in) is in the report too
    assert {m["token"] for m in report["marks"]["checks"]} == set(expected.checks) & set(used)
    tokens = {t["symbol"]: Decimal(t["usd"]) for t in report["tokens"]}
    assert tokens == {"USDC": expected.usd("USDC"), "WETH": expected.usd("WETH")}
    d = report["dry_run"]
    gas_usd = Decimal(int(d["gas_cost_wei"])) / Decimal(10**18) * expected.usd("WETH")
    assert d["gas_cost_usd"] == f"{gas_usd:.4f}"
    assert approvable(report)
    route = expected.marks["WETH"].route_text
    assert route in paths["md"].read_text()
    assert route.replace(">", "&gt;") in paths["html"].read_text()
    for kind in ("md", "html"):
        text = paths[kind].read_text()
        assert "Marks" in text and expected.marks["WETH"].source in text


def test_a_stale_mark_fails_the_report_and_it_cannot_be_approved(setup: Setup) -> None:
    ctx = setup.ctx
    m = setup.chain.manifest
    ctx.pricer = chain_pricer(setup.chain.w3, m, PricingConfig(max_age_seconds=3600))
    setup.chain.increase_time(2 * 3600)  # the feeds stop updating for two hours
    _, report, paths = service.plan_rebalance(ctx, setup.token_id, setup.new_range, "test")
    failed = [c for c in report["checks"] if not c["ok"]]
    assert [c["name"] for c in failed] == ["marks current and consistent"]
    assert "s old (limit 3600 s)" in failed[0]["detail"]
    assert any(a["kind"] == "stale" for a in report["marks"]["alerts"])
    assert "DO NOT APPROVE" in paths["md"].read_text()
    assert "ALERT stale" in paths["md"].read_text()
    with pytest.raises(Refused, match="marks current and consistent"):
        service.approve(ctx, report["report_id"], approver="alice")


def test_without_a_price_source_no_report_is_written(setup: Setup) -> None:
    ctx = setup.ctx
    ctx.pricer = None
    with pytest.raises(Refused, match="no price source configured"):
        service.plan_rebalance(ctx, setup.token_id, setup.new_range, "test")
    assert list(ctx.reports_dir.glob("*.json")) == []
    assert ctx.repo.get(1) is None  # nothing recorded either

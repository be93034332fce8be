"""Pool health where a person meets it: ``lpbot pools health`` ranks the configured pools,
``position quote`` and ``status`` show the health line, opening and rebalancing into a pool
below the ``[health]`` rule are refused until a person accepts it, and the daemon's monitor
alerts once when the pool falls below the rule (and again only after it recovered)."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest

from lpbot.app import App
from lpbot.jobs import tasks
from lpbot.jobs.alerts import MemoryNotifier
from lpbot.jobs.runtime import build_runtime
from lpbot.risk.health import HealthRule
from tests.cli import test_cli as base
from tests.cli.test_cli import Env, _market

# the command-line tests' devnet configuration (a Safe position, keystores) and runner
cli, env, keystore_dir = base.cli, base.env, base.keystore_dir

pytestmark = pytest.mark.devnet

STRICT = "\n[health]\nmin_depth_usd_1pct = 100000000\n"  # $100M within 1%: no devnet pool


def _health(env: Env, section: str) -> None:
    env.config.write_text(env.config.read_text() + section)


def test_pools_health_ranks_the_configured_pools(env: Env, cli: Any) -> None:
    c = ("--config", str(env.config))
    # a minute passes (a devnet deployed from scratch mines its blocks within one second, and
    # over no time the volume is unknown rather than zero)
    env.chain.increase_time(60)
    run = cli(*c, "pools", "health", "--json")
    assert run.code == 0, run.err
    data = json.loads(run.out)
    assert data["rule"] == ">= $500,000 within 1% (both sides), spread <= 30 bps for $10,000"
    pools = data["pools"]
    m = env.chain.manifest
    assert sorted(p["pool"] for p in pools) == sorted(
        f"{p.token0}/{p.token1}-{p.fee}" for p in m.pools
    )
    # the devnet's 0.05% pool is the one healthy under the default rule: $20M seeded, a fifth
    # of it within 1%; the 0.3% and 1% tiers pay their fee twice on a round trip
    first = pools[0]
    assert (first["rank"], first["pool"], first["verdict"]) == (1, "USDC/WETH-500", "healthy")
    assert first["positions"] == ["eth-usdc"]
    assert Decimal(first["depth"]["1pct"]["down_usd"]) > 3_000_000
    assert Decimal(first["depth"]["1pct"]["up_usd"]) > 3_000_000
    assert Decimal("10") < Decimal(first["spread"]["bps"]) < Decimal("11")
    for p in pools[1:]:
        assert p["verdict"] == "unhealthy"
        assert Decimal(p["spread"]["bps"]) >= 2 * Decimal(p["pool"].split("-")[1]) / 100
        assert any("above 30 bps" in x for x in p["problems"])
    depths = [Decimal(p["depth"]["1pct"]["down_usd"]) + Decimal(p["depth"]["1pct"]["up_usd"])
              for p in pools[1:]]  # fmt: skip
    assert depths == sorted(depths, reverse=True)
    # a fresh devnet has had no swaps: no volume and no fees yet, measured not guessed
    assert first["volume_24h_usd"] == 0.0 and first["fee_apr"] == 0.0
    text = cli(*c, "pools", "health", "--chain", "devnet")
    assert text.code == 0, text.err
    assert "devnet:USDC/WETH-500" in text.out and "healthy" in text.out
    assert "spread" in text.out and "above 30 bps" in text.out
    bad = cli(*c, "pools", "health", "--chain", "mainnet")
    assert bad.code == 2 and "--chain mainnet: no such chain" in bad.err


def test_pools_health_counts_volume_after_trading(env: Env, cli: Any) -> None:
    _market(env.chain)
    run = cli("--config", str(env.config), "pools", "health", "--json")
    first = next(p for p in json.loads(run.out)["pools"] if p["pool"] == "USDC/WETH-500")
    assert first["volume_24h_usd"] > 0 and first["fee_apr"] > 0


def test_quote_shows_the_pool_health(env: Env, cli: Any) -> None:
    c = ("--config", str(env.config))
    capital = ("--capital", "3000 USDC", "--capital", "1 WETH")
    quote = cli(*c, "position", "quote", *capital, "--strategy", "fixed", "--width-pct", "5",
                "--json")  # fmt: skip
    assert quote.code == 0, quote.err
    health = json.loads(quote.out)["health"]
    assert health["verdict"] == "healthy" and health["problems"] == []
    text = cli(*c, "position", "quote", *capital, "--strategy", "fixed", "--width-pct", "5")
    line = next(x for x in text.out.splitlines() if x.strip().startswith("pool health"))
    assert "healthy: depth ±1% $" in line and "bps for $10,000" in line
    _health(env, STRICT)
    text = cli(*c, "position", "quote", *capital, "--strategy", "fixed", "--width-pct", "5")
    line = next(x for x in text.out.splitlines() if x.strip().startswith("pool health"))
    assert "unhealthy" in line and "below $100,000,000" in line


def test_rebalance_plan_refuses_an_unhealthy_pool_unless_accepted(env: Env, cli: Any) -> None:
    _market(env.chain)  # the pool's TWAP has history: the planner checks the spot against it
    _health(env, STRICT)
    c = ("--config", str(env.config))
    token = str(env.values["token_id"])
    run = cli(*c, "rebalance", "plan", token, "--width-ticks", "600")
    assert run.code == 2
    assert "eth-usdc: rebalance refused: the pool is unhealthy" in run.err
    assert "below $100,000,000" in run.err and "--accept-unhealthy-pool" in run.err
    assert "health.accept_unhealthy = ['eth-usdc']" in run.err
    assert json.loads(cli(*c, "rebalance", "list", "--json").out) == []
    run = cli(*c, "rebalance", "plan", token, "--width-ticks", "600", "--accept-unhealthy-pool")
    assert run.code == 0, run.err + run.out
    assert "pool health: unhealthy" in run.out and "SIMULATED" in run.out


def _fund_safe(env: Env) -> None:
    """The Safe holds the capital [positions.open] names (a trader sends it)."""
    from lpbot.devnet.deploy import GAS, contract

    m = env.chain.manifest
    for symbol, amount in (("USDC", 3000 * 10**6), ("WETH", 10**18)):
        token = contract(env.chain.w3, "TestERC20", m.token(symbol).address)
        tx = token.functions.transfer(m.safe, amount).transact(
            {"from": m.accounts.traders[0], "gas": GAS}
        )
        env.chain.w3.eth.wait_for_transaction_receipt(tx)


def test_position_open_refuses_an_unhealthy_pool_unless_accepted(env: Env, cli: Any) -> None:
    text = env.config.read_text().replace(
        f"token_id = {env.values['token_id']}",
        '[positions.open]\ncapital = { USDC = "3000", WETH = "1" }\naccept_expected_loss = true',
    )
    env.config.write_text(text + STRICT)
    _market(env.chain)
    _fund_safe(env)
    c = ("--config", str(env.config))
    refused = cli(*c, "position", "open")
    assert refused.code == 2
    assert "eth-usdc: opening refused: the pool is unhealthy" in refused.err
    assert "--accept-unhealthy-pool" in refused.err
    assert json.loads(cli(*c, "rebalance", "list", "--json").out) == []
    planned = cli(*c, "position", "open", "--accept-unhealthy-pool")
    assert planned.code == 0, planned.err
    assert "SIMULATED" in planned.out
    # the configuration may accept it for the position instead of the flag
    env.config.write_text(text + STRICT + 'accept_unhealthy = ["eth-usdc"]\n')
    again = cli(*c, "position", "open", "--json")
    assert again.code == 0, again.err
    assert json.loads(again.out)["open"]["state"] == "SIMULATED"


def test_monitor_alerts_once_when_the_pool_falls_below_the_rule(env: Env, cli: Any) -> None:
    """One alert when the pool falls below the rule, none while it stays there, one when it
    recovers, and one again on the next fall; ``status`` shows the last check."""
    notifier = MemoryNotifier()
    runtime = build_runtime(App.load(env.config), notifier=notifier)
    try:
        mp = runtime.positions["eth-usdc"]
        assert mp.health_rule == HealthRule()
        c = ("--config", str(env.config))
        tasks.monitor(mp)
        assert mp.pool_healthy is True and not notifier.alerts
        status = json.loads(cli(*c, "status", "--json").out)
        health = status["positions"][0]["health"]
        assert health["verdict"] == "healthy" and Decimal(health["spread_bps"]) < 11
        strict = HealthRule(min_depth_usd_1pct=Decimal(100_000_000))
        loose = HealthRule()
        kinds = []
        for rule in (strict, strict, strict, loose, loose, strict):
            mp.health_rule = rule
            tasks.monitor(mp)
            kinds.append([a.kind for a in notifier.alerts if a.kind.startswith("pool_")])
        assert kinds[-1] == ["pool_unhealthy", "pool_healthy", "pool_unhealthy"]
        assert kinds[0] == kinds[2] == ["pool_unhealthy"]
        fell = next(a for a in notifier.alerts if a.kind == "pool_unhealthy")
        assert "below $100,000,000" in fell.body and "refused until it recovers" in fell.body
        text = cli(*c, "status").out
        assert "pool health" in text and "unhealthy" in text and "below $100,000,000" in text
        status = json.loads(cli(*c, "status", "--json").out)
        assert status["positions"][0]["health"]["verdict"] == "unhealthy"
    finally:
        runtime.close()


def test_the_daemon_refuses_a_rebalance_into_an_unhealthy_pool(env: Env, cli: Any) -> None:
    """The rebalance check holds where the pool is below the rule: the refusal in the audit
    log each time, one alert while the pool stays unhealthy, and accepted positions go on."""
    from lpbot.execution.decide import decide_position

    _market(env.chain)
    _health(env, STRICT)
    notifier = MemoryNotifier()
    runtime = build_runtime(App.load(env.config), notifier=notifier)
    try:
        mp = runtime.positions["eth-usdc"]
        marks = mp.fetch_marks(mp.ctx.w3.eth.block_number)
        prices = mp.prices(marks)
        view = decide_position(
            mp.ctx.w3, mp.reader, mp.pool, mp.token_id, mp.policy, decimals=mp.decimals,
            usd=(prices.token0, prices.token1), native_usd=prices.eth, block=marks.block,
        )  # fmt: skip
        first = tasks._health_gate(mp, view, marks)
        second = tasks._health_gate(mp, view, marks)
        assert first == second
        assert first.startswith("hold: eth-usdc: rebalance refused: the pool is unhealthy")
        assert "below $100,000,000" in first
        assert [a.kind for a in notifier.alerts] == ["pool_unhealthy"]
        c = ("--config", str(env.config))
        decisions = json.loads(cli(*c, "status", "--json").out)["last_decisions"]
        assert [d["kind"] for d in decisions[:2]] == ["health_gate", "health_gate"]
        assert decisions[0]["decision"] == "refuse"
        mp.accept_unhealthy = True
        assert tasks._health_gate(mp, view, marks) == ""
    finally:
        runtime.close()


def test_the_daemon_open_waits_while_the_pool_is_unhealthy(env: Env) -> None:
    text = env.config.read_text().replace(
        f"token_id = {env.values['token_id']}",
        '[positions.open]\ncapital = { USDC = "3000", WETH = "1" }\naccept_expected_loss = true',
    )
    env.config.write_text(text + STRICT)
    _fund_safe(env)
    notifier = MemoryNotifier()
    runtime = build_runtime(App.load(env.config), notifier=notifier)
    try:
        po = runtime.opens["eth-usdc"]
        po.notifier = notifier
        first, second = tasks.open_position(po), tasks.open_position(po)
        assert first == second
        assert first.startswith("open waits: eth-usdc: opening refused: the pool is unhealthy")
        assert [a.kind for a in notifier.alerts] == ["pool_unhealthy"]
        assert po.token_id is None and po.ctx.repo.unfinished() == []
    finally:
        runtime.close()

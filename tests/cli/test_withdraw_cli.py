"""``lpbot position withdraw``: a person plans a withdraw of the configured position, approves and
executes it with the rebalance commands; bad input is one line and changes nothing."""

from __future__ import annotations

import json
from typing import Any

import pytest

from lpbot.devnet.deploy import contract
from tests.cli.test_cli import Env, _market

# the command-line tests' fixtures (re-exported names register them here)
from tests.cli.test_cli import cli as cli
from tests.cli.test_cli import env as env
from tests.cli.test_cli import keystore_dir as keystore_dir

pytestmark = pytest.mark.devnet


def _balances(env: Env) -> tuple[int, ...]:
    m = env.chain.manifest
    return tuple(
        contract(env.chain.w3, "TestERC20", m.token(s).address).functions.balanceOf(m.safe).call()
        for s in ("USDC", "WETH")
    )


def test_withdraw_planned_approved_and_executed_from_the_command_line(env: Env, cli: Any) -> None:
    _market(env.chain)
    c = ("--config", str(env.config))
    token = env.values["token_id"]
    before = _balances(env)
    run = cli(*c, "position", "withdraw", "--json")
    assert run.code == 0, run.err + run.out
    planned = json.loads(run.out)
    assert planned["position"] == "eth-usdc" and planned["token_id"] == token
    w = planned["withdraw"]
    assert w["state"] == "SIMULATED" and w["checks_passed"] is True
    assert set(w["receives"]) == {"USDC", "WETH"}
    # planned again: the same withdraw, nothing new recorded
    again = json.loads(cli(*c, "position", "withdraw", "--json").out)
    assert again["withdraw"]["id"] == w["id"]

    assert cli(*c, "rebalance", "approve", w["report_id"], "--yes").code == 0
    run = cli(*c, "rebalance", "execute", w["report_id"], "--keystore", "owner1", "--keystore",
              "owner2")  # fmt: skip
    assert run.code == 0, run.err + run.out
    after = _balances(env)
    received = tuple(int(x) for x in w["receives"].values())
    assert (after[0] - before[0], after[1] - before[1]) == received

    status = json.loads(cli(*c, "status", "--json").out)
    (row,) = [p for p in status["positions"] if p["token_id"] == token]
    assert row["state"] == "withdrawn"

    # withdrawn: by name and by NFT, one line, nothing recorded
    for args in (("position", "withdraw"), ("position", "withdraw", str(token))):
        run = cli(*c, *args)
        assert run.code != 0 and "was withdrawn" in run.err, run.err
        assert "Traceback" not in run.err and len(run.err.strip().splitlines()) == 1
    listed = json.loads(cli(*c, "rebalance", "list", "--json").out)
    assert [r["kind"] for r in listed] == ["withdraw"]


def test_bad_input_is_one_line_and_changes_nothing(env: Env, cli: Any) -> None:
    _market(env.chain)
    c = ("--config", str(env.config))
    before = _balances(env)
    run = cli(*c, "position", "withdraw", "999999")
    assert run.code != 0 and "does not exist" in run.err, run.err
    run = cli(*c, "position", "withdraw", "--position", "nope")
    assert run.code != 0 and "nope" in run.err, run.err
    for r in (run,):
        assert "Traceback" not in r.err
    assert _balances(env) == before
    listed = json.loads(cli(*c, "rebalance", "list", "--json").out)
    assert listed == []

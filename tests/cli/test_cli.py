"""The command line as a user meets it: one configuration for every command, keys lpbot makes
itself, a daemon that refuses what it will not do, loud signing, and one-line errors."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from web3.logs import DISCARD

from lpbot.cli import main
from lpbot.devnet.deploy import GAS, contract
from lpbot.devnet.keys import dev_signer
from lpbot.devnet.market import run_market
from lpbot.signing.local import write_keystore
from tests.conftest import Devnet

CONFIG = """
version = 1
data_dir = "{data}"
report_dir = "{data}/my-reports"
[chains.devnet]
manifest = "{manifest}"
[[positions]]
name = "eth-usdc"
chain = "devnet"
pool = "{pool}"
token_id = {token_id}
[positions.strategy]
kind = "fixed"
half_width_ticks = 600
[positions.policy]
slippage_bps = 10
[signer]
sender = "bot"
# the test's two owners sign from this one process: a hot quorum, accepted explicitly
allow_hot_quorum = true
[signer.keystores.bot]
path = "{data}/keys/bot.json"
password_env = "LPBOT_T_BOT_PW"
[signer.keystores.owner1]
path = "{data}/keys/owner1.json"
password_env = "LPBOT_T_OWNER1_PW"
[signer.keystores.owner2]
path = "{data}/keys/owner2.json"
password_env = "LPBOT_T_OWNER2_PW"
[signer.safe]
address = "devnet"
threshold = 2
owners = [
    {{ address = "{o1}", keystore = "owner1" }},
    {{ address = "{o2}", keystore = "owner2" }},
    {{ address = "{o3}" }},
]
[signer.module]
address = "devnet"
operator = "bot"
[hedge]
exchange = "paper"
symbol = "ETH/USDT:USDT"
band_abs = "0.7"
band_pct = 5.0
[schedule]
monitor_seconds = 30
rebalance_check_seconds = 120
hedge_sync_seconds = 45
"""


@dataclass
class Run:
    code: int
    out: str
    err: str


@dataclass
class Env:
    tmp: Path
    data: Path
    config: Path
    chain: Devnet
    manifest_path: Path
    values: dict[str, Any]

    def write(self, **changes: Any) -> None:
        self.config.write_text(CONFIG.format(**{**self.values, **changes}))


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    monkeypatch.delenv("LPBOT_CONFIG", raising=False)

    def run(*argv: str) -> Run:
        capsys.readouterr()
        code = main(list(argv))
        captured = capsys.readouterr()
        return Run(code, captured.out, captured.err)

    yield run


@pytest.fixture(scope="module")
def keystore_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The bot's and two owners' keystores, encrypted once (scrypt takes a second each)."""
    keys = tmp_path_factory.mktemp("keys")
    for name, index in (("bot", 8), ("owner1", 9), ("owner2", 10)):
        write_keystore(keys / f"{name}.json", bytes(dev_signer(index)._account.key), name)
    return keys


def _keystores(data: Path, keys: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import shutil

    (data / "keys").mkdir(parents=True)
    for name in ("bot", "owner1", "owner2"):
        shutil.copy(keys / f"{name}.json", data / "keys" / f"{name}.json")
        monkeypatch.setenv(f"LPBOT_T_{name.upper()}_PW", name)


@pytest.fixture
def env(chain: Devnet, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, keystore_dir: Path) -> Env:
    """A configuration for the devnet's Safe position, with keystores for the bot and two of
    the three owners; the working directory is an empty one."""
    monkeypatch.chdir(tmp_path)
    data = tmp_path / "data"
    manifest_path = tmp_path / "manifest.json"
    chain.manifest.write(manifest_path)
    _keystores(data, keystore_dir, monkeypatch)
    owners = [dev_signer(i).address for i in (9, 10, 11)]
    values = {
        "data": data,
        "manifest": manifest_path,
        "pool": "USDC/WETH-500",
        "token_id": chain.manifest.safe_position,
        "o1": owners[0],
        "o2": owners[1],
        "o3": owners[2],
    }
    e = Env(tmp_path, data, tmp_path / "lpbot.toml", chain, manifest_path, values)
    e.write()
    return e


def _market(chain: Devnet) -> None:
    m = chain.manifest
    run_market(chain.w3, m, m.pool("USDC/WETH-500"), steps=6, vol=0.8, seed=3, step_seconds=600)


# ------------------------------------------------------------------- one configuration


def test_config_check_takes_config_after_the_command(env: Env, cli: Any) -> None:
    run = cli("config", "check", "--config", str(env.config))
    assert run.code == 0, run.err + run.out
    assert f"{env.config}: valid" in run.out
    assert cli("--config", str(env.config), "config", "check").code == 0


@pytest.mark.devnet
def test_rebalance_reads_the_configuration(env: Env, cli: Any) -> None:
    """The report goes to the configured report_dir, with the configured 10 bps of slippage
    (before: ./reports and 50 bps, whatever the file said)."""
    _market(env.chain)
    token = env.values["token_id"]
    run = cli("--config", str(env.config), "rebalance", "plan", str(token), "--width-ticks", "600")
    assert run.code == 0, run.err + run.out
    reports = list((env.data / "my-reports").glob("*.json"))
    assert len(reports) == 1 and not (env.tmp / "reports").exists()
    report = json.loads(reports[0].read_text())
    assert report["slippage_bps"] == 10
    # the configured 10 bps is in every minimum the calls carry: the simulated amounts less 10 bps
    p, d = report["plan"], report["dry_run"]
    assert int(p["mint_min0"]) == int(p["mint0"]) * 9_990 // 10_000
    assert int(p["mint_min1"]) == int(p["mint1"]) * 9_990 // 10_000
    assert int(p["decrease_min0"]) == int(d["decreased"][0]) * 9_990 // 10_000
    if p["swap_zero_for_one"] is not None:
        assert int(p["swap_out_min"]) == int(p["swap_out"]) * 9_990 // 10_000
    md = next((env.data / "my-reports").glob("*.md")).read_text()
    assert "slippage tolerance 10 bps" in md
    # above 300 bps only with --force: a usage error, nothing planned
    wide = ("rebalance", "plan", str(token), "--width-ticks", "600", "--slippage-bps", "500")
    run = cli("--config", str(env.config), *wide)
    assert run.code == 2 and "above 300 bps" in run.err and "--force" in run.err
    assert len(list((env.data / "my-reports").glob("*.json"))) == 1
    # a flag overrides one value, and says so in --help
    help_text = " ".join(cli("rebalance", "--help").out.split())
    assert "(overrides positions.policy.slippage_bps)" in help_text

    listed = cli("--config", str(env.config), "rebalance", "list", "--json")
    assert listed.code == 0
    rows = json.loads(listed.out)
    assert [(r["state"], r["token_id"]) for r in rows] == [("SIMULATED", token)]
    assert rows[0]["report_id"] == report["report_id"]
    shown = cli("--config", str(env.config), "rebalance", "show", report["report_id"], "--json")
    assert json.loads(shown.out)["state"] == "SIMULATED"


@pytest.mark.devnet
def test_hedge_reads_the_configuration(env: Env, cli: Any) -> None:
    """Before: `lpbot hedge` ignored [hedge] (its own band, symbol and state directory)."""
    run = cli("--config", str(env.config), "hedge", "status", "--json")
    assert run.code == 0, run.err
    shown = json.loads(run.out)
    assert shown["venue"] == "paper" and shown["symbol"] == "ETH/USDT:USDT"
    assert Decimal(shown["band"]) == Decimal("0.7")  # band_abs: above 5% of the LP delta
    assert len(list((env.data / "hedge").glob("paper-*.json"))) == 1  # the daemon's files


@pytest.mark.devnet
def test_a_hedge_perp_of_another_asset_is_refused_before_any_trade(env: Env, cli: Any) -> None:
    """Before: `[hedge] symbol = "BTC/USDT:USDT"` on a USDC/WETH position made `lpbot run`
    short 1.7 BTC against 1.7 WETH of LP delta (and `hedge sync` would too), and `config check`
    called it valid, as it did a paper market that does not exist."""
    c = ("--config", str(env.config))
    env.config.write_text(
        env.config.read_text().replace('symbol = "ETH/USDT:USDT"', 'symbol = "BTC/USDT:USDT"')
    )
    want = (
        "hedge.symbol = 'BTC/USDT:USDT' is a BTC perp, but the position's volatile token is "
        "WETH: set hedge.symbol = 'ETH/USDT:USDT' (nothing was traded)"
    )
    check = cli(*c, "config", "check", "--online", "--json")
    assert check.code == 1
    row = {r["check"]: r for r in json.loads(check.out)["online"]}["hedge eth-usdc"]
    assert not row["ok"] and row["finding"] == want
    run = cli(*c, "run", "--seconds", "2")
    assert run.code == 2 and run.err == f"lpbot: positions.eth-usdc: {want}\n"
    sync = cli(*c, "hedge", "sync")
    assert sync.code == 2 and sync.err == f"lpbot: {want}\n"
    assert not list((env.data / "hedge").glob("*.json"))  # no order, no state
    # a paper market that does not exist is named offline, as `lpbot run` would refuse it
    env.config.write_text(
        env.config.read_text().replace('symbol = "BTC/USDT:USDT"', 'symbol = "DOGE/USDT:USDT"')
    )
    check = cli(*c, "config", "check", "--json")
    assert check.code == 1
    assert json.loads(check.out)["problems"] == [
        "hedge.symbol: no paper market for DOGE/USDT:USDT; known: BTC/USDT:USDT, ETH/USDT:USDT"
    ]


def test_config_check_offline_names_a_missing_manifest_and_an_unknown_pool(
    env: Env, cli: Any
) -> None:
    """Before: offline `config check` called a configuration valid whose devnet manifest did
    not exist, or whose pool the manifest does not name; `lpbot run` refused both."""
    c = ("--config", str(env.config), "config", "check")
    env.write(pool="USDC/WETH-50")
    run = cli(*c)
    assert run.code == 1 and "NOT ready" in run.out
    bad = "BAD positions.eth-usdc.pool: 'USDC/WETH-50' is not a pool of chain devnet (its pools: "
    assert bad in run.out and "USDC/WETH-500" in run.out  # the pools it has
    env.write(manifest=env.tmp / "nowhere.json")
    run = cli(*c, "--json")
    assert run.code == 1
    problems = json.loads(run.out)["problems"]
    assert len(problems) == 1
    assert f"chains.devnet.manifest: {env.tmp / 'nowhere.json'} does not exist" in problems[0]
    assert "lpbot devnet up" in problems[0]
    env.write()
    assert cli(*c).code == 0


# --------------------------------------------------------------------------------- keys


def test_keys_new_writes_an_encrypted_keystore(
    tmp_path: Path, cli: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    config = tmp_path / "lpbot.toml"
    config.write_text(
        'version = 1\n[chains.devnet]\nmanifest = "m.json"\n'
        '[signer.keystores.bot]\npath = "keys/bot.json"\npassword_env = "LPBOT_T_PW"\n'
    )
    monkeypatch.setenv("LPBOT_T_PW", "correct horse")
    run = cli("keys", "new", "bot")
    assert run.code == 0, run.err
    path = tmp_path / "keys" / "bot.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    keystore = json.loads(path.read_text())
    assert keystore["crypto"]["kdf"] == "scrypt"
    address = Account.from_key(Account.decrypt(keystore, "correct horse")).address
    assert address in run.out and "correct horse" not in run.out + run.err
    assert cli("keys", "address", "bot").out.strip() == address
    listed = json.loads(cli("keys", "list", "--json").out)
    assert listed == [
        {
            "name": "bot",
            "path": str(path),
            "address": address,
            "problem": None,
            "password_env": "LPBOT_T_PW",
            "roles": [],
        }
    ]
    # never overwritten
    before = path.read_bytes()
    again = cli("keys", "new", "bot")
    assert again.code == 2 and "never overwrites" in again.err
    assert path.read_bytes() == before


def test_keys_import_reads_the_key_from_stdin(
    tmp_path: Path, cli: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import io

    monkeypatch.chdir(tmp_path)
    (tmp_path / "lpbot.toml").write_text(
        'version = 1\n[chains.devnet]\nmanifest = "m.json"\n'
        '[signer.keystores.owner1]\npath = "k/o1.json"\npassword_env = "LPBOT_T_PW"\n'
    )
    monkeypatch.setenv("LPBOT_T_PW", "pw")
    key = bytes(dev_signer(9)._account.key).hex()
    monkeypatch.setattr(sys, "stdin", io.StringIO(key + "\n"))
    run = cli("keys", "import", "owner1")
    assert run.code == 0, run.err
    assert dev_signer(9).address in run.out and key not in run.out + run.err


def test_keys_import_refuses_a_key_that_is_not_the_configured_account(
    tmp_path: Path, cli: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Before: importing a mistyped or wrong key for a Safe owner wrote its keystore and
    advised changing the owner's address in the configuration; a second import was then refused
    because the file existed."""
    import io

    monkeypatch.chdir(tmp_path)
    (tmp_path / "lpbot.toml").write_text(
        'version = 1\n[chains.devnet]\nmanifest = "m.json"\n'
        '[signer.keystores.owner1]\npath = "k/o1.json"\npassword_env = "LPBOT_T_PW"\n'
        f'[signer.safe]\naddress = "devnet"\nthreshold = 2\nowners = [\n'
        f'  {{ address = "{dev_signer(9).address}", keystore = "owner1" }},\n'
        f'  {{ address = "{dev_signer(10).address}" }},\n]\n'
    )
    monkeypatch.setenv("LPBOT_T_PW", "pw")
    wrong = bytes(dev_signer(12)._account.key).hex()
    monkeypatch.setattr(sys, "stdin", io.StringIO(wrong + "\n"))
    run = cli("keys", "import", "owner1")
    assert run.code == 2
    assert run.err.count("\n") == 1
    assert f"this key is {dev_signer(12).address}" in run.err
    assert f"expects {dev_signer(9).address}" in run.err and "nothing written" in run.err
    assert wrong not in run.err + run.out
    assert not (tmp_path / "k" / "o1.json").exists()
    assert cli("keys", "new", "owner1").code == 2  # a new key cannot be that owner either
    assert not (tmp_path / "k" / "o1.json").exists()
    right = bytes(dev_signer(9)._account.key).hex()
    monkeypatch.setattr(sys, "stdin", io.StringIO(right + "\n"))
    assert cli("keys", "import", "owner1").code == 0
    assert cli("keys", "address", "owner1").out.strip() == dev_signer(9).address


def test_keys_list_marks_a_keystore_that_is_not_ready(
    tmp_path: Path, cli: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Before: the table read "[missing]" as markup and dropped it, so a missing keystore or one
    holding another account looked like any other row (and a path with brackets lost them)."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "lpbot.toml").write_text(
        'version = 1\n[chains.devnet]\nmanifest = "m.json"\n'
        '[signer.keystores.bot]\npath = "k[1]/bot.json"\npassword_env = "LPBOT_T_PW"\n'
    )
    run = cli("keys", "list")
    assert run.code == 0, run.err
    assert f"[not ready] keystore {tmp_path}/k[1]/bot.json does not exist" in run.out


def test_config_check_verifies_keystores_without_decrypting(env: Env, cli: Any) -> None:
    """Before: `config check` called a configuration valid although its keystores did not
    exist."""
    (env.data / "keys" / "owner2.json").unlink()
    # owner1's file holds another account than the Safe owner the configuration names
    (env.data / "keys" / "owner1.json").unlink()
    write_keystore(env.data / "keys" / "owner1.json", bytes(dev_signer(12)._account.key), "x")
    run = cli("--config", str(env.config), "config", "check", "--json")
    assert run.code == 1
    result = json.loads(run.out)
    by_name = {k["name"]: k for k in result["keystores"]}
    assert by_name["bot"]["ok"] and by_name["bot"]["found"] == dev_signer(8).address
    assert not by_name["owner2"]["ok"] and "does not exist" in by_name["owner2"]["found"]
    assert not by_name["owner1"]["ok"]
    assert f"holds {dev_signer(12).address}" in by_name["owner1"]["found"]


@pytest.mark.devnet
def test_config_check_online_says_a_sender_without_gas_cannot_send(env: Env, cli: Any) -> None:
    w3, bot = env.chain.w3, dev_signer(8).address
    balance = w3.eth.get_balance(bot)
    w3.provider.make_request("anvil_setBalance", [bot, hex(0)])  # type: ignore[arg-type]
    try:
        run = cli("--config", str(env.config), "config", "check", "--online", "--json")
    finally:
        w3.provider.make_request("anvil_setBalance", [bot, hex(balance)])  # type: ignore[arg-type]
    assert run.code == 1, run.out + run.err
    sender = {r["check"]: r for r in json.loads(run.out)["online"]}["sender"]
    assert not sender["ok"] and "no gas token: it cannot send" in sender["finding"], sender


@pytest.mark.devnet
def test_config_check_online_asks_the_chain(env: Env, cli: Any) -> None:
    run = cli("--config", str(env.config), "config", "check", "--online", "--json")
    assert run.code == 0, run.out + run.err
    online = {r["check"]: r for r in json.loads(run.out)["online"]}
    assert all(r["ok"] for r in online.values()), online
    assert "2 of 3 owners" in online["Safe"]["finding"]
    assert "enabled" in online["module"]["finding"]
    assert set(online) == {
        "chain devnet",
        "dry-run",
        "pricing",
        "sender",
        "Safe",
        "module",
        "module operator",
        "module budget",
        "hedge eth-usdc",
        "position eth-usdc",
    }
    assert online["pricing"]["finding"] == "every position token has a route"
    assert "keystore bot (signer.sender)" in online["sender"]["finding"]
    # the owners' on-chain limits are shown as read from the module
    assert "loss budget: 100 bps per call, 300 bps per 24 h" in online["module budget"]["finding"]
    # a wrong threshold and a position the Safe does not own are both named
    text = env.config.read_text().replace("threshold = 2", "threshold = 3")
    env.config.write_text(text.replace(f"token_id = {env.values['token_id']}", "token_id = 1"))
    bad = cli("--config", str(env.config), "config", "check", "--online", "--json")
    assert bad.code == 1
    online = {r["check"]: r for r in json.loads(bad.out)["online"]}
    assert not online["Safe"]["ok"] and "threshold 3" in online["Safe"]["finding"]
    assert not online["position eth-usdc"]["ok"]
    assert "not the Safe" in online["position eth-usdc"]["finding"]
    # a budget in the file that is not the one the owners set on chain is named
    module_budget = (
        'operator = "bot"\nloss_budget_per_call_bps = 50\nloss_budget_per_day_bps = 300\n'
    )
    env.config.write_text(env.config.read_text().replace('operator = "bot"\n', module_budget))
    mismatch = cli("--config", str(env.config), "config", "check", "--online", "--json")
    assert mismatch.code == 1
    online = {r["check"]: r for r in json.loads(mismatch.out)["online"]}
    assert not online["module budget"]["ok"]
    assert (
        "loss_budget_per_call_bps = 50, but the module's owners set 100"
        in (online["module budget"]["finding"])
    )


ETHEREUM_FIRST = """[chains.ethereum]
rpc_url_env = "LPBOT_TEST_ETH_RPC"
[chains.ethereum.safe]
address = "0x71bE63f3384f5fb98995898A86B02Fb2426c5788"
threshold = 1
owners = [{ address = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8" }]
[chains.ethereum.module]
address = "0x1F98431c8aD98523631AE4a59f267346ea31F984"
operator = "bot"
[[positions]]
name = "eth"
chain = "ethereum"
pool = "0x88e6A0c2dDD26FEEb64F039a2c41296FcB3f5640"
token_id = 1
[positions.strategy]
kind = "full_range"
[chains.devnet]"""


@pytest.mark.devnet
def test_config_check_online_checks_the_chains_that_answer_when_the_first_does_not(
    env: Env, cli: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first position's chain (Ethereum) has no node here: its row says so, and the
    devnet, which answers, still has its Safe, module, sender and position checked."""
    monkeypatch.delenv("LPBOT_TEST_ETH_RPC", raising=False)
    env.config.write_text(env.config.read_text().replace("[chains.devnet]", ETHEREUM_FIRST, 1))
    run = cli("--config", str(env.config), "config", "check", "--online", "--json")
    assert run.code == 1, run.out + run.err
    online = {r["check"]: r for r in json.loads(run.out)["online"]}
    assert not online["chain ethereum"]["ok"]
    assert "LPBOT_TEST_ETH_RPC" in online["chain ethereum"]["finding"]
    assert online["chain devnet"]["ok"]
    assert online["Safe (devnet)"]["ok"] and "2 of 3 owners" in online["Safe (devnet)"]["finding"]
    assert online["position eth-usdc (devnet)"]["ok"]


@pytest.mark.devnet
def test_config_check_online_names_a_module_operator_the_bot_does_not_hold(
    env: Env, cli: Any
) -> None:
    """Before: `config check --online` called the module ready although the key the
    configuration names as its operator was not the module's operator, so every rebalance the
    configuration auto-executes through it waited for the owners instead."""
    c = ("--config", str(env.config), "config", "check", "--online", "--json")
    operator = dev_signer(8).address  # the devnet module's operator, the bot's keystore
    row = {r["check"]: r for r in json.loads(cli(*c).out)["online"]}["module operator"]
    assert row["ok"] and row["finding"] == f"{operator}: keystore bot"
    (env.data / "keys" / "bot.json").unlink()
    write_keystore(env.data / "keys" / "bot.json", bytes(dev_signer(12)._account.key), "bot")
    run = cli(*c)
    assert run.code == 1
    row = {r["check"]: r for r in json.loads(run.out)["online"]}["module operator"]
    assert not row["ok"]
    assert f"the module's operator is {operator}" in row["finding"]
    assert (
        f"keystore bot (signer.module.operator) holds {dev_signer(12).address}" in (row["finding"])
    )
    assert "setOperator" in row["finding"]


# ------------------------------------------------------------------------------- daemon


@pytest.mark.devnet
def test_run_refuses_a_pool_that_is_not_the_tokens(env: Env, cli: Any) -> None:
    env.write(pool="USDC/WETH-3000")
    run = cli("--config", str(env.config), "run", "--seconds", "1")
    assert run.code == 2
    pool_500 = env.chain.manifest.pool("USDC/WETH-500").address
    assert "USDC/WETH-3000" in run.err and pool_500 in run.err
    assert "lpbot position adopt" in run.err and "Traceback" not in run.err


@pytest.mark.devnet
def test_run_refuses_a_token_id_other_than_the_databases(env: Env, cli: Any) -> None:
    """Before: a changed token_id was ignored once a database existed."""
    m = env.chain.manifest
    other = _mint_for_safe(env.chain)
    token = env.values["token_id"]
    assert cli("--config", str(env.config), "position", "adopt", str(token)).code == 0
    env.write(token_id=other)
    run = cli("--config", str(env.config), "run", "--seconds", "1")
    assert run.code == 2
    assert f"token_id is {other}" in run.err and f"#{token}" in run.err
    assert f"lpbot position adopt {other}" in run.err
    adopted = cli("--config", str(env.config), "position", "adopt", str(other))
    assert adopted.code == 0, adopted.err
    assert f"now manages #{other} (was #{token})" in adopted.out
    assert m.safe is not None


def _mint_for_safe(chain: Devnet) -> int:
    m = chain.manifest
    info = m.pool("USDC/WETH-500")
    npm = contract(
        chain.w3, "NonfungiblePositionManager", m.contracts["NonfungiblePositionManager"]
    )
    tick = contract(chain.w3, "UniswapV3Pool", info.address).functions.slot0().call()[1]
    t0, t1 = m.token(info.token0).address, m.token(info.token1).address
    lower, upper = (tick - 500) // 10 * 10, (tick + 500) // 10 * 10
    tx = npm.functions.mint(
        (t0, t1, 500, lower, upper, 1_000 * 10**6, 10**17, 0, 0, m.safe, 2**40)
    ).transact({"from": m.accounts.bot, "gas": GAS})
    receipt = chain.w3.eth.wait_for_transaction_receipt(tx)
    events = npm.events.IncreaseLiquidity().process_receipt(receipt, errors=DISCARD)
    return int(events[0]["args"]["tokenId"])


@pytest.mark.devnet
def test_run_and_position_open_open_positions_open_once(env: Env, cli: Any) -> None:
    """Before: `lpbot run` refused [positions.open] (and, earlier, ignored it and managed the
    devnet's position). Now the run's open job opens it, and `position open` plans it for
    `rebalance approve` and `execute`, which record the new NFT as the position's. Before, too:
    `position open` had no --json, so a script had to parse its text for the report id."""
    text = env.config.read_text().replace(
        f"token_id = {env.values['token_id']}",
        '[positions.open]\ncapital = { USDC = "3000", WETH = "1" }',
    )
    env.config.write_text(text)
    c = ("--config", str(env.config))
    _market(env.chain)
    m = env.chain.manifest
    for symbol, amount in (("USDC", 3000 * 10**6), ("WETH", 10**18)):
        token = contract(env.chain.w3, "TestERC20", m.token(symbol).address)
        tx = token.functions.transfer(m.safe, amount).transact(
            {"from": m.accounts.traders[0], "gas": GAS}
        )
        env.chain.w3.eth.wait_for_transaction_receipt(tx)
    quote = cli(*c, "position", "quote", "--capital", "3000 USDC", "--capital", "1 WETH",
                "--json")  # fmt: skip
    assert quote.code == 0, quote.err
    outlook = json.loads(quote.out)["outlook"]
    assert outlook is not None
    # no auto-execute configured: the run plans the open and waits for the owners, or, where
    # the model expects fees below LVR, plans nothing and waits for a person to accept it
    run = cli(*c, "run", "--seconds", "3")
    assert run.code == 0, run.err
    waits = "open waits" if outlook["expects_loss"] else "awaits approval"
    assert waits in run.out and "monitor" not in run.out
    # opening where the model expects fees below LVR needs --accept-expected-loss
    if outlook["expects_loss"]:
        refused = cli(*c, "position", "open")
        assert refused.code != 0 and "--accept-expected-loss" in refused.err + refused.out
        assert "do not LP here" in refused.err + refused.out
    planned = cli(*c, "position", "open", "--accept-expected-loss")
    assert planned.code == 0, planned.err
    assert "SIMULATED" in planned.out and "next: lpbot rebalance approve" in planned.out
    report_id = planned.out.split("report ")[1].split()[0]
    # for a script: the same open (one per position), as JSON
    as_json = cli(*c, "position", "open", "--json", "--accept-expected-loss")
    assert as_json.code == 0, as_json.err
    opened = json.loads(as_json.out)
    assert opened["position"] == "eth-usdc" and opened["token_id"] is None
    assert opened["open"]["report_id"] == report_id and opened["open"]["state"] == "SIMULATED"
    assert opened["open"]["checks_passed"] is True
    assert cli(*c, "rebalance", "approve", report_id, "--yes").code == 0
    run = cli(*c, "rebalance", "execute", report_id, "--keystore", "owner1", "--keystore", "owner2")
    assert run.code == 0, run.err + run.out
    new = json.loads(run.out[run.out.index("{") : run.out.rindex("}") + 1])["new_token_id"]
    assert f"position eth-usdc is now NFT #{new}" in run.out
    status = json.loads(cli(*c, "status", "--json").out)
    assert [(p["name"], p["token_id"], p["state"]) for p in status["positions"]] == [
        ("eth-usdc", new, "open")
    ]
    again = cli(*c, "position", "open")
    assert again.code == 0 and f"already manages #{new}" in again.out
    again = cli(*c, "position", "open", "--json")
    assert json.loads(again.out) == {"position": "eth-usdc", "token_id": new, "open": None}


def test_status_lists_every_configured_job(env: Env, cli: Any) -> None:
    run = cli("--config", str(env.config), "status", "--json")
    assert run.code == 0, run.err
    jobs = {j["id"]: j for j in json.loads(run.out)["jobs"]}
    assert set(jobs) == {"monitor:eth-usdc", "rebalance_check:eth-usdc", "hedge_sync:eth-usdc"}
    assert jobs["hedge_sync:eth-usdc"]["every_seconds"] == 45
    assert {j["state"] for j in jobs.values()} == {"not started"}
    text = cli("--config", str(env.config), "status")
    assert "hedge_sync:eth-usdc" in text.out and "45 s" in text.out


@pytest.mark.devnet
def test_status_says_whether_the_daemon_runs(env: Env, cli: Any) -> None:
    """Before: once `lpbot run` had stopped, `status` still showed its jobs "scheduled" with
    next runs in the past, as if a daemon were running."""
    from sqlalchemy import create_engine

    from lpbot.jobs.scheduler import LOCK_NAME
    from lpbot.store.lock import acquire_instance_lock

    c = ("--config", str(env.config))
    assert cli(*c, "run", "--seconds", "1").code == 0
    data = json.loads(cli(*c, "status", "--json").out)
    assert data["daemon"] is None
    assert {(j["state"], j["next_run"]) for j in data["jobs"]} == {("not started", None)}
    assert "daemon: not running (`lpbot run`)" in cli(*c, "status").out
    engine = create_engine(f"sqlite:///{env.data / 'lpbot.db'}")
    lock = acquire_instance_lock(engine, LOCK_NAME)  # as a running `lpbot run` holds it
    assert lock is not None
    try:
        data = json.loads(cli(*c, "status", "--json").out)
        assert data["daemon"] == lock.owner
        assert {j["state"] for j in data["jobs"]} == {"scheduled"}
        assert all(j["next_run"] for j in data["jobs"])
    finally:
        lock.release()
        engine.dispose()


# ----------------------------------------------------------------------------- signing


@pytest.mark.devnet
def test_rebalance_plan_json_names_its_report(env: Env, cli: Any) -> None:
    """Before: `rebalance plan` had no --json; a script took the newest row of `rebalance list`
    for the report to approve, which may be another plan (the daemon's)."""
    _market(env.chain)
    c = ("--config", str(env.config), "rebalance", "plan", str(env.values["token_id"]))
    run = cli(*c, "--json")
    assert run.code == 0, run.err + run.out
    data = json.loads(run.out)  # stdout is the JSON document alone
    decision = data["decision"]
    assert decision["kind"] in ("Hold", "Rebalance", "Compound") and decision["marks"]["block"]
    run = cli(*c, "--width-ticks", "600", "--json")
    assert run.code == 0, run.err + run.out
    planned = json.loads(run.out)
    assert planned["decision"] is None
    rebalance = planned["rebalance"]
    assert rebalance["state"] == "SIMULATED" and rebalance["checks_passed"] is True
    listed = json.loads(cli("--config", str(env.config), "rebalance", "list", "--json").out)
    assert [(r["id"], r["report_id"]) for r in listed] == [
        (rebalance["id"], rebalance["report_id"])
    ]
    report = env.data / "my-reports" / f"{rebalance['report_id']}.json"
    assert rebalance["files"]["json"] == str(report) and report.exists()


@pytest.fixture
def approved(env: Env, cli: Any) -> str:
    _market(env.chain)
    token = env.values["token_id"]
    run = cli("--config", str(env.config), "rebalance", "plan", str(token), "--width-ticks", "600")
    assert run.code == 0, run.err + run.out
    report_id = json.loads(next((env.data / "my-reports").glob("*.json")).read_text())["report_id"]
    assert cli("--config", str(env.config), "rebalance", "approve", report_id, "--yes").code == 0
    return str(report_id)


@pytest.mark.devnet
def test_sign_is_loud_without_a_password_or_with_a_wrong_one(
    env: Env, cli: Any, approved: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Before: `rebalance sign --keystore K` without a password printed nothing, exited 0
    and wrote nothing."""
    c = ("--config", str(env.config), "rebalance", "sign", approved)
    out = env.tmp / "sig1.json"
    keyfile = str(env.data / "keys" / "owner1.json")
    run = cli(*c, "--keystore", keyfile, "--out", str(out))
    assert run.code == 2 and "no password" in run.err and not out.exists()
    monkeypatch.setenv("LPBOT_T_OWNER1_PW", "wrong")
    run = cli(*c, "--keystore", "owner1", "--out", str(out))
    assert run.code == 2 and "wrong password" in run.err and not out.exists()
    monkeypatch.setenv("LPBOT_T_OWNER1_PW", "owner1")
    assert cli(*c, "--keystore", "owner1", "--out", str(out)).code == 0
    first = out.read_text()
    assert json.loads(first)["owner"] == dev_signer(9).address
    # a second owner with the same --out does not overwrite the first signature
    run = cli(*c, "--keystore", "owner2", "--out", str(out))
    assert run.code == 2 and "never overwrites" in run.err
    assert out.read_text() == first
    # a key that is not an owner's signs nothing
    run = cli(*c, "--keystore", "bot", "--out", str(env.tmp / "bot.sig.json"))
    assert run.code == 2 and "not an owner" in run.err
    assert not (env.tmp / "bot.sig.json").exists()


@pytest.mark.devnet
def test_run_with_an_empty_password_variable_asks_for_it(
    env: Env, cli: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Before: an empty password variable (`export LPBOT_BOT_KEY_PASSWORD=`) was reported as
    a wrong password."""
    monkeypatch.setenv("LPBOT_T_BOT_PW", "")
    run = cli("--config", str(env.config), "run", "--seconds", "1")
    assert run.code == 2
    assert run.err == (
        f"lpbot: set LPBOT_T_BOT_PW to the password of keystore {env.data}/keys/bot.json "
        "(it is empty)\n"
    )


@pytest.mark.devnet
def test_execute_short_of_signatures_says_who_signed_and_how_to_add_one(
    env: Env, cli: Any, approved: str
) -> None:
    """Before: "1 of 2 required owner signatures collected", and nothing on what to do."""
    c = ("--config", str(env.config), "rebalance")
    sig = env.tmp / "owner1.sig.json"
    assert cli(*c, "sign", approved, "--keystore", "owner1", "--out", str(sig)).code == 0
    run = cli(*c, "execute", approved, "--signature", str(sig))
    assert run.code == 2 and run.err.count("\n") == 1
    assert f"1 of 2 required owner signatures collected (signed: {dev_signer(9).address})" in (
        run.err
    )
    assert "lpbot rebalance sign REPORT_ID --keystore NAME --out FILE" in run.err
    assert "--signature FILE" in run.err


@pytest.mark.devnet
def test_sign_then_execute_with_the_configured_keys(env: Env, cli: Any, approved: str) -> None:
    c = ("--config", str(env.config), "rebalance")
    sig = env.tmp / "owner1.sig.json"
    assert cli(*c, "sign", approved, "--keystore", "owner1", "--out", str(sig)).code == 0
    run = cli(*c, "execute", approved, "--keystore", "owner2", "--signature", str(sig))
    assert run.code == 0, run.err + run.out
    assert "CONFIRMED" in run.out
    rows = json.loads(cli(*c, "list", "--json").out)
    assert [r["state"] for r in rows] == ["CONFIRMED"]
    # the configured position lives on in the new NFT: the store follows it
    new = json.loads(run.out[run.out.index("{") : run.out.rindex("}") + 1])["new_token_id"]
    assert f"position eth-usdc is now NFT #{new}" in run.out
    status = json.loads(cli("--config", str(env.config), "status", "--json").out)
    states = {(p["name"], p["token_id"]): p["state"] for p in status["positions"]}
    assert states == {("eth-usdc", env.values["token_id"]): "closed", ("eth-usdc", new): "open"}


@pytest.mark.devnet
def test_run_follows_a_rebalance_confirmed_before_a_crash(
    env: Env, cli: Any, approved: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Killed after the rebalance confirmed but before the store recorded the new NFT: the
    daemon's start finds it and manages the new NFT (not the burned one)."""
    from lpbot.cli import rebalance as rebalance_cli
    from lpbot.jobs.runtime import build_runtime

    monkeypatch.setattr(rebalance_cli, "_record_successor", lambda *_a: None)
    c = ("--config", str(env.config), "rebalance", "execute", approved)
    run = cli(*c, "--keystore", "owner1", "--keystore", "owner2")
    assert run.code == 0, run.err + run.out
    new = json.loads(run.out[run.out.index("{") : run.out.rindex("}") + 1])["new_token_id"]
    from lpbot.app import App

    app = App.load(env.config)
    try:
        runtime = build_runtime(app)
        assert runtime.positions["eth-usdc"].token_id == new
    finally:
        app.close()


@pytest.mark.devnet
def test_ctrl_c_during_execute_says_how_to_resume(
    env: Env, cli: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from lpbot.execution import service

    def interrupted(*_a: object, **_k: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(service, "execute", interrupted)
    run = cli("--config", str(env.config), "rebalance", "execute", "abc123", "--dev-owner", "9")
    assert run.code == 130
    assert "lpbot rebalance resume" in run.err and "Traceback" not in run.err


# ------------------------------------------------------------------------------- errors


@pytest.mark.devnet
def test_a_token_id_that_does_not_exist_is_one_plain_line(env: Env, cli: Any) -> None:
    """Before: the line carried web3's tuple with the raw revert data in hex."""
    run = cli("--config", str(env.config), "position", "show", "9999")
    assert run.code == 2
    assert run.err == (
        "lpbot: position 9999 does not exist on this chain (execution reverted: Invalid token "
        "ID); give the NFT's token id\n"
    )


def test_rpc_unreachable_is_one_line(env: Env, cli: Any) -> None:
    """Before: a 100-line stack trace in `position show`."""
    run = cli("--config", str(env.config), "position", "show", "21", "--rpc", "http://127.0.0.1:9")
    assert run.code == 2
    assert run.err.count("\n") == 1 and "does not answer" in run.err
    assert "lpbot devnet up" in run.err
    # the socket's own words, not urllib3's repr of its retries
    assert "does not answer (Connection refused)" in run.err and "HTTPConnection" not in run.err


def test_position_commands_use_their_rpc_flag(env: Env, cli: Any) -> None:
    """Before: `position show` of a managed NFT and `position quote` with the configured
    strategy read the configuration first, then ignored --rpc and asked the configured node."""
    dead = "http://127.0.0.1:9"
    token = str(env.values["token_id"])
    for args in (
        ("position", "show", token, "--rpc", dead),
        ("position", "quote", "--capital", "3000 USDC", "--capital", "1 WETH", "--rpc", dead),
    ):
        run = cli("--config", str(env.config), *args)
        assert run.code == 2, (args, run.out, run.err)
        assert "does not answer (Connection refused)" in run.err, run.err


def test_run_with_the_rpc_down_is_one_line(env: Env, cli: Any) -> None:
    """Before: `lpbot run` said "position 23 does not exist" when the RPC was down."""
    data = json.loads(env.manifest_path.read_text())
    data["rpc_url"] = "http://127.0.0.1:9"
    env.manifest_path.write_text(json.dumps(data))
    run = cli("--config", str(env.config), "run", "--seconds", "1")
    assert run.code == 2 and run.err.count("\n") == 1
    assert "does not answer" in run.err and "does not exist" not in run.err


def test_wrong_chain_id_is_one_line(env: Env, cli: Any) -> None:
    data = json.loads(env.manifest_path.read_text())
    data["chain_id"] = 42161
    env.manifest_path.write_text(json.dumps(data))
    run = cli("--config", str(env.config), "position", "show", "21")
    assert run.code == 2 and run.err.count("\n") == 1
    assert "serves chain id 31337, not the configured 42161" in run.err


def test_unopenable_database_is_one_line(env: Env, cli: Any) -> None:
    (env.tmp / "db-is-a-dir").mkdir()
    text = env.config.read_text().replace(
        "report_dir", f'database_url = "sqlite:///{env.tmp / "db-is-a-dir"}"\nreport_dir', 1
    )
    env.config.write_text(text)
    run = cli("--config", str(env.config), "rebalance", "list")
    assert run.code == 2 and run.err.count("\n") == 1
    assert "cannot be opened" in run.err and "Traceback" not in run.err


def test_missing_configuration_is_one_line(tmp_path: Path, cli: Any, monkeypatch: Any) -> None:
    monkeypatch.chdir(tmp_path)
    run = cli("status")
    assert run.code == 2 and run.err.count("\n") == 1 and "lpbot init" in run.err
    run = cli("--config", str(tmp_path / "nope.toml"), "status")
    assert run.code == 2 and "nope.toml" in run.err


@pytest.mark.parametrize("command", [("rebalance", "--help"), ("status",)])
def test_a_closed_pipe_ends_quietly(env: Env, command: tuple[str, ...]) -> None:
    """Before: `lpbot position show | head` raised BrokenPipeError."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "lpbot", "--config", str(env.config), *command],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "COLUMNS": "80"},
    )
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()  # before lpbot writes: like `| head` that has read all it wants
    err = proc.stderr.read().decode()
    assert proc.wait(30) == 0
    assert "Traceback" not in err and "BrokenPipe" not in err


def test_debug_shows_the_traceback(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    proc = subprocess.run(
        [sys.executable, "-m", "lpbot", "--debug", "status"],
        capture_output=True,
        text=True,
        timeout=60,
        env={k: v for k, v in os.environ.items() if k != "LPBOT_CONFIG"},
    )
    assert proc.returncode != 0 and "Traceback" in proc.stderr


def test_help_loads_no_command_family() -> None:
    """`lpbot --help` imports Click and the command table only (it took 3.5 s before)."""
    code = (
        "import sys, io, contextlib; from lpbot.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()) as out: main(['--help'])\n"
        "heavy = ('web3', 'sqlalchemy', 'numpy', 'pydantic', 'lpbot.config', 'rich')\n"
        "print(sorted(m for m in heavy if m in sys.modules)); print('rebalance' in out.getvalue())"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["[]", "True"]
    for argv in (["-m", "lpbot", "--help"], ["-m", "lpbot", "status", "--help"]):
        run = subprocess.run([sys.executable, *argv], capture_output=True, text=True, timeout=60)
        assert run.returncode == 0 and "--config" in run.stdout


def _monitor_once(env: Env) -> None:
    """One monitor tick of the configured position, as `lpbot run` does (the ledger's deposit
    is recorded at its first)."""
    from lpbot.app import App
    from lpbot.jobs import tasks
    from lpbot.jobs.runtime import build_runtime

    app = App.load(env.config)
    try:
        tasks.monitor(build_runtime(app).positions["eth-usdc"])
    finally:
        app.close()


@pytest.mark.devnet
def test_a_rebalance_by_hand_reaches_the_ledger_once(env: Env, cli: Any) -> None:
    """Before: `rebalance execute` recorded only the new NFT: status showed fees $-0.92, gas
    $0.00, swaps $0.00 after it."""
    from lpbot.jobs import ledger as ledger_store

    _monitor_once(env)  # the ledger starts
    _market(env.chain)
    c = ("--config", str(env.config), "rebalance")
    token = env.values["token_id"]
    assert cli(*c, "plan", str(token), "--width-ticks", "600").code == 0
    report_id = json.loads(next((env.data / "my-reports").glob("*.json")).read_text())["report_id"]
    assert cli(*c, "approve", report_id, "--yes").code == 0
    run = cli(*c, "execute", report_id, "--keystore", "owner1", "--keystore", "owner2")
    assert run.code == 0 and "CONFIRMED" in run.out, run.err + run.out
    result = json.loads(run.out[run.out.index("{") : run.out.rindex("}") + 1])
    w3 = env.chain.w3
    receipt = w3.eth.get_transaction_receipt(result["tx_hash"])
    wei = int(receipt["gasUsed"]) * int(receipt["effectiveGasPrice"])
    assert cli(*c, "resume").code == 0  # nothing to resume, and nothing recorded twice
    _monitor_once(env)  # a snapshot of the new NFT
    from lpbot.app import App

    app = App.load(env.config)
    with app.sessions() as s:
        start = ledger_store.load(s, "eth-usdc")
        assert start is not None
        [(block, flow, gas)] = start.rebalances
        assert gas.tx_hash == result["tx_hash"] and gas.wei == wei and not gas.failed
        assert block == int(result["block"]) and flow is not None
        assert flow.minted == tuple(int(x) for x in result["minted"])
        last = ledger_store.history(s, "eth-usdc").last
        assert last is not None
        u = last.usd
        assert u.gas == gas.usd.quantize(Decimal("0.01")) and u.gas > 0
        swap = flow.marks.usd(flow.swap_in, start.decimals) - flow.marks.usd(
            flow.swap_out, start.decimals
        )
        assert u.swap_costs == swap.quantize(Decimal("0.01")) and u.swap_costs > 0
        assert u.fees >= 0
        (env.tmp.parent / "numbers.txt").write_text(
            f"gas {receipt['gasUsed']} x {receipt['effectiveGasPrice']}: ${u.gas}; swaps "
            f"${u.swap_costs}, fees ${u.fees}, net ${u.net}\n"
        )
    app.close()
    export = env.tmp / "ledger.json"
    run = cli("--config", str(env.config), "export", "--out", str(export), "--format", "json")
    assert run.code == 0, run.err
    rows = json.loads(export.read_text())
    [rebalance] = [r for r in rows if r["kind"] == "rebalance"]
    assert rebalance["tx_hash"] == result["tx_hash"] and rebalance["gas_wei"] == str(wei)
    status = cli("--config", str(env.config), "status")
    assert f"gas ${u.gas:,.2f}, swaps ${u.swap_costs:,.2f}" in status.out


@pytest.mark.devnet
def test_config_check_online_follows_the_rebalanced_position(
    env: Env, cli: Any, approved: str
) -> None:
    """Before: after a rebalance `config check --online` said the configured NFT (burned)
    does not exist, although the store manages its successor."""
    c = ("--config", str(env.config))
    run = cli(*c, "rebalance", "execute", approved, "--keystore", "owner1", "--keystore", "owner2")
    assert run.code == 0, run.err + run.out
    new = json.loads(run.out[run.out.index("{") : run.out.rindex("}") + 1])["new_token_id"]
    check = cli(*c, "config", "check", "--online", "--json")
    assert check.code == 0, check.out + check.err
    row = {r["check"]: r for r in json.loads(check.out)["online"]}["position eth-usdc"]
    old = env.values["token_id"]
    assert row["ok"], row
    assert row["finding"].startswith(f"#{new} (follows the configured #{old}) owned by ")


@pytest.mark.devnet
def test_config_check_online_refuses_what_run_refuses(env: Env, cli: Any) -> None:
    """Before: `config check --online` called a configuration valid whose pool is not the
    NFT's, or whose token_id is not the one the database manages, while `lpbot run` refused
    to start on it."""
    c = ("--config", str(env.config))
    token = env.values["token_id"]
    env.write(pool="USDC/WETH-3000")
    run = cli(*c, "config", "check", "--online", "--json")
    assert run.code == 1, run.out
    online = {r["check"]: r for r in json.loads(run.out)["online"]}
    finding = online["position eth-usdc"]
    pool_500 = env.chain.manifest.pool("USDC/WETH-500").address
    assert not finding["ok"]
    assert "USDC/WETH-3000" in finding["finding"] and pool_500 in finding["finding"]
    env.write()
    other = _mint_for_safe(env.chain)
    assert cli(*c, "position", "adopt", str(token)).code == 0
    env.write(token_id=other)
    run = cli(*c, "config", "check", "--online", "--json")
    assert run.code == 1, run.out
    finding = {r["check"]: r for r in json.loads(run.out)["online"]}["position eth-usdc"]
    assert not finding["ok"]
    assert f"token_id is {other}" in finding["finding"] and f"#{token}" in finding["finding"]
    assert f"lpbot position adopt {other}" in finding["finding"]
    # the database's own NFT is fine
    env.write()
    assert cli(*c, "config", "check", "--online").code == 0


@pytest.mark.devnet
def test_config_check_online_checks_the_open_capital(env: Env, cli: Any) -> None:
    """Before: `config check --online` called [positions.open] capital valid in a token that is
    not the pool's, with more decimals than the token has, or beyond what the Safe holds;
    `lpbot run` and `position open` refused each."""
    c = ("--config", str(env.config))
    template = env.config.read_text().replace(
        f"token_id = {env.values['token_id']}", "[positions.open]\ncapital = {capital}"
    )

    def finding(capital: str) -> tuple[int, dict[str, Any]]:
        env.config.write_text(template.replace("{capital}", capital))
        run = cli(*c, "config", "check", "--online", "--json")
        return run.code, {r["check"]: r for r in json.loads(run.out)["online"]}["open eth-usdc"]

    code, row = finding('{ DAI = "5", WETH = "1" }')
    assert code == 1 and not row["ok"]
    assert "open.capital.DAI: not a token of pool USDC/WETH-500 (USDC/WETH)" in row["finding"]
    code, row = finding('{ USDC = "0.0000001", WETH = "1" }')
    assert code == 1 and not row["ok"] and "more than 6 decimals" in row["finding"]
    code, row = finding('{ USDC = "3000", WETH = "1" }')  # the devnet's Safe holds only its NFT
    assert code == 1 and not row["ok"]
    assert "3000 USDC (it holds 0)" in row["finding"] and "1 WETH (it holds 0)" in row["finding"]
    m = env.chain.manifest
    for symbol, amount in (("USDC", 3000 * 10**6), ("WETH", 10**18)):
        token = contract(env.chain.w3, "TestERC20", m.token(symbol).address)
        tx = token.functions.transfer(m.safe, amount).transact(
            {"from": m.accounts.traders[0], "gas": GAS}
        )
        env.chain.w3.eth.wait_for_transaction_receipt(tx)
    code, row = finding('{ USDC = "3000", WETH = "1" }')
    assert code == 0 and row["ok"], row
    assert row["finding"] == "3000 USDC + 1 WETH into USDC/WETH-500, held by the Safe"

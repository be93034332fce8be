"""The daemon with an MPC Safe owner from lpbot.toml: [signer.mpc] is this host's party (1), the
co-signer (party 2, ``lpbot cosigner serve`` in its own process, with its own policy) and the
recovery party (3, offline). ``lpbot run``'s rebalance is signed by the bot's party and the
co-signer on the policy key's signed approval, and confirmed on chain; with the co-signer down,
nothing is signed and an alert says why (party 3 never stands in)."""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from web3 import Web3
from web3.logs import DISCARD

from lpbot.app import App
from lpbot.chain import artifacts
from lpbot.devnet.anvil import free_port
from lpbot.devnet.deploy import GAS, contract
from lpbot.devnet.keys import dev_signer
from lpbot.devnet.market import push_feeds
from lpbot.jobs import tasks
from lpbot.jobs.alerts import MemoryNotifier
from lpbot.jobs.runtime import build_runtime
from lpbot.signing.local import LocalKeySigner, write_keystore
from tests.conftest import Devnet
from tests.signing.conftest import (
    API_KEY_ENV,
    APPROVER_KEY,
    MpcKey,
    needs_backend,
    running_cosigner,
)
from tests.signing.test_mpc_devnet import _exec, _local_signature, _owner_keys, _safe_tx

pytestmark = [pytest.mark.devnet, needs_backend]

POLICY = LocalKeySigner.from_key(APPROVER_KEY)  # the bot's policy key (a development key)
SENTINEL = "0x0000000000000000000000000000000000000001"

CONFIG = """
version = 1
data_dir = "{data}"
[chains.devnet]
manifest = "{manifest}"
[[positions]]
name = "eth-usdc"
chain = "devnet"
pool = "USDC/WETH-500"
token_id = {token_id}
[positions.strategy]
kind = "fixed"
half_width_ticks = 600
[positions.policy]
# the market below moves 0.4% every ten minutes: the spot stands up to about 80 bps off its
# TWAP, which a 10 bps slippage (and so TWAP) bound would refuse
slippage_bps = 100
edge_pct = "off"
vol_ratio_trigger = "off"
min_gain_over_cost = 0.0
rebalance_rule = "fees"               # re-centre on every exit, whatever the LVR
[signer]
sender = "bot"
[signer.keystores.bot]
path = "{data}/keys/bot.json"
password_env = "LPBOT_TEST_RUN_BOT_PW"
[signer.keystores.owner1]
path = "{data}/keys/owner1.json"
password_env = "LPBOT_TEST_RUN_OWNER1_PW"
[signer.keystores.policy]
path = "{data}/keys/policy.json"
password_env = "LPBOT_TEST_RUN_POLICY_PW"
[signer.safe]
address = "devnet"
threshold = 2
owners = [
    {{ address = "{o1}", keystore = "owner1" }},
    {{ address = "{o2}" }},
    {{ address = "{mpc}", mpc = true }},
]
[signer.mpc]
threshold = 2
share_count = 3
address = "{mpc}"
parties = [
    {{ kind = "local", index = 1, dir = "{party1}", passphrase_env = "LPBOT_TEST_MPC3_1" }},
    {{ kind = "remote", index = 2, url = "{cosigner}", api_key_env = "{api_key_env}" }},
    {{ kind = "remote", index = 3, url = "http://127.0.0.1:9", offline = true }},
]
[auto_execute]
enabled = true
max_value_usd = "100000"
via = "multisig"
approver = "policy"
"""


@dataclass
class MpcOwned:
    chain: Devnet
    config: Path
    mpc: str
    safe: Any


@pytest.fixture(scope="module")
def keystores(tmp_path_factory: pytest.TempPathFactory) -> Path:
    keys = tmp_path_factory.mktemp("run-keys")
    write_keystore(keys / "bot.json", bytes(dev_signer(8)._account.key), "pw-bot")
    write_keystore(keys / "owner1.json", bytes(dev_signer(9)._account.key), "pw-owner1")
    write_keystore(keys / "policy.json", bytes.fromhex(APPROVER_KEY[2:]), "pw-policy")
    return keys


def _setup(
    chain: Devnet,
    key3: MpcKey,
    tmp_path: Path,
    keys: Path,
    cosigner_url: str,
    mp: Any,
    *,
    move_price: bool = True,
) -> MpcOwned:
    """The devnet's Safe with its third owner swapped for the MPC key (by the other two), the
    price moved 4% away from the position, and an lpbot.toml naming the MPC owner."""
    import shutil

    m, w3 = chain.manifest, chain.w3
    assert m.safe is not None and m.safe_position is not None
    safe = w3.eth.contract(address=Web3.to_checksum_address(m.safe), abi=artifacts.abi("SafeL2"))
    mpc = key3.info.address
    owner_keys = _owner_keys(chain)
    o1, o2, o3 = (dev_signer(i).address for i in (9, 10, 11))
    owners = safe.functions.getOwners().call()  # the Safe's linked list, in its order
    prev = SENTINEL if owners.index(o3) == 0 else owners[owners.index(o3) - 1]
    swap_data = safe.encode_abi(fn_name="swapOwner", args=[prev, o3, mpc])
    swap = _safe_tx(chain, safe, safe.address, 0, bytes.fromhex(swap_data[2:]))
    _exec(chain, safe, swap, {o: _local_signature(owner_keys[o], swap.hash()) for o in (o1, o2)})
    assert mpc in safe.functions.getOwners().call()

    info = m.pool("USDC/WETH-500")
    pool = contract(w3, "UniswapV3Pool", info.address)
    router = contract(w3, "SwapRouter02", m.contracts["SwapRouter02"])
    trader = m.accounts.traders[0]
    # the pair's other pool follows (arbitrage): the planner checks the spot against it
    others = [p for p in m.pools if {p.token0, p.token1} == {info.token0, info.token1}]
    for _ in range(6 if move_price else 0):  # in steps, minutes apart, so the TWAP follows
        target = pool.functions.slot0().call()[0] * 1004 // 1000
        for p in others:
            tx = router.functions.exactInputSingle(
                (m.token(info.token1).address, m.token(info.token0).address, p.fee, trader,
                 10**24, 0, target)
            ).transact({"from": trader, "gas": GAS})  # fmt: skip
            w3.eth.wait_for_transaction_receipt(tx)
        chain.increase_time(600)
    if move_price:
        push_feeds(w3, m)  # the devnet's keeper: the feeds follow, the marks agree

    data = tmp_path / "data"
    shutil.copytree(keys, data / "keys")
    for name in ("bot", "owner1", "policy"):
        mp.setenv(f"LPBOT_TEST_RUN_{name.upper()}_PW", f"pw-{name}")
    manifest = tmp_path / "manifest.json"
    m.write(manifest)
    config = tmp_path / "lpbot.toml"
    config.write_text(
        CONFIG.format(
            data=data,
            manifest=manifest,
            token_id=m.safe_position,
            o1=o1,
            o2=o2,
            mpc=mpc,
            party1=key3.config.party(1).dir,  # type: ignore[union-attr]
            cosigner=cosigner_url,
            api_key_env=API_KEY_ENV,
        )
    )
    return MpcOwned(chain, config, mpc, safe)


def _cosigner_config(chain: Devnet, key3: MpcKey, home: Path, **policy: Any) -> dict[str, Any]:
    m = chain.manifest
    # the co-signer's process inherits it: the chain it reads NFT owners from
    os.environ["LPBOT_TEST_COSIGNER_RPC_URL"] = m.rpc_url
    return {
        "mode": "mpc",
        "index": 2,
        "party_dir": str(key3.config.party(2).dir),  # type: ignore[union-attr]
        "passphrase_env": "LPBOT_TEST_MPC3_2",
        "port": free_port(),
        "ledger": str(home / "cosigner.sqlite"),
        "policy": {
            "approvers": [POLICY.address],
            "auto_approvers": [POLICY.address],  # the bot's policy key: its own daily limit
            "max_auto_signatures_per_day": 3,
            "position_manager": m.contracts["NonfungiblePositionManager"],
            "swap_router": m.contracts["SwapRouter02"],
            "multisend_call_only": m.contracts["MultiSendCallOnly"],
            "pools": [
                {
                    "token0": m.tokens[p.token0].address,
                    "token1": m.tokens[p.token1].address,
                    "fee": p.fee,
                }
                for p in m.pools
            ],
            "chain_ids": [31337],
            "rpc_url_env": "LPBOT_TEST_COSIGNER_RPC_URL",
            # the devnet's clock runs days ahead of the co-signer's (tests advance it)
            "max_deadline_s": 10**8,
            **policy,
        },
    }


@pytest.fixture
def cosigner(chain: Devnet, key3: MpcKey, tmp_path: Path) -> Iterator[tuple[str, Path]]:
    home = tmp_path / "cosigner"
    home.mkdir()
    with running_cosigner(_cosigner_config(chain, key3, home), home) as url:
        yield url, home / "cosigner.sqlite"


def _runtime(owned: MpcOwned) -> tuple[App, Any, MemoryNotifier]:
    app = App.load(owned.config)
    notifier = MemoryNotifier()
    runtime = build_runtime(app, notifier=notifier)
    return app, runtime.positions["eth-usdc"], notifier


def test_the_daemons_rebalance_is_signed_by_the_bots_party_and_the_cosigner(
    chain: Devnet,
    key3: MpcKey,
    tmp_path: Path,
    keystores: Path,
    cosigner: tuple[str, Path],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    url, ledger = cosigner
    owned = _setup(chain, key3, tmp_path, keystores, url, monkeypatch)
    nonce = owned.safe.functions.nonce().call()
    app, mp, notifier = _runtime(owned)
    try:
        old_token = mp.token_id
        event = tasks.rebalance_check(mp)
        assert event.startswith("rebalanced into"), event
        assert "2 Safe signatures (one by the MPC owner" in event
        record = _last(mp)
    finally:
        app.close()
    assert record.state.value == "CONFIRMED"
    # two owner signatures: the keystore owner and the MPC owner (party 1 + the co-signer)
    assert {s["owner"] for s in record.signatures} == {dev_signer(9).address, owned.mpc}
    assert owned.safe.functions.nonce().call() == nonce + 1
    w3 = chain.w3
    receipt = w3.eth.get_transaction_receipt(record.result["tx_hash"])
    assert receipt["status"] == 1
    executed = owned.safe.events.ExecutionSuccess().process_receipt(receipt, errors=DISCARD)
    assert ["0x" + bytes(e["args"]["txHash"]).hex() for e in executed] == [record.safe_tx_hash]
    npm = contract(
        w3, "NonfungiblePositionManager", chain.manifest.contracts["NonfungiblePositionManager"]
    )
    new_token = int(record.result["new_token_id"])
    assert new_token != old_token
    assert npm.functions.ownerOf(new_token).call() == owned.safe.address
    # the co-signer counted one automatic approval, by the policy key, in its own store
    with sqlite3.connect(ledger) as db:
        rows = db.execute("SELECT kind, digest, approver FROM signatures").fetchall()
    assert rows == [("auto", record.safe_tx_hash, POLICY.address)]
    assert [a.kind for a in notifier.alerts if a.kind in ("not_signed", "failure")] == []


def _last(mp: Any) -> Any:
    from sqlalchemy import select

    from lpbot.store.models import Rebalance

    with mp.sessions() as s:
        row = s.scalars(select(Rebalance).order_by(Rebalance.id.desc())).first()
    return mp.ctx.repo.get(row.id)


def test_with_the_cosigner_down_nothing_is_signed_and_an_alert_says_why(
    chain: Devnet,
    key3: MpcKey,
    tmp_path: Path,
    keystores: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    down = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    owned = _setup(chain, key3, tmp_path, keystores, down, monkeypatch)
    nonce = owned.safe.functions.nonce().call()
    app, mp, notifier = _runtime(owned)  # the daemon starts: the co-signer is asked later
    try:
        outcome = tasks.run_safely("rebalance_check", lambda: tasks.rebalance_check(mp), notifier)
        record = _last(mp)
    finally:
        app.close()
    assert outcome is None  # the job failed, the daemon goes on
    (alert,) = [a for a in notifier.alerts if a.kind == "not_signed"]
    assert f"rebalance {record.report_id} not signed" in alert.title
    assert "co-signer (party 2) cannot sign" in alert.body
    assert "nothing was signed or sent" in alert.body
    # approved by the policy, signed by nobody (not even the keystore owner), never sent
    assert record.state.value == "APPROVED"
    assert record.signatures == []
    assert owned.safe.functions.nonce().call() == nonce
    assert owned.mpc in owned.safe.functions.getOwners().call()


def test_rebalance_sign_and_execute_as_the_mpc_owner_with_a_persons_approval(
    chain: Devnet,
    key3: MpcKey,
    tmp_path: Path,
    keystores: Path,
    cosigner: tuple[str, Path],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """By hand: plan, approve, a person's EIP-712 approval for the co-signer, then `rebalance
    sign --mpc` (a signature file) and `rebalance execute --mpc` with owner 1's keystore."""
    import json

    from lpbot.cli import main
    from lpbot.signing.safe import SafeTransaction, read_signature_file

    url, ledger = cosigner
    owned = _setup(chain, key3, tmp_path, keystores, url, monkeypatch)
    monkeypatch.delenv("LPBOT_CONFIG", raising=False)
    lpbot = ("--config", str(owned.config), "rebalance")
    token = chain.manifest.safe_position
    assert main([*lpbot, "plan", str(token), "--width-ticks", "600"]) == 0, capsys.readouterr()
    reports = tmp_path / "data" / "reports"
    (path,) = reports.glob("*.json")
    report_id = path.stem
    assert main([*lpbot, "approve", report_id, "--yes"]) == 0
    capsys.readouterr()

    # without a person's approval the MPC owner signs nothing, and says what is missing
    assert main([*lpbot, "sign", report_id, "--mpc", "--out", str(tmp_path / "x.json")]) == 2
    assert "pass --approval FILE" in capsys.readouterr().err
    assert not (tmp_path / "x.json").exists()

    monkeypatch.setenv("LPBOT_TEST_RUN_APPROVER_PW", "approver password")
    write_keystore(tmp_path / "approver.json", bytes.fromhex(APPROVER_KEY[2:]), "approver password")
    approve = ["cosigner", "approve", "--report", str(path), "--ttl", "600"]
    approve += ["--keystore", str(tmp_path / "approver.json")]
    assert main([*approve, "--password-env", "LPBOT_TEST_RUN_APPROVER_PW"]) == 0
    approval = str(path.with_suffix(".approval.json"))

    out = tmp_path / "mpc-sig.json"
    assert (
        main([*lpbot, "sign", report_id, "--mpc", "--approval", approval, "--out", str(out)]) == 0
    )
    report = json.loads(path.read_text())
    tx = SafeTransaction.from_json(report["safe_tx"])
    owners = owned.safe.functions.getOwners().call()
    assert read_signature_file(out, tx, owners).owner == owned.mpc

    execute = [*lpbot, "execute", report_id, "--mpc", "--approval", approval]
    assert main([*execute, "--keystore", "owner1"]) == 0, capsys.readouterr().err
    assert "CONFIRMED" in capsys.readouterr().out
    # the co-signer signed twice for this report (the file, then execute), both on the
    # person's approval
    with sqlite3.connect(ledger) as db:
        rows = db.execute("SELECT digest, report_hash FROM signatures").fetchall()
    assert rows == [(report["safe_tx"]["safe_tx_hash"], report["report_hash"])] * 2

"""``lpbot run`` on a chain named only by its RPC URL: no manifest, every address from the chain
registry, on a devnet shaped like Ethereum or like Arbitrum One (``lpbot devnet up --shape``).

The daemon opens the configured capital as a Safe-owned position, hedges it on the paper
exchange, and, once the price has left the range, rebalances it; the reports, the Safe's
balances, the hedge and the ledger agree with the chain.
"""

from __future__ import annotations

import json
import os
import signal
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.exc import OperationalError
from web3.exceptions import ContractLogicError

from lpbot.app import App
from lpbot.chain.registry import CHAINS, EVM_POOL_INIT_CODE_HASH
from lpbot.devnet.deploy import GAS, contract
from lpbot.devnet.keys import dev_signer
from lpbot.devnet.market import push_feeds, run_market
from lpbot.devnet.shapes import SHAPES
from lpbot.errors import ConfigError
from lpbot.signing.local import write_keystore
from lpbot.store.models import Rebalance, RebalanceState, Transaction, TxStatus
from lpbot.store.rebalances import SqlRebalanceRepo
from lpbot.store.session import make_engine, session_factory
from lpbot.uniswap.pool_address import compute_pool_address
from tests.conftest import Devnet, shaped_devnet
from tests.jobs.conftest import HOT_QUORUM_SIGNERS, rebalances
from tests.jobs.test_run import _ledger_started_once_and_adds_up, _start, _wait

pytestmark = pytest.mark.devnet

CONFIG = """
version = 1
data_dir = "{data}"
[chains.{chain}]
rpc_url = "{url}"
# the private endpoint (on Ethereum the swap-bearing transactions go there, on Arbitrum every
# one): here the same devnet
submit_url_env = "LPBOT_TEST_SUBMIT_URL"
[[positions]]
name = "eth-usdc"
chain = "{chain}"
pool = "{pool}"
[positions.open]
capital = {{ USDC = "3000", WETH = "1" }}
# the devnet pool's fees are below its LVR: the test opens there on purpose
accept_expected_loss = true
[positions.strategy]
kind = "fixed"
half_width_ticks = 600
[positions.policy]
slippage_bps = 100
edge_pct = "off"
vol_ratio_trigger = "off"
min_gain_over_cost = 0.0
rebalance_rule = "fees"
{signers}
[hedge]
exchange = "paper"
symbol = "ETH/USDT:USDT"
band_abs = "0.05"
band_pct = 5.0
[health]
# the test moves the price ~8%, past most of the shaped devnet pool's liquidity: the pool is
# then thinner than the default rule, and the test is about the registry path, not health
accept_unhealthy = ["eth-usdc"]
[risk]
# the ~8% move is made in one step to leave the range: the market regime would read it as a
# crash and withdraw, where this test checks the rebalance on the registry path
enabled = false
[schedule]
monitor_seconds = 2
rebalance_check_seconds = 2
hedge_sync_seconds = 5
[auto_execute]
enabled = true
max_value_usd = "100000"
via = "multisig"
"""


def _configure(devnet: Devnet, shape: str, pool: str, tmp: Path) -> tuple[Path, dict[str, str]]:
    data = tmp / "data"
    env = dict(os.environ)
    for name, index in (("bot", 8), ("owner1", 9), ("owner2", 10)):
        key = bytes(dev_signer(index)._account.key)
        write_keystore(data / "keys" / f"{name}.json", key, f"pw-{name}")
        env[f"LPBOT_TEST_{name.upper()}_PW"] = f"pw-{name}"
    owners = [dev_signer(i).address for i in (9, 10, 11)]
    signers = HOT_QUORUM_SIGNERS.format(
        keys=data / "keys", o1=owners[0], o2=owners[1], o3=owners[2]
    ).replace('address = "devnet"', f'address = "{devnet.manifest.safe}"')
    config = tmp / "lpbot.toml"
    config.write_text(
        CONFIG.format(data=data, chain=shape, url=devnet.url, pool=pool, signers=signers)
    )
    assert "manifest" not in config.read_text()
    env["LPBOT_CONFIG"] = str(config)
    env["LPBOT_TEST_SUBMIT_URL"] = devnet.url
    return data, env


def _run_until(env: dict[str, str], out: Path, done: object) -> str:
    """``lpbot run`` until ``done()`` holds, then stopped as a person stops it (SIGTERM)."""
    proc = _start(env, 240, out)
    try:
        assert _wait(done, 200), out.read_text()
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(60)
    assert proc.returncode == 0, out.read_text()
    return out.read_text()


def _report(data: Path, record: Rebalance) -> dict[str, Any]:
    report: dict[str, Any] = json.loads((data / "reports" / f"{record.report_id}.json").read_text())
    return report


def _confirmed(data: Path) -> list[Rebalance]:
    try:
        return [r for r in rebalances(data) if r.state == RebalanceState.CONFIRMED]
    except OperationalError:  # the daemon has not created its tables yet
        return []


@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_run_opens_hedges_and_rebalances_on_a_chain_named_only_by_its_rpc_url(
    shape: str, tmp_path: Path
) -> None:
    chain_id = SHAPES[shape]
    info = CHAINS[chain_id]
    usdc, weth = info.tokens["USDC"].address, info.tokens["WETH"].address
    # the live USDC/WETH 0.05% pool's address, from the registry's factory and init code hash
    pool_address = compute_pool_address(
        info.contracts["UniswapV3Factory"], usdc, weth, 500, EVM_POOL_INIT_CODE_HASH
    )
    with shaped_devnet(shape) as devnet:
        w3, m = devnet.w3, devnet.manifest
        pool_info = m.pool(pool_address)
        # an hour of trading: the pool's TWAP has history
        run_market(w3, m, pool_info, steps=6, vol=0.8, seed=3, step_seconds=600)
        trader = m.accounts.traders[0]
        for token, amount in ((usdc, 5_000 * 10**6), (weth, 2 * 10**18)):
            erc20 = contract(w3, "TestERC20", token)
            w3.eth.wait_for_transaction_receipt(
                erc20.functions.transfer(m.safe, amount).transact({"from": trader, "gas": GAS})
            )
        data, env = _configure(devnet, shape, pool_address, tmp_path)

        # what the daemon reads: the registry's addresses, not the devnet's manifest
        app = App.load(Path(env["LPBOT_CONFIG"]), environ=env)
        try:
            assert app.config.chains[shape].manifest is None
            known = app.manifest(shape)
            assert known.contracts == info.contracts
            assert {s: t.address for s, t in known.tokens.items()} == {
                s: t.address for s, t in info.tokens.items()
            }
            assert known.price_feeds == info.price_feeds
        finally:
            app.close()

        safe = contract(w3, "SafeL2", m.safe or "")
        npm = contract(
            w3, "NonfungiblePositionManager", info.contracts["NonfungiblePositionManager"]
        )
        nonce = safe.functions.nonce().call()

        # 1. the open: the configured capital becomes one Safe-owned position, hedged
        first = data / "open.out"

        def opened_and_monitored() -> bool:
            # the ledger starts at the position's first snapshot: taken before the price moves
            text = first.read_text()
            after = text[text.find("opened #") :] if "opened #" in text else ""
            return " monitor " in after and len(_confirmed(data)) == 1

        out = _run_until(env, first, opened_and_monitored)
        assert "opened #" in out, out
        (opened,) = _confirmed(data)
        open_report = _report(data, opened)
        assert open_report["operation"] == "open" and open_report["chain_id"] == chain_id
        opened_id = int(open_report["dry_run"]["new_token_id"])
        assert npm.functions.ownerOf(opened_id).call() == m.safe
        assert safe.functions.nonce().call() == nonce + 1

        # 2. the price leaves the range (ETH about 8% away, in steps a few minutes apart so the
        # TWAP follows; the pair's other tier is arbitraged along), the feeds follow
        pool = contract(w3, "UniswapV3Pool", pool_address)
        router = contract(w3, "SwapRouter02", info.contracts["SwapRouter02"])
        t0, t1 = m.token(pool_info.token0).address, m.token(pool_info.token1).address
        tiers = [p for p in m.pools if {p.token0, p.token1} == {"USDC", "WETH"}]
        for _ in range(20):
            target = pool.functions.slot0().call()[0] * 1004 // 1000
            for p in tiers:
                params = (t1, t0, p.fee, trader, 10**24, 0, target)
                tx = router.functions.exactInputSingle(params).transact(
                    {"from": trader, "gas": GAS}
                )
                w3.eth.wait_for_transaction_receipt(tx)
            devnet.increase_time(600)
        push_feeds(w3, m)
        lower, upper = npm.functions.positions(opened_id).call()[5:7]
        assert not lower <= pool.functions.slot0().call()[1] < upper

        # 3. the daemon, started again, rebalances it through the Safe
        second = data / "rebalance.out"

        def rebalanced_and_hedged() -> bool:
            text = second.read_text()
            after = text[text.find("rebalanced into") :] if "rebalanced into" in text else ""
            return "hedge_sync" in after and len(_confirmed(data)) == 2

        out = _run_until(env, second, rebalanced_and_hedged)
        assert "rebalanced into" in out, out
        _opened, rebalanced = _confirmed(data)
        report: dict[str, Any] = _report(data, rebalanced)
        assert report["operation"] == "rebalance" and report["chain_id"] == chain_id
        assert (report["safe"], report["pool"]) == (m.safe, pool_address)
        assert {t["address"] for t in report["tokens"]} == {usdc, weth}
        assert all(c["ok"] for c in report["checks"])
        # the marks are the chain's own: its name, the registry's Chainlink feeds
        marks = report["marks"]
        assert marks["chain"] == shape
        routes = [r for mark in marks["checks"] + marks["used"] for r in mark["route"]]
        assert f"feed {info.price_feeds['WETH']}" in routes
        # what the chain did is what the dry-run said: the new NFT, its range and liquidity,
        # the Safe's balances to the wei
        sessions = session_factory(make_engine(f"sqlite:///{data / 'lpbot.db'}"))
        repo = SqlRebalanceRepo(sessions)
        record = repo.get(rebalanced.id)
        assert record is not None and record.result is not None
        assert record.result["matches_report"] is True
        new_id = int(record.result["new_token_id"])
        assert new_id == report["dry_run"]["new_token_id"] != opened_id
        assert npm.functions.ownerOf(new_id).call() == m.safe
        position = npm.functions.positions(new_id).call()
        assert [position[5], position[6]] == report["position"]["new_range"]
        assert str(position[7]) == report["dry_run"]["new_liquidity"]
        with pytest.raises(ContractLogicError, match="Invalid token ID"):  # burnt
            npm.functions.positions(opened_id).call()
        assert safe.functions.nonce().call() == nonce + 2
        with sessions() as session:
            (sent,) = session.scalars(
                select(Transaction).where(
                    Transaction.rebalance_id == rebalanced.id,
                    Transaction.status == TxStatus.CONFIRMED,
                )
            ).all()
        block = w3.eth.get_transaction_receipt(sent.tx_hash)["blockNumber"]
        for token in (usdc, weth):
            erc20 = contract(w3, "TestERC20", token)
            after = erc20.functions.balanceOf(m.safe).call(block_identifier=block)
            before = erc20.functions.balanceOf(m.safe).call(block_identifier=block - 1)
            assert after - before == int(report["dry_run"]["balance_change"][token])

    # the paper hedge is short the new position's ETH; the ledger started once and adds up
    (state_file,) = (data / "hedge").glob(f"hedge-paper-{chain_id}-*-{new_id}.json")
    (paper_file,) = (data / "hedge").glob(f"paper-{chain_id}-*-{new_id}.json")
    state, paper = json.loads(state_file.read_text()), json.loads(paper_file.read_text())
    assert Decimal(state["ledger"]["size"]) < 0
    assert Decimal(state["ledger"]["size"]) == Decimal(paper["state"]["size"])
    _ledger_started_once_and_adds_up(data, opened=True)


def test_a_chain_named_by_its_rpc_url_never_falls_back_to_devnet_accounts(tmp_path: Path) -> None:
    """Without ``signer.sender``, or with the devnet's Safe, a chain configured by its RPC URL
    is refused with the key to set: no development account sends, and no demo Safe owns."""
    with shaped_devnet("ethereum") as devnet:
        info = CHAINS[1]
        pool = compute_pool_address(
            info.contracts["UniswapV3Factory"],
            info.tokens["USDC"].address,
            info.tokens["WETH"].address,
            500,
            EVM_POOL_INIT_CODE_HASH,
        )
        _data, env = _configure(devnet, "ethereum", pool, tmp_path)
        config = Path(env["LPBOT_CONFIG"])
        text = config.read_text()
        demo_safe = text.replace(f'address = "{devnet.manifest.safe}"', 'address = "devnet"')
        for key, changed in (
            ("signer.sender", text.replace('sender = "bot"\n', "")),
            ("signer.safe.address", demo_safe),
        ):
            assert changed != text
            config.write_text(changed)
            # refused when the configuration is read (the devnet's Safe on a live chain) or at
            # the latest when the chain's context is built (no sender)
            with pytest.raises(ConfigError, match=key):
                app = App.load(config, environ=env)
                try:
                    app.execution_context("eth-usdc", actor="test")
                finally:
                    app.close()

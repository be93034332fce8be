"""One ``lpbot run``, one store, two chains: a devnet shaped like Ethereum and one shaped like
Arbitrum One, each configured by its RPC URL alone, each with a position to open; Arbitrum
with its own sender key and Safe table ([chains.arbitrum]), Ethereum with the global ones.

The daemon opens both (each through the Safe on its own chain, from that chain's sender, the
Safe's balances moved as each dry-run said, each ledger started); Ethereum's price leaves its
range and the running daemon rebalances Ethereum's position alone; then Arbitrum's node is
killed: one ``rpc_down`` alert names arbitrum, Ethereum's jobs go on succeeding and the daemon
keeps running.
"""

from __future__ import annotations

import json
import os
import signal
import threading
from collections.abc import Iterator
from contextlib import ExitStack
from datetime import UTC, datetime
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest
from eth_account import Account
from sqlalchemy import select
from sqlalchemy.exc import OperationalError

from lpbot.chain.registry import CHAINS, EVM_POOL_INIT_CODE_HASH
from lpbot.devnet.deploy import GAS, contract
from lpbot.devnet.keys import dev_signer
from lpbot.devnet.market import push_feeds, run_market
from lpbot.devnet.shapes import SHAPES
from lpbot.signing.local import write_keystore
from lpbot.store.models import JobRun, JobStatus, RebalanceState, Transaction, TxStatus
from lpbot.store.session import make_engine, session_factory
from lpbot.uniswap.pool_address import compute_pool_address
from tests.conftest import Devnet, shaped_devnet
from tests.jobs.conftest import HOT_QUORUM_SIGNERS, rebalances
from tests.jobs.test_run import _start, _wait

pytestmark = pytest.mark.devnet

CHAIN = """
[chains.{chain}]
rpc_url = "{url}"
submit_url_env = "LPBOT_TEST_SUBMIT_URL_{upper}"
"""

POSITION = """
[[positions]]
name = "{name}"
chain = "{chain}"
pool = "{pool}"
[positions.open]
capital = {{ USDC = "3000", WETH = "1" }}
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
"""

REST = """
[health]
accept_unhealthy = ["eth-usdc", "arb-usdc"]
[risk]
enabled = false
[schedule]
monitor_seconds = 2
rebalance_check_seconds = 2
[auto_execute]
enabled = true
max_value_usd = "100000"
via = "multisig"
"""

ARBITRUM_SIGNERS = """sender = "arbbot"
[chains.arbitrum.safe]
address = "{safe}"
threshold = 2
owners = [
    {{ address = "{o1}", keystore = "owner1" }},
    {{ address = "{o2}", keystore = "owner2" }},
    {{ address = "{o3}" }},
]
"""

KEYSTORE = """[signer.keystores.arbbot]
path = "{path}"
password_env = "LPBOT_TEST_ARBBOT_PW"
"""

NAMES = {"ethereum": "eth-usdc", "arbitrum": "arb-usdc"}


def _pool(shape: str) -> str:
    info = CHAINS[SHAPES[shape]]
    usdc, weth = info.tokens["USDC"].address, info.tokens["WETH"].address
    return compute_pool_address(
        info.contracts["UniswapV3Factory"], usdc, weth, 500, EVM_POOL_INIT_CODE_HASH
    )


def _fund(devnet: Devnet, shape: str) -> None:
    """An hour of trading in the pool (its TWAP has history), the Safe funded."""
    w3, m = devnet.w3, devnet.manifest
    info = CHAINS[SHAPES[shape]]
    run_market(w3, m, m.pool(_pool(shape)), steps=6, vol=0.8, seed=3, step_seconds=600)
    trader = m.accounts.traders[0]
    for symbol, amount in (("USDC", 5_000 * 10**6), ("WETH", 2 * 10**18)):
        erc20 = contract(w3, "TestERC20", info.tokens[symbol].address)
        w3.eth.wait_for_transaction_receipt(
            erc20.functions.transfer(m.safe, amount).transact({"from": trader, "gas": GAS})
        )


class _Hook(BaseHTTPRequestHandler):
    received: ClassVar[list[str]] = []

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.received.append(body["text"])
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *_args: Any) -> None:
        pass


@pytest.fixture
def alerts() -> Iterator[tuple[str, list[str]]]:
    """A webhook receiving the daemon's alerts (their text, in order)."""
    received: list[str] = []
    handler = type("Hook", (_Hook,), {"received": received})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/hooks/slack", received
    finally:
        server.shutdown()
        server.server_close()


def _runs(data: Path, job: str, since: datetime | None = None) -> list[JobRun]:
    sessions = session_factory(make_engine(f"sqlite:///{data / 'lpbot.db'}"))
    try:
        with sessions() as s:
            rows = s.scalars(
                select(JobRun).where(JobRun.job == job, JobRun.status == JobStatus.SUCCEEDED)
            ).all()
    except OperationalError:  # the daemon has not created its tables yet
        return []
    return [r for r in rows if since is None or r.started_at.replace(tzinfo=UTC) >= since]


def _confirmed(data: Path) -> list[Any]:
    try:
        return [r for r in rebalances(data) if r.state == RebalanceState.CONFIRMED]
    except OperationalError:
        return []


def test_two_chains_under_one_daemon_and_one_store_a_dead_node_stops_only_its_chain(
    tmp_path: Path, alerts: tuple[str, list[str]]
) -> None:
    with ExitStack() as stack:
        chains = {s: stack.enter_context(shaped_devnet(s)) for s in ("ethereum", "arbitrum")}
        safe = chains["ethereum"].manifest.safe
        assert safe is not None and chains["arbitrum"].manifest.safe == safe  # one Safe address
        for shape, devnet in chains.items():
            _fund(devnet, shape)

        data = tmp_path / "data"
        env = dict(os.environ)
        for name, index in (("bot", 8), ("owner1", 9), ("owner2", 10)):
            key = bytes(dev_signer(index)._account.key)
            write_keystore(data / "keys" / f"{name}.json", key, f"pw-{name}")
            env[f"LPBOT_TEST_{name.upper()}_PW"] = f"pw-{name}"
        owners = [dev_signer(i).address for i in (9, 10, 11)]
        signers = HOT_QUORUM_SIGNERS.format(
            keys=data / "keys", o1=owners[0], o2=owners[1], o3=owners[2]
        ).replace('address = "devnet"', f'address = "{safe}"')
        # Arbitrum has its own sender (a key of its own, funded there only) and its own Safe
        # table; Ethereum takes the global [signer] ones
        arb_sender = Account.create()
        write_keystore(data / "keys" / "arbbot.json", bytes(arb_sender.key), "pw-arbbot")
        env["LPBOT_TEST_ARBBOT_PW"] = "pw-arbbot"
        chains["arbitrum"].w3.provider.make_request(
            "anvil_setBalance", [arb_sender.address, hex(10**20)]
        )
        text = f'version = 1\ndata_dir = "{data}"\n'
        for shape, devnet in chains.items():
            text += CHAIN.format(chain=shape, url=devnet.url, upper=shape.upper())
            env[f"LPBOT_TEST_SUBMIT_URL_{shape.upper()}"] = devnet.url
            if shape == "arbitrum":
                text += ARBITRUM_SIGNERS.format(safe=safe, o1=owners[0], o2=owners[1], o3=owners[2])
        for shape in chains:
            text += POSITION.format(name=NAMES[shape], chain=shape, pool=_pool(shape))
        config = tmp_path / "lpbot.toml"
        keystore = KEYSTORE.format(path=data / "keys" / "arbbot.json")
        config.write_text(text + signers + keystore + REST)
        env["LPBOT_CONFIG"] = str(config)
        url, received = alerts
        env["LPBOT_WEBHOOK_URL"] = url
        nonces = {
            s: contract(d.w3, "SafeL2", safe).functions.nonce().call() for s, d in chains.items()
        }

        out = data / "run.out"
        proc = _start(env, 240, out)
        try:
            # 1. both positions open, each on its chain, and each is monitored
            def opened() -> bool:
                return len(_confirmed(data)) == 2 and all(
                    _runs(data, f"monitor:{n}") for n in NAMES.values()
                )

            assert _wait(opened, 150), out.read_text()
            senders = {"ethereum": dev_signer(8).address, "arbitrum": arb_sender.address}
            tokens = _check_opened(data, chains, nonces, senders)

            # 2. Ethereum's price leaves the range while the daemon runs: Ethereum's position
            # is rebalanced through its Safe, Arbitrum's stays as it is
            _leave_range(chains["ethereum"], "ethereum", tokens[NAMES["ethereum"]])
            assert _wait(lambda: len(_confirmed(data)) >= 3, 120), out.read_text()
            _check_rebalanced(data, chains, tokens)

            # 3. Arbitrum's node dies: alerted, naming it; Ethereum's jobs go on; no exit
            arbitrum = chains["arbitrum"]
            assert arbitrum.pid is not None
            os.kill(arbitrum.pid, signal.SIGKILL)

            def down_alerted() -> bool:
                return any("arbitrum cannot be reached" in t for t in received)

            assert _wait(down_alerted, 60), (received, out.read_text())
            alerted = datetime.now(UTC)

            def ethereum_goes_on() -> bool:
                return (
                    len(_runs(data, "monitor:eth-usdc", alerted)) >= 3
                    and len(_runs(data, "rebalance_check:eth-usdc", alerted)) >= 3
                )

            assert _wait(ethereum_goes_on, 90), out.read_text()
            assert proc.poll() is None, out.read_text()
            down = [t for t in received if "cannot be reached" in t]
            assert len(down) == 1 and "ethereum" not in down[0], received
            # Arbitrum's jobs record nothing while its node is down (they wait its backoff)
            assert len(_runs(data, "monitor:arb-usdc", alerted)) == 0
            assert len(_runs(data, "rebalance_check:arb-usdc", alerted)) == 0
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(60)
        assert proc.returncode == 0, out.read_text()
        assert "Traceback" not in out.read_text()
    _ledgers_started(data, tokens)


def _leave_range(devnet: Devnet, shape: str, token_id: int) -> None:
    """ETH about 8% up in steps ten minutes apart (the TWAP follows; the pair's other tier is
    arbitraged along), the feeds written: the position's range is left behind."""
    w3, m = devnet.w3, devnet.manifest
    info = CHAINS[SHAPES[shape]]
    pool = contract(w3, "UniswapV3Pool", _pool(shape))
    router = contract(w3, "SwapRouter02", info.contracts["SwapRouter02"])
    pool_info = m.pool(_pool(shape))
    t0, t1 = m.token(pool_info.token0).address, m.token(pool_info.token1).address
    trader = m.accounts.traders[0]
    tiers = [p for p in m.pools if {p.token0, p.token1} == {"USDC", "WETH"}]
    for _ in range(20):
        target = pool.functions.slot0().call()[0] * 1004 // 1000
        for p in tiers:
            params = (t1, t0, p.fee, trader, 10**24, 0, target)
            tx = router.functions.exactInputSingle(params).transact({"from": trader, "gas": GAS})
            w3.eth.wait_for_transaction_receipt(tx)
        devnet.increase_time(600)
    push_feeds(w3, m)
    npm = contract(w3, "NonfungiblePositionManager", info.contracts["NonfungiblePositionManager"])
    lower, upper = npm.functions.positions(token_id).call()[5:7]
    assert not lower <= pool.functions.slot0().call()[1] < upper


def _check_rebalanced(data: Path, chains: dict[str, Devnet], tokens: dict[str, int]) -> None:
    """Ethereum's position rebalanced on Ethereum into a Safe-owned NFT; Arbitrum's untouched."""
    reports = [
        json.loads((data / "reports" / f"{r.report_id}.json").read_text()) for r in _confirmed(data)
    ]
    moved = [r for r in reports if r["operation"] == "rebalance"]
    assert moved and {r["chain_id"] for r in moved} == {SHAPES["ethereum"]}
    assert all(c["ok"] for r in moved for c in r["checks"])
    eth = chains["ethereum"]
    npm = contract(
        eth.w3, "NonfungiblePositionManager", CHAINS[1].contracts["NonfungiblePositionManager"]
    )
    new_id = int(moved[-1]["dry_run"]["new_token_id"])
    assert new_id != tokens[NAMES["ethereum"]]
    assert npm.functions.ownerOf(new_id).call() == eth.manifest.safe
    arb = chains["arbitrum"]
    arb_npm = contract(
        arb.w3,
        "NonfungiblePositionManager",
        CHAINS[SHAPES["arbitrum"]].contracts["NonfungiblePositionManager"],
    )
    assert arb_npm.functions.ownerOf(tokens[NAMES["arbitrum"]]).call() == arb.manifest.safe
    tokens[NAMES["ethereum"]] = new_id


def _check_opened(
    data: Path, chains: dict[str, Devnet], nonces: dict[str, int], senders: dict[str, str]
) -> dict[str, int]:
    """Each open on its chain: the NFT owned by the Safe there, the Safe's nonce one up, its
    token balances moved by the exact amounts its dry-run said; each position's NFT."""
    tokens = {}
    sessions = session_factory(make_engine(f"sqlite:///{data / 'lpbot.db'}"))
    by_chain = {}
    for record in _confirmed(data):
        report = json.loads((data / "reports" / f"{record.report_id}.json").read_text())
        assert report["operation"] == "open"
        by_chain[report["chain_id"]] = (record, report)
    assert set(by_chain) == {SHAPES[s] for s in chains}
    for shape, devnet in chains.items():
        w3, safe = devnet.w3, devnet.manifest.safe or ""
        record, report = by_chain[SHAPES[shape]]
        assert report["pool"] == _pool(shape) and report["safe"] == safe
        npm = contract(
            w3,
            "NonfungiblePositionManager",
            CHAINS[SHAPES[shape]].contracts["NonfungiblePositionManager"],
        )
        token_id = tokens[NAMES[shape]] = int(report["dry_run"]["new_token_id"])
        assert npm.functions.ownerOf(token_id).call() == safe
        assert (
            str(npm.functions.positions(token_id).call()[7]) == report["dry_run"]["new_liquidity"]
        )
        assert contract(w3, "SafeL2", safe).functions.nonce().call() == nonces[shape] + 1
        with sessions() as s:
            (sent,) = s.scalars(
                select(Transaction).where(
                    Transaction.rebalance_id == record.id,
                    Transaction.status == TxStatus.CONFIRMED,
                )
            ).all()
        receipt = w3.eth.get_transaction_receipt(sent.tx_hash)  # on this chain, not the other
        assert receipt["from"] == senders[shape]  # the chain's own sender, else the global one
        block = receipt["blockNumber"]
        changes = report["dry_run"]["balance_change"]
        assert changes and set(changes) <= {
            t.address for t in CHAINS[SHAPES[shape]].tokens.values()
        }
        for token, change in changes.items():
            erc20 = contract(w3, "TestERC20", token)
            after = erc20.functions.balanceOf(safe).call(block_identifier=block)
            before = erc20.functions.balanceOf(safe).call(block_identifier=block - 1)
            assert after - before == int(change)
    return tokens


def _ledgers_started(data: Path, tokens: dict[str, int]) -> None:
    """One ledger per position, each started once at its first snapshot on its own chain's
    NFT (``tokens``), every snapshot's lines adding up."""
    from lpbot.jobs import ledger as ledger_store
    from lpbot.store.models import AuditEntry, Position

    sessions = session_factory(make_engine(f"sqlite:///{data / 'lpbot.db'}"))
    with sessions() as s:
        deposits = s.scalars(select(AuditEntry).where(AuditEntry.kind == "ledger_deposit")).all()
        assert len(deposits) == 2
        assert sorted(ledger_store.labels(s)) == sorted(NAMES.values())
        # the store's positions: each named, on its own chain, its own NFT
        rows = s.scalars(select(Position).where(Position.token_id != 0)).all()
        assert {(r.label, r.chain_id, int(r.token_id)) for r in rows if r.closed_at is None} == {
            (NAMES[shape], SHAPES[shape], tokens[NAMES[shape]]) for shape in NAMES
        }
        # the rebalanced one's old NFT is closed; Arbitrum's was never replaced
        closed = {(r.label, r.chain_id) for r in rows if r.closed_at is not None}
        assert closed == {(NAMES["ethereum"], SHAPES["ethereum"])}
        for name in NAMES.values():
            start = ledger_store.load(s, name)
            assert start is not None and start.symbols in (("USDC", "WETH"), ("WETH", "USDC"))
            assert all(amount > 0 for amount in start.deposit)
            h = ledger_store.history(s, name)
            assert h.points and h.points[-1].token_id == tokens[name]  # its own chain's NFT
            for p in h.points:
                u = p.ledger.usd
                assert u.net == u.fees + u.il + u.hedge_pnl + u.funding - u.gas - u.swap_costs
                held = u.value + u.hedge_pnl + u.funding - u.gas - u.hold
                assert abs(u.net - held) <= Decimal("0.02")

#!/usr/bin/env python3
"""The crash harness: ``lpbot run`` killed again and again, then the chain and the store compared.

    python scripts/chaos.py [--rounds 30] [--states dry-run,simulated,...] [--work DIR] [--seed N]
                            [--database sqlite|postgresql]

On a devnet of its own (``lpbot devnet up`` under WORK), with a Safe position, auto-execution
and keystores: each round moves the market so that the position leaves its range, starts
``lpbot run`` and SIGKILLs it, either when the newest rebalance reaches the round's checkpoint
(``LPBOT_KILL_AT``: the process kills itself there, as hard as a power cut) or, for ``random``,
at a random moment. The next round's ``lpbot run`` is the restart. After the last round a clean
run finishes whatever is left, then the checker compares the chain with the store:

- the Safe's nonce moved once per executed rebalance (CONFIRMED, or FAILED with a mined one);
- the Safe's ``ExecutionSuccess`` transactions are exactly the CONFIRMED rows' transactions;
- the NFTs the Safe owns are exactly the store's open positions;
- the Safe's balances of the pool's tokens, to the wei, are its balances at the first snapshot
  plus every flow the ledger recorded since (each rebalance's burned amounts and fees collected,
  minus what its swap paid in, plus what it paid out, minus what it minted), now on the chain and
  at every later snapshot;
- the paper venue's hedge position is the sum of the fills the store recorded for its orders,
  every order the venue filled is booked in the store with its fill, no client order id was
  sent twice, and only the current NFT's hedge holds a position (a rebalance takes the hedge
  with it);
- no rebalance is left PLANNED, APPROVED, SIGNED or SUBMITTED, and no job run RUNNING.

``--database postgresql`` runs it on PostgreSQL: a new schema on the server that
``LPBOT_TEST_POSTGRES_URL`` names (``eval "$(bash scripts/ci-postgres.sh)"``), dropped after.

Prints one line per round and every inconsistency; exits 1 if there is any. ``make chaos`` runs
30 rounds (``make nightly`` too); ``tests/jobs/test_chaos.py`` one targeted kill per state.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from eth_account import Account  # noqa: E402
from sqlalchemy import select, text  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402
from sqlalchemy.exc import DBAPIError  # noqa: E402
from web3.exceptions import ContractLogicError  # noqa: E402

from lpbot.chain.rpc import connect  # noqa: E402
from lpbot.devnet import service  # noqa: E402
from lpbot.devnet.deploy import GAS, contract  # noqa: E402
from lpbot.devnet.keys import dev_signer  # noqa: E402
from lpbot.devnet.manifest import Manifest  # noqa: E402
from lpbot.devnet.market import push_feeds  # noqa: E402
from lpbot.hedge.paper import PaperAccount  # noqa: E402
from lpbot.jobs import ledger as ledger_store  # noqa: E402
from lpbot.store.models import (  # noqa: E402
    AuditEntry,
    HedgeFill,
    HedgeOrder,
    JobRun,
    JobStatus,
    Position,
    PositionSnapshot,
    Rebalance,
)
from lpbot.store.session import make_engine, session_factory  # noqa: E402

POSTGRES_ENV = "LPBOT_TEST_POSTGRES_URL"
STATES = ("dry-run", "simulated", "approved", "signed", "mined", "confirmed", "random")
UNFINISHED = ("PLANNED", "APPROVED", "SIGNED", "SUBMITTED")
ZERO = "0x0000000000000000000000000000000000000000"

CONFIG = """
version = 1
data_dir = "{data}"
database_url_env = "LPBOT_CHAOS_DATABASE_URL"
[chains.devnet]
manifest = "{manifest}"
[[positions]]
name = "eth-usdc"
chain = "devnet"
pool = "USDC/WETH-500"
token_id = {token_id}
[positions.strategy]
kind = "fixed"
half_width_ticks = 200
[positions.policy]
# the market moves 0.3% every ten minutes: the spot stands well off its TWAP, which a 10 bps
# slippage (and so TWAP) bound would refuse
slippage_bps = 100
edge_pct = "off"
vol_ratio_trigger = "off"
min_gain_over_cost = 0.0
rebalance_rule = "fees"               # re-centre on every exit, whatever the LVR
[signer]
sender = "bot"
# the two owners sign from this one process so the kills can land between every step: a hot
# quorum, accepted explicitly for this harness
allow_hot_quorum = true
[signer.keystores.bot]
path = "{data}/keys/bot.json"
password_env = "LPBOT_CHAOS_BOT_PW"
[signer.keystores.owner1]
path = "{data}/keys/owner1.json"
password_env = "LPBOT_CHAOS_OWNER1_PW"
[signer.keystores.owner2]
path = "{data}/keys/owner2.json"
password_env = "LPBOT_CHAOS_OWNER2_PW"
[signer.safe]
address = "devnet"
threshold = 2
owners = [
    {{ address = "{o1}", keystore = "owner1" }},
    {{ address = "{o2}", keystore = "owner2" }},
    {{ address = "{o3}" }},
]
[hedge]
exchange = "paper"
symbol = "ETH/USDT:USDT"
band_abs = "0.05"
band_pct = 5.0
[schedule]
monitor_seconds = 2
rebalance_check_seconds = 2
hedge_sync_seconds = 3
[auto_execute]
enabled = true
max_value_usd = "100000000"
via = "multisig"
"""


class Harness:
    """A devnet, a configuration of its Safe position, and the chain's state at the start."""

    def __init__(self, work: Path, seed: int, db_url: str) -> None:
        self.work = work
        self.db_url = db_url
        self.sessions = session_factory(make_engine(db_url))
        self.balance_summary = (0, 0)  # (recorded flows, snapshots) the checker compared
        self.hedge_summary = (0, 0)  # (venue orders, store fills)
        self.start_seconds: list[float] = []  # the clean run's start, to its jobs scheduled
        self.rng = random.Random(seed)
        home = work / "devnet"
        cache = ROOT / ".lpbot" / "test-devnet" / "cache"
        if cache.exists() and not (home / "cache").exists():
            shutil.copytree(cache, home / "cache")  # the deployed state, as the tests cached it
        self.record, self.manifest, _ = service.up(home, fresh=False)
        self.home = home
        self.w3 = connect(self.record.rpc_url)
        m: Manifest = self.manifest
        self.data = work / "data"
        self.env = dict(os.environ)
        (self.data / "keys").mkdir(parents=True, exist_ok=True)
        for name, index in (("bot", 8), ("owner1", 9), ("owner2", 10)):
            # Anvil's public development keys: a light scrypt, so each restart unlocks fast
            keystore = Account.encrypt(
                bytes(dev_signer(index)._account.key), f"pw-{name}", iterations=2**12
            )
            (self.data / "keys" / f"{name}.json").write_text(json.dumps(keystore))
            self.env[f"LPBOT_CHAOS_{name.upper()}_PW"] = f"pw-{name}"
        owners = [dev_signer(i).address for i in (9, 10, 11)]
        config = work / "lpbot.toml"
        config.write_text(
            CONFIG.format(
                data=self.data,
                manifest=self.record.manifest,
                token_id=m.safe_position,
                o1=owners[0],
                o2=owners[1],
                o3=owners[2],
            )
        )
        self.env["LPBOT_CONFIG"] = str(config)
        self.env["LPBOT_CHAOS_DATABASE_URL"] = db_url
        self.env.pop("LPBOT_KILL_AT", None)
        self.safe = contract(self.w3, "SafeL2", m.safe or "")
        self.npm = contract(
            self.w3, "NonfungiblePositionManager", m.contracts["NonfungiblePositionManager"]
        )
        self.nonce0 = self.safe.functions.nonce().call()
        self.block0 = self.w3.eth.block_number
        self.owned0 = self.owned() - {m.safe_position}  # NFTs the Safe had besides the managed

    def close(self) -> None:
        service.down(self.home)

    def migrated(self) -> bool:
        """Whether a run has created the store's tables yet."""
        with self.sessions() as s:
            try:
                s.execute(select(Position.id).limit(1))
            except DBAPIError:  # no table yet, on either backend
                return False
        return True

    # ------------------------------------------------------------------------------ market

    def move_market(self) -> None:
        """Move the price out of the managed position's range, unless it is out already."""
        m = self.manifest
        pool = contract(self.w3, "UniswapV3Pool", m.pool("USDC/WETH-500").address)
        tick = pool.functions.slot0().call()[1]
        token = m.safe_position
        if self.migrated():
            with self.sessions() as s:
                open_ = s.scalars(
                    select(Position).where(
                        Position.label == "eth-usdc", Position.closed_at.is_(None)
                    )
                ).all()
                if open_:
                    token = int(open_[-1].token_id)
        try:
            lower, upper = self.npm.functions.positions(token).call()[5:7]
        except ContractLogicError:  # burned by a rebalance the store has yet to record
            return
        if tick < lower or tick >= upper:
            return
        self.swap(up=tick >= (lower + upper) // 2)  # away from the centre: out of range
        push_feeds(self.w3, m)  # the devnet's feed keeper follows, as Chainlink would

    def swap(self, up: bool) -> None:
        """Six swaps, ten minutes of chain time apart (the TWAP follows): about 3.6%, some 360
        ticks, past the +-200 ticks of the range the last rebalance centred."""
        m = self.manifest
        info = m.pool("USDC/WETH-500")
        pool = contract(self.w3, "UniswapV3Pool", info.address)
        router = contract(self.w3, "SwapRouter02", m.contracts["SwapRouter02"])
        trader = m.accounts.traders[0]
        t0, t1 = m.token(info.token0).address, m.token(info.token1).address
        # the pair's other pools follow (arbitrage): the planner checks the spot against them
        pools = [p for p in m.pools if {p.token0, p.token1} == {info.token0, info.token1}]
        for _ in range(6):
            sqrt = pool.functions.slot0().call()[0]
            for p in pools:
                if up:  # token1 in: the price of token0 in token1 rises
                    args = (t1, t0, p.fee, trader, 10**24, 0, sqrt * 1003 // 1000)
                else:
                    args = (t0, t1, p.fee, trader, 10**30, 0, sqrt * 997 // 1000)
                sent = router.functions.exactInputSingle(args).transact(
                    {"from": trader, "gas": GAS}
                )
                self.w3.eth.wait_for_transaction_receipt(sent)
            self.w3.provider.make_request("evm_increaseTime", [600])  # type: ignore[arg-type]
            self.w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]

    # ------------------------------------------------------------------------------- runs

    def run(self, kill_at: str | None, timeout: float) -> tuple[str, int | None]:
        """``lpbot run`` killed at ``kill_at`` (a checkpoint, or ``random``), or stopped by
        SIGTERM after ``timeout``; (what happened, exit code)."""
        env = dict(self.env)
        if kill_at and kill_at != "random":
            env["LPBOT_KILL_AT"] = kill_at
        log_path = self.work / "runs.log"
        started_at = log_path.stat().st_size if log_path.exists() else 0
        log = log_path.open("a")
        proc = subprocess.Popen(
            [sys.executable, "-m", "lpbot", "run", "--seconds", str(timeout + 60)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=self.work,
        )
        deadline = time.monotonic() + (
            self.rng.uniform(3.0, timeout) if kill_at == "random" else timeout
        )
        settled: float | None = None
        launched = time.monotonic()
        while time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.1)
            if kill_at is None and settled is None:
                with log_path.open() as f:
                    f.seek(started_at)
                    if "jobs scheduled" in f.read():
                        settled = time.monotonic()  # started: resumed what was unfinished
                        self.start_seconds.append(settled - launched)
            if settled is not None and time.monotonic() > settled + 4:
                break  # and ran its jobs a couple of times
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL if kill_at == "random" else signal.SIGTERM)
            proc.wait(60)
            what = "killed at random" if kill_at == "random" else "stopped (no kill)"
        else:
            what = f"killed at {kill_at}" if proc.returncode == -signal.SIGKILL else "exited"
        log.close()
        return what, proc.returncode

    # ---------------------------------------------------------------------------- checker

    def owned(self) -> set[int]:
        safe = self.manifest.safe
        transfers = self.npm.events.Transfer().get_logs(fromBlock=0)
        owner: dict[int, str] = {}
        for e in transfers:
            owner[int(e["args"]["tokenId"])] = e["args"]["to"]
        return {t for t, o in owner.items() if o == safe}

    def check(self) -> list[str]:
        """Every way the chain and the store disagree (empty: they agree)."""
        problems: list[str] = []
        with self.sessions() as s:
            rows = list(s.scalars(select(Rebalance).order_by(Rebalance.id)))
            positions = list(s.scalars(select(Position).where(Position.closed_at.is_(None))))
            running = s.scalars(select(JobRun).where(JobRun.status == JobStatus.RUNNING)).all()
        confirmed = [r for r in rows if r.state.value == "CONFIRMED"]
        executed_failed = [
            r for r in rows if r.state.value == "FAILED" and ((r.plan or {}).get("result") or {})
        ]
        nonce = self.safe.functions.nonce().call()
        if nonce - self.nonce0 != len(confirmed) + len(executed_failed):
            problems.append(
                f"Safe nonce moved {nonce - self.nonce0}, the store has {len(confirmed)} "
                f"confirmed and {len(executed_failed)} failed executions"
            )
        events = self.safe.events.ExecutionSuccess().get_logs(fromBlock=self.block0 + 1)
        on_chain = {"0x" + bytes(e["transactionHash"]).hex() for e in events}
        in_store = {str(((r.plan or {}).get("result") or {}).get("tx_hash")) for r in confirmed}
        if on_chain != in_store:
            problems.append(
                f"ExecutionSuccess transactions {sorted(on_chain - in_store)} not confirmed in "
                f"the store; confirmed rows {sorted(in_store - on_chain)} without one"
            )
        owned = self.owned() - self.owned0
        open_ids = {int(p.token_id) for p in positions}
        if owned != open_ids:
            problems.append(f"the Safe owns NFTs {sorted(owned)}, the store's open are {open_ids}")
        managed = [p for p in positions if p.label == "eth-usdc"]
        if len(managed) != 1:
            problems.append(f"{len(managed)} open positions named eth-usdc")
        for r in rows:
            if r.state.value in UNFINISHED:
                problems.append(f"rebalance {r.id} left {r.state.value}")
        if running:
            problems.append(f"{len(running)} job run(s) left RUNNING")
        problems += self.check_balances()
        problems += self.check_hedge()
        return problems

    def balance_of(self, token: str, block: int | str = "latest") -> int:
        erc20 = contract(self.w3, "TestERC20", token)
        return int(erc20.functions.balanceOf(self.manifest.safe).call(block_identifier=block))

    def check_balances(self) -> list[str]:
        """The Safe's balances of the pool's tokens against the first snapshot's plus the
        ledger's recorded flows since, to the wei: on the chain now and at every snapshot."""
        m = self.manifest
        info = m.pool("USDC/WETH-500")
        tokens = (m.token(info.token0).address, m.token(info.token1).address)
        with self.sessions() as s:
            snaps = list(
                s.scalars(
                    select(PositionSnapshot)
                    .where(PositionSnapshot.owner_balance0.is_not(None))
                    .order_by(PositionSnapshot.block_number, PositionSnapshot.id)
                )
            )
            entries = list(
                s.scalars(
                    select(AuditEntry).where(
                        AuditEntry.kind == ledger_store.REBALANCE,
                        AuditEntry.subject == "ledger:eth-usdc",
                    )
                )
            )
        if not snaps:
            return ["no snapshot recorded the Safe's balances"]
        base = snaps[0]
        b0 = int(base.block_number or 0)
        start = (int(base.owner_balance0 or 0), int(base.owner_balance1 or 0))
        flows: list[tuple[int, tuple[int, int]]] = []
        for e in entries:
            d = e.data or {}
            delta = tuple(
                int(d["burned"][i])
                + int(d["fees"][i])
                - int(d["swap_in"][i])
                + int(d["swap_out"][i])
                - int(d["minted"][i])
                for i in (0, 1)
            )
            flows.append((int(d["block"]), (delta[0], delta[1])))

        def expected(block: int) -> tuple[int, int]:
            moved = [f for at, f in flows if b0 < at <= block]
            return (
                start[0] + sum(f[0] for f in moved),
                start[1] + sum(f[1] for f in moved),
            )

        problems = []
        latest = self.w3.eth.block_number
        on_chain = (self.balance_of(tokens[0], latest), self.balance_of(tokens[1], latest))
        if on_chain != expected(latest):
            problems.append(
                f"the Safe holds {on_chain} (token0, token1 raw) at block {latest}; its balances "
                f"at block {b0} plus the {len(flows)} recorded flows since make {expected(latest)}"
            )
        for snap in snaps[1:]:
            held = (int(snap.owner_balance0 or 0), int(snap.owner_balance1 or 0))
            block = int(snap.block_number or 0)
            if held != expected(block):
                problems.append(
                    f"snapshot {snap.id} at block {block}: the Safe held {held}, the recorded "
                    f"flows make {expected(block)}"
                )
                break  # one is enough to show where it starts
        self.balance_summary = (len(flows), len(snaps))
        return problems

    def check_hedge(self) -> list[str]:
        """The paper venue's position against the store's recorded fills; every filled order
        booked; no client order id sent twice."""
        problems = []
        with self.sessions() as s:
            fills = list(
                s.execute(
                    select(HedgeOrder.client_order_id, HedgeOrder.side, HedgeFill.amount).join(
                        HedgeFill, HedgeFill.order_id == HedgeOrder.id
                    )
                )
            )
            orders = {o.client_order_id: o for o in s.scalars(select(HedgeOrder))}
            current = {
                int(t)
                for t in s.scalars(select(Position.token_id).where(Position.closed_at.is_(None)))
            }
        booked: dict[str, Decimal] = {}
        for cid, side, amount in fills:
            booked[cid] = booked.get(cid, Decimal(0)) + (amount if side.value == "BUY" else -amount)
        venue_cids: set[str] = set()
        self.hedge_summary = (0, len(fills))
        for path in sorted((self.data / "hedge").glob("paper-*.json")):
            account = PaperAccount.model_validate_json(path.read_text())
            state = account.state
            cids = [o.client_order_id for o in state.orders]
            dupes = sorted({c for c in cids if cids.count(c) > 1})
            if dupes:
                problems.append(f"{path.name}: client order ids sent twice: {dupes}")
            venue_cids |= set(cids)
            size = sum((booked.get(c, Decimal(0)) for c in set(cids)), Decimal(0))
            token = int(path.stem.rpartition("-")[2])
            if token not in current and state.size != 0:
                problems.append(
                    f"{path.name}: the hedge of NFT {token}, no longer the position, is still "
                    f"{state.size} (the hedge did not follow the rebalance)"
                )
            if state.liquidations:
                problems.append(f"{path.name}: the hedge was liquidated")
            elif size != state.size:
                problems.append(
                    f"{path.name}: the venue's position is {state.size}, the store's fills of "
                    f"its orders add up to {size}"
                )
            for o in state.orders:
                row = orders.get(o.client_order_id)
                if row is None:
                    problems.append(f"{path.name}: order {o.client_order_id} not in the store")
                elif row.filled != o.filled:
                    problems.append(
                        f"{path.name}: order {o.client_order_id} filled {o.filled} at the "
                        f"venue, {row.filled} in the store"
                    )
            self.hedge_summary = (self.hedge_summary[0] + len(state.orders), len(fills))
        for cid in booked:
            if cid not in venue_cids:
                problems.append(f"the store has fills of order {cid}, which no venue knows")
        return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--states", default=",".join(STATES))
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--work", help="working directory (default: a new temporary one)")
    parser.add_argument("--timeout", type=float, default=45.0, help="seconds per run")
    parser.add_argument("--database", choices=("sqlite", "postgresql"), default="sqlite")
    args = parser.parse_args(argv)
    states = [s for s in args.states.split(",") if s]
    unknown = set(states) - set(STATES)
    if unknown:
        parser.error(f"unknown states {sorted(unknown)}; known: {', '.join(STATES)}")
    work = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="lpbot-chaos-"))
    work.mkdir(parents=True, exist_ok=True)
    if args.database == "postgresql" and not os.environ.get(POSTGRES_ENV):
        parser.error(f"--database postgresql: {POSTGRES_ENV} is not set (scripts/ci-postgres.sh)")
    with database(args.database, work) as db_url:
        return rounds(args, states, work, db_url)


@contextmanager
def database(backend: str, work: Path) -> Iterator[str]:
    """The store's URL: a SQLite file under ``work``, or a new PostgreSQL schema (dropped
    after)."""
    if backend == "sqlite":
        yield f"sqlite:///{work / 'data' / 'lpbot.db'}"
        return
    base = os.environ[POSTGRES_ENV]
    schema = f"chaos_{uuid.uuid4().hex[:12]}"
    admin = make_engine(base)
    with admin.begin() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    try:
        url = make_url(base).update_query_dict({"options": f"-csearch_path={schema}"})
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.begin() as conn:
            conn.execute(text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
        admin.dispose()


def rounds(args: argparse.Namespace, states: list[str], work: Path, db_url: str) -> int:
    h = Harness(work, args.seed, db_url)
    t0 = time.monotonic()
    problems: list[str] = []
    try:
        for i in range(args.rounds):
            state = states[i % len(states)]
            h.move_market()
            what, code = h.run(state, args.timeout)
            print(f"round {i + 1}: {state}: {what} (exit {code})", flush=True)
        # the clean run finishes what is left (resuming, on a loaded machine, can take a while)
        what, code = h.run(None, args.timeout)
        started = f", started in {h.start_seconds[-1]:.1f} s" if h.start_seconds else ""
        print(f"clean run: {what} (exit {code}{started})", flush=True)
        if code not in (0, None) and code != -signal.SIGTERM:
            problems.append(f"the clean run exited {code} (see {work / 'runs.log'})")
        problems += h.check()
    finally:
        h.close()
    with h.sessions() as s:
        rows = list(s.scalars(select(Rebalance)))
    confirmed = sum(1 for r in rows if r.state.value == "CONFIRMED")
    flows, snaps = h.balance_summary
    orders, fills = h.hedge_summary
    print(
        f"{args.rounds} rounds on {args.database} in {time.monotonic() - t0:.0f} s; "
        f"{len(rows)} rebalances ({confirmed} confirmed); {flows} recorded flows over {snaps} "
        f"snapshots; {orders} hedge orders, {fills} fills; log {work}"
    )
    for p in problems:
        print(f"INCONSISTENT: {p}")
    print("chain and store agree" if not problems else f"{len(problems)} inconsistencies")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())

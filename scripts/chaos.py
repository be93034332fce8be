#!/usr/bin/env python3
"""The crash harness: ``lpbot run`` killed again and again, then the chain and the store compared.

    python scripts/chaos.py [--rounds 30] [--states dry-run,simulated,...] [--work DIR] [--seed N]

On a devnet of its own (``lpbot devnet up`` under WORK), with a Safe position, auto-execution
and keystores: each round moves the market so that the position leaves its range, starts
``lpbot run`` and SIGKILLs it, either when the newest rebalance reaches the round's checkpoint
(``LPBOT_KILL_AT``: the process kills itself there, as hard as a power cut) or, for ``random``,
at a random moment. The next round's ``lpbot run`` is the restart. After the last round a clean
run finishes whatever is left, then the checker compares the chain with the store:

- the Safe's nonce moved once per executed rebalance (CONFIRMED, or FAILED with a mined one);
- the Safe's ``ExecutionSuccess`` transactions are exactly the CONFIRMED rows' transactions;
- the NFTs the Safe owns are exactly the store's open positions;
- no rebalance is left PLANNED, APPROVED, SIGNED or SUBMITTED, and no job run RUNNING.

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
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from eth_account import Account  # noqa: E402
from sqlalchemy import select  # noqa: E402
from web3.exceptions import ContractLogicError  # noqa: E402

from lpbot.chain.rpc import connect  # noqa: E402
from lpbot.devnet import service  # noqa: E402
from lpbot.devnet.deploy import GAS, contract  # noqa: E402
from lpbot.devnet.keys import dev_signer  # noqa: E402
from lpbot.devnet.manifest import Manifest  # noqa: E402
from lpbot.devnet.market import push_feeds  # noqa: E402
from lpbot.store.models import JobRun, JobStatus, Position, Rebalance  # noqa: E402
from lpbot.store.session import make_engine, session_factory  # noqa: E402

STATES = ("dry-run", "simulated", "approved", "signed", "mined", "confirmed", "random")
UNFINISHED = ("PLANNED", "APPROVED", "SIGNED", "SUBMITTED")
ZERO = "0x0000000000000000000000000000000000000000"

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
[schedule]
monitor_seconds = 2
rebalance_check_seconds = 2
hedge_sync_seconds = 30
[auto_execute]
enabled = true
max_value_usd = "100000000"
via = "multisig"
"""


class Harness:
    """A devnet, a configuration of its Safe position, and the chain's state at the start."""

    def __init__(self, work: Path, seed: int) -> None:
        self.work = work
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

    # ------------------------------------------------------------------------------ market

    def move_market(self) -> None:
        """Move the price out of the managed position's range, unless it is out already."""
        m = self.manifest
        pool = contract(self.w3, "UniswapV3Pool", m.pool("USDC/WETH-500").address)
        tick = pool.functions.slot0().call()[1]
        sessions = session_factory(make_engine(f"sqlite:///{self.data / 'lpbot.db'}"))
        token = m.safe_position
        if (self.data / "lpbot.db").exists():
            with sessions() as s:
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
        while time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.1)
            if kill_at is None and settled is None:
                with log_path.open() as f:
                    f.seek(started_at)
                    if "jobs scheduled" in f.read():
                        settled = time.monotonic()  # started: resumed what was unfinished
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
        sessions = session_factory(make_engine(f"sqlite:///{self.data / 'lpbot.db'}"))
        with sessions() as s:
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
        return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--states", default=",".join(STATES))
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--work", help="working directory (default: a new temporary one)")
    parser.add_argument("--timeout", type=float, default=45.0, help="seconds per run")
    args = parser.parse_args(argv)
    states = [s for s in args.states.split(",") if s]
    unknown = set(states) - set(STATES)
    if unknown:
        parser.error(f"unknown states {sorted(unknown)}; known: {', '.join(STATES)}")
    work = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="lpbot-chaos-"))
    work.mkdir(parents=True, exist_ok=True)
    h = Harness(work, args.seed)
    t0 = time.monotonic()
    problems: list[str] = []
    try:
        for i in range(args.rounds):
            state = states[i % len(states)]
            h.move_market()
            what, code = h.run(state, args.timeout)
            print(f"round {i + 1}: {state}: {what} (exit {code})", flush=True)
        what, code = h.run(None, args.timeout / 2)  # the clean run: it finishes what is left
        print(f"clean run: {what} (exit {code})", flush=True)
        if code not in (0, None) and code != -signal.SIGTERM:
            problems.append(f"the clean run exited {code} (see {work / 'runs.log'})")
        problems += h.check()
    finally:
        h.close()
    rows = len(session_factory(make_engine(f"sqlite:///{h.data / 'lpbot.db'}"))().scalars(
        select(Rebalance)).all())  # fmt: skip
    print(f"{args.rounds} rounds in {time.monotonic() - t0:.0f} s; {rows} rebalances; log {work}")
    for p in problems:
        print(f"INCONSISTENT: {p}")
    print("chain and store agree" if not problems else f"{len(problems)} inconsistencies")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())

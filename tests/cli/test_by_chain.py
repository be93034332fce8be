"""``lpbot status`` and ``lpbot export`` grouped by chain, over a store holding positions on
three chain ids (two configured, one no longer), its rows written with the store's own
functions: no chain needs to run."""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from lpbot.analytics.ledger import GasPaid, HedgeFigures, Prices
from lpbot.app import App
from lpbot.cli import main
from lpbot.jobs import ledger as ledger_store
from lpbot.pricing.base import Marks
from lpbot.store import repo
from lpbot.store.models import OrderSide
from tests.cli.test_cli import Run

CONFIG = """version = 1
data_dir = "data"
[chains.ethereum]
rpc_url = "https://ethereum.example.org"
[chains.arbitrum]
rpc_url = "http://127.0.0.1:8547"
"""
MARKS = Prices(Decimal(1), Decimal(3000), Decimal(3000), Decimal(90000), block=20)
GAS_TX = "0x" + "ab" * 32


@dataclass(frozen=True)
class Store:
    config: Path


def _position(
    s: Any,
    label: str,
    chain_id: int,
    token_id: int,
    deposit: tuple[int, int] | None,
    *,
    fees: tuple[int, int] = (0, 0),
    hedge: HedgeFigures | None = None,
) -> None:
    """NFT ``token_id`` on ``chain_id`` named ``label``; with ``deposit`` its ledger: the
    deposit at ``MARKS`` (block 20) and one snapshot at block 30 at the same marks, holding the
    deposit and owing ``fees``."""
    amounts = deposit or (10**6, 10**15)
    pos = repo.record_position(
        s, label=label, chain_id=chain_id, pool_address="0x" + "11" * 20, token_id=token_id,
        owner_address="0x" + "22" * 20, tick_lower=-600, tick_upper=600,
    )  # fmt: skip
    if deposit is not None:
        ledger_store.record_deposit(
            s, label, deposit=deposit, decimals=(6, 18), symbols=("USDC", "WETH"), marks=MARKS
        )
    repo.save_snapshot(
        s, pos.id, taken_at=datetime(2026, 1, 1, tzinfo=UTC), block_number=30,
        sqrt_price_x96=2**96, tick=0, liquidity=10**12, amount0=amounts[0], amount1=amounts[1],
        fees0=fees[0], fees1=fees[1], value_usd=1.0, delta=0.5,
        mark_sources=ledger_store.mark_sources_json(MARKS, Marks("test", 20, 0, {})),
        hedge=ledger_store.hedge_json(hedge or HedgeFigures()),
    )  # fmt: skip


def write_store(config: Path) -> App:
    """The store of ``config`` (``CONFIG``), with:

    - ethereum (1): ``eth-a`` (NFT 7; 3,000 USDC + 1 WETH, owes 5 USDC, hedge -$20, a failed
      transaction's gas: 10^15 wei at $3,000 = $3) and ``eth-b`` (NFT 9; 1,500 USDC + 0.5
      WETH, owes 0.001 WETH);
    - arbitrum (42161): ``arb-a`` (NFT 7 too; 3,000 USDC + 1 WETH, owes 1 USDC) and ``arb-b``
      (NFT 8, snapshotted, no deposit recorded: no ledger);
    - chain 10, no longer configured: ``op-old`` (NFT 3; 300 USDC + 0.1 WETH);
    - one hedge fill (on the venue, no chain)."""
    config.write_text(CONFIG)
    a = App.load(config)
    with a.sessions() as s, s.begin():
        _position(
            s, "eth-a", 1, 7, (3000 * 10**6, 10**18), fees=(5 * 10**6, 0),
            hedge=HedgeFigures(realised=Decimal(-20)),
        )  # fmt: skip
        ledger_store.record_gas(
            s, "eth-a", GasPaid(GAS_TX, 10**15, Decimal(3000), failed=True), 25, 1_700_000
        )
        _position(s, "eth-b", 1, 9, (1500 * 10**6, 5 * 10**17), fees=(0, 10**15))
        _position(s, "arb-a", 42161, 7, (3000 * 10**6, 10**18), fees=(10**6, 0))
        _position(s, "arb-b", 42161, 8, None)
        _position(s, "op-old", 10, 3, (300 * 10**6, 10**17))
        order, _new = repo.record_hedge_order(
            s, client_order_id="lpbot-h-1", exchange="paper", symbol="ETH/USDT:USDT",
            side=OrderSide.SELL, amount=Decimal("0.5"),
        )  # fmt: skip
        repo.record_fill(
            s, order_id=order.id, trade_id="t1", amount=Decimal("0.5"), price=Decimal(3000),
            fee=Decimal("0.75"), fee_currency="USDT", filled_at=datetime(2026, 1, 1, tzinfo=UTC),
        )  # fmt: skip
    return a


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Any:
    """``lpbot ARGV`` in this process: its exit code, stdout and stderr."""
    monkeypatch.delenv("LPBOT_CONFIG", raising=False)

    def run(*argv: str) -> Run:
        capsys.readouterr()
        code = main(list(argv))
        captured = capsys.readouterr()
        return Run(code, captured.out, captured.err)

    return run


@pytest.fixture
def store(tmp_path: Path) -> Store:
    config = tmp_path / "lpbot.toml"
    write_store(config).close()
    return Store(config)


def test_status_json_groups_positions_by_chain_with_totals(store: Store, cli: Any) -> None:
    run = cli("--config", str(store.config), "status", "--json")
    assert run.code == 0, run.err
    data = json.loads(run.out)
    # every position keeps its keys and names its chain (the unconfigured one by id only)
    where = {(p["name"], p["token_id"]): (p["chain"], p["chain_id"]) for p in data["positions"]}
    assert where == {
        ("eth-a", 7): ("ethereum", 1),
        ("eth-b", 9): ("ethereum", 1),
        ("arb-a", 7): ("arbitrum", 42161),
        ("arb-b", 8): ("arbitrum", 42161),
        ("op-old", 3): (None, 10),
    }
    assert all({"tick_lower", "state", "last", "health"} <= set(p) for p in data["positions"])
    chains = {c["chain_id"]: c for c in data["chains"]}
    assert [c["chain_id"] for c in data["chains"]] == [1, 42161, 10]
    assert chains[1]["name"] == "ethereum" and chains[10]["name"] is None
    assert chains[10]["configured"] is False
    assert chains[42161]["positions"] == ["arb-a", "arb-b"]
    assert chains[42161]["without_ledger"] == ["arb-b"]
    eth = chains[1]["totals"]
    # value: 6,005 (3,000 + 3,000 + 5 USDC owed) + 3,003 (1,500 + 1,500 + 0.001 WETH owed)
    assert Decimal(eth["value_usd"]) == Decimal("9008.00")
    assert Decimal(eth["fees_usd"]) == Decimal("8.00")
    assert Decimal(eth["hedge_pnl_usd"]) == Decimal("-20.00")
    assert Decimal(eth["gas_usd"]) == Decimal("3.00")
    assert Decimal(eth["net_usd"]) == Decimal("-15.00")  # 8 fees - 20 hedge - 3 gas
    assert Decimal(chains[42161]["totals"]["value_usd"]) == Decimal("6001.00")
    assert chains[42161]["totals"]["ledgers"] == 1
    assert Decimal(chains[10]["totals"]["value_usd"]) == Decimal("600.00")
    total = data["totals"]
    for key in ("value_usd", "fees_usd", "hedge_pnl_usd", "gas_usd", "net_usd", "il_usd"):
        assert Decimal(total[key]) == sum(Decimal(c["totals"][key]) for c in data["chains"])
    assert Decimal(total["value_usd"]) == Decimal("15609.00")
    assert Decimal(total["net_usd"]) == Decimal("-14.00")
    assert total["ledgers"] == 4


def test_status_text_shows_a_section_per_chain_and_the_total(store: Store, cli: Any) -> None:
    run = cli("--config", str(store.config), "status")
    assert run.code == 0, run.err
    out = run.out
    eth, arb, op = (
        out.index("ethereum (chain 1): 2 positions, 2 open NFTs"),
        out.index("arbitrum (chain 42161): 2 positions, 2 open NFTs"),
        out.index("chain 10 (not in this configuration): 1 position, 1 open NFT"),
    )
    assert eth < out.index("eth-b") < arb < out.index("arb-b") < op < out.index("op-old")
    assert (
        "subtotal ethereum: value $9,008.00, fees $8.00, IL $0.00, hedge $-20.00, funding "
        "$0.00, gas $3.00: net $-15.00" in out
    )
    assert "subtotal arbitrum: value $6,001.00" in out
    assert "(without a ledger, not counted: arb-b)" in out
    assert "subtotal chain 10: value $600.00" in out
    assert "total of 3 chains: value $15,609.00, fees $9.00" in out and "net $-14.00" in out
    assert out.index("subtotal chain 10") < out.index("total of 3 chains")


def _read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def test_export_rows_name_their_chain_grouped_by_chain(
    store: Store, cli: Any, tmp_path: Path
) -> None:
    out = tmp_path / "all.csv"
    run = cli("--config", str(store.config), "export", "--out", str(out))
    assert run.code == 0, run.err
    rows = _read_csv(out)
    assert list(rows[0])[-2:] == ["chain", "chain_id"]
    assert list(rows[0])[:3] == ["at", "kind", "position"]  # the ledger's columns come first
    seen = [(r["position"], r["kind"], r["chain"], r["chain_id"]) for r in rows]
    assert seen == [
        ("eth-a", "snapshot", "ethereum", "1"),
        ("eth-a", "failed transaction", "ethereum", "1"),
        ("eth-b", "snapshot", "ethereum", "1"),
        ("arb-a", "snapshot", "arbitrum", "42161"),
        ("op-old", "snapshot", "", "10"),
        ("lpbot-h-1", "hedge SELL", "", ""),
    ]
    # NFT 7 is on two chains: each snapshot row has its own
    assert {(r["position"], r["token_id"], r["chain_id"]) for r in rows if r["token_id"]} == {
        ("eth-a", "7", "1"),
        ("eth-b", "9", "1"),
        ("arb-a", "7", "42161"),
        ("op-old", "3", "10"),
    }


def test_export_chain_writes_that_chains_rows_only(store: Store, cli: Any, tmp_path: Path) -> None:
    out = tmp_path / "arb.json"
    run = cli(
        "--config", str(store.config), "export", "--chain", "arbitrum", "--format", "json",
        "--out", str(out),
    )  # fmt: skip
    assert run.code == 0, run.err
    assert "1 rows written" in run.out
    [row] = json.loads(out.read_text())
    assert (row["position"], row["chain"], row["chain_id"]) == ("arb-a", "arbitrum", 42161)
    assert Decimal(row["value_usd"]) == Decimal("6001.00")


def test_export_unknown_chain_is_one_line_exit_2_and_nothing_written(
    store: Store, cli: Any, tmp_path: Path
) -> None:
    out = tmp_path / "x.csv"
    run = cli("--config", str(store.config), "export", "--chain", "optimism", "--out", str(out))
    assert run.code == 2
    assert run.err.strip().splitlines() == [
        "lpbot: --chain optimism: no such chain in [chains] (have: ethereum, arbitrum); "
        "nothing written"
    ]
    assert not out.exists() and run.out == ""


TWO_LIVE_CHAINS = """version = 1
data_dir = "data"
[chains.ethereum]
rpc_url_env = "LPBOT_TEST_ETH_RPC"
[chains.arbitrum]
rpc_url_env = "LPBOT_TEST_ARB_RPC"
[[positions]]
name = "eth"
chain = "ethereum"
pool = "0x88e6A0c2dDD26FEEb64F039a2c41296FcB3f5640"
token_id = 7
[positions.strategy]
kind = "full_range"
[[positions]]
name = "arb"
chain = "arbitrum"
pool = "0xC6962004f452bE9203591991D15f6b388e09E8D0"
token_id = 8
[positions.strategy]
kind = "full_range"
"""


@pytest.mark.parametrize("command", ["approve", "execute", "sign", "replan"])
def test_a_rebalance_named_by_its_report_or_id_is_handled_on_its_own_chain(
    tmp_path: Path, cli: Any, monkeypatch: pytest.MonkeyPatch, command: str
) -> None:
    """Without --position, a command about an Arbitrum rebalance connects to Arbitrum (here:
    its RPC variable is named as unset), never to the first position's chain, whose Safe,
    sender and node would otherwise be used for the Arbitrum report."""
    from lpbot.execution.state import RebalanceState as S

    monkeypatch.delenv("LPBOT_TEST_ETH_RPC", raising=False)
    monkeypatch.delenv("LPBOT_TEST_ARB_RPC", raising=False)
    config = tmp_path / "lpbot.toml"
    config.write_text(TWO_LIVE_CHAINS)
    a = App.load(config)
    rebalances = a.rebalance_repo("test")
    record = rebalances.create(
        idempotency_key="arb-8", chain_id=42161, safe="0x" + "22" * 20, token_id=8
    )
    rebalances.transition(record.id, S.PLANNED, S.SIMULATED, report_id="r-arb", report_hash="h")
    a.close()
    key = str(record.id) if command == "replan" else "r-arb"
    extra = ["--yes"] if command == "approve" else []
    extra += ["--dev-owner", "1", "--out", str(tmp_path / "s.json")] if command == "sign" else []
    run = cli("--config", str(config), "rebalance", command, key, *extra)
    assert run.code != 0
    assert "LPBOT_TEST_ARB_RPC" in run.err and "LPBOT_TEST_ETH_RPC" not in run.err
    assert rebalances.get(record.id).state == S.SIMULATED  # type: ignore[union-attr]


def test_resume_without_a_position_resumes_each_chains_unfinished_rebalances(
    tmp_path: Path, cli: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``lpbot rebalance resume`` goes to the chain of every unfinished rebalance: an Arbitrum
    one is resumed on Arbitrum (its RPC variable named as unset), not skipped because the
    first position is on Ethereum."""
    from lpbot.execution.state import RebalanceState as S

    monkeypatch.delenv("LPBOT_TEST_ETH_RPC", raising=False)
    monkeypatch.delenv("LPBOT_TEST_ARB_RPC", raising=False)
    config = tmp_path / "lpbot.toml"
    config.write_text(TWO_LIVE_CHAINS)
    a = App.load(config)
    rebalances = a.rebalance_repo("test")
    record = rebalances.create(
        idempotency_key="arb-8", chain_id=42161, safe="0x" + "22" * 20, token_id=8
    )
    rebalances.transition(record.id, S.PLANNED, S.SIMULATED, report_id="r-arb", report_hash="h")
    a.close()
    run = cli("--config", str(config), "rebalance", "resume")
    assert run.code != 0
    assert "LPBOT_TEST_ARB_RPC" in run.err and "LPBOT_TEST_ETH_RPC" not in run.err


def test_withdraw_of_an_nft_without_a_position_goes_to_the_chain_of_the_position_holding_it(
    tmp_path: Path, cli: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``lpbot position withdraw 8``: NFT #8 is the Arbitrum position's, so the withdraw is
    planned on Arbitrum (its RPC variable named as unset), not on the first chain, where #8
    is another NFT or none."""
    monkeypatch.delenv("LPBOT_TEST_ETH_RPC", raising=False)
    monkeypatch.delenv("LPBOT_TEST_ARB_RPC", raising=False)
    config = tmp_path / "lpbot.toml"
    config.write_text(TWO_LIVE_CHAINS)
    run = cli("--config", str(config), "position", "withdraw", "8")
    assert run.code != 0
    assert "LPBOT_TEST_ARB_RPC" in run.err and "LPBOT_TEST_ETH_RPC" not in run.err


MPC_KEY = "0xa0Ee7A142d267C1f36714E4a8F75612F20a79720"
WITH_MPC = (
    TWO_LIVE_CHAINS
    + f"""
[signer.keystores.owner1]
path = "owner1.json"
password_env = "OWNER1_PW"
[signer.safe]
address = "0xC6962004f452bE9203591991D15f6b388e09E8D0"
threshold = 2
owners = [{{ address = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8", keystore = "owner1" }},
          {{ address = "{MPC_KEY}", mpc = true }}]
[signer.mpc]
threshold = 2
share_count = 3
address = "{MPC_KEY}"
insecure_single_host = true
parties = [
    {{ kind = "local", index = 1, dir = "mpc/party-1", passphrase_env = "LPBOT_MPC_PW" }},
    {{ kind = "local", index = 2, dir = "mpc/party-2", passphrase_env = "LPBOT_MPC_PW" }},
    {{ kind = "remote", index = 3, url = "http://127.0.0.1:7411", offline = true }},
]
"""
)


def test_mpc_rotate_plans_on_the_chain_named_and_executes_on_the_reports_chain(
    tmp_path: Path, cli: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The MPC key owns a Safe on each chain: ``mpc rotate plan --chain arbitrum`` swaps
    Arbitrum's owner (its RPC variable named as unset), ``execute`` goes to the report's own
    chain, and a chain not in [chains] is one line naming them."""
    from lpbot.report.dryrun import canonical_hash

    monkeypatch.delenv("LPBOT_TEST_ETH_RPC", raising=False)
    monkeypatch.delenv("LPBOT_TEST_ARB_RPC", raising=False)
    config = tmp_path / "lpbot.toml"
    config.write_text(WITH_MPC)
    c = ("--config", str(config), "mpc", "rotate")
    new = str(tmp_path / "new.json")
    run = cli(*c, "plan", "--chain", "arbitrum", "--new-key", new, "--insecure-single-host")
    assert run.code != 0
    assert "LPBOT_TEST_ARB_RPC" in run.err and "LPBOT_TEST_ETH_RPC" not in run.err
    run = cli(*c, "plan", "--chain", "arbitrun", "--new-key", new)
    assert run.code == 2 and "arbitrun" in run.err and "ethereum, arbitrum" in run.err
    reports = tmp_path / "data" / "reports"
    reports.mkdir(parents=True)
    body = {"kind": "owner_rotation", "chain_id": 42161, "old_owner": MPC_KEY}
    report_hash = canonical_hash(body)
    report = {**body, "report_hash": report_hash, "report_id": "rotate-x"}
    (reports / "rotate-x.json").write_text(json.dumps(report))
    run = cli(*c, "execute", "rotate-x", "--dev-owner", "1")
    assert run.code != 0
    assert "LPBOT_TEST_ARB_RPC" in run.err and "LPBOT_TEST_ETH_RPC" not in run.err


def test_position_show_of_an_nft_reads_the_chain_of_the_position_holding_it(
    tmp_path: Path, cli: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``lpbot position show 8`` reads NFT #8 on Arbitrum, the chain of the position holding
    it (its RPC variable named as unset), not the first chain's #8."""
    monkeypatch.delenv("LPBOT_TEST_ETH_RPC", raising=False)
    monkeypatch.delenv("LPBOT_TEST_ARB_RPC", raising=False)
    config = tmp_path / "lpbot.toml"
    config.write_text(TWO_LIVE_CHAINS)
    run = cli("--config", str(config), "position", "show", "8")
    assert run.code != 0
    assert "LPBOT_TEST_ARB_RPC" in run.err and "LPBOT_TEST_ETH_RPC" not in run.err

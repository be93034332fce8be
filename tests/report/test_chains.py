"""Positions grouped by chain (``lpbot.report.chains``): each chain's totals, a grand total that
is their sum, a chain id no longer configured kept by its id, explorer links on real chains
only."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

from lpbot.config import parse_config
from lpbot.report.chains import (
    ChainRef,
    Totals,
    configured_chains,
    group_by_chain,
    is_local_url,
    rows_by_chain,
)

ETH, ARB = ChainRef(1, "ethereum", "https://etherscan.io/tx/"), ChainRef(42161, "arbitrum")


def _p(name: str, chain_id: int, token_id: int, state: str = "open") -> dict[str, Any]:
    return {"name": name, "chain_id": chain_id, "token_id": token_id, "state": state}


def _t(value: str, fees: str, gas: str = "0", hedge: str = "0") -> Totals:
    v, f, g, h = Decimal(value), Decimal(fees), Decimal(gas), Decimal(hedge)
    return Totals(value=v, fees=f, hedge_pnl=h, gas=g, net=f + h - g, ledgers=1)


def test_positions_fall_under_their_chain_in_the_configurations_order() -> None:
    positions = [
        _p("arb-a", 42161, 7),
        _p("eth-a", 1, 7, "closed"),
        _p("eth-a", 1, 8),  # the NFT a rebalance minted
        _p("old", 10, 3),  # a chain this configuration no longer names
        _p("eth-b", 1, 9),
    ]
    groups, _total = group_by_chain([ETH, ARB], positions, {})
    assert [g.chain for g in groups] == [ETH, ARB, ChainRef(10, None)]
    assert [g.names for g in groups] == [("eth-a", "eth-b"), ("arb-a",), ("old",)]
    assert [len(g.positions) for g in groups] == [3, 1, 1]
    assert groups[0].as_json()["open"] == 2 and groups[0].as_json()["nfts"] == 3
    assert groups[2].chain.title == "chain 10 (not in this configuration)"
    assert groups[2].as_json()["name"] is None and groups[2].as_json()["configured"] is False
    assert groups[0].chain.title == "ethereum (chain 1)"


def test_each_chain_sums_its_ledgers_and_the_total_is_the_sum_of_the_chains() -> None:
    positions = [_p("eth-a", 1, 7), _p("eth-b", 1, 9), _p("arb-a", 42161, 7), _p("old", 10, 3)]
    ledgers = {
        "eth-a": _t("6005.00", "5.00", gas="3.00", hedge="-20.00"),
        "eth-b": _t("3003.00", "3.00"),
        "arb-a": _t("6001.01", "1.01"),
        "old": _t("600.00", "0.00"),
    }
    groups, total = group_by_chain([ETH, ARB], positions, ledgers)
    eth, arb, old = (g.totals for g in groups)
    assert (eth.value, eth.fees, eth.gas, eth.hedge_pnl, eth.net) == (
        Decimal("9008.00"),
        Decimal("8.00"),
        Decimal("3.00"),
        Decimal("-20.00"),
        Decimal("-15.00"),
    )
    assert eth.ledgers == 2 and arb.ledgers == 1 and old.ledgers == 1
    assert old.value == Decimal("600.00")  # the unconfigured chain's ledger is counted, not lost
    assert total == eth + arb + old
    assert total.value == Decimal("15609.01") and total.net == Decimal("-13.99")
    assert total.ledgers == 4
    # exact: the JSON's strings read back are the same Decimals
    assert Totals.from_json(total.as_json()) == total
    assert total.as_json()["value_usd"] == "15609.01"


def test_a_position_without_a_ledger_is_named_and_not_counted() -> None:
    groups, total = group_by_chain(
        [ETH], [_p("eth-a", 1, 7), _p("new", 1, 11)], {"eth-a": _t("100.00", "1.00")}
    )
    [g] = groups
    assert g.without_ledger == ("new",)
    assert g.totals.value == total.value == Decimal("100.00") and total.ledgers == 1


def test_a_configured_chain_without_positions_has_an_empty_group() -> None:
    groups, total = group_by_chain([ETH, ARB], [_p("arb-a", 42161, 7)], {})
    assert [(g.chain.name, g.names) for g in groups] == [("ethereum", ()), ("arbitrum", ("arb-a",))]
    assert total == Totals()


def test_export_rows_get_their_chain_and_are_grouped_by_it() -> None:
    rows = [
        {"position": "eth-a", "token_id": 7, "kind": "snapshot"},
        {"position": "arb-a", "token_id": 7, "kind": "snapshot"},
        {"position": "arb-a", "token_id": None, "kind": "rebalance"},
        {"position": "old", "token_id": 3, "kind": "snapshot"},
        {"position": "rebalance:4", "token_id": None, "kind": "cancel transaction FAILED"},
        {"position": "lpbot-h-1", "token_id": None, "kind": "hedge SELL"},
        {"position": "eth-a", "token_id": None, "kind": "rebalance"},
    ]
    nfts = [("eth-a", 7, 1), ("arb-a", 7, 42161), ("old", 3, 10)]
    out = rows_by_chain(rows, [ETH, ARB], nfts, {4: 42161})
    assert [(r["position"], r["kind"], r["chain"], r["chain_id"]) for r in out] == [
        ("eth-a", "snapshot", "ethereum", 1),
        ("eth-a", "rebalance", "ethereum", 1),
        ("arb-a", "snapshot", "arbitrum", 42161),
        ("arb-a", "rebalance", "arbitrum", 42161),
        ("rebalance:4", "cancel transaction FAILED", "arbitrum", 42161),
        ("old", "snapshot", None, 10),
        ("lpbot-h-1", "hedge SELL", None, None),
    ]


def test_only_a_real_chain_links_to_its_explorer(tmp_path: Path) -> None:
    config = parse_config(
        'version = 1\n[chains.ethereum]\nrpc_url = "https://eth.example.org"\n'
        '[chains.arbitrum]\nrpc_url_env = "ARB_RPC"\n'
        # an Anvil fork of zkSync's id on this machine: its transactions are on no explorer
        '[chains.zk]\nchain_id = 324\nrpc_url = "http://localhost:8545"\n'
        # the devnet, not started: its chain id (its manifest's) is not known
        '[chains.devnet]\nmanifest = "manifest.json"\n',
        base_dir=tmp_path,
    )
    chains = configured_chains(config, {"ARB_RPC": "http://127.0.0.1:8547"})
    assert [(c.name, c.chain_id, c.explorer) for c in chains] == [
        ("ethereum", 1, "https://etherscan.io/tx/"),
        ("arbitrum", 42161, None),
        ("zk", 324, None),
    ]
    tx = "0x" + "ab" * 32
    assert chains[0].tx_link(tx) == f"https://etherscan.io/tx/{tx}"
    assert chains[1].tx_link(tx) is None
    # the URL not in this environment: the chain is taken as the real one
    [arb] = [c for c in configured_chains(config, {}) if c.name == "arbitrum"]
    assert arb.explorer == "https://arbiscan.io/tx/"


def test_local_urls() -> None:
    assert is_local_url("http://127.0.0.1:8545") and is_local_url("http://localhost:8545")
    assert is_local_url("ws://[::1]:8546") and is_local_url("http://127.1.2.3")
    assert not is_local_url("https://arb1.arbitrum.io/rpc")
    assert not is_local_url("http://10.0.0.5:8545")  # a node on the network: a real chain

"""zkSync Era through a local stand-in of its node: chain id 324, ``zks_estimateFee``, and no
Anvil methods, in front of an Anvil devnet running as chain 324 (the devnet's state loaded into
it, so the Safe's EIP-712 domain is chain 324's, as on Era).

What this shows: lpbot plans, dry-runs (by ``eth_call`` alone: SimulateTxAccessor and Multicall3
through the Safe's ``simulateAndRevert``), pre-flights, prices (``zks_estimateFee``, its gas per
pubdata checked) and sends a rebalance on a chain 324 node that serves no fork and no
``anvil_*``/``evm_*`` method, and ``config check --online`` accepts such a chain. What it does
not show: anything about EraVM itself. The contracts behind the stand-in are EVM bytecode at the
devnet's addresses; the registry's zkSync Era addresses and EraVM code hashes are checked only
against their published sources (tests/chain/test_registry.py).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from web3 import Web3

from lpbot.chain.artifacts import project_root
from lpbot.chain.gas import ZKSYNC_TYPE2_GAS_PER_PUBDATA
from lpbot.chain.rpc import connect
from lpbot.cli import main
from lpbot.config import parse_config
from lpbot.devnet import anvil
from lpbot.devnet.context import devnet_context
from lpbot.devnet.keys import dev_signer
from lpbot.devnet.manifest import Manifest
from lpbot.devnet.market import run_market
from lpbot.devnet.service import load_or_deploy
from lpbot.errors import ConfigError, RetryLater
from lpbot.execution import service
from lpbot.execution.state import RebalanceState
from lpbot.strategy.base import Range
from lpbot.testing.fakes import MemoryRebalanceRepo
from tests.chain.rpc_standin import RpcError, RpcStandIn, serve
from tests.conftest import Devnet

pytestmark = pytest.mark.devnet

ERA = 324
# methods a zkSync Era node does not serve: nothing of lpbot's zkSync path may need them
_ANVIL_ONLY = ("anvil_", "evm_", "hardhat_")


class EraStandIn(RpcStandIn):
    """zkSync Era's JSON-RPC as lpbot uses it, ``eth_*`` served by the Anvil behind it."""

    gas_per_pubdata: int = 800

    def _respond(self, request: dict[str, Any]) -> dict[str, Any]:
        if str(request.get("method", "")).startswith(_ANVIL_ONLY):
            self.calls.append((request["method"], request.get("params", [])))
            return {
                "jsonrpc": "2.0",
                "id": request.get("id"),
                "error": {"code": -32601, "message": "Method not found"},
            }
        return super()._respond(request)

    def zks_estimate_fee(self, params: list[Any]) -> dict[str, str]:
        """ZKsync Era JSON-RPC, zks_estimateFee: ``{gas_limit, gas_per_pubdata_limit,
        max_fee_per_gas, max_priority_fee_per_gas}``; the gas limit here is the EVM's estimate
        with a pubdata share on top, as Era's includes the pubdata cost."""
        request = {k: v for k, v in params[0].items() if k in ("from", "to", "data", "value")}
        try:
            gas = int(self.forward("eth_estimateGas", [request, "latest"]), 16)
        except RpcError as exc:
            raise RpcError(3, f"execution reverted: {exc}") from exc
        price = int(self.forward("eth_gasPrice", []), 16)
        pubdata_bytes = 200 + len(str(request.get("data", ""))) // 2 // 10
        return {
            "gas_limit": hex(gas + pubdata_bytes * self.gas_per_pubdata),
            "gas_per_pubdata_limit": hex(self.gas_per_pubdata),
            "max_fee_per_gas": hex(2 * price),
            "max_priority_fee_per_gas": hex(0),
        }


@dataclass
class Era:
    direct: Web3  # the Anvil behind (for the test's own setup only)
    w3: Web3  # lpbot's client: through the stand-in
    standin: EraStandIn
    manifest: Manifest


@pytest.fixture(scope="module")
def era_chain(devnet: Devnet) -> Iterator[Era]:
    """Anvil as chain 324 with the devnet's cached state (the session devnet made the cache),
    behind an Era stand-in."""
    home = project_root() / ".lpbot" / "test-devnet"
    proc = anvil.start(chain_id=ERA, die_with_parent=True)
    try:
        direct = connect(proc.url)
        manifest, cached = load_or_deploy(direct, proc.url, home)
        assert cached and direct.eth.chain_id == ERA
        standin = EraStandIn(chain_id=ERA, forward_to=proc.url)
        standin.answer("zks_estimateFee", standin.zks_estimate_fee)
        standin.answer("zks_L1ChainId", hex(1))
        with serve(standin):
            m = manifest.model_copy(update={"chain_id": ERA, "rpc_url": standin.url})
            # two hours of trading: fees owed to the Safe's position, a TWAP with history
            info = m.pool("USDC/WETH-500")
            run_market(direct, m, info, steps=12, vol=1.2, seed=4, step_seconds=600)
            yield Era(direct, connect(standin.url), standin, m)
    finally:
        proc.stop()


@pytest.fixture
def era(era_chain: Era) -> Iterator[Era]:
    snap = era_chain.direct.provider.make_request("evm_snapshot", [])["result"]  # type: ignore[arg-type]
    era_chain.standin.calls.clear()
    era_chain.standin.gas_per_pubdata = 800
    try:
        yield era_chain
    finally:
        era_chain.direct.provider.make_request("evm_revert", [snap])  # type: ignore[arg-type]


def _new_range(era: Era) -> Range:
    pool = era.direct.eth.contract(
        address=Web3.to_checksum_address(era.manifest.pool("USDC/WETH-500").address),
        abi=json.loads(json.dumps(_SLOT0_ABI)),
    )
    tick = int(pool.functions.slot0().call()[1])
    centre = tick // 10 * 10
    return Range(centre - 400, centre + 400, 10)


_SLOT0_ABI = [
    {
        "name": "slot0",
        "type": "function",
        "stateMutability": "view",
        "inputs": [],
        "outputs": [
            {"name": "sqrtPriceX96", "type": "uint160"},
            {"name": "tick", "type": "int24"},
            {"name": "a", "type": "uint16"},
            {"name": "b", "type": "uint16"},
            {"name": "c", "type": "uint16"},
            {"name": "d", "type": "uint8"},
            {"name": "e", "type": "bool"},
        ],
    }
]


def test_a_rebalance_on_zksync_is_dry_run_by_call_priced_by_zks_estimate_fee_and_sent(
    era: Era, tmp_path: Path
) -> None:
    assert era.w3.eth.chain_id == ERA
    ctx = devnet_context(era.w3, era.manifest, MemoryRebalanceRepo(), tmp_path, dry_run="call")
    assert ctx.chain_id == ERA and ctx.simulator is None
    token_id = era.manifest.safe_position
    assert token_id is not None

    record, report, _ = service.plan_rebalance(ctx, token_id, _new_range(era), "zksync")
    assert report["dry_run"]["method"] == "call" and report["chain_id"] == ERA
    assert all(c["ok"] for c in report["checks"]), [c for c in report["checks"] if not c["ok"]]
    methods = {m for m, _ in era.standin.calls}
    assert not {m for m in methods if m.startswith(_ANVIL_ONLY)}, methods  # no fork, no Anvil

    service.approve(ctx, report["report_id"], approver="alice")
    # the L1 price up: Era asks more gas per pubdata than a type 2 transaction carries; the
    # rebalance waits, signed, and nothing is sent
    era.standin.gas_per_pubdata = ZKSYNC_TYPE2_GAS_PER_PUBDATA + 1
    with pytest.raises(RetryLater, match="gas per pubdata"):
        service.execute(ctx, report["report_id"], signers=[dev_signer(9), dev_signer(10)])
    assert not era.standin.params_of("eth_sendRawTransaction")
    era.standin.gas_per_pubdata = 800
    record = service.execute(ctx, report["report_id"], signers=[dev_signer(9), dev_signer(10)])
    assert record.state == RebalanceState.CONFIRMED
    assert record.result is not None and record.result["matches_report"] is True
    # the pre-flight asked Era for the fee of the exact execTransaction, from its sender
    fee_asks = era.standin.params_of("zks_estimateFee")
    assert fee_asks and fee_asks[-1][0]["to"].lower() == ctx.safe.lower()
    assert fee_asks[-1][0]["from"].lower() == ctx.executor.address.lower()
    # sent as a type 2 transaction signed for chain 324 (no EIP-712 type 113 was needed)
    sent = era.direct.eth.get_transaction(record.tx_hashes[-1])  # type: ignore[arg-type]
    assert sent["type"] == 2 and sent["chainId"] == ERA
    # the chain did what the call dry-run said
    npm = era.direct.eth.contract(
        address=Web3.to_checksum_address(era.manifest.contracts["NonfungiblePositionManager"]),
        abi=[
            {
                "name": "ownerOf",
                "type": "function",
                "stateMutability": "view",
                "inputs": [{"name": "id", "type": "uint256"}],
                "outputs": [{"name": "", "type": "address"}],
            }
        ],
    )
    assert record.result["new_token_id"] == report["dry_run"]["new_token_id"]
    assert npm.functions.ownerOf(record.result["new_token_id"]).call() == ctx.safe


CONFIG = """\
data_dir = "{data}"
[chains.zksync]
manifest = "{manifest}"
[[positions]]
name = "eth-usdc"
chain = "zksync"
pool = "USDC/WETH-500"
token_id = {token_id}
[positions.strategy]
kind = "fixed"
half_width_ticks = 400
[positions.policy]
slippage_bps = 30
[signer.safe]
address = "devnet"
threshold = 2
owners = [{{ address = "{o1}" }}, {{ address = "{o2}" }}, {{ address = "{o3}" }}]
"""


def test_lpbot_manages_a_zksync_chain_by_the_call_dry_run(
    era: Era, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """``config check --online`` and ``rebalance plan`` on a chain 324: no longer refused, the
    dry-run by call (the default there), no fork started."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("LPBOT_CONFIG", raising=False)
    manifest_path = tmp_path / "era-manifest.json"
    era.manifest.write(manifest_path)
    owners = [dev_signer(i).address for i in (9, 10, 11)]
    config = tmp_path / "lpbot.toml"
    config.write_text(
        CONFIG.format(
            data=tmp_path / "data",
            manifest=manifest_path,
            token_id=era.manifest.safe_position,
            o1=owners[0],
            o2=owners[1],
            o3=owners[2],
        )
    )

    def cli(*argv: str) -> tuple[int, str]:
        capsys.readouterr()
        code = main(["--config", str(config), *argv])
        return code, capsys.readouterr().out

    code, out = cli("config", "check", "--online", "--json")
    online = {r["check"]: r for r in json.loads(out)["online"]}
    assert online["chain zksync"]["ok"] and "324" in online["chain zksync"]["finding"]
    assert online["Safe"]["ok"] and "2 of 3 owners" in online["Safe"]["finding"]
    assert online["dry-run"]["ok"] and "eth_call" in online["dry-run"]["finding"]
    assert online["position eth-usdc"]["ok"], online
    assert code == 0, online

    code, out = cli(
        "rebalance", "plan", str(era.manifest.safe_position), "--width-ticks", "400", "--json"
    )
    assert code == 0, out
    planned = json.loads(out)["rebalance"]
    assert planned["state"] == "SIMULATED" and planned["checks_passed"] is True
    report = json.loads(Path(planned["files"]["json"]).read_text())
    assert report["dry_run"]["method"] == "call" and report["chain_id"] == ERA
    assert report["dry_run"]["success"] is True
    methods = {m for m, _ in era.standin.calls}
    assert not {m for m in methods if m.startswith(_ANVIL_ONLY)}, methods


def test_the_dry_run_defaults_to_call_on_zksync_and_a_fork_there_is_refused() -> None:
    live = '[chains.{name}]\nrpc_url = "http://127.0.0.1:1"\n'
    for name, method in (("zksync", "call"), ("ethereum", "fork"), ("arbitrum", "fork")):
        assert parse_config(live.format(name=name)).resolve_chain(name).dry_run == method
    chosen = parse_config(live.format(name="arbitrum") + 'dry_run = "call"\n')
    assert chosen.resolve_chain("arbitrum").dry_run == "call"
    with pytest.raises(ConfigError, match=r"chains\.zksync\.dry_run: 'fork' is not possible"):
        parse_config(live.format(name="zksync") + 'dry_run = "fork"\n')
    with pytest.raises(ConfigError, match=r"chains\.ethereum\.dry_run"):
        parse_config(live.format(name="ethereum") + 'dry_run = "anvil"\n')


def test_a_live_zksync_chain_lists_its_pools_at_their_zksync_create2_addresses() -> None:
    """A zkSync Era chain configured by its RPC URL is described by the registry: its
    well-known pool is where zkSync's CREATE2 rule puts it (the live USDC.e/WETH 0.3% pool),
    not where the EVM rule would with Era's bytecode hash."""
    from lpbot.chain.book import registry_manifest

    standin = RpcStandIn(chain_id=ERA)
    standin.answer(
        "eth_getBlockByNumber",
        {"number": hex(50_000_000), "timestamp": hex(1_760_000_000), "hash": "0x" + "11" * 32},
    )
    with serve(standin):
        w3 = connect(standin.url)
        manifest = registry_manifest(w3, standin.url)
    assert manifest.chain_id == ERA
    assert [(p.token0, p.token1, p.fee, p.address) for p in manifest.pools] == [
        ("USDC.e", "WETH", 3000, "0xff577f0E828a878743Ecc5E2632cbf65ceCf17cF")
    ]

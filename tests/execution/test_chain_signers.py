"""Several chains in one lpbot.toml: each chain's sender, module operator, Safe owners and gas
limits are its own ``[chains.NAME]`` ones where given, else the global ones, and the execution
context of a position uses its chain's."""

from __future__ import annotations

import textwrap
from decimal import Decimal
from pathlib import Path

import pytest

from lpbot.app import App
from lpbot.config import parse_config
from lpbot.devnet.keys import dev_signer
from tests.conftest import Devnet

ARB_POOL = "0xC6962004f452bE9203591991D15f6b388e09E8D0"
ETH_POOL = "0x88e6A0c2dDD26FEEb64F039a2c41296FcB3f5640"
ETH_SAFE = "0x71bE63f3384f5fb98995898A86B02Fb2426c5788"
BOT, ARB_BOT, OWNER, OTHER = (dev_signer(i).address for i in (1, 2, 3, 4))
ETH_MODULE = "0x1F98431c8aD98523631AE4a59f267346ea31F984"


def _keystores(*names_addresses: tuple[str, str]) -> str:
    return "".join(
        f'[signer.keystores.{n}]\npath = "{n}.json"\npassword_env = "PW"\naddress = "{a}"\n'
        for n, a in names_addresses
    )


TWO_CHAINS = f"""
[chains.ethereum]
rpc_url_env = "LPBOT_ETH_RPC"
[chains.arbitrum]
rpc_url_env = "LPBOT_ARB_RPC"
sender = "arb-bot"
max_gas_price_gwei = "0.1"
[chains.arbitrum.safe]
address = "{ARB_POOL}"
threshold = 2
owners = [{{ address = "{OTHER}" }}, {{ address = "{OWNER}", keystore = "owner" }}]
[chains.arbitrum.module]
address = "{ARB_POOL}"
operator = "arb-bot"

[[positions]]
name = "eth"
chain = "ethereum"
pool = "{ETH_POOL}"
token_id = 1
[positions.strategy]
kind = "full_range"
[[positions]]
name = "arb"
chain = "arbitrum"
pool = "{ARB_POOL}"
token_id = 2
[positions.strategy]
kind = "full_range"

[signer]
sender = "bot"
{_keystores(("bot", BOT), ("arb-bot", ARB_BOT), ("owner", OWNER))}
[signer.safe]
address = "{ETH_SAFE}"
threshold = 2
owners = [{{ address = "{OWNER}", keystore = "owner" }}, {{ address = "{OTHER}" }}]
[signer.module]
address = "{ETH_MODULE}"
operator = "bot"
"""


def _addresses(signers: list[object]) -> list[str]:
    return [str(getattr(s, "address", None)) for s in signers]


def test_each_chain_signs_and_sends_with_its_own_keys_and_the_rest_with_the_global_ones(
    tmp_path: Path,
) -> None:
    app = App(parse_config(TWO_CHAINS, base_dir=tmp_path), "two chains", environ={})
    assert app.sender("arbitrum").address == ARB_BOT  # type: ignore[union-attr]
    assert app.operator("arbitrum").address == ARB_BOT  # type: ignore[union-attr]
    assert app.sender("ethereum").address == BOT  # type: ignore[union-attr]
    assert app.operator("ethereum").address == BOT  # type: ignore[union-attr]
    # the first position's chain when none is named: what every old caller got
    assert app.sender().address == BOT  # type: ignore[union-attr]
    # the same owner key signs on both Safes: its place in each Safe's owner list is kept
    assert _addresses(app.owner_signers(chain="arbitrum")) == [OWNER]
    assert _addresses(app.owner_signers(chain="ethereum")) == [OWNER]
    assert app.chain_signer("arbitrum").safe.address == ARB_POOL  # type: ignore[union-attr]
    assert app.chain_signer("ethereum").safe.address == ETH_SAFE  # type: ignore[union-attr]
    assert app.expected_addresses() == {"bot": BOT, "arb-bot": ARB_BOT, "owner": OWNER}


def test_without_a_global_sender_only_the_chain_naming_one_has_a_sender(
    tmp_path: Path,
) -> None:
    text = TWO_CHAINS.replace('[signer]\nsender = "bot"\n', "[signer]\n")
    app = App(parse_config(text, base_dir=tmp_path), "two chains", environ={})
    assert app.sender("ethereum") is None and app.sender("arbitrum").address == ARB_BOT  # type: ignore[union-attr]


@pytest.mark.devnet
def test_the_execution_context_takes_its_chains_sender_safe_and_gas_limits(
    devnet: Devnet, tmp_path: Path
) -> None:
    manifest = tmp_path / "manifest.json"
    devnet.manifest.write(manifest)
    sender = dev_signer(5).address
    owners = [dev_signer(i).address for i in (9, 10, 11)]
    text = (
        textwrap.dedent(f"""
    database_url = "sqlite:///{tmp_path / "lpbot.db"}"
    [chains.devnet]
    manifest = "{manifest}"
    sender = "devnet-bot"
    max_gas_price_gwei = 7
    max_fee_usd = "3"
    [chains.devnet.safe]
    address = "devnet"
    threshold = 2
    owners = [{{ address = "{owners[0]}", keystore = "owner" }},
              {{ address = "{owners[1]}" }}, {{ address = "{owners[2]}" }}]
    [[positions]]
    name = "p"
    chain = "devnet"
    pool = "USDC/WETH-500"
    token_id = 1
    [positions.strategy]
    kind = "full_range"
    [signer]
    sender = "bot"
    """)
        + _keystores(("bot", BOT), ("devnet-bot", sender), ("owner", owners[0]))
        + textwrap.dedent("""
    [execution]
    max_gas_price_gwei = 100
    max_fee_usd = "50"
    """)
    )
    app = App(parse_config(text, base_dir=tmp_path), "devnet", environ={})
    try:
        ctx = app.execution_context("p", actor="test")
        assert ctx.executor.address == sender
        assert ctx.safe == devnet.manifest.safe
        assert ctx.max_gas_price_wei == 7 * 10**9 and ctx.max_fee_usd == Decimal(3)
        assert _addresses(app.owner_signers(chain="devnet")) == [owners[0]]
    finally:
        app.close()

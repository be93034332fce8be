"""Shared fixtures of the daemon's tests: a devnet Safe position whose price has moved away
from its range, and the configuration ``lpbot run`` reads (keystores, auto-execution)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from lpbot.devnet.deploy import GAS, contract
from lpbot.devnet.keys import dev_signer
from lpbot.devnet.market import push_feeds
from lpbot.signing.local import write_keystore
from lpbot.store.models import Rebalance
from lpbot.store.session import make_engine, session_factory
from tests.conftest import Devnet

# the daemon's signers in these tests: the bot's sending key and two of the Safe's three owners
# (format with keys=, o1=, o2=, o3=)
HOT_QUORUM_SIGNERS = """
[signer]
sender = "bot"
# the test's two owners sign from this one process: a hot quorum, accepted explicitly
allow_hot_quorum = true
[signer.keystores.bot]
path = "{keys}/bot.json"
password_env = "LPBOT_TEST_BOT_PW"
[signer.keystores.owner1]
path = "{keys}/owner1.json"
password_env = "LPBOT_TEST_OWNER1_PW"
[signer.keystores.owner2]
path = "{keys}/owner2.json"
password_env = "LPBOT_TEST_OWNER2_PW"
[signer.safe]
address = "devnet"
threshold = 2
owners = [
    {{ address = "{o1}", keystore = "owner1" }},
    {{ address = "{o2}", keystore = "owner2" }},
    {{ address = "{o3}" }},
]
"""

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
{signers}[schedule]
monitor_seconds = 2
rebalance_check_seconds = 2
hedge_sync_seconds = 30
[auto_execute]
enabled = true
max_value_usd = "100000"
via = "multisig"
"""


@pytest.fixture
def setup(chain: Devnet, tmp_path: Path) -> Iterator[tuple[Path, dict[str, str], Devnet]]:
    m = chain.manifest
    data = tmp_path / "data"
    env = dict(os.environ)
    for name, index in (("bot", 8), ("owner1", 9), ("owner2", 10)):
        key = bytes(dev_signer(index)._account.key)
        write_keystore(data / "keys" / f"{name}.json", key, f"pw-{name}")
        env[f"LPBOT_TEST_{name.upper()}_PW"] = f"pw-{name}"
    manifest_path = tmp_path / "manifest.json"
    m.write(manifest_path)
    owners = [dev_signer(i).address for i in (9, 10, 11)]
    config = tmp_path / "lpbot.toml"
    config.write_text(
        CONFIG.format(
            data=data,
            manifest=manifest_path,
            token_id=m.safe_position,
            signers=HOT_QUORUM_SIGNERS.format(
                keys=data / "keys", o1=owners[0], o2=owners[1], o3=owners[2]
            ),
        )
    )
    # the price moves 4% away: the position's +-300 ticks range is far behind
    info = m.pool("USDC/WETH-500")
    pool = contract(chain.w3, "UniswapV3Pool", info.address)
    router = contract(chain.w3, "SwapRouter02", m.contracts["SwapRouter02"])
    trader = m.accounts.traders[0]
    # the pair's other pool follows (arbitrage): the planner checks the spot against it
    others = [p for p in m.pools if {p.token0, p.token1} == {info.token0, info.token1}]
    for _ in range(6):  # in steps, a few minutes apart, so the TWAP follows
        target = pool.functions.slot0().call()[0] * 1004 // 1000
        for p in others:
            router.functions.exactInputSingle(
                (m.token(info.token1).address, m.token(info.token0).address, p.fee, trader,
                 10**24, 0, target)
            ).transact({"from": trader, "gas": GAS})  # fmt: skip
        chain.increase_time(600)
    push_feeds(chain.w3, m)  # the devnet's keeper: the feeds follow, the marks agree
    env["LPBOT_CONFIG"] = str(config)
    yield data, env, chain


def rebalances(data: Path) -> list[Rebalance]:
    sessions = session_factory(make_engine(f"sqlite:///{data / 'lpbot.db'}"))
    with sessions() as s:
        return list(s.scalars(select(Rebalance).order_by(Rebalance.id)))


@pytest.fixture
def passwords(setup: tuple[Path, dict[str, str], Devnet], monkeypatch: pytest.MonkeyPatch) -> None:
    """The keystores' passwords in this process's environment (the daemon's own, in-process)."""
    for key, value in setup[1].items():
        if key.startswith("LPBOT_TEST_"):
            monkeypatch.setenv(key, value)

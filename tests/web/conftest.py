"""The dashboard over a real run: a short ``lpbot demo`` (its ledger, its rebalances) and, on the
session devnet, a rebalance planned with ``lpbot rebalance plan`` that waits for approval, both
in one database that a configuration of the devnet's Safe position reads."""

from __future__ import annotations

import shutil
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from lpbot import demo
from lpbot.app import App
from tests.cli.test_cli import Env, _market, cli, env, keystore_dir  # noqa: F401 - fixtures

DEMO_LABEL = "demo-usdc-weth"


@pytest.fixture(scope="session")
def demo_run(tmp_path_factory: pytest.TempPathFactory) -> demo.DemoResult:
    """Two simulated days of the demo (a rebalance or more), once per session."""
    lines: list[str] = []
    result = demo.run(days=2, seed=11, out=lines.append, workdir=tmp_path_factory.mktemp("demo"))
    assert result.rebalances >= 1, "\n".join(lines)
    assert any("lpbot dashboard --config" in line for line in lines)
    return result


@dataclass
class Site:
    app: App
    env: Env
    report_id: str
    rebalance_id: int


@pytest.fixture
def site(env: Env, cli: Any, demo_run: demo.DemoResult) -> Iterator[Site]:  # noqa: F811
    """The demo's database under the test configuration, with one more rebalance planned on
    the devnet's Safe position that awaits a person's approval."""
    env.data.mkdir(parents=True, exist_ok=True)
    # SQLite's backup: the demo's writes still in its write-ahead log come along
    with sqlite3.connect(demo_run.database) as src, sqlite3.connect(env.data / "lpbot.db") as dst:
        src.backup(dst)
    shutil.copytree(demo_run.database.parent / "reports", env.data / "my-reports")
    env.config.write_text(env.config.read_text() + "[dashboard]\nport = 8765\npoll_seconds = 0.5\n")
    _market(env.chain)
    token = env.values["token_id"]
    run = cli("--config", str(env.config), "rebalance", "plan", str(token), "--width-ticks", "600")
    assert run.code == 0, run.err + run.out
    report_id = run.out.split("; report ")[1].split()[0]
    a = App.load(env.config)
    record = a.rebalance_repo("test").by_report(report_id)
    assert record is not None and record.state.value == "SIMULATED"
    try:
        yield Site(a, env, report_id, record.id)
    finally:
        a.close()


@pytest.fixture
def live(site: Site) -> str:
    """The site, with the devnet's Safe position (the configuration's) snapshotted once by the
    monitor: a position with a ledger on a chain that answers. Its name."""
    from sqlalchemy import select

    from lpbot.devnet.context import devnet_context
    from lpbot.jobs import tasks
    from lpbot.jobs.alerts import MemoryNotifier
    from lpbot.pricing.marks import chain_pricer
    from lpbot.store.models import Position

    chain, token = site.env.chain, site.env.values["token_id"]
    m = chain.manifest
    info = m.pool(site.env.values["pool"])
    with site.app.sessions() as s:  # `rebalance plan` recorded the NFT under a name of its own
        name = s.scalars(select(Position.label).where(Position.token_id == token)).first()
    name = name or site.app.position().name
    mp = tasks.ManagedPosition(
        name=name,
        ctx=devnet_context(chain.w3, m, None, site.env.data),  # type: ignore[arg-type]
        sessions=site.app.sessions,
        policy=None,  # type: ignore[arg-type]
        token_id=token,
        pool=info.address,
        token0=m.token(info.token0).address,
        token1=m.token(info.token1).address,
        notifier=MemoryNotifier(),
        pricer=chain_pricer(chain.w3, m),
        ledger_from_first_snapshot=True,
        out=lambda _line: None,
    )
    tasks.monitor(mp)
    return name

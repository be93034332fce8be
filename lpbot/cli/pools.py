"""``lpbot pools health``: the configured pools ranked by health under the ``[health]`` rule.

The pools of a chain are those its manifest lists (the devnet's, or the registry's for a live
chain) and those ``[[positions]]`` name on it. Each is read at the latest block with its
initialized ticks, its tokens' marks from the chain's price source and its fee rate over the
last day (``lpbot.execution.health``). Ranked: healthy pools first, then by the depth within 1%
(both sides). Thin: the numbers come from the service, this prints them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import click

from lpbot.cli.common import app, config_option, emit_json, json_option, table

if TYPE_CHECKING:
    from lpbot.app import App
    from lpbot.execution.health import PoolRead

__all__ = ["pools"]


@dataclass(frozen=True)
class _Pool:
    chain: str
    name: str
    address: str
    symbols: tuple[str, str]
    decimals: tuple[int, int]
    positions: tuple[str, ...]


def configured_pools(a: App, chain: str | None) -> list[_Pool]:
    """The pools of the chain(s): the manifest's, then those positions name (by address)."""
    from eth_utils.address import to_checksum_address

    from lpbot.errors import ConfigError

    names = [chain] if chain else list(a.config.chains)
    if chain and chain not in a.config.chains:
        raise ConfigError(f"--chain {chain}: no such chain in [chains] (have: "
                          f"{', '.join(a.config.chains)})")  # fmt: skip
    out: dict[tuple[str, str], _Pool] = {}
    for name in names:
        manifest = a.manifest(name)
        held: dict[str, list[str]] = {}
        for pos in a.config.positions:
            if pos.chain != name:
                continue
            try:
                address = manifest.pool(pos.pool).address
            except KeyError:
                address = pos.pool
            held.setdefault(to_checksum_address(address), []).append(pos.name)
        for info in manifest.pools:
            address = to_checksum_address(info.address)
            out[(name, address)] = _Pool(
                name,
                f"{info.token0}/{info.token1}-{info.fee}",
                address,
                (info.token0, info.token1),
                (manifest.token(info.token0).decimals, manifest.token(info.token1).decimals),
                tuple(held.pop(address, [])),
            )
        for address, held_by in held.items():
            symbols = a.position_symbols(held_by[0])
            s0, s1 = symbols[0], symbols[1]
            book = a.book(name)  # the symbols were read into it (App.position_symbols)
            decimals = tuple(book.symbol_token(s).decimals for s in (s0, s1))
            out[(name, address)] = _Pool(
                name, f"{s0}/{s1}", address, (s0, s1), (decimals[0], decimals[1]), tuple(held_by)
            )
    return list(out.values())


def rank(a: App, chain: str | None) -> list[tuple[_Pool, PoolRead]]:
    """Every configured pool's health, healthy first, then by depth within 1% (both sides)."""
    from lpbot.execution.health import fetch_pool_health

    rule = a.config.health.rule()
    rows: list[tuple[_Pool, PoolRead]] = []
    readers: dict[str, Any] = {}
    for p in configured_pools(a, chain):
        if p.chain not in readers:
            from lpbot.chain.reader import PoolReader

            c = a.manifest(p.chain).contracts
            readers[p.chain] = PoolReader(
                a.w3(p.chain), multicall=c["Multicall3"], tick_lens=c["TickLens"]
            )
        read = fetch_pool_health(
            readers[p.chain],
            p.address,
            pricer=a.pricer(p.chain),
            symbols=p.symbols,
            decimals=p.decimals,
            rule=rule,
        )
        rows.append((p, read))
    rows.sort(key=lambda r: (not r[1].health.healthy, -r[1].health.depth(100).usd))
    return rows


def _json(rows: list[tuple[_Pool, PoolRead]], rule: Any) -> dict[str, Any]:
    return {
        "rule": rule.describe(),
        "pools": [
            {
                "rank": i + 1,
                "chain": p.chain,
                "pool": p.name,
                "address": p.address,
                "positions": list(p.positions),
                "block": r.snapshot.block_number,
                **r.health.to_json(),
            }
            for i, (p, r) in enumerate(rows)
        ],
    }


@click.group()
@config_option
def pools() -> None:
    """The configured pools: their health under the [health] rule."""


@pools.command()
@config_option
@json_option
@click.option("--chain", help="only this chain's pools (a name in [chains])")
def health(as_json: bool, chain: str | None) -> int:
    """Rank the configured pools by health: depth within 1% and 2%, the spread of a trade,
    24-hour volume, fee APR and concentration."""
    a = app()
    rows = rank(a, chain)
    rule = a.config.health.rule()
    if as_json:
        emit_json(_json(rows, rule))
        return 0
    click.echo(f"pool health: rule {rule.describe()}")
    out = []
    for i, (p, r) in enumerate(rows):
        h = r.health
        d1, d2 = h.depth(100), h.depth(200)
        out.append(
            (
                i + 1,
                f"{p.chain}:{p.name}",
                h.verdict,
                f"{d1.down_usd:,.0f} / {d1.up_usd:,.0f}" + ("" if d1.complete else " +"),
                f"{d2.down_usd:,.0f} / {d2.up_usd:,.0f}" + ("" if d2.complete else " +"),
                "n/a" if h.spread.bps is None else f"{h.spread.bps:.1f}",
                "n/a" if h.volume_24h_usd is None else f"{h.volume_24h_usd:,.0f}",
                "n/a" if h.fee_apr is None else f"{h.fee_apr:.2%}",
                "n/a" if h.concentration is None else f"{h.concentration:.2f}",
                ", ".join(p.positions),
            )
        )
    table(
        None,
        ["#", "pool", "health", "depth ±1% $ (below / above)", "depth ±2% $", "spread bps",
         "24h volume $", "fee APR", "conc.", "positions"],
        out,
        empty="no pools configured",
        right=["spread bps", "24h volume $", "fee APR", "conc."],
    )  # fmt: skip
    for i, (p, r) in enumerate(rows):
        if r.health.problems:
            click.echo(f"  {i + 1}. {p.name}: " + "; ".join(r.health.problems))
    return 0

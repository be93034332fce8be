"""Positions grouped by chain, as ``lpbot status``, ``lpbot export`` and the dashboard show them.

One configuration may manage positions on several chains ([chains.NAME]); the store keeps each
position's chain id. A chain is shown by its configured name and chain id, in the order of
[chains]; a chain id in the store that this configuration no longer names is kept, shown by its
id after them (never dropped). Each chain's totals are the sums of its positions' ledgers at
their last snapshot (``lpbot.jobs.ledger``: exact ``Decimal`` USD, each line already rounded to
the cent), and the grand total is the sum of the chains' totals, line by line.

A transaction link goes to a chain's explorer only on a real chain: never on the devnet, nor on
a chain whose RPC URL is this machine (an Anvil fork keeps the chain id of the chain it forks,
but its transactions are on no explorer).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Self
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from lpbot.analytics.ledger import LedgerLines
    from lpbot.config import ChainConfig, Config

__all__ = [
    "EXPLORERS",
    "ChainGroup",
    "ChainRef",
    "Totals",
    "chain_refs",
    "configured_chains",
    "group_by_chain",
    "is_local_url",
]

# a transaction's page per chain id (the devnet has none)
EXPLORERS: dict[int, str] = {
    1: "https://etherscan.io/tx/",
    42161: "https://arbiscan.io/tx/",
    324: "https://explorer.zksync.io/tx/",
}

_ZERO = Decimal(0)


@dataclass(frozen=True, slots=True)
class ChainRef:
    """A chain positions are on: its chain id, its name in [chains] (None: this configuration
    does not name it) and its explorer's transaction page (None: not a real chain, or none
    known)."""

    chain_id: int
    name: str | None
    explorer: str | None = None

    @property
    def configured(self) -> bool:
        return self.name is not None

    @property
    def title(self) -> str:
        """``arbitrum (chain 42161)``, or ``chain 5 (not in this configuration)``."""
        if self.name is None:
            return f"chain {self.chain_id} (not in this configuration)"
        return f"{self.name} (chain {self.chain_id})"

    def tx_link(self, tx_hash: str | None) -> str | None:
        """The transaction's page on the chain's explorer, or None."""
        return f"{self.explorer}{tx_hash}" if self.explorer and tx_hash else None


@dataclass(frozen=True, slots=True)
class Totals:
    """Ledger lines summed over positions (USD, exact ``Decimal``): ``value``, ``fees``,
    ``il``, ``hedge_pnl``, ``funding``, ``gas`` (paid, >= 0), ``net`` (against holding);
    ``ledgers``: how many positions' ledgers are in the sums."""

    value: Decimal = _ZERO
    fees: Decimal = _ZERO
    il: Decimal = _ZERO
    hedge_pnl: Decimal = _ZERO
    funding: Decimal = _ZERO
    gas: Decimal = _ZERO
    net: Decimal = _ZERO
    ledgers: int = 0

    @classmethod
    def of_ledger(cls, usd: LedgerLines) -> Self:
        """One position's ledger lines (USD) at its last snapshot."""
        return cls(
            usd.value, usd.fees, usd.il, usd.hedge_pnl, usd.funding, usd.gas, usd.net, ledgers=1
        )

    def __add__(self, other: Totals) -> Totals:
        return Totals(*(getattr(self, f.name) + getattr(other, f.name) for f in fields(self)))

    @classmethod
    def sum(cls, items: Iterable[Totals]) -> Totals:
        out = Totals()
        for t in items:
            out = out + t
        return out

    def as_json(self) -> dict[str, Any]:
        """``{"value_usd": "1234.56", ..., "ledgers": 2}``: Decimal strings, exact."""
        out: dict[str, Any] = {
            f"{f.name}_usd": str(getattr(self, f.name)) for f in fields(self) if f.name != "ledgers"
        }
        out["ledgers"] = self.ledgers
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Totals:
        """``as_json``'s output read back (exact)."""
        figures = {
            f.name: Decimal(data[f"{f.name}_usd"]) for f in fields(cls) if f.name != "ledgers"
        }
        return Totals(**figures, ledgers=int(data["ledgers"]))

    def line(self) -> str:
        """The totals as ``lpbot status`` prints them."""
        return (
            f"value ${self.value:,.2f}, fees ${self.fees:,.2f}, IL ${self.il:,.2f}, hedge "
            f"${self.hedge_pnl:,.2f}, funding ${self.funding:,.2f}, gas ${self.gas:,.2f}: net "
            f"${self.net:,.2f}"
        )


@dataclass(frozen=True)
class ChainGroup:
    """A chain's positions (the items given, in their order), the names among them, its
    totals, and the names whose ledger is not in them (none recorded, or it cannot be read)."""

    chain: ChainRef
    positions: tuple[Mapping[str, Any], ...] = ()
    names: tuple[str, ...] = ()
    totals: Totals = field(default_factory=Totals)
    without_ledger: tuple[str, ...] = ()

    def as_json(self) -> dict[str, Any]:
        return {
            "name": self.chain.name,
            "chain_id": self.chain.chain_id,
            "configured": self.chain.configured,
            "positions": list(self.names),
            "nfts": len(self.positions),
            "open": sum(1 for p in self.positions if p.get("state") == "open"),
            "totals": self.totals.as_json(),
            "without_ledger": list(self.without_ledger),
        }


def is_local_url(url: str) -> bool:
    """True for a URL to this machine (``localhost``, 127.0.0.0/8, ``::1``)."""
    host = (urlsplit(url).hostname or "").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _chain_id(
    config: Config, name: str, chain: ChainConfig, environ: Mapping[str, str]
) -> int | None:
    """A configured chain's id without connecting: its ``chain_id``, its registry name's, or
    the devnet manifest's (None when the manifest cannot be read)."""
    from lpbot.chain.registry import CHAINS
    from lpbot.errors import ConfigError

    if chain.chain_id is not None:
        return chain.chain_id
    if not chain.is_devnet:
        return next((c.chain_id for c in CHAINS.values() if c.name == name), None)
    try:
        return config.resolve_chain(name, environ).chain_id
    except ConfigError:
        return None


def _explorer(chain: ChainConfig, chain_id: int, environ: Mapping[str, str]) -> str | None:
    if chain.is_devnet:
        return None
    url = chain.rpc_url or (environ.get(chain.rpc_url_env) if chain.rpc_url_env else None)
    if url and is_local_url(url):
        return None
    return EXPLORERS.get(chain_id)


def configured_chains(config: Config, environ: Mapping[str, str]) -> list[ChainRef]:
    """Every chain in [chains] whose id is known here, in the configuration's order."""
    out: list[ChainRef] = []
    seen: set[int] = set()
    for name, chain in config.chains.items():
        cid = _chain_id(config, name, chain, environ)
        if cid is None or cid in seen:
            continue
        seen.add(cid)
        out.append(ChainRef(cid, name, _explorer(chain, cid, environ)))
    return out


def chain_refs(configured: Sequence[ChainRef], stored: Iterable[int]) -> list[ChainRef]:
    """The configured chains, then each other chain id of ``stored`` (the store's), by id."""
    known = {c.chain_id for c in configured}
    extra = sorted({int(cid) for cid in stored} - known)
    return [*configured, *(ChainRef(cid, None) for cid in extra)]


def group_by_chain(
    configured: Sequence[ChainRef],
    positions: Sequence[Mapping[str, Any]],
    ledgers: Mapping[str, Totals],
) -> tuple[list[ChainGroup], Totals]:
    """``positions`` (mappings with ``chain_id`` and ``name``) under their chain, with each
    chain's totals from ``ledgers`` (a position name's ledger lines; a name counts on the
    chain of its last entry) and the grand total, the sum of the chains'.

    Every configured chain has a group, with or without positions; a chain id of a position
    that the configuration does not name has one after them."""
    refs = chain_refs(configured, (int(p["chain_id"]) for p in positions))
    home: dict[str, int] = {str(p["name"]): int(p["chain_id"]) for p in positions}
    groups: list[ChainGroup] = []
    for ref in refs:
        mine = tuple(p for p in positions if int(p["chain_id"]) == ref.chain_id)
        names = tuple(dict.fromkeys(str(p["name"]) for p in mine))
        counted = [n for n in names if home[n] == ref.chain_id]
        groups.append(
            ChainGroup(
                ref,
                mine,
                names,
                Totals.sum(ledgers[n] for n in counted if n in ledgers),
                tuple(n for n in counted if n not in ledgers),
            )
        )
    return groups, Totals.sum(g.totals for g in groups)


def rows_by_chain(
    rows: Sequence[Mapping[str, Any]],
    refs: Sequence[ChainRef],
    positions: Iterable[tuple[str, int, int]],
    rebalances: Mapping[int, int],
) -> list[dict[str, Any]]:
    """``lpbot export``'s rows, each with ``chain`` (its name in [chains], else None) and
    ``chain_id``, grouped by chain in ``refs``' order (the order within a chain kept), rows on
    no chain (hedge fills: the venue's) last.

    ``positions``: the store's (name, NFT token id, chain id); ``rebalances``: a rebalance's id
    -> the chain id of its position. A row's chain is its NFT's (name and token id), else its
    name's last NFT's, else its rebalance's (``rebalance:ID``)."""
    by_nft: dict[tuple[str, int], int] = {}
    by_name: dict[str, int] = {}
    for name, token_id, chain_id in positions:
        by_nft[(name, int(token_id))] = int(chain_id)
        by_name[name] = int(chain_id)
    names = {c.chain_id: c.name for c in refs}
    order = {c.chain_id: i for i, c in enumerate(refs)}
    out: list[dict[str, Any]] = []
    for row in rows:
        where = str(row.get("position") or "")
        token = row.get("token_id")
        cid: int | None
        if token is not None and (where, int(token)) in by_nft:
            cid = by_nft[(where, int(token))]
        elif where in by_name:
            cid = by_name[where]
        elif where.startswith("rebalance:") and where[10:].isdigit():
            cid = rebalances.get(int(where[10:]))
        else:
            cid = None
        out.append({**row, "chain": names.get(cid) if cid is not None else None, "chain_id": cid})

    def rank(row: Mapping[str, Any]) -> tuple[int, int]:
        cid = row["chain_id"]
        if cid is None:
            return (2, 0)
        return (0, order[cid]) if cid in order else (1, cid)  # an id no ref names: by id

    out.sort(key=rank)
    return out

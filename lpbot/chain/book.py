"""The address book of one chain: its tokens (symbol, decimals) and Uniswap V3 pools.

It starts from what is known without asking (the devnet's manifest, or the chain registry's tokens
and well-known pools for a live chain: ``registry_manifest``) and reads the rest from the
contracts the first time it is asked, then keeps it:

- a token's ``symbol()`` (an ABI string, or a ``bytes32`` on older tokens such as MKR; the address
  when it has none) and ``decimals()`` (a token without it is refused: no amount of it can be
  shown or valued);
- a pool given by address: its ``token0()``, ``token1()`` and ``fee()``, accepted only when the
  chain's ``UniswapV3Factory.getPool`` returns that very address; a pool given by its tokens and
  fee: the factory's ``getPool``.

Prices are keyed by symbol, so two tokens that call themselves by one symbol are told apart by
their address (the second ``USDC`` read becomes ``USDC.1a2b``, more digits while that is taken):
a copycat token never takes the real one's marks. A token read from the chain calling itself by
a stablecoin's name (``pricing.base.STABLECOINS``, in any case) that is not one of the chain's
stablecoins is told apart even when it is read first, so the real DAI read later is still
``DAI``. Whether a token is a USD stablecoin is the registry's knowledge of the chain
(``ChainInfo.stablecoins``), or the devnet manifest's for the devnet.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, Literal

from eth_abi.abi import decode
from eth_abi.exceptions import DecodingError
from eth_utils.address import is_address, to_checksum_address
from web3 import Web3
from web3.exceptions import BadFunctionCallOutput, ContractLogicError

from lpbot.chain import artifacts
from lpbot.chain.registry import CHAINS, chain
from lpbot.devnet.manifest import Accounts, Manifest, PoolInfo, TokenInfo
from lpbot.errors import Refused, RetryLater
from lpbot.pricing.base import STABLECOINS
from lpbot.pricing.pools import FoundPool, PoolRef
from lpbot.uniswap.pool import FEE_TICK_SPACING
from lpbot.uniswap.pool_address import compute_pool_address, sort_tokens

log = logging.getLogger(__name__)

ZERO = "0x0000000000000000000000000000000000000000"
SYMBOL = "0x95d89b41"  # symbol()
DECIMALS = "0x313ce567"  # decimals()
# what a symbol read from a token may hold: the rest becomes "_" (a pool is named "A/B-fee")
_UNSAFE = re.compile(r"[^A-Za-z0-9.+$_-]")
# a stablecoin's name in any letters (the hedge reads symbols regardless of case)
_STABLE_NAMES = frozenset(s.upper() for s in STABLECOINS)


class NotAToken(Refused):
    """The address is not an ERC-20 token this chain can value (no code, no ``decimals()``)."""


class UnknownPool(Refused):
    """No Uniswap V3 pool of this chain answers to the name, address or tokens given."""


def _call(w3: Web3, address: str, data: str) -> bytes:
    try:
        return bytes(w3.eth.call({"to": to_checksum_address(address), "data": data}))  # type: ignore[typeddict-item]
    except (ContractLogicError, BadFunctionCallOutput):
        return b""
    except OSError as exc:
        raise RetryLater(f"reading {address} on the chain failed: {exc}") from exc


def _symbol(raw: bytes) -> str | None:
    """``symbol()``'s answer: an ABI string, else a NUL-padded ``bytes32``; None when neither."""
    text: str | None = None
    if len(raw) >= 64:
        try:
            text = str(decode(["string"], raw)[0])
        except (DecodingError, UnicodeDecodeError, ValueError, OverflowError):
            text = None  # not an ABI string: a bytes32 is tried next
    if text is None and len(raw) == 32:
        text = raw.rstrip(b"\0").decode("utf-8", errors="replace")
    if not text or not text.strip():
        return None
    return _UNSAFE.sub("_", text.strip())[:24]


def fetch_token(w3: Web3, address: str) -> TokenInfo:
    """Token ``address``'s symbol and decimals as its contract answers (``symbol()``,
    ``decimals()``); ``NotAToken`` when it has no code or no ``decimals()``."""
    checksummed = to_checksum_address(address)
    try:
        code = w3.eth.get_code(checksummed)
    except OSError as exc:
        raise RetryLater(f"reading {checksummed} on the chain failed: {exc}") from exc
    if not code:
        raise NotAToken(f"{checksummed} is not a token on this chain: no contract there")
    raw = _call(w3, checksummed, DECIMALS)
    value = int.from_bytes(raw[:32], "big") if len(raw) >= 32 else None
    if value is None or value > 255:
        raise NotAToken(
            f"{checksummed} is not an ERC-20 token: it has no decimals() (amounts of it cannot "
            "be read)"
        )
    symbol = _symbol(_call(w3, checksummed, SYMBOL)) or checksummed
    return TokenInfo(symbol=symbol, address=str(checksummed), decimals=value)


class AddressBook:
    """The tokens and pools of one chain, known or read from it (see the module docstring)."""

    def __init__(
        self,
        w3: Web3,
        *,
        chain_id: int,
        contracts: dict[str, str],
        tokens: Iterable[TokenInfo] = (),
        pools: Iterable[PoolInfo] = (),
        stablecoins: Iterable[str] = (),
    ) -> None:
        self.w3 = w3
        self.chain_id = chain_id
        self.contracts = dict(contracts)
        self._tokens: dict[str, TokenInfo] = {}  # lower-case address -> token
        self._by_symbol: dict[str, TokenInfo] = {}
        self._pools: dict[str, PoolInfo] = {}  # lower-case address -> pool
        self._stables = {a.lower() for a in stablecoins}
        self._routes_tried: set[str] = set()
        for t in tokens:
            self._add_token(t)
        for p in pools:
            self._pools[p.address.lower()] = p

    @classmethod
    def of(cls, w3: Web3, manifest: Manifest) -> AddressBook:
        """The book of ``manifest``'s chain, starting from its tokens and pools; its stablecoins
        are the registry's for a chain of the registry (a shaped devnet too), else the devnet
        manifest's."""
        known = CHAINS.get(manifest.chain_id)
        stables = known.stablecoins if known is not None else manifest.stablecoin_addresses()
        return cls(
            w3,
            chain_id=manifest.chain_id,
            contracts=dict(manifest.contracts),
            tokens=manifest.tokens.values(),
            pools=manifest.pools,
            stablecoins=stables,
        )

    # ---------------------------------------------------------------------------- tokens

    def _add_token(self, token: TokenInfo, *, apart: bool = False) -> TokenInfo:
        """Keep ``token``; one whose symbol another token goes by (or any with ``apart``) is
        told apart by its address' first hex digits, more of them while that label is taken."""
        taken = self._by_symbol.get(token.symbol)
        if apart or (taken is not None and taken.address.lower() != token.address.lower()):
            digits = token.address[2:].lower()
            for n in range(4, 41):
                label = f"{token.symbol}.{digits[:n]}"
                owner = self._by_symbol.get(label)
                if owner is None or owner.address.lower() == token.address.lower():
                    break
            token = token.model_copy(update={"symbol": label})
        self._tokens[token.address.lower()] = token
        self._by_symbol[token.symbol] = token
        return token

    @property
    def tokens(self) -> dict[str, TokenInfo]:
        """Every token known so far, by symbol."""
        return dict(self._by_symbol)

    def token(self, address: str) -> TokenInfo:
        """Token ``address``: known, or read from its contract (``fetch_token``) and kept."""
        found = self._tokens.get(address.lower())
        if found is None:
            read = fetch_token(self.w3, address)
            # a stablecoin's name is the chain's stablecoin's, even before that one is read
            copycat = read.symbol.upper() in _STABLE_NAMES and not self.is_stablecoin(read.address)
            found = self._add_token(read, apart=copycat)
            log.info("token %s read from the chain: %s, %d decimals", address, found.symbol,
                     found.decimals)  # fmt: skip
        return found

    def symbol_token(self, symbol: str) -> TokenInfo:
        """The known token called ``symbol``; ``KeyError`` when none is."""
        return self._by_symbol[symbol]

    def is_stablecoin(self, token: str) -> bool:
        """Whether ``token`` (an address, or a known token's symbol) is a USD stablecoin of this
        chain."""
        if not is_address(token):
            found = self._by_symbol.get(token)
            if found is None:
                return False
            token = found.address
        return token.lower() in self._stables

    # ----------------------------------------------------------------------------- pools

    @property
    def pools(self) -> list[PoolInfo]:
        """Every pool known so far."""
        return list(self._pools.values())

    def _factory(self) -> Any:
        return self.w3.eth.contract(
            address=to_checksum_address(self.contracts["UniswapV3Factory"]),
            abi=artifacts.abi("UniswapV3Factory"),
        )

    def _pool_info(self, address: str, token0: str, token1: str, fee: int) -> PoolInfo:
        t0, t1 = self.token(token0), self.token(token1)
        info = PoolInfo(
            name=f"{t0.symbol}/{t1.symbol} {fee / 10_000:g}%",
            address=str(to_checksum_address(address)),
            token0=t0.symbol,
            token1=t1.symbol,
            fee=fee,
            tick_spacing=FEE_TICK_SPACING.get(fee, 0),
            price="read from the chain",
        )
        self._pools[address.lower()] = info
        return info

    def pool(self, name_or_address: str) -> PoolInfo:
        """A pool by a known name ("USDC/WETH 0.05%", "USDC/WETH-500") or by address (read from
        the pool and checked against the factory); ``UnknownPool`` otherwise."""
        key = name_or_address.lower()
        for p in self._pools.values():
            if key in (p.address.lower(), p.name.lower(), f"{p.token0}/{p.token1}-{p.fee}".lower()):
                return p
        if not is_address(name_or_address):
            known = ", ".join(f"{p.token0}/{p.token1}-{p.fee}" for p in self._pools.values())
            raise UnknownPool(
                f"{name_or_address!r} is not a pool of this chain: give the pool's address, or "
                f"one of: {known}"
            )
        address = to_checksum_address(name_or_address)
        c = self.w3.eth.contract(address=address, abi=artifacts.abi("UniswapV3Pool"))
        try:
            token0 = str(c.functions.token0().call())
            token1 = str(c.functions.token1().call())
            fee = int(c.functions.fee().call())
        except (ContractLogicError, BadFunctionCallOutput, ValueError):
            raise UnknownPool(f"{address} is not a Uniswap V3 pool on this chain") from None
        except OSError as exc:
            raise RetryLater(f"reading pool {address} on the chain failed: {exc}") from exc
        if str(self._factory().functions.getPool(token0, token1, fee).call()).lower() != key:
            raise UnknownPool(
                f"{address} is not a pool of this chain's Uniswap V3 factory "
                f"{self.contracts['UniswapV3Factory']}"
            )
        return self._pool_info(address, token0, token1, fee)

    def pool_of(self, token0: str, token1: str, fee: int) -> PoolInfo:
        """The pool of tokens ``token0``, ``token1`` (addresses) and ``fee``: known, or found by
        the factory's ``getPool``."""
        a, b = token0.lower(), token1.lower()
        for p in self._pools.values():
            pair = {self.symbol_token(p.token0).address.lower(),
                    self.symbol_token(p.token1).address.lower()}  # fmt: skip
            if pair == {a, b} and p.fee == fee:
                return p
        try:
            address = str(self._factory().functions.getPool(
                to_checksum_address(token0), to_checksum_address(token1), fee
            ).call())  # fmt: skip
        except OSError as exc:
            raise RetryLater(f"reading the factory's pools failed: {exc}") from exc
        if int(address, 16) == 0:
            raise UnknownPool(f"no Uniswap V3 pool of {token0}/{token1} fee {fee} on this chain")
        t0, t1 = sort_tokens(token0, token1)
        return self._pool_info(address, t0, t1, fee)

    def quote_index(self, pool: PoolInfo) -> Literal[0, 1]:
        """The token a pool's prices are shown in: the stablecoin (token0 when both are), else
        WETH, else token1."""
        if self.is_stablecoin(pool.token0):
            return 0
        if self.is_stablecoin(pool.token1):
            return 1
        return 0 if pool.token0 == "WETH" else 1

    def price_routes(self, symbol: str) -> list[FoundPool]:
        """The pools of token ``symbol`` against this chain's stablecoins and WETH that the
        factory has (each fee tier), with both tokens' decimals and the stablecoin's or WETH's
        address: what a pricer needs to mark a token no known pool prices. Asked once per
        token."""
        if symbol in self._routes_tried or symbol not in self._by_symbol:
            return []
        self._routes_tried.add(symbol)
        token = self._by_symbol[symbol]
        others = [self._tokens[a] for a in self._stables if a in self._tokens]
        if "WETH" in self._by_symbol:
            others.append(self._by_symbol["WETH"])
        out = []
        for other in others:
            if other.address.lower() == token.address.lower():
                continue
            for fee in FEE_TICK_SPACING:
                try:
                    p = self.pool_of(token.address, other.address, fee)
                except UnknownPool:
                    continue
                d0, d1 = self.symbol_token(p.token0).decimals, self.symbol_token(p.token1).decimals
                ref = PoolRef(p.address, p.token0, p.token1, p.fee)
                out.append(FoundPool(ref, d0, d1, other.address))
        return out


class BookSymbols(Mapping[str, tuple[str, int]]):
    """Token address -> (symbol, decimals) over an ``AddressBook`` (``ExecutionContext.symbols``):
    a token not known yet is read from the chain; one that is no token is missing (KeyError)."""

    def __init__(self, book: AddressBook) -> None:
        self.book = book

    def __getitem__(self, address: str) -> tuple[str, int]:
        try:
            t = self.book.token(address)
        except NotAToken as exc:
            raise KeyError(address) from exc
        return t.symbol, t.decimals

    def __iter__(self) -> Iterator[str]:
        return iter([t.address for t in self.book.tokens.values()])

    def __len__(self) -> int:
        return len(self.book.tokens)


# ---------------------------------------------------------------- a live chain's manifest


def registry_manifest(
    w3: Web3, rpc_url: str, *, fork_url: str | None = None, accounts: Iterable[str] = ()
) -> Manifest:
    """A chain of the registry described by its addresses (no local accounts unless given): what
    ``lpbot run`` starts from on a chain configured by its RPC URL; its other tokens and pools
    are read from the chain by the ``AddressBook``."""
    chain_id = w3.eth.chain_id
    info = chain(chain_id)
    accounts = list(accounts)
    c = info.contracts
    pools = []
    for a, b, fee in info.well_known_pools:
        ta, tb = info.tokens[a], info.tokens[b]
        t0, _t1 = sort_tokens(ta.address, tb.address)
        sym0, sym1 = (a, b) if t0 == ta.address else (b, a)
        address = compute_pool_address(
            c["UniswapV3Factory"],
            ta.address,
            tb.address,
            fee,
            info.pool_init_code_hash,
            zksync=info.zksync_create2,  # a live zkSync Era chain (never forked)
        )
        pools.append(
            PoolInfo(
                name=f"{sym0}/{sym1} {fee / 10_000:g}%",
                address=address,
                token0=sym0,
                token1=sym1,
                fee=fee,
                tick_spacing=FEE_TICK_SPACING[fee],
                price="as forked",
            )
        )
    block = w3.eth.get_block("latest")
    return Manifest(
        chain_id=chain_id,
        rpc_url=rpc_url,
        block=block["number"],
        timestamp=block["timestamp"],
        fork_url=fork_url,
        contracts=dict(c),
        pool_init_code_hash=info.pool_init_code_hash,
        tokens={
            s: TokenInfo(symbol=s, address=t.address, decimals=t.decimals)
            for s, t in info.tokens.items()
        },
        pools=pools,
        accounts=Accounts(
            deployer=accounts[0] if accounts else "",
            lps=accounts[1:5],
            traders=accounts[5:8],
            bot=accounts[8] if len(accounts) > 8 else "",
            safe_owners=accounts[9:12],
        ),
        safe=None,
        price_feeds=dict(info.price_feeds),
    )


__all__ = [
    "ZERO",
    "AddressBook",
    "BookSymbols",
    "NotAToken",
    "UnknownPool",
    "fetch_token",
    "registry_manifest",
]

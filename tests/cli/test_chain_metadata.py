"""Token metadata, prices and pools read from the chain on a chain configured only by its RPC URL.

On a devnet shaped like Ethereum (the registry's addresses), a token the registry does not list
("ZRO", 9 decimals) gets a pool through the real factory, and a position in it: ``lpbot position
show`` finds the pool through the factory, names the token as its contract does, scales its
amounts by its own decimals and marks it through the pool against WETH. A pool whose token is no
ERC-20 token, and an address that is no pool, are refused in one line.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from web3.logs import DISCARD

from lpbot import cli
from lpbot.chain.book import AddressBook, NotAToken, fetch_token, registry_manifest
from lpbot.chain.registry import CHAINS
from lpbot.devnet.deploy import GAS, Deployer, contract
from lpbot.jobs.tasks import policy_approves
from lpbot.pricing.base import PricingConfig
from lpbot.pricing.marks import chain_pricer
from lpbot.report.dryrun import _marks_json
from lpbot.store import migrate
from lpbot.store.session import make_engine, session_factory
from lpbot.uniswap.tick_math import get_sqrt_ratio_at_tick
from tests.conftest import Devnet, shaped_devnet

pytestmark = pytest.mark.devnet

INFO = CHAINS[1]
FEE = 3000
# 1 ZRO = 0.001 WETH: raw price 10**6 (ZRO token0) or 10**-6 (WETH token0), ~138,163 ticks
TICK = 138_180

# runtime code answering decimals() with 18 and every other call (symbol()) with the bytes32
# "MKR" (as Maker's token does): PUSH1 0 CALLDATALOAD PUSH1 0xe0 SHR PUSH4 decimals EQ
# PUSH1 0x38 JUMPI PUSH32 "MKR" PUSH1 0 MSTORE PUSH1 32 PUSH1 0 RETURN JUMPDEST PUSH1 18 ...
BYTES32_TOKEN = (
    "0x600035" "60e01c" "63313ce567" "14" "6038" "57"
    "7f" + b"MKR".ljust(32, b"\0").hex() + "600052" "60206000f3"
    "5b" "6012" "600052" "60206000f3"
)  # fmt: skip


@pytest.fixture(scope="module")
def eth() -> Iterator[Devnet]:
    with shaped_devnet("ethereum") as devnet:
        yield devnet


def _tx(devnet: Devnet, fn: Any, sender: str) -> Any:
    receipt = devnet.w3.eth.wait_for_transaction_receipt(fn.transact({"from": sender, "gas": GAS}))
    assert receipt["status"] == 1
    return receipt


def _new_pool(devnet: Devnet, token: str, tick: int) -> str:
    """A pool of ``token`` and WETH created through the registry's factory, its price set."""
    factory = contract(devnet.w3, "UniswapV3Factory", INFO.contracts["UniswapV3Factory"])
    weth = INFO.tokens["WETH"].address
    trader = devnet.manifest.accounts.traders[0]
    _tx(devnet, factory.functions.createPool(token, weth, FEE), trader)
    address = str(factory.functions.getPool(token, weth, FEE).call())
    pool = contract(devnet.w3, "UniswapV3Pool", address)
    tick = tick if int(token, 16) < int(weth, 16) else -tick
    _tx(devnet, pool.functions.initialize(get_sqrt_ratio_at_tick(tick)), trader)
    return address


@pytest.fixture(scope="module")
def zro(eth: Devnet) -> tuple[str, str, int]:
    """The ZRO token, its pool against WETH and a trader's position in it."""
    w3, trader = eth.w3, eth.manifest.accounts.traders[0]
    token = Deployer(w3).deploy("TestERC20", "Zero Test Token", "ZRO", 9)
    _tx(eth, token.functions.mint(trader, 10_000 * 10**9), trader)
    pool = _new_pool(eth, token.address, TICK)
    npm_address = INFO.contracts["NonfungiblePositionManager"]
    weth = contract(w3, "TestERC20", INFO.tokens["WETH"].address)
    for erc20 in (token, weth):
        _tx(eth, erc20.functions.approve(npm_address, 2**256 - 1), trader)
    zro_first = int(token.address, 16) < int(weth.address, 16)
    t0, t1 = (token.address, weth.address) if zro_first else (weth.address, token.address)
    center = TICK if zro_first else -TICK
    a0, a1 = (5_000 * 10**9, 5 * 10**18) if zro_first else (5 * 10**18, 5_000 * 10**9)
    npm = contract(w3, "NonfungiblePositionManager", npm_address)
    params = (t0, t1, FEE, center - 6000, center + 6000, a0, a1, 0, 0, trader, 2**40)
    receipt = _tx(eth, npm.functions.mint(params), trader)
    (event,) = npm.events.IncreaseLiquidity().process_receipt(receipt, errors=DISCARD)
    return token.address, pool, int(event.args.tokenId)


@pytest.fixture
def lpbot(
    eth: Devnet, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> Callable[..., tuple[int, str, str]]:
    """``lpbot ARGS`` with a configuration naming the chain by its RPC URL alone."""
    config = tmp_path / "lpbot.toml"
    config.write_text(
        f'version = 1\ndata_dir = "{tmp_path / "data"}"\n[chains.ethereum]\nrpc_url = "{eth.url}"\n'
    )
    assert "manifest" not in config.read_text()

    def run(*argv: str) -> tuple[int, str, str]:
        capsys.readouterr()
        code = cli.main(["--config", str(config), *argv])
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    return run


def test_show_reads_a_token_and_pool_the_registry_does_not_list_from_the_chain(
    eth: Devnet, zro: tuple[str, str, int], lpbot: Callable[..., tuple[int, str, str]]
) -> None:
    _token, pool_address, token_id = zro
    assert "ZRO" not in INFO.tokens
    registry_pools = {p.address.lower() for p in eth.manifest.pools}
    assert pool_address.lower() not in registry_pools

    code, out, err = lpbot("position", "show", str(token_id), "--json")
    assert code == 0, err
    report: dict[str, Any] = json.loads(out)
    pool = report["pool"]
    assert pool["address"].lower() == pool_address.lower()  # found through the factory
    tokens = {pool["token0"]["symbol"]: pool["token0"], pool["token1"]["symbol"]: pool["token1"]}
    assert set(tokens) == {"ZRO", "WETH"}
    assert (tokens["ZRO"]["decimals"], tokens["WETH"]["decimals"]) == (9, 18)
    # the price is in WETH per ZRO (WETH quotes a pair without a stablecoin), near 0.001
    assert pool["price_unit"] == "WETH per ZRO"
    assert Decimal("0.00099") < Decimal(pool["price"]) < Decimal("0.00101")
    # ZRO is marked through its pool against WETH, whose mark is the registry's route
    usd = {s: Decimal(v) for s, v in pool["marks"]["usd"].items()}
    assert pool_address in pool["marks"]["sources"]["ZRO"]
    zro_usd, weth_usd = usd["ZRO"], usd["WETH"]
    assert abs(zro_usd / weth_usd - Decimal("0.001")) < Decimal("0.00001")
    # the position's value is its amounts at those marks, each scaled by its own decimals
    npm = contract(
        eth.w3, "NonfungiblePositionManager", INFO.contracts["NonfungiblePositionManager"]
    )
    assert int(report["liquidity"]) == npm.functions.positions(token_id).call()[7]
    a0, a1 = int(report["amounts"]["amount0"]), int(report["amounts"]["amount1"])
    d0, d1 = pool["token0"]["decimals"], pool["token1"]["decimals"]
    m0, m1 = usd[pool["token0"]["symbol"]], usd[pool["token1"]["symbol"]]
    expected = Decimal(a0) / 10**d0 * m0 + Decimal(a1) / 10**d1 * m1
    assert abs(Decimal(report["value"]["principal_usd"]) - expected) <= Decimal("0.01")

    code, text, err = lpbot("position", "show", str(token_id))
    assert code == 0, err
    assert "ZRO" in text and "WETH per ZRO" in text


def test_a_pool_of_a_non_token_and_an_address_that_is_no_pool_are_refused_in_one_line(
    eth: Devnet, lpbot: Callable[..., tuple[int, str, str]]
) -> None:
    multicall = INFO.contracts["Multicall3"]  # a contract, but no ERC-20 token
    pool = _new_pool(eth, multicall, 0)
    code, _out, err = lpbot("position", "quote", "--pool", pool, "--capital", "1 WETH")
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert f"{multicall} is not an ERC-20 token" in lines[0]

    usdc = INFO.tokens["USDC"].address
    code, _out, err = lpbot("position", "quote", "--pool", usdc, "--capital", "1 WETH")
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert f"{usdc} is not a Uniswap V3 pool on this chain" in lines[0]


def test_the_book_reads_bytes32_symbols_and_tells_copycats_apart(eth: Devnet) -> None:
    w3 = eth.w3
    mkr = "0x000000000000000000000000000000000000b332"
    w3.provider.make_request("anvil_setCode", [mkr, BYTES32_TOKEN])  # type: ignore[arg-type]
    token = fetch_token(w3, mkr)
    assert (token.symbol, token.decimals) == ("MKR", 18)

    book = AddressBook.of(w3, eth.manifest)
    real = INFO.tokens["USDC"].address
    assert book.is_stablecoin(real) and book.is_stablecoin("USDC")
    fake = Deployer(w3).deploy("TestERC20", "USD Coin", "USDC", 6).address
    copy = book.token(fake)
    assert copy.symbol == f"USDC.{fake[2:6].lower()}"  # never the real USDC's marks
    assert not book.is_stablecoin(fake) and not book.is_stablecoin(copy.symbol)
    assert book.symbol_token("USDC").address == real

    with pytest.raises(NotAToken, match="no contract there"):
        fetch_token(w3, "0x" + "ab" * 20)


def test_a_thin_pool_anyone_creates_does_not_set_an_unlisted_tokens_mark(
    eth: Devnet, zro: tuple[str, str, int], lpbot: Callable[..., tuple[int, str, str]]
) -> None:
    """Anyone may create ZRO's 1% pool through the factory at a thousandth of the market's price
    and put a sliver of capital in one tick spacing: its in-range liquidity beats the real
    pool's, but it holds a fraction of its WETH. ZRO stays marked at the real pool's price."""
    token, real_pool, token_id = zro
    w3, attacker = eth.w3, eth.manifest.accounts.traders[1]
    snap = eth.snapshot()
    try:
        zro_token = contract(w3, "TestERC20", token)
        weth = contract(w3, "TestERC20", INFO.tokens["WETH"].address)
        _tx(eth, zro_token.functions.mint(attacker, 10_000 * 10**9), attacker)
        fake_tick = TICK - 69_080  # 1 ZRO = ~0.000001 WETH instead of ~0.001
        factory = contract(w3, "UniswapV3Factory", INFO.contracts["UniswapV3Factory"])
        _tx(eth, factory.functions.createPool(token, weth.address, 10_000), attacker)
        fake_pool = contract(w3, "UniswapV3Pool", factory.functions.getPool(
            token, weth.address, 10_000).call())  # fmt: skip
        zro_first = int(token, 16) < int(weth.address, 16)
        tick = fake_tick if zro_first else -fake_tick
        _tx(eth, fake_pool.functions.initialize(get_sqrt_ratio_at_tick(tick)), attacker)
        npm_address = INFO.contracts["NonfungiblePositionManager"]
        npm = contract(w3, "NonfungiblePositionManager", npm_address)
        for erc20 in (zro_token, weth):
            _tx(eth, erc20.functions.approve(npm_address, 2**256 - 1), attacker)
        lower = (tick // 200) * 200
        t0, t1 = (token, weth.address) if zro_first else (weth.address, token)
        # ZRO costs its issuer nothing; WETH is what a pool's depth is worth
        amounts = (10_000 * 10**9, 10**18) if zro_first else (10**18, 10_000 * 10**9)
        params = (t0, t1, 10_000, lower, lower + 200, *amounts, 0, 0, attacker, 2**40)
        _tx(eth, npm.functions.mint(params), attacker)
        real = contract(w3, "UniswapV3Pool", real_pool)
        # the attack's precondition: more in-range liquidity, far less WETH than the real pool
        assert fake_pool.functions.liquidity().call() > real.functions.liquidity().call()
        assert weth.functions.balanceOf(fake_pool.address).call() * 4 < weth.functions.balanceOf(
            real_pool).call()  # fmt: skip

        code, out, err = lpbot("position", "show", str(token_id), "--json")
        assert code == 0, err
        marks = json.loads(out)["pool"]["marks"]
        usd = {s: Decimal(v) for s, v in marks["usd"].items()}
        assert abs(usd["ZRO"] / usd["WETH"] - Decimal("0.001")) < Decimal("0.00001")
        assert real_pool in marks["sources"]["ZRO"]
    finally:
        eth.revert(snap)


def test_a_mark_no_feed_checks_is_labelled_and_never_auto_executed(
    eth: Devnet, zro: tuple[str, str, int], tmp_path: Path
) -> None:
    """ZRO's mark comes from a pool found through the factory, which anyone may create and
    move: the marks say so, and the auto-execute policy leaves a report valued at it to a
    person, whatever its value; a report at the feeds' checked marks it runs."""
    token, pool, _token_id = zro
    w3 = eth.w3
    manifest = registry_manifest(w3, eth.url)  # the chain as named by its RPC URL alone
    book = AddressBook.of(w3, manifest)
    assert book.token(token).symbol == "ZRO"
    pricer = chain_pricer(w3, manifest, book=book)
    block = w3.eth.block_number
    engine = make_engine(f"sqlite:///{tmp_path}/policy.db")
    migrate.upgrade(engine)
    sessions = session_factory(engine)

    def auto(symbols: tuple[str, str]) -> tuple[bool, list[str]]:
        marks = pricer.fetch_marks(list(symbols), block)
        report = {
            "checks": [{"name": "simulated", "ok": True, "detail": ""}],
            "dry_run": {"value_usd": "5"},
            "snapshot": {"block": block},
            "marks": _marks_json(marks, (*symbols, "WETH")),
        }
        return policy_approves(
            sessions, report, Decimal(1_000), can_sign=True, subject="position:test:1"
        )

    marks = pricer.fetch_marks(["ZRO", "WETH"], block)
    unchecked = [a for a in marks.alerts if a.kind == "unchecked"]
    assert [a.token for a in unchecked] == ["ZRO"]
    assert pool in unchecked[0].message

    ran, why = auto(("ZRO", "WETH"))
    assert not ran
    assert any("ZRO" in line and "no feed" in line for line in why), why
    ran, why = auto(("USDC", "WETH"))
    assert ran, why


def test_a_copycat_read_first_never_takes_a_stablecoins_name(eth: Devnet) -> None:
    """A token calling itself DAI, read before the chain's DAI (which the registry lists as a
    stablecoin by address only), is told apart by its address; the real DAI keeps its name and
    is the stablecoin ``DAI`` names."""
    w3 = eth.w3
    snap = eth.snapshot()
    try:
        book = AddressBook.of(w3, registry_manifest(w3, eth.url))
        fake = Deployer(w3).deploy("TestERC20", "Dai Stablecoin", "DAI", 18).address
        copy = book.token(fake)
        assert copy.symbol == f"DAI.{fake[2:6].lower()}"
        real = "0x6B175474E89094C44Da98b954EedeAC495271d0F"
        dai_code = BYTES32_TOKEN.replace(
            b"MKR".ljust(32, b"\0").hex(), b"DAI".ljust(32, b"\0").hex()
        )
        w3.provider.make_request("anvil_setCode", [real, dai_code])  # type: ignore[arg-type]
        assert book.token(real).symbol == "DAI"
        assert book.symbol_token("DAI").address.lower() == real.lower()
        assert book.is_stablecoin("DAI") and not book.is_stablecoin(copy.symbol)
        # a token naming itself after a copycat's label is told apart by a longer one
        squatter = Deployer(w3).deploy("TestERC20", "x", f"DAI.{fake[2:6].lower()}", 18).address
        assert book.token(squatter).symbol not in (copy.symbol, "DAI")
        assert book.symbol_token(copy.symbol).address == fake
        # so is one calling itself by a stablecoin's name in other letters (the hedge reads
        # symbols regardless of case)
        lower = Deployer(w3).deploy("TestERC20", "usd coin", "usdc", 6).address
        assert book.token(lower).symbol == f"usdc.{lower[2:6].lower()}"
    finally:
        eth.revert(snap)


def test_a_fresh_pool_anyone_creates_does_not_leave_a_token_unpriced_at_a_twap(
    eth: Devnet, zro: tuple[str, str, int]
) -> None:
    """Marks at a 10-minute TWAP: a ZRO pool created a moment ago has no TWAP to give (its
    oracle says 'OLD'), one created and never initialized has none ever ('I'); ZRO is still
    marked through its pool that has one."""
    token, real_pool, _token_id = zro
    w3, attacker = eth.w3, eth.manifest.accounts.traders[1]
    snap = eth.snapshot()
    try:
        eth.increase_time(700)  # the real pool's oracle reaches back 10 minutes
        factory = contract(w3, "UniswapV3Factory", INFO.contracts["UniswapV3Factory"])
        weth = INFO.tokens["WETH"].address
        _tx(eth, factory.functions.createPool(token, weth, 500), attacker)
        fresh = contract(w3, "UniswapV3Pool", factory.functions.getPool(token, weth, 500).call())
        _tx(eth, fresh.functions.initialize(get_sqrt_ratio_at_tick(0)), attacker)
        _tx(eth, factory.functions.createPool(token, weth, 10_000), attacker)
        manifest = registry_manifest(w3, eth.url)
        book = AddressBook.of(w3, manifest)
        book.token(token)
        pricer = chain_pricer(w3, manifest, PricingConfig(twap_seconds=600), book=book)
        marks = pricer.fetch_marks(["ZRO", "WETH"], w3.eth.block_number)
        assert abs(marks.usd("ZRO") / marks.usd("WETH") - Decimal("0.001")) < Decimal("0.00001")
        assert real_pool in marks.marks["ZRO"].route_text
    finally:
        eth.revert(snap)

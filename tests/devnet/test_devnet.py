"""The devnet as a user meets it: up/down, the manifest, the market, the reader."""

from __future__ import annotations

from pathlib import Path

import pytest
from eth_utils.address import to_checksum_address

from lpbot.chain import artifacts
from lpbot.chain.reader import PoolReader
from lpbot.chain.rpc import connect, round_trips
from lpbot.devnet import anvil, service
from lpbot.devnet.deploy import contract
from lpbot.devnet.market import run_market
from lpbot.errors import Refused
from lpbot.uniswap.pool_address import compute_pool_address
from lpbot.uniswap.tick_math import MAX_SQRT_RATIO, MIN_SQRT_RATIO
from tests.conftest import Devnet

pytestmark = pytest.mark.devnet


def test_up_status_down_stops_only_its_own_anvil(tmp_path: Path) -> None:
    bystander = anvil.start()  # another anvil on this machine must survive `down`
    try:
        record, manifest, _seconds = service.up(tmp_path)
        assert anvil.is_anvil_pid(record.pid)
        found = service.status(tmp_path)
        assert found is not None and found[2] >= manifest.block
        with pytest.raises(Refused):
            service.up(tmp_path)
        assert service.down(tmp_path) is True
        assert not anvil.is_anvil_pid(record.pid)
        assert service.status(tmp_path) is None
        assert service.down(tmp_path) is False
        assert bystander.process.poll() is None
    finally:
        bystander.stop()


def test_down_then_up_keeps_the_chain_and_its_port(tmp_path: Path) -> None:
    """What happened on the devnet outlives `down`: the next `up` loads it, on the same port
    (where a bot's configuration points); `reset` goes back to the seeded state."""
    import requests
    from web3 import HTTPProvider, Web3

    record, manifest, _seconds = service.up(tmp_path)
    try:
        # a client that hangs up before `down`, as a finished command does (a connection kept
        # open to the old Anvil would keep its port busy for a while)
        session = requests.Session()
        w3 = Web3(HTTPProvider(record.rpc_url, session=session))
        safe = contract(w3, "SafeL2", manifest.safe or "")
        npm = contract(
            w3, "NonfungiblePositionManager", manifest.contracts["NonfungiblePositionManager"]
        )
        a, b = manifest.accounts.traders[0], manifest.accounts.traders[1]
        sent = w3.eth.send_transaction({"from": a, "to": b, "value": 12345})
        w3.eth.wait_for_transaction_receipt(sent)
        balance, block = w3.eth.get_balance(b), w3.eth.block_number
        nfts = npm.functions.balanceOf(manifest.safe).call()
        nonce = safe.functions.nonce().call()
        session.close()
        assert service.down(tmp_path) is True

        again, manifest2, _seconds = service.up(tmp_path)
        assert again.port == record.port and again.pid != record.pid
        w3 = connect(again.rpc_url)
        assert w3.eth.get_balance(b) == balance
        assert w3.eth.block_number >= block
        assert w3.eth.get_transaction_receipt(sent)["status"] == 1
        assert contract(w3, "SafeL2", manifest2.safe or "").functions.nonce().call() == nonce
        assert manifest2.contracts == manifest.contracts and manifest2.rpc_url == again.rpc_url
        npm2 = contract(w3, "NonfungiblePositionManager", npm.address)
        assert npm2.functions.balanceOf(manifest.safe).call() == nfts

        reset, _m, _s = service.reset(tmp_path)  # the seeded state again
        assert connect(reset.rpc_url).eth.get_balance(b) == balance - 12345
    finally:
        service.down(tmp_path)


def test_manifest_lists_real_contracts_and_pools(devnet: Devnet) -> None:
    m = devnet.manifest
    w3 = devnet.w3
    for name, address in m.contracts.items():
        assert len(w3.eth.get_code(to_checksum_address(address))) > 0, name
    # the pool bytecode is the official one: its hash is mainnet's init code hash
    assert m.pool_init_code_hash == (
        "0xe34f199b19b2b4f47f68442619d555527d244f78a3297ea89325f843f87b8b54"
    )
    assert {t.symbol: t.decimals for t in m.tokens.values()} == {
        "WETH": 18,
        "USDC": 6,
        "WBTC": 8,
    }
    assert sorted({p.fee for p in m.pools}) == [500, 3000, 10000]
    for p in m.pools:
        expected = compute_pool_address(
            m.contracts["UniswapV3Factory"],
            m.token(p.token0).address,
            m.token(p.token1).address,
            p.fee,
            m.pool_init_code_hash,
        )
        assert p.address == expected
        pool = contract(w3, "UniswapV3Pool", p.address)
        assert pool.functions.liquidity().call() > 0
    safe = contract(w3, "SafeL2", m.safe or "")
    assert safe.functions.getThreshold().call() == 2
    assert safe.functions.getOwners().call() == m.accounts.safe_owners


def test_seeded_liquidity_has_a_realistic_shape(devnet: Devnet) -> None:
    m = devnet.manifest
    npm = contract(
        devnet.w3, "NonfungiblePositionManager", m.contracts["NonfungiblePositionManager"]
    )
    owners = {
        npm.functions.ownerOf(i).call() for i in range(1, npm.functions.totalSupply().call() + 1)
    }
    assert len(owners) >= 4  # several LP accounts, not one
    widths = set()
    for i in range(1, 6):
        pos = npm.functions.positions(i).call()
        widths.add(pos[6] - pos[5])
    assert len(widths) == 5  # nested ranges of different widths, one of them full range


def test_market_moves_the_price_and_pays_fees(chain: Devnet) -> None:
    m = chain.manifest
    info = m.pool("USDC/WETH-500")
    pool = contract(chain.w3, "UniswapV3Pool", info.address)
    before = pool.functions.slot0().call()[0]
    g0 = pool.functions.feeGrowthGlobal0X128().call()
    g1 = pool.functions.feeGrowthGlobal1X128().call()
    result = run_market(chain.w3, m, info, steps=6, vol=1.0, seed=3)
    assert result.trades >= 6 * 4
    assert pool.functions.slot0().call()[0] != before
    assert pool.functions.feeGrowthGlobal0X128().call() > g0
    assert pool.functions.feeGrowthGlobal1X128().call() > g1
    assert result.end_block > result.start_block


def test_reader_reads_in_one_round_trip_and_quotes_like_the_contract(chain: Devnet) -> None:
    m = chain.manifest
    info = m.pool("USDC/WETH-500")
    run_market(chain.w3, m, info, steps=3, vol=0.8, seed=11)
    w3 = connect(chain.url)
    reader = PoolReader(
        w3,
        multicall=m.contracts["Multicall3"],
        tick_lens=m.contracts["TickLens"],
        position_manager=m.contracts["NonfungiblePositionManager"],
    )
    reader.fetch_pool_state(info.address, token_ids=[1, 2])  # learns the tick and ranges
    before = round_trips(w3)
    snap = reader.fetch_pool_state(info.address, token_ids=[1, 2], twap_seconds=(0, 600))
    assert snap.round_trips == 1
    assert round_trips(w3) - before == 1
    assert snap.tick_cumulatives is not None and snap.twap_tick() is not None

    quoter = contract(w3, "QuoterV2", m.contracts["QuoterV2"])
    local = snap.to_pool()
    t0, t1 = m.token(info.token0).address, m.token(info.token1).address
    for zero_for_one, amount in ((True, 250_000 * 10**6), (False, 80 * 10**18)):
        token_in, token_out = (t0, t1) if zero_for_one else (t1, t0)
        limit = MIN_SQRT_RATIO + 1 if zero_for_one else MAX_SQRT_RATIO - 1
        out, sqrt_after, _crossed, _gas = quoter.functions.quoteExactInputSingle(
            (token_in, token_out, amount, info.fee, 0)
        ).call(block_identifier=snap.block_number)
        q = local.quote_swap(zero_for_one, amount, limit)
        assert -(q.amount1 if zero_for_one else q.amount0) == out
        assert q.sqrt_price_x96 == sqrt_after


def test_reader_fees_match_a_real_collect(chain: Devnet) -> None:
    """Uncollected fees from the reader's snapshot equal what collect() would pay now."""
    from lpbot.uniswap.position_value import fees, get_fee_growth_inside

    m = chain.manifest
    info = m.pool("USDC/WETH-500")
    run_market(chain.w3, m, info, steps=4, vol=0.8, seed=5)
    reader = PoolReader(
        chain.w3,
        multicall=m.contracts["Multicall3"],
        tick_lens=m.contracts["TickLens"],
        position_manager=m.contracts["NonfungiblePositionManager"],
    )
    snap = reader.fetch_pool_state(info.address, token_ids=[1, 2])
    npm = contract(
        chain.w3, "NonfungiblePositionManager", m.contracts["NonfungiblePositionManager"]
    )
    for token_id, pos in snap.positions.items():
        inside = get_fee_growth_inside(
            snap.slot0.tick,
            snap.fee_growth_global0_x128,
            snap.fee_growth_global1_x128,
            pos.lower.fee_growth_outside0_x128,
            pos.lower.fee_growth_outside1_x128,
            pos.upper.fee_growth_outside0_x128,
            pos.upper.fee_growth_outside1_x128,
            pos.npm.tick_lower,
            pos.npm.tick_upper,
        )
        expected = fees(pos.npm, *inside)
        owner = npm.functions.ownerOf(token_id).call()
        collected = npm.functions.collect((token_id, owner, 2**128 - 1, 2**128 - 1)).call(
            {"from": owner}
        )
        assert tuple(collected) == expected
        assert expected[0] > 0 or expected[1] > 0


def test_artifacts_are_the_official_packages() -> None:
    pool = artifacts.load("UniswapV3Pool")
    assert "node_modules/@uniswap/v3-core" in artifacts.ARTIFACT_PATHS["UniswapV3Pool"]
    assert pool.init_code_hash == (
        "0xe34f199b19b2b4f47f68442619d555527d244f78a3297ea89325f843f87b8b54"
    )


def test_marks_from_the_pools_and_feeds_match_the_seeded_prices(devnet: Devnet) -> None:
    from decimal import Decimal

    from lpbot.pricing.marks import chain_pricer

    marks = chain_pricer(devnet.w3, devnet.manifest).fetch_marks(
        ["USDC", "WETH", "WBTC"], devnet.w3.eth.block_number
    )
    # seeded at 3,000 and 90,000 USDC with feeds at 3,000 and 90,000 USD; the sqrt price
    # rounds down by less than a millionth
    assert abs(marks.usd("USDC") - 1) < Decimal("0.000001")
    assert abs(marks.usd("WETH") - 3000) < Decimal("0.01")
    assert abs(marks.usd("WBTC") - 90000) < Decimal("0.1")
    assert marks.alerts == () or all(a.kind == "stale" for a in marks.alerts)

"""The hedge on the devnet: a real position, a 500-step market, a paper perp kept in its band.

The pool price follows a seeded geometric Brownian motion, moved there each step by one arbitrage
swap through SwapRouter02 (as ``lpbot.devnet.market`` does after its trader flow); every 50th step
is a full ``run_market`` step with uninformed trades as well. After each step the hedge syncs.
"""

from __future__ import annotations

import math
import random
from decimal import Decimal

import pytest
from web3 import Web3

from lpbot.analytics.prices import sqrt_price_x96_from_price
from lpbot.chain.reader import PoolReader
from lpbot.devnet.deploy import GAS, contract
from lpbot.devnet.manifest import Manifest, PoolInfo
from lpbot.devnet.market import SECONDS_PER_YEAR, run_market
from lpbot.devnet.positions import open_position
from lpbot.hedge.base import ManualClock
from lpbot.hedge.controller import HedgeController
from lpbot.hedge.delta import lp_delta, perp_symbol, risky_index, risky_price
from lpbot.hedge.paper import PAPER_MARKETS, FundingSeries, PaperExchange
from lpbot.hedge.plan import HedgeConfig, band_width
from lpbot.hedge.state import MemoryStateStore
from tests.conftest import Devnet
from tests.hedge.fakes import Sleeps

pytestmark = pytest.mark.devnet

D = Decimal
STEPS = 500
STEP_SECONDS = 1800
VOL = 0.8


class ArbitragePath:
    """Moves the pool along a seeded GBM path of token1-per-token0 prices, one swap a step."""

    def __init__(self, w3: Web3, manifest: Manifest, info: PoolInfo, price: float, seed: int):
        self.w3 = w3
        self.router = contract(w3, "SwapRouter02", manifest.contracts["SwapRouter02"])
        self.t0, self.t1 = manifest.token(info.token0), manifest.token(info.token1)
        self.fee = info.fee
        self.sender = manifest.accounts.traders[0]
        self.price = price
        self.rng = random.Random(seed)
        self.sigma = VOL * math.sqrt(STEP_SECONDS / SECONDS_PER_YEAR)

    def step(self, sqrt_now: int) -> None:
        self.w3.provider.make_request("evm_increaseTime", [STEP_SECONDS])  # type: ignore[arg-type]
        self.price *= math.exp(self.rng.gauss(-0.5 * self.sigma**2, self.sigma))
        target = sqrt_price_x96_from_price(D(self.price), self.t0.decimals, self.t1.decimals)
        zero_for_one = target < sqrt_now
        token_in, token_out = (self.t0, self.t1) if zero_for_one else (self.t1, self.t0)
        params = (
            token_in.address,
            token_out.address,
            self.fee,
            self.sender,
            10**9 * 10**token_in.decimals,
            0,
            target,
        )
        tx = self.router.functions.exactInputSingle(params).transact(
            {"from": self.sender, "gas": GAS, "gasPrice": 100 * 10**9}
        )
        assert self.w3.eth.wait_for_transaction_receipt(tx, poll_latency=0.005)["status"] == 1


def test_net_delta_stays_in_the_band_over_a_500_step_market(chain: Devnet) -> None:
    w3, manifest = chain.w3, chain.manifest
    info = manifest.pool("USDC/WETH-500")
    reader = PoolReader(
        w3,
        multicall=manifest.contracts["Multicall3"],
        tick_lens=manifest.contracts["TickLens"],
        position_manager=manifest.contracts["NonfungiblePositionManager"],
    )
    # about 100,000 USDC + 33 WETH in +/-20 %: a delta of about 33 ETH at the open
    token_id, *_ = open_position(w3, manifest, reader, usdc=100_000, half_width_ticks=2000)
    risky = risky_index(info.token0, info.token1)
    d0, d1 = manifest.token(info.token0).decimals, manifest.token(info.token1).decimals
    symbol = perp_symbol((info.token0, info.token1)[risky])
    assert (info.token1, symbol) == ("WETH", "ETH/USDT:USDT")

    snap = reader.fetch_pool_state(info.address, token_ids=[token_id])
    clock = ManualClock(snap.block_timestamp * 1000)
    price = [risky_price(snap, decimals0=d0, decimals1=d1, risky=risky)]
    spec, book = PAPER_MARKETS[symbol]
    venue = PaperExchange(
        reference_price=lambda: price[0],
        clock=clock,
        spec=spec,
        book=book,
        funding=FundingSeries.constant(D("0.0001")),
        seed=11,
        initial_balance=D(150_000),
    )
    config = HedgeConfig(symbol=symbol, band_abs=D("0.25"), band_pct=D(1))
    controller = HedgeController(
        venue,
        config,
        MemoryStateStore(),
        position_id=f"31337:{token_id}",
        clock=clock,
        sleep=Sleeps(),
    )

    path = ArbitragePath(w3, manifest, info, 1 / float(price[0]), seed=11)
    deltas, trades = [], 0
    for step in range(STEPS + 1):
        if step % 50 == 0 and step:
            result = run_market(
                w3,
                manifest,
                info,
                steps=1,
                vol=VOL,
                seed=step,
                step_seconds=STEP_SECONDS,
                trades_per_step=2,
            )
            path.price = float(result.end_price)
        elif step:
            path.step(snap.slot0.sqrt_price_x96)
        snap = reader.fetch_pool_state(info.address, token_ids=[token_id])
        clock.set(snap.block_timestamp * 1000)
        price[0] = risky_price(snap, decimals0=d0, decimals1=d1, risky=risky)
        delta = lp_delta(snap, token_id, decimals0=d0, decimals1=d1, risky=risky)
        result = controller.sync(delta)
        assert not result.alerts, result.alerts
        trades += len(result.orders)
        # the venue's own position, not the controller's belief
        net = delta + venue.fetch_position(symbol).size
        assert abs(net) <= band_width(delta, config), (step, delta, net)
        deltas.append(delta)

    assert max(deltas) - min(deltas) > 5  # the market moved the delta by several ETH
    assert trades > 20
    pnl = controller.status(deltas[-1]).pnl
    assert pnl.funding > 0  # a short receives +0.01 % every 8 h of devnet time
    assert pnl.fees == venue.state.fees_paid > 0
    # the hedge's delta counts the WETH fees the position has earned and not collected
    owed = snap.uncollected_fees(token_id)[risky]
    with_fees = lp_delta(snap, token_id, decimals0=d0, decimals1=d1, risky=risky, include_fees=True)
    assert owed > 0 and with_fees - deltas[-1] == D(owed).scaleb(-d1)

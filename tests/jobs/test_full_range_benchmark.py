"""The ledger's passive full-range benchmark against a real full-range position on the devnet:
minted beside the managed one at the deposit with the benchmark's own amounts, traded against,
then collected; its fees are the benchmark's to the wei."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest
from web3.logs import DISCARD

from lpbot.analytics.full_range import full_range_ticks
from lpbot.chain.reader import PoolReader
from lpbot.devnet.context import devnet_context
from lpbot.devnet.deploy import GAS, contract
from lpbot.devnet.market import run_market
from lpbot.devnet.positions import mint_usdc_weth_tx
from lpbot.jobs import ledger as ledger_store
from lpbot.jobs import tasks
from lpbot.jobs.alerts import MemoryNotifier
from lpbot.pricing.marks import chain_pricer
from lpbot.store import migrate
from lpbot.store.session import make_engine, session_factory
from tests.conftest import Devnet

MAX_UINT128 = 2**128 - 1


@pytest.mark.devnet
def test_the_full_range_benchmarks_fees_are_a_real_full_range_positions_to_the_wei(
    chain: Devnet, tmp_path: Path
) -> None:
    m, w3 = chain.manifest, chain.w3
    info = m.pool("USDC/WETH-500")
    reader = PoolReader(w3, multicall=m.contracts["Multicall3"], tick_lens=m.contracts["TickLens"])
    snap = reader.fetch_pool_state(info.address, twap_seconds=(0,))
    lower = (snap.slot0.tick - 1200) // 10 * 10
    token_id, a0, a1, mint_tx = mint_usdc_weth_tx(
        w3, m, snap, lower, lower + 2400, usdc=3_000, recipient=m.safe or ""
    )
    receipt = w3.eth.get_transaction_receipt(mint_tx)  # type: ignore[arg-type]
    mint_wei = int(receipt["gasUsed"]) * int(receipt["effectiveGasPrice"])
    engine = make_engine(f"sqlite:///{tmp_path / 'lpbot.db'}")
    migrate.upgrade(engine)
    sessions = session_factory(engine)
    pricer = chain_pricer(w3, m)
    mp = tasks.ManagedPosition(
        name="p",
        ctx=devnet_context(w3, m, None, tmp_path),  # type: ignore[arg-type]
        sessions=sessions,
        policy=None,  # type: ignore[arg-type]
        token_id=token_id,
        pool=info.address,
        token0=m.token(info.token0).address,
        token1=m.token(info.token1).address,
        notifier=MemoryNotifier(),
        pricer=pricer,
        entry=(a0, a1),
    )
    deposit_block = w3.eth.block_number
    mp.entry_marks = mp.prices(pricer.fetch_marks(["USDC", "WETH"], deposit_block))
    mp.opened_by([mint_tx])
    tasks.monitor(mp)  # records the deposit, with the pool's state at its block
    with sessions() as s:
        h = ledger_store.history(s, "p")
    fr = h.full_range
    assert fr is not None and not h.full_range_late
    assert fr.at.block == deposit_block and fr.capital == (a0, a1)
    lo, hi = full_range_ticks(10)
    assert fr.at.ticks == (lo, hi) == (-887270, 887270)
    # the real one, beside it: the benchmark's amounts after its swap, offered to the manager
    bot = m.accounts.bot
    npm = contract(w3, "NonfungiblePositionManager", m.contracts["NonfungiblePositionManager"])
    b0, b1 = fr.after_swap
    deadline = int(w3.eth.get_block("latest")["timestamp"]) + 600
    params = (m.token(info.token0).address, m.token(info.token1).address, info.fee, lo, hi,
              b0, b1, 0, 0, bot, deadline)  # fmt: skip
    tx = npm.functions.mint(params).transact({"from": bot, "gas": GAS})
    mint_receipt = w3.eth.wait_for_transaction_receipt(tx)
    assert mint_receipt["status"] == 1
    event = npm.events.IncreaseLiquidity().process_receipt(mint_receipt, errors=DISCARD)[0]["args"]
    real_id = int(event["tokenId"])
    # the same liquidity, the same amounts taken: the benchmark's mint is the manager's
    assert (event["liquidity"], event["amount0"], event["amount1"]) == (fr.liquidity, *fr.minted)
    assert fr.liquidity > 0 and min(fr.idle) >= 0

    run_market(w3, m, info, steps=4, vol=0.9, seed=19, trades_per_step=5)
    live = tasks.monitor(mp).ledger
    # what the real one would collect now (the manager pokes the pool, burn(0), then collects)
    collect = (real_id, bot, MAX_UINT128, MAX_UINT128)
    owed = tuple(npm.functions.collect(collect).call({"from": bot}))
    principal = tuple(
        npm.functions.decreaseLiquidity((real_id, fr.liquidity, 0, 0, deadline + 10**6)).call(
            {"from": bot}
        )
    )
    with sessions() as s:
        h = ledger_store.history(s, "p")
        rows = [r for r in ledger_store.export_rows(s) if r["kind"] == "snapshot"]
    last = h.points[-1].ledger
    bench = last.full_range
    assert live == last  # the monitor's own ledger is the stored one, benchmark included
    assert bench is not None and bench.since_block == deposit_block and not bench.late
    assert owed[0] > 0 and owed[1] > 0  # the market traded both ways through the full range
    assert bench.fee_tokens == owed
    # its principal is what burning it would return (LiquidityAmounts vs the pool's burn)
    from lpbot.analytics.full_range import value_at

    pool_now = ledger_store.snapshot_fee_state(h.points[-1].snapshot)
    assert pool_now is not None
    v = value_at(fr, pool_now)
    assert v.fees == owed and v.principal == principal
    # in USD at the snapshot's marks, less the real opening's gas at its own mark
    marks = ledger_store.snapshot_prices(h.points[-1].snapshot)
    gas_usd = h.points[-1].ledger.gas[0].usd
    assert h.points[-1].ledger.gas[0].wei == mint_wei and bench.gas == gas_usd > 0
    exact = marks.usd(v.tokens, h.decimals) - gas_usd
    assert bench.value == exact and bench.fees == marks.usd(owed, h.decimals)
    u = last.usd
    assert u.full_range == exact.quantize(Decimal("0.01"))
    assert u.net_vs_full_range == (last.exact.net_vs_full_range or 0).quantize(Decimal("0.01"))
    # the collect itself pays those fees
    sent = npm.functions.collect(collect).transact({"from": bot, "gas": GAS})
    got = npm.events.Collect().process_receipt(
        w3.eth.wait_for_transaction_receipt(sent), errors=DISCARD
    )[0]["args"]
    assert (got["amount0"], got["amount1"]) == owed
    # the export's row of that snapshot carries the same figures
    assert rows[-1]["full_range_usd"] == str(u.full_range)
    assert rows[-1]["full_range_fees_usd"] == str(u.full_range_fees)
    assert rows[-1]["net_vs_full_range_usd"] == str(u.net_vs_full_range)
    engine.dispose()

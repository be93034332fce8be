"""Price history from the pool's own oracle: time-weighted mean prices over equal intervals.

``observe(secondsAgos)`` returns tick cumulatives; the mean tick between two of them is the
interval's geometric-mean price (OracleLibrary.consult). No external data source is needed, and
the history cannot be faked by one block's swap. The window is limited by the pool's observation
cardinality; the longest window the oracle covers is used when less is available.
"""

from __future__ import annotations

from eth_utils.address import to_checksum_address
from web3 import Web3
from web3.types import BlockIdentifier

from lpbot.analytics.types import PriceHistory
from lpbot.chain import artifacts
from lpbot.errors import RetryLater


def fetch_oracle_history(
    w3: Web3,
    pool: str,
    *,
    window_seconds: int,
    step_seconds: int,
    block: BlockIdentifier = "latest",
) -> PriceHistory:
    """Interval mean prices (token1 per token0, raw; float analytics) over ``window_seconds``."""
    if step_seconds <= 0 or window_seconds < step_seconds:
        raise ValueError("need window >= step > 0")
    c = w3.eth.contract(address=to_checksum_address(pool), abi=artifacts.abi("UniswapV3Pool"))
    now = w3.eth.get_block(block)["timestamp"]
    window = window_seconds
    while window >= 2 * step_seconds:
        agos = list(range(window, -1, -step_seconds))
        try:
            cumulatives, _ = c.functions.observe(agos).call(block_identifier=block)
        except Exception:  # 'OLD': the oracle does not reach that far back; try a shorter window
            window //= 2
            continue
        times, prices = [], []
        for i in range(1, len(agos)):
            dt = agos[i - 1] - agos[i]
            mean_tick = (cumulatives[i] - cumulatives[i - 1]) / dt
            times.append(float(now - agos[i]))
            prices.append(1.0001**mean_tick)
        return PriceHistory(times, prices)
    raise RetryLater(f"pool {pool} has no oracle history over {2 * step_seconds} s yet")

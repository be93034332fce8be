"""Position analytics: value, amounts, fees, IL, greeks, VaR, PnL. Pure; floats only where labelled.

Exact (ints, as the contracts compute): ``value.position_amounts``, ``value.value_in_token0/1``,
``fees.uncollected_fees``, ``fees.fee_growth_inside``. Float64 (analytics, vectorised over many
prices where it matters): ``value.PositionCurve``, ``il``, ``greeks``, ``var``, ``pnl``,
``volatility``, ``fees.fee_rate``/``fee_apr``. Inputs are the snapshots of ``types``.
"""

"""Position analytics: value, amounts, fees, IL, greeks, VaR, the ledger. Pure; floats only where
labelled.

Exact (ints, as the contracts compute): ``value.position_amounts``, ``value.value_in_token0/1``,
``fees.uncollected_fees``, ``fees.fee_growth_inside``. Float64 (analytics, vectorised over many
prices where it matters): ``value.PositionCurve``, ``il``, ``greeks``, ``var``,
``volatility``, ``fees.fee_rate``/``fee_apr``. Decimal: ``ledger``, the one breakdown of value
against holding, live and in backtests. Inputs are the snapshots of ``types``.
"""

"""The ledger: what a position and its hedge are worth against holding, and why (pure).

All figures are ``Decimal`` (analytics) computed from raw token amounts and one set of marks
(``pricing``); the ledger reads no chain. With ``P`` today's marks, ``S_0`` the tokens
deposited, and for each rebalance ``k`` the principal ``E_k`` taken out of the old position, the
fees ``C_k`` collected, the swap's input ``in_k`` and output ``out_k`` at that block's marks
``P_k``, and the tokens ``S_{k+1}`` minted into the new one (what is left, ``L_k``, stays idle
with the owner and counts in the value)::

    value    = P.(E_now + F_now) + P.sum(L_k)          position + uncollected fees + idle
    hold     = P.S_0                                    the deposit, held
    fees     = P.(sum(C_k) + F_now)                     collected and uncollected
    swap     = sum P_k.(in_k - out_k)                   fee and impact, at the swap's marks
    IL       = sum P.(E_k - S_k) - sum (P - P_k).(in_k - out_k)
    hedge    = realised + unrealised - trading fees;  funding as paid or received
    gas      = every transaction's fee (failed ones too), at the ETH mark of its block

and the identity, asserted on every ledger to the cent::

    value + hedge + funding - gas - hold = fees + IL + hedge + funding - gas - swap

Lines are rounded to the cent (ETH to 1e-6, BTC to 1e-8) and IL absorbs the rounding (at
most half a unit per line), so the
printed lines add up exactly. ETH and BTC figures are the USD ones at today's ETH and BTC marks.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import ROUND_HALF_EVEN, Decimal

CENT = Decimal("0.01")
WEI = Decimal(10) ** 18


class LedgerMismatch(AssertionError):
    """The ledger's identity does not hold: a flow is missing or corrupt."""


@dataclass(frozen=True, slots=True)
class Prices:
    """USD marks at one block: the pool's two tokens, ETH and BTC (``pricing.Marks``)."""

    token0: Decimal
    token1: Decimal
    eth: Decimal
    btc: Decimal | None = None
    block: int = 0

    def usd(self, amounts: tuple[int, int], decimals: tuple[int, int]) -> Decimal:
        return (
            Decimal(amounts[0]).scaleb(-decimals[0]) * self.token0
            + Decimal(amounts[1]).scaleb(-decimals[1]) * self.token1
        )


@dataclass(frozen=True, slots=True)
class RebalanceFlow:
    """One rebalance in raw token amounts (token0, token1), and the marks at its block."""

    burned: tuple[int, int]  # principal out of the old position (decreaseLiquidity)
    fees: tuple[int, int]  # fees collected with it
    swap_in: tuple[int, int]  # sold to the pool (one side is 0)
    swap_out: tuple[int, int]  # bought
    minted: tuple[int, int]  # into the new position
    marks: Prices

    @property
    def idle(self) -> tuple[int, int]:
        """What the rebalance left with the owner (never negative)."""
        left = tuple(
            self.burned[i] + self.fees[i] - self.swap_in[i] + self.swap_out[i] - self.minted[i]
            for i in (0, 1)
        )
        if min(left) < 0:
            raise LedgerMismatch(f"rebalance minted more than it had: left {left}")
        return left[0], left[1]


@dataclass(frozen=True, slots=True)
class GasPaid:
    tx_hash: str
    wei: int
    eth_usd: Decimal  # the ETH mark at its block
    failed: bool = False

    @property
    def usd(self) -> Decimal:
        return Decimal(self.wei) / WEI * self.eth_usd


@dataclass(frozen=True, slots=True)
class HedgeFigures:
    """The hedge's result in USD, as the hedge controller reports it."""

    realised: Decimal = Decimal(0)
    unrealised: Decimal = Decimal(0)
    fees: Decimal = Decimal(0)  # trading fees paid (>= 0)
    funding: Decimal = Decimal(0)  # received (> 0) or paid (< 0)

    @property
    def pnl(self) -> Decimal:
        return self.realised + self.unrealised - self.fees


@dataclass(frozen=True, slots=True)
class LedgerLines:
    """One ledger in one unit; the lines add up: ``net == fees + il + hedge_pnl + funding -
    gas - swap_costs`` and ``net == value + hedge_pnl + funding - gas - hold``."""

    unit: str
    value: Decimal
    hold: Decimal
    hold_5050: Decimal
    hold_numeraire: Decimal  # the deposit's value held as this unit (USD: held as USDC-at-1)
    fees: Decimal
    il: Decimal
    hedge_pnl: Decimal
    funding: Decimal
    gas: Decimal
    swap_costs: Decimal
    net: Decimal


@dataclass(frozen=True, slots=True)
class Ledger:
    usd: LedgerLines
    eth: LedgerLines | None
    btc: LedgerLines | None
    entry_usd: Decimal
    block: int
    gas: tuple[GasPaid, ...] = field(default_factory=tuple)

    def lines(self, unit: str) -> LedgerLines:
        got = {"USD": self.usd, "ETH": self.eth, "BTC": self.btc}.get(unit)
        if got is None:
            raise ValueError(f"no {unit} mark for this ledger")
        return got


# what each unit's lines are rounded to
QUANTUM = {"USD": CENT, "ETH": Decimal("0.000001"), "BTC": Decimal("0.00000001")}


def compute_ledger(
    *,
    decimals: tuple[int, int],
    deposit: tuple[int, int],
    entry: Prices,
    rebalances: Sequence[RebalanceFlow] = (),
    principal: tuple[int, int],
    uncollected: tuple[int, int],
    marks: Prices,
    gas: Sequence[GasPaid] = (),
    hedge: HedgeFigures = HedgeFigures(),
) -> Ledger:
    """The ledger of a position now (``principal``, ``uncollected`` at ``marks``) against
    holding ``deposit`` since ``entry``; raw amounts in, USD/ETH/BTC lines out."""
    P = marks

    def v(a: tuple[int, int]) -> Decimal:
        return P.usd(a, decimals)

    starts = [deposit, *(r.minted for r in rebalances)]
    ends = [*(r.burned for r in rebalances), principal]
    idle = [r.idle for r in rebalances]
    value = v(principal) + v(uncollected) + sum((v(i) for i in idle), Decimal(0))
    hold = v(deposit)
    entry_usd = entry.usd(deposit, decimals)
    # 50/50: the deposit's entry value split equally between the two tokens at entry
    half = entry_usd / 2
    hold_5050 = half / entry.token0 * P.token0 + half / entry.token1 * P.token1
    fees = sum((v(r.fees) for r in rebalances), Decimal(0)) + v(uncollected)
    swap = sum(
        (r.marks.usd(r.swap_in, decimals) - r.marks.usd(r.swap_out, decimals) for r in rebalances),
        Decimal(0),
    )
    il = sum((v(e) - v(s) for s, e in zip(starts, ends, strict=True)), Decimal(0)) - sum(
        (
            (v(r.swap_in) - v(r.swap_out))
            - (r.marks.usd(r.swap_in, decimals) - r.marks.usd(r.swap_out, decimals))
            for r in rebalances
        ),
        Decimal(0),
    )
    gas_usd = sum((g.usd for g in gas), Decimal(0))
    lhs = value + hedge.pnl + hedge.funding - gas_usd - hold
    rhs = fees + il + hedge.pnl + hedge.funding - gas_usd - swap
    if abs(lhs - rhs) >= CENT / 100:
        raise LedgerMismatch(f"value vs hold {lhs} != explained {rhs}")

    def lines(unit: str, n_now: Decimal, n_entry: Decimal) -> LedgerLines:
        q = QUANTUM[unit]

        def c(x: Decimal) -> Decimal:
            return (x / n_now).quantize(q, rounding=ROUND_HALF_EVEN)

        value_c, hold_c = c(value), c(hold)
        pnl_c, funding_c, gas_c = c(hedge.pnl), c(hedge.funding), c(gas_usd)
        fees_c, swap_c = c(fees), c(swap)
        net_c = value_c + pnl_c + funding_c - gas_c - hold_c
        il_c = net_c - (fees_c + pnl_c + funding_c - gas_c - swap_c)  # absorbs the rounding
        if abs(il_c - il / n_now) > q * 4:
            raise LedgerMismatch(f"IL {il / n_now} {unit} rounds to {il_c}")
        return LedgerLines(
            unit=unit,
            value=value_c,
            hold=hold_c,
            hold_5050=c(hold_5050),
            hold_numeraire=c(entry_usd / n_entry * n_now),
            fees=fees_c,
            il=il_c,
            hedge_pnl=pnl_c,
            funding=funding_c,
            gas=gas_c,
            swap_costs=swap_c,
            net=net_c,
        )

    one = Decimal(1)
    usd = lines("USD", one, one)
    eth = lines("ETH", P.eth, entry.eth)
    btc = lines("BTC", P.btc, entry.btc) if P.btc and entry.btc else None
    return Ledger(usd, eth, btc, entry_usd, P.block, tuple(gas))

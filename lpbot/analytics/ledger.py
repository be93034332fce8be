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
    slippage = a swap's modelled cost beyond the pool's own price, at its marks (a backtest's
               assumption, paid outside the tokens; 0 live, where a swap's output shows it)

and the identity, asserted on every ledger to the cent::

    value + hedge + funding - gas - slippage - hold
        = fees + IL + hedge + funding - gas - swap - slippage

and, beside holding, a passive full-range position (``analytics.full_range``): the same tokens
swapped to the full range's ratio at the deposit's price (the pool's fee on what it sells) and
minted there, never touched again; its value is its principal, the fees it would collect (exact,
from the pool's fee growth) and what its mint left idle, at today's marks, less the gas the real
position's opening paid::

    full range         = P.(principal_fr + fees_fr + idle_fr) - gas of the opening
    net vs full range  = value + hedge + funding - gas - slippage - full range

A rebalance may spend tokens an earlier one left idle (its own ``idle`` is then negative); what
all of them left together never is. A backtest and a live run feed the same flows: the opening
is a rebalance out of the deposit (``burned`` = the deposit, so its swap is a swap cost), a
compound one whose ``burned`` and ``minted`` both carry the position's principal.

Every figure is rounded half-even to the cent (ETH to 1e-6, BTC to 1e-8) from its exact value,
net too: the printed net is the exact net rounded, never a sum of rounded lines. IL is the
derived line: it is printed as ``net - (fees + hedge + funding - gas - swap - slippage)`` of the
rounded figures, so it carries the rounding residue (at most half a unit per line) and the
explanation adds up exactly to the printed net. Value and hold are each their own exact figure
rounded, so ``value + hedge + funding - gas - slippage - hold`` of the printed figures may differ
from the printed net by that rounding (at most half a unit per figure). ETH and BTC figures are
the USD ones at today's ETH and BTC marks.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from decimal import ROUND_HALF_EVEN, Decimal

from lpbot.analytics.full_range import FullRangeValue

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
    slippage_usd: Decimal = Decimal(0)  # the swap's modelled cost beyond the pool (a backtest)

    @property
    def idle(self) -> tuple[int, int]:
        """What the rebalance left with the owner (negative where it spent earlier idle tokens)."""
        return (
            self.burned[0] + self.fees[0] - self.swap_in[0] + self.swap_out[0] - self.minted[0],
            self.burned[1] + self.fees[1] - self.swap_in[1] + self.swap_out[1] - self.minted[1],
        )


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
    """One ledger in one unit, each figure its exact value rounded (``net`` too); the
    explanation adds up exactly: ``net == fees + il + hedge_pnl + funding - gas - swap_costs -
    slippage`` (IL takes the rounding residue), while ``value + hedge_pnl + funding - gas -
    slippage - hold`` is within the rounding of those figures of ``net``."""

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
    slippage: Decimal = Decimal(0)
    # the passive full-range benchmark (None where the store has no fee growth for it)
    full_range: Decimal | None = None
    full_range_fees: Decimal | None = None
    net_vs_full_range: Decimal | None = None


# what each unit's lines are rounded to
QUANTUM = {"USD": CENT, "ETH": Decimal("0.000001"), "BTC": Decimal("0.00000001")}


@dataclass(frozen=True, slots=True)
class FullRangeFigures:
    """The passive full-range benchmark at one block, exact USD: its ``value`` (principal, fees
    and idle tokens at the block's marks, less ``gas``: the real position's opening gas), its
    ``fees``, its opening swap's cost (the pool's fee, at the opening's marks), the block it
    opened at and whether that is later than the deposit (``late``: the store holds no fee
    growth before it, the deposit's tokens held until then)."""

    value: Decimal
    fees: Decimal
    swap_costs: Decimal
    gas: Decimal
    since_block: int
    late: bool = False
    liquidity: int = 0
    fee_tokens: tuple[int, int] = (0, 0)  # its fees, raw token0 and token1

    @property
    def note(self) -> str:
        """Where the benchmark starts, in words."""
        return full_range_note(self.since_block, self.late)


def full_range_note(since_block: int, late: bool) -> str:
    """Where the full-range benchmark starts, in words."""
    if late:
        return (
            f"full range from block {since_block}: snapshots before it carry no fee growth, "
            "so it opens there with the deposit's tokens"
        )
    return f"full range opened at the deposit (block {since_block})"


def full_range_figures(
    v: FullRangeValue,
    *,
    marks: Prices,
    opened_at: Prices,
    decimals: tuple[int, int],
    gas_usd: Decimal,
    late: bool = False,
) -> FullRangeFigures:
    """The benchmark ``v`` in USD at ``marks``; its opening swap at ``opened_at``'s marks."""
    o = v.open
    return FullRangeFigures(
        value=marks.usd(v.tokens, decimals) - gas_usd,
        fees=marks.usd(v.fees, decimals),
        swap_costs=opened_at.usd(o.swap_in, decimals) - opened_at.usd(o.swap_out, decimals),
        gas=gas_usd,
        since_block=o.at.block,
        late=late,
        liquidity=o.liquidity,
        fee_tokens=v.fees,
    )


@dataclass(frozen=True, slots=True)
class Figures:
    """The ledger's exact USD figures (unrounded)."""

    value: Decimal
    hold: Decimal
    hold_5050: Decimal
    entry: Decimal
    fees: Decimal
    il: Decimal
    hedge_pnl: Decimal
    funding: Decimal
    gas: Decimal
    swap_costs: Decimal
    slippage: Decimal = Decimal(0)
    full_range: Decimal | None = None
    full_range_fees: Decimal | None = None

    @property
    def net(self) -> Decimal:
        """Value against holding, exact: ``value + hedge + funding - gas - slippage - hold``."""
        return self.value + self.hedge_pnl + self.funding - self.gas - self.slippage - self.hold

    @property
    def net_vs_full_range(self) -> Decimal | None:
        """Against the full-range benchmark: ``value + hedge + funding - gas - slippage -
        full range`` (None without one)."""
        if self.full_range is None:
            return None
        return (
            self.value + self.hedge_pnl + self.funding - self.gas - self.slippage - self.full_range
        )


@dataclass(frozen=True, slots=True)
class Ledger:
    """The exact figures at one block; ``usd``, ``eth`` and ``btc`` round them into lines."""

    exact: Figures
    marks: Prices
    entry_marks: Prices
    gas: tuple[GasPaid, ...] = ()
    full_range: FullRangeFigures | None = None

    @property
    def usd(self) -> LedgerLines:
        return _lines(self.exact, "USD", Decimal(1), Decimal(1))

    @property
    def block(self) -> int:
        return self.marks.block

    @property
    def entry_usd(self) -> Decimal:
        return self.exact.entry

    @property
    def eth(self) -> LedgerLines:
        return _lines(self.exact, "ETH", self.marks.eth, self.entry_marks.eth)

    @property
    def btc(self) -> LedgerLines | None:
        if self.marks.btc is None or self.entry_marks.btc is None:
            return None
        return _lines(self.exact, "BTC", self.marks.btc, self.entry_marks.btc)

    def lines(self, unit: str) -> LedgerLines:
        got = {"USD": self.usd, "ETH": self.eth, "BTC": self.btc}.get(unit)
        if got is None:
            raise ValueError(f"no {unit} mark for this ledger")
        return got


def _lines(f: Figures, unit: str, n_now: Decimal, n_entry: Decimal) -> LedgerLines:
    """``f`` in ``unit`` (USD figures over today's mark of it), each rounded half-even to the
    unit's quantum; net is the exact net rounded, and IL (the derived line) takes the rounding
    residue so that ``fees + il + hedge + funding - gas - swap - slippage == net`` exactly."""
    q = QUANTUM[unit]
    one = n_now == 1

    def c(x: Decimal) -> Decimal:
        return (x if one else x / n_now).quantize(q, rounding=ROUND_HALF_EVEN)

    def c_or_none(x: Decimal | None) -> Decimal | None:
        return None if x is None else c(x)

    value_c, hold_c = c(f.value), c(f.hold)
    pnl_c, funding_c, gas_c = c(f.hedge_pnl), c(f.funding), c(f.gas)
    fees_c, swap_c, slip_c = c(f.fees), c(f.swap_costs), c(f.slippage)
    net_c = c(f.net)
    il_c = net_c - (fees_c + pnl_c + funding_c - gas_c - swap_c - slip_c)
    if abs(il_c - (f.il if one else f.il / n_now)) > q * 4:
        raise LedgerMismatch(f"IL {f.il / n_now} {unit} rounds to {il_c}")
    return LedgerLines(
        unit=unit,
        value=value_c,
        hold=hold_c,
        hold_5050=c(f.hold_5050),
        hold_numeraire=c(f.entry if one else f.entry / n_entry * n_now),
        fees=fees_c,
        il=il_c,
        hedge_pnl=pnl_c,
        funding=funding_c,
        gas=gas_c,
        swap_costs=swap_c,
        net=net_c,
        slippage=slip_c,
        full_range=c_or_none(f.full_range),
        full_range_fees=c_or_none(f.full_range_fees),
        net_vs_full_range=c_or_none(f.net_vs_full_range),
    )


@dataclass(frozen=True, slots=True)
class PathSums:
    """What the rebalances so far reduce to (exact token sums), folded one at a time
    (``fold``), so a series of ledgers costs one step per snapshot and per rebalance."""

    start: tuple[int, int]  # S_k: what the current position was opened with
    closed: tuple[int, int] = (0, 0)  # sum(E_k - S_k) over the closed positions
    fees: tuple[int, int] = (0, 0)
    idle: tuple[int, int] = (0, 0)
    swapped: tuple[int, int] = (0, 0)  # sum(in_k - out_k)
    swap_usd: Decimal = Decimal(0)  # sum P_k.(in_k - out_k)
    gas: tuple[GasPaid, ...] = ()
    gas_usd: Decimal = Decimal(0)
    slippage_usd: Decimal = Decimal(0)

    def fold(self, r: RebalanceFlow, decimals: tuple[int, int]) -> PathSums:
        net_in = (r.swap_in[0] - r.swap_out[0], r.swap_in[1] - r.swap_out[1])
        idle = r.idle
        left = (self.idle[0] + idle[0], self.idle[1] + idle[1])
        if min(left) < 0:
            raise LedgerMismatch(f"rebalance minted more than it had: idle left {left}")
        return replace(
            self,
            start=r.minted,
            closed=(
                self.closed[0] + r.burned[0] - self.start[0],
                self.closed[1] + r.burned[1] - self.start[1],
            ),
            fees=(self.fees[0] + r.fees[0], self.fees[1] + r.fees[1]),
            idle=left,
            swapped=(self.swapped[0] + net_in[0], self.swapped[1] + net_in[1]),
            swap_usd=self.swap_usd + r.marks.usd(net_in, decimals),
            slippage_usd=self.slippage_usd + r.slippage_usd,
        )

    def pay(self, g: GasPaid) -> PathSums:
        return replace(self, gas=(*self.gas, g), gas_usd=self.gas_usd + g.usd)


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
    fees_at_start: tuple[int, int] = (0, 0),
    full_range: FullRangeFigures | None = None,
) -> Ledger:
    """The ledger of a position now (``principal``, ``uncollected`` at ``marks``) against
    holding ``deposit`` since ``entry``; raw amounts in, USD/ETH/BTC lines out.

    A ledger started on a position that was already open takes its principal then as
    ``deposit`` and its uncollected fees then as ``fees_at_start``: they are held, not earned."""
    sums = PathSums(start=deposit)
    for r in rebalances:
        sums = sums.fold(r, decimals)
    for g in gas:
        sums = sums.pay(g)
    return ledger_at(
        sums,
        decimals=decimals,
        deposit=deposit,
        entry=entry,
        principal=principal,
        uncollected=uncollected,
        marks=marks,
        hedge=hedge,
        fees_at_start=fees_at_start,
        full_range=full_range,
    )


def ledger_at(
    sums: PathSums,
    *,
    decimals: tuple[int, int],
    deposit: tuple[int, int],
    entry: Prices,
    principal: tuple[int, int],
    uncollected: tuple[int, int],
    marks: Prices,
    hedge: HedgeFigures = HedgeFigures(),
    fees_at_start: tuple[int, int] = (0, 0),
    full_range: FullRangeFigures | None = None,
) -> Ledger:
    """``compute_ledger`` with the rebalances and gas already folded into ``sums``; with the
    full-range benchmark at the same block when there is one."""
    P = marks
    u0 = Decimal(1).scaleb(-decimals[0]) * P.token0
    u1 = Decimal(1).scaleb(-decimals[1]) * P.token1

    def v(a0: int, a1: int) -> Decimal:
        return a0 * u0 + a1 * u1

    closed = (
        sums.closed[0] + principal[0] - sums.start[0],
        sums.closed[1] + principal[1] - sums.start[1],
    )
    value = v(
        principal[0] + uncollected[0] + sums.idle[0], principal[1] + uncollected[1] + sums.idle[1]
    )
    held = (deposit[0] + fees_at_start[0], deposit[1] + fees_at_start[1])
    hold = v(*held)
    entry_usd = entry.usd(held, decimals)
    # 50/50: the deposit's entry value split equally between the two tokens at entry
    half = entry_usd / 2
    hold_5050 = half / entry.token0 * P.token0 + half / entry.token1 * P.token1
    fees = v(
        sums.fees[0] + uncollected[0] - fees_at_start[0],
        sums.fees[1] + uncollected[1] - fees_at_start[1],
    )
    swap = sums.swap_usd
    il = v(*closed) - (v(*sums.swapped) - swap)
    gas_usd, slip = sums.gas_usd, sums.slippage_usd
    pnl, funding = hedge.pnl, hedge.funding
    lhs = value + pnl + funding - gas_usd - slip - hold
    rhs = fees + il + pnl + funding - gas_usd - swap - slip
    if abs(lhs - rhs) >= CENT / 100:
        raise LedgerMismatch(f"value vs hold {lhs} != explained {rhs}")
    exact = Figures(
        value, hold, hold_5050, entry_usd, fees, il, pnl, funding, gas_usd, swap, slip,
        full_range=None if full_range is None else full_range.value,
        full_range_fees=None if full_range is None else full_range.fees,
    )  # fmt: skip
    return Ledger(exact, P, entry, sums.gas, full_range)

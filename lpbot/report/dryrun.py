"""The dry-run report: what a rebalance will do, read by a person before anything is signed.

``build_report`` puts the plan, the exact Safe transaction and the dry-run's outcome side by side,
with checks that the chain did what the exact core predicted and the minimums hold. The report's
hash (SHA-256 of its canonical JSON) covers the SafeTx hash, which covers the exact calldata and
the Safe nonce: approving the report approves that transaction and no other. Written as
``reports/<id>.json``, ``.md`` and ``.html``.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from dataclasses import asdict
from decimal import Decimal
from html import escape
from pathlib import Path
from typing import Any

from lpbot.analytics.prices import to_units
from lpbot.chain.reader import PoolSnapshot
from lpbot.chain.submit import SubmissionRoute
from lpbot.errors import Halt, Refused
from lpbot.execution.plan import RebalancePlan
from lpbot.execution.simulate import DryRunResult
from lpbot.pricing.base import Mark, Marks
from lpbot.report.svg import liquidity_profile, range_chart
from lpbot.signing.safe import SafeTransaction

REPORT_VERSION = 1


def canonical_hash(body: dict[str, Any]) -> str:
    """SHA-256 of the JSON with sorted keys and no spaces: the report's identity."""
    raw = json.dumps(body, sort_keys=True, separators=(",", ":")).encode()
    return "0x" + hashlib.sha256(raw).hexdigest()


def _check(name: str, ok: bool, detail: str) -> dict[str, Any]:
    return {"name": name, "ok": ok, "detail": detail}


def build_report(
    *,
    plan: RebalancePlan,
    safe_tx: SafeTransaction | None,
    dry: DryRunResult,
    snapshot: PoolSnapshot,
    symbols: tuple[str, str],
    decimals: tuple[int, int],
    marks: Marks,
    owners: list[str],
    threshold: int,
    reason: str,
    entry_amounts: tuple[int, int] | None = None,
    created_at: float | None = None,
    module_tx: Any = None,
    submission: dict[str, Any] | None = None,
    slippage_source: str | None = None,
    method: str = "fork",
) -> dict[str, Any]:
    """The report as a JSON-ready dict, ``report_hash`` and ``report_id`` included.

    Every USD figure is from ``marks`` (the price source's, at the plan's block, checks applied):
    the report records each mark with its source, route and block, and a mark the checks flag
    (stale, disagreeing with its second source, a stablecoin off its peg) fails the report's
    "marks" check, so it cannot be approved on a price nobody can trust.
    """
    a = plan.amounts
    d0, d1 = decimals
    usd0, usd1 = marks.usd(symbols[0]), marks.usd(symbols[1])
    native_usd = marks.usd("WETH")  # the gas token's mark
    t0, t1 = plan.token0, plan.token1

    def usd(x0: int, x1: int) -> Decimal:
        return to_units(x0, d0) * usd0 + to_units(x1, d1) * usd1

    checks = [_check("dry-run succeeded", dry.success, dry.revert_reason or "ExecutionSuccess")]
    if plan.kind in ("rebalance", "withdraw"):
        checks.append(
            _check(
                "decrease as computed",
                dry.decreased == (a.decrease0, a.decrease1),
                f"chain {dry.decreased}, exact core {(a.decrease0, a.decrease1)}",
            )
        )
    if plan.kind in ("rebalance", "compound", "withdraw"):
        checks.append(
            _check(
                "collect = decrease + fees owed",
                dry.collected == (a.decrease0 + a.fees0, a.decrease1 + a.fees1),
                f"chain {dry.collected}",
            )
        )
    if plan.kind == "withdraw":
        # everything to the Safe, nothing left in the position; no swap, no mint, NFT kept
        received = tuple(dry.delta(t) for t in (t0, t1))
        checks += [
            _check(
                "the Safe receives what was collected",
                received == dry.collected,
                f"Safe balance change {received}, collected {dry.collected}",
            ),
            _check(
                "the position holds no liquidity and owes nothing after",
                dry.position_after == (0, 0, 0),
                f"liquidity, tokens owed after: {dry.position_after}",
            ),
            _check(
                "no swap, no mint",
                dry.swap is None and dry.new_token_id is None,
                f"swap {dry.swap}, minted NFT {dry.new_token_id}",
            ),
        ]
    added = "increase" if plan.kind == "compound" else "mint"
    checks += (
        []
        if plan.kind == "withdraw"
        else [
            _check(
                f"{added} as computed",
                dry.minted == (a.mint0, a.mint1) and dry.new_liquidity == a.new_liquidity,
                f"chain {dry.minted} L={dry.new_liquidity}",
            ),
            _check(
                "position owned by the Safe"
                if plan.kind == "compound"
                else "new position owned by the Safe",
                dry.nft_owner_after == plan.safe,
                f"owner {dry.nft_owner_after}",
            ),
        ]
    )
    checks += [
        _check(
            "minimums below the simulated amounts",
            a.decrease_min0 <= a.decrease0
            and a.decrease_min1 <= a.decrease1
            and a.swap_out_min <= a.swap_out
            and a.mint_min0 <= a.mint0
            and a.mint_min1 <= a.mint1,
            f"slippage {plan.slippage_bps} bps",
        ),
    ]
    if plan.kind == "open":
        assert plan.capital is not None
        # taken per token, raw; negative: the Safe gained it back (one-sided capital swaps
        # part to the other token, and what the mint leaves of it stays in the Safe as dust)
        spent = tuple(-dry.delta(t) for t in (t0, t1))
        checks.append(
            _check(
                "no more than the capital taken from the Safe",
                all(x <= c for x, c in zip(spent, plan.capital, strict=True)),
                f"taken {spent}, capital {plan.capital}"
                + (" (negative: returned to the Safe)" if min(spent) < 0 else ""),
            )
        )
    if plan.kind == "compound":
        # the fees are reinvested, never more: the Safe's own tokens stay where they are
        gained = tuple(dry.delta(t) for t in (t0, t1))
        checks.append(
            _check(
                "only the fees reinvested",
                all(x >= 0 for x in gained),
                f"Safe balance change {gained}",
            )
        )
    used = (symbols[0], symbols[1], "WETH")
    # an unchecked mark (no feed checks it) is for a person to judge: the auto-execute policy
    # refuses it (``jobs.tasks.policy_approves``), an approval does not
    flagged = [
        x for x in marks.alerts if x.kind not in ("unpriced", "unchecked") and x.token in used
    ]
    checks.append(
        _check(
            "marks current and consistent",
            marks.block == plan.snapshot_block and not flagged,
            "; ".join(x.message for x in flagged)
            if flagged
            else f"block {marks.block}, the plan's {plan.snapshot_block}"
            if marks.block != plan.snapshot_block
            else f"{', '.join(used)} at block {marks.block}",
        )
    )
    price_impact_bps: float | None = None
    if dry.swap is not None:
        swap0, swap1 = dry.swap
        expected = (a.swap_in, -a.swap_out) if a.swap_zero_for_one else (-a.swap_out, a.swap_in)
        checks.append(_check("swap as computed", (swap0, swap1) == expected, f"chain {dry.swap}"))
        # execution price against spot before the swap, fee included (analytics float)
        spot = (plan.sqrt_price_x96 / 2**96) ** 2  # token1 per token0, raw
        execution = -swap1 / swap0 if a.swap_zero_for_one else swap1 / -swap0
        price_impact_bps = abs(execution / spot - 1) * 10_000
    gas_cost_wei = dry.gas_used * dry.effective_gas_price
    gas_usd = Decimal(gas_cost_wei) / Decimal(10**18) * native_usd

    principal_value = usd(a.decrease0, a.decrease1)
    if plan.kind == "open":
        assert plan.capital is not None
        principal_value = usd(*plan.capital)  # the capital put to work
    il_usd = None
    if entry_amounts is not None:
        il_usd = str(principal_value - usd(*entry_amounts))

    ticks_net = {t: info.liquidity_net for t, info in snapshot.ticks.items()}
    body: dict[str, Any] = {
        "version": REPORT_VERSION,
        "kind": "rebalance-dry-run",
        "operation": plan.kind,
        "created_at": created_at if created_at is not None else time.time(),
        "chain_id": plan.chain_id,
        "safe": plan.safe,
        "owners": owners,
        "threshold": threshold,
        "pool": plan.pool,
        "fee": plan.fee,
        "tokens": [
            {"symbol": symbols[0], "address": t0, "decimals": d0, "usd": str(usd0)},
            {"symbol": symbols[1], "address": t1, "decimals": d1, "usd": str(usd1)},
        ],
        "marks": _marks_json(marks, used),
        "reason": reason,
        "idempotency_key": plan.idempotency_key,
        "snapshot": {"block": plan.snapshot_block, "timestamp": plan.snapshot_timestamp},
        "price": {
            "sqrt_price_x96": str(plan.sqrt_price_x96),
            "spot_tick": plan.spot_tick,
            "twap_tick": plan.twap_tick,
            "twap_deviation_bps": plan.twap_deviation_bps,
            "pool_liquidity": str(snapshot.liquidity),  # the pre-flight shows what changed
            # the second source the spot was checked against (raw token1 per token0)
            "reference_price": (
                None if plan.reference_price is None else f"{plan.reference_price:.12g}"
            ),
            "reference_source": plan.reference_source,
            "reference_deviation_bps": plan.reference_deviation_bps,
        },
        "position": {
            "token_id": plan.token_id,
            "old_range": list(plan.old_range),
            "old_liquidity": str(plan.old_liquidity),
            "new_range": list(plan.new_range),
            "new_liquidity": str(a.new_liquidity),
            **({"capital": [str(x) for x in plan.capital]} if plan.capital else {}),
        },
        "plan": {
            k: (str(v) if isinstance(v, int) and not isinstance(v, bool) else v)
            for k, v in asdict(a).items()
        },
        "deadline": plan.deadline,
        "slippage_bps": plan.slippage_bps,
        # where the slippage comes from: the policy's key, the command line, or derived from
        # the range's width (``execution.plan.default_slippage_bps``)
        **({"slippage_source": slippage_source} if slippage_source else {}),
        # where the signed transaction will be broadcast (``chain.submit.submission_route``)
        **({"submission": submission} if submission is not None else {}),
        "calls": [{"label": c.label, "to": c.to, "data": "0x" + c.data.hex()} for c in plan.calls],
        # what will be signed: a Safe transaction (owners sign its hash) or the operator's call
        # to the rebalance module
        **({"safe_tx": safe_tx.to_json()} if safe_tx is not None else {}),
        **({"module_tx": module_tx.to_json()} if module_tx is not None else {}),
        "dry_run": {
            # how it ran: "fork" (the transaction executed on a disposable fork) or "call" (the
            # node's eth_call: ``execution.callsim``); block and gas differ between the two
            "method": method,
            "success": dry.success,
            "revert_reason": dry.revert_reason,
            "block": dry.block,
            "gas_used": dry.gas_used,
            "gas_cost_wei": str(gas_cost_wei),
            "gas_cost_usd": f"{gas_usd:.4f}",
            "balance_before": {t: str(v) for t, v in dry.balance_before.items()},
            "balance_change": {t: str(dry.delta(t)) for t in dry.balance_before},
            "decreased": [str(x) for x in dry.decreased],
            "collected": [str(x) for x in dry.collected],
            "fees_collected": [str(a.fees0), str(a.fees1)],
            "fees_collected_usd": f"{usd(a.fees0, a.fees1):.4f}",
            "swap": [str(x) for x in dry.swap] if dry.swap else None,
            "price_impact_bps": price_impact_bps,
            "tick_after": dry.tick_after,
            "sqrt_price_after": str(dry.sqrt_price_after_x96),
            "new_token_id": dry.new_token_id,
            "new_liquidity": str(dry.new_liquidity),
            "minted": [str(x) for x in dry.minted],
            "value_usd": f"{principal_value + usd(a.fees0, a.fees1):.4f}",
            "il_crystallised_usd": il_usd,
            # a kept position's (liquidity, tokens owed 0, 1) after: a withdraw's, all 0
            **(
                {"position_after": [str(x) for x in dry.position_after]}
                if dry.position_after is not None
                else {}
            ),
        },
        "checks": checks,
        "chart": {
            "profile": [
                [t, str(liq)]
                for t, liq in liquidity_profile(ticks_net, snapshot.liquidity, snapshot.slot0.tick)
            ],
        },
    }
    digest = canonical_hash(body)
    body["report_hash"] = digest
    body["report_id"] = digest[2:14]
    return body


def _mark_json(m: Mark) -> dict[str, Any]:
    return {
        "token": m.token,
        "usd": str(m.usd),
        "source": m.source,
        "route": list(m.route),
        "block": m.block,
        "timestamp": m.timestamp,
    }


def _marks_json(marks: Marks, used: tuple[str, ...]) -> dict[str, Any]:
    """The marks behind the report's USD figures, their second opinions and alerts."""
    return {
        "chain": marks.chain,
        "block": marks.block,
        "timestamp": marks.timestamp,
        "used": [_mark_json(marks.marks[t]) for t in dict.fromkeys(used)],
        "checks": [_mark_json(marks.checks[t]) for t in dict.fromkeys(used) if t in marks.checks],
        "alerts": [{"kind": x.kind, "token": x.token, "message": x.message} for x in marks.alerts],
    }


def approvable(report: dict[str, Any]) -> bool:
    return all(c["ok"] for c in report["checks"])


def verify(report: dict[str, Any]) -> None:
    """Refuse a report whose content no longer hashes to its recorded hash."""
    body = {k: v for k, v in report.items() if k not in ("report_hash", "report_id")}
    if canonical_hash(body) != report.get("report_hash"):
        raise Halt(f"report {report.get('report_id')} was changed after it was written")


def write_report(report: dict[str, Any], directory: Path) -> dict[str, Path]:
    directory.mkdir(parents=True, exist_ok=True)
    rid = report["report_id"]
    paths = {
        "json": directory / f"{rid}.json",
        "md": directory / f"{rid}.md",
        "html": directory / f"{rid}.html",
    }
    paths["json"].write_text(json.dumps(report, indent=2, sort_keys=True) + "\n")
    paths["md"].write_text(render_markdown(report))
    paths["html"].write_text(render_html(report))
    return paths


def read_report(directory: Path, report_id: str) -> dict[str, Any]:
    path = directory / f"{report_id}.json"
    if not path.exists():
        raise Refused(f"no dry-run report {report_id} in {directory}")
    report: dict[str, Any] = json.loads(path.read_text())
    verify(report)
    return report


def _amt(report: dict[str, Any], i: int, raw: str | int) -> str:
    tok = report["tokens"][i]
    return f"{to_units(int(raw), tok['decimals']):,.6f} {tok['symbol']}"


def _tick_price(report: dict[str, Any], tick: int) -> str:
    t0, t1 = report["tokens"]
    p = Decimal("1.0001") ** tick * Decimal(10) ** (t0["decimals"] - t1["decimals"])
    # show the volatile token in the stable one when token0 is a stablecoin
    if t0["symbol"] in ("USDC", "USDT", "DAI"):
        return f"{1 / p:,.2f} {t0['symbol']}/{t1['symbol']}"
    return f"{p:,.6g} {t1['symbol']}/{t0['symbol']}"


def render_markdown(report: dict[str, Any]) -> str:
    d = report["dry_run"]
    p = report["plan"]
    pos = report["position"]
    s0, s1 = (t["symbol"] for t in report["tokens"])
    ok = approvable(report)
    kind = report.get("operation", "rebalance")
    rng = pos["new_range"]
    lines = [
        f"# {kind.capitalize()} dry-run {report['report_id']}",
        "",
        f"**{'READY FOR APPROVAL' if ok else 'DO NOT APPROVE: a check failed'}** — "
        f"Safe `{report['safe']}` ({report['threshold']} of {len(report['owners'])}), "
        f"chain {report['chain_id']}, pool `{report['pool']}` ({s0}/{s1}, "
        f"fee {report['fee'] / 10_000:g}%).",
        "",
        f"Why: {report['reason']}",
        "",
        "## What changes",
        "",
    ]
    if kind == "rebalance":
        lines += [
            "| | old | new |",
            "|---|---|---|",
            f"| range | {_tick_price(report, pos['old_range'][0])} to "
            f"{_tick_price(report, pos['old_range'][1])} | "
            f"{_tick_price(report, rng[0])} to {_tick_price(report, rng[1])} |",
            f"| ticks | {pos['old_range']} | {rng} |",
            f"| liquidity | {pos['old_liquidity']} | {pos['new_liquidity']} |",
            f"| NFT | #{pos['token_id']} (burned) | #{d['new_token_id']} |",
        ]
    elif kind == "open":
        capital = pos.get("capital", ["0", "0"])
        lines += [
            "| | new position |",
            "|---|---|",
            f"| capital from the Safe | {_amt(report, 0, capital[0])} + "
            f"{_amt(report, 1, capital[1])} |",
            f"| range | {_tick_price(report, rng[0])} to {_tick_price(report, rng[1])} |",
            f"| ticks | {rng} |",
            f"| liquidity | {pos['new_liquidity']} |",
            f"| NFT | #{d['new_token_id']} (minted to the Safe) |",
        ]
    elif kind == "withdraw":
        lines += [
            "| | before | after |",
            "|---|---|---|",
            f"| ticks | {pos['old_range']} | {pos['old_range']} (unchanged) |",
            f"| liquidity | {pos['old_liquidity']} | 0 (the position will hold no liquidity) |",
            f"| NFT | #{pos['token_id']} | #{pos['token_id']} (kept, empty, owned by the Safe) |",
        ]
    else:
        lines += [
            "| | before | after |",
            "|---|---|---|",
            f"| ticks | {rng} | {rng} (unchanged) |",
            f"| liquidity | {pos['old_liquidity']} | {pos['old_liquidity']} + "
            f"{pos['new_liquidity']} |",
            f"| NFT | #{pos['token_id']} | #{pos['token_id']} (fees reinvested) |",
        ]
    lines += [
        "",
        f"Price now: {_tick_price(report, report['price']['spot_tick'])} (tick "
        f"{report['price']['spot_tick']}; TWAP tick {report['price']['twap_tick']}, "
        f"{report['price']['twap_deviation_bps']:.1f} bps apart"
        + (
            f"; {report['price']['reference_deviation_bps']:.1f} bps from the reference "
            f"{report['price']['reference_source']}"
            if report["price"].get("reference_deviation_bps") is not None
            else ""
        )
        + ").",
        "",
        "## Money",
        "",
    ]
    if kind == "withdraw":
        change = [d["balance_change"][t["address"]] for t in report["tokens"]]
        lines.append(
            f"- The Safe receives: {_amt(report, 0, change[0])} + {_amt(report, 1, change[1])} "
            f"(market value ${Decimal(d['value_usd']):,.2f} at the marks below), of which "
            f"removed from the range {_amt(report, 0, d['decreased'][0])} + "
            f"{_amt(report, 1, d['decreased'][1])} (minimums {p['decrease_min0']} / "
            f"{p['decrease_min1']} raw)"
        )
    if kind == "rebalance":
        lines.append(
            f"- Removed from the old range: {_amt(report, 0, d['decreased'][0])} + "
            f"{_amt(report, 1, d['decreased'][1])}"
        )
    if kind != "open":
        lines.append(
            f"- Fees collected: {_amt(report, 0, p['fees0'])} + {_amt(report, 1, p['fees1'])} "
            f"(${d['fees_collected_usd']})"
        )
    if d["swap"]:
        lines.append(
            f"- Swap: pool deltas {_amt(report, 0, d['swap'][0])} / "
            f"{_amt(report, 1, d['swap'][1])}; minimum out {p['swap_out_min']} raw; "
            f"price impact incl. fee {d['price_impact_bps']:.1f} bps; the pool stops at "
            f"sqrtPriceLimitX96 {p.get('swap_sqrt_price_limit_x96', '0')} (the simulated price "
            f"after the swap, {report['slippage_bps']} bps further)"
        )
    if kind != "withdraw":
        lines += [
            f"- Deposited in {'the position' if kind == 'compound' else 'the new range'}: "
            f"{_amt(report, 0, d['minted'][0])} + {_amt(report, 1, d['minted'][1])} "
            f"(minimums {p['mint_min0']} / {p['mint_min1']} raw)",
            f"- Left in the Safe (dust): {_amt(report, 0, p['dust0'])} + "
            f"{_amt(report, 1, p['dust1'])}",
        ]
    lines += [
        _dry_run_line(report),
        f"- Gas: {d['gas_used']:,} (${d['gas_cost_usd']})"
        + (" (estimated by eth_call, before refunds)" if d.get("method") == "call" else ""),
        "- IL crystallised: "
        + (f"${d['il_crystallised_usd']}" if d["il_crystallised_usd"] is not None else "n/a"),
        f"- Deadline: {report['deadline']} (unix), slippage tolerance {report['slippage_bps']} bps"
        + (f" ({report['slippage_source']})" if report.get("slippage_source") else ""),
        "",
        *_marks_markdown(report),
        "## Checks",
        "",
        *[f"- [{'x' if c['ok'] else ' '}] {c['name']}: {c['detail']}" for c in report["checks"]],
        "",
        "## Transaction to sign",
        "",
        (
            f"SafeTx hash `{report['safe_tx']['safe_tx_hash']}` "
            f"(nonce {report['safe_tx']['nonce']}): {_safe_tx_target(report['safe_tx'])}; "
            f"signed by {report['threshold']} owners:"
            if "safe_tx" in report
            else f"Operator call to the rebalance module `{report['module_tx']['module']}` "
            f"(hash `{report['module_tx']['module_tx_hash']}`), signed by the operator key "
            f"`{report['module_tx']['operator']}` alone, within the module's limits:"
        ),
        "",
        *[f"{i + 1}. {c['label']} → `{c['to']}`" for i, c in enumerate(report["calls"])],
        "",
        *_submission_markdown(report),
        f"Report hash `{report['report_hash']}`. Approve with "
        f"`lpbot rebalance approve {report['report_id']}`.",
        "",
    ]
    return "\n".join(lines)


def _dry_run_line(report: dict[str, Any]) -> str:
    """How the dry-run ran (``dry_run.method``), and for the call, what it did not run."""
    d = report["dry_run"]
    what = "the operator's module call" if "module_tx" in report else "the exact execTransaction"
    if d.get("method") != "call":
        return (
            f"- Dry-run: executed on a disposable fork of the chain ({what}, mined there in "
            f"block {d['block']})"
        )
    if "module_tx" in report:
        how = (
            "the module call judged by eth_call and eth_estimateGas from the operator, its "
            "effects replayed in the Safe"
        )
    else:
        how = (
            "the Safe batch run through SimulateTxAccessor, its effects read back through "
            "Multicall3; execTransaction itself (signatures, nonce, a guard) is first run by the "
            "pre-flight, after signing and before sending"
        )
    return (
        f"- Dry-run: by eth_call on the chain's node at block {d['block']}, nothing was "
        f"executed: {how}"
    )


def _submission_markdown(report: dict[str, Any]) -> list[str]:
    """Where the signed transaction will be broadcast, and why."""
    sub = report.get("submission")
    if sub is None:  # a report written before the route was recorded
        return []
    return [f"Sent {SubmissionRoute.from_json(sub).text()}.", ""]


def _safe_tx_target(safe_tx: dict[str, Any]) -> str:
    """What the Safe itself calls, and how: the fields an owner's wallet shows when signing."""
    op = int(safe_tx["operation"])
    how = (
        "DELEGATECALL (operation 1) to MultiSendCallOnly, which makes each call below as "
        "the Safe (its code checked against Safe 1.4.1's)"
        if op == 1
        else "CALL (operation 0)"
    )
    return f"to `{safe_tx['to']}` by {how}, value {safe_tx['value']} wei"


def _marks_markdown(report: dict[str, Any]) -> list[str]:
    """The marks section: each USD price with its source, route and block."""
    marks = report.get("marks")
    if marks is None:  # a report written before marks were recorded
        return []
    lines = [
        "## Marks",
        "",
        f"USD figures above are at these marks, block {marks['block']} on {marks['chain']}:",
        "",
        "| token | USD | source | route | block |",
        "|---|---|---|---|---|",
    ]
    for kind, group in (("", marks["used"]), (" (check)", marks["checks"])):
        lines += [
            f"| {m['token']}{kind} | {Decimal(m['usd']):,.6g} | {m['source']} | "
            f"{' -> '.join(m['route'])} | {m['block']} |"
            for m in group
        ]
    lines.append("")
    if marks["alerts"]:
        lines += [f"- ALERT {x['kind']}: {x['message']}" for x in marks["alerts"]] + [""]
    return lines


def _inline(text: str) -> str:
    out = escape(text)
    out = re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", out)
    return re.sub(r"`(.+?)`", r"<code>\1</code>", out)


def _markdown_to_html(md: str) -> str:
    """The few Markdown forms the reports use: headings, lists, tables, paragraphs."""
    html: list[str] = []
    in_list: str | None = None
    table: list[list[str]] = []

    def close() -> None:
        nonlocal in_list, table
        if in_list:
            html.append(f"</{in_list}>")
            in_list = None
        if table:
            head, *rows = [r for r in table if not set("".join(r)) <= set("-")]
            html.append("<table><tr>" + "".join(f"<th>{_inline(c)}</th>" for c in head) + "</tr>")
            for r in rows:
                html.append("<tr>" + "".join(f"<td>{_inline(c)}</td>" for c in r) + "</tr>")
            html.append("</table>")
            table = []

    for line in md.splitlines():
        if line.startswith("|"):
            table.append([c.strip() for c in line.strip("|").split("|")])
            continue
        m = re.match(r"^(#+) (.*)", line)
        item = re.match(r"^(- |\d+\. )(.*)", line)
        if m:
            close()
            html.append(f"<h{len(m.group(1))}>{_inline(m.group(2))}</h{len(m.group(1))}>")
        elif item:
            kind = "ul" if item.group(1) == "- " else "ol"
            if in_list != kind:
                close()
                html.append(f"<{kind}>")
                in_list = kind
            html.append(f"<li>{_inline(item.group(2))}</li>")
        elif line.strip():
            close()
            html.append(f"<p>{_inline(line)}</p>")
        else:
            close()
    close()
    return "\n".join(html)


def render_body(report: dict[str, Any]) -> str:
    """The report's content as HTML (its Markdown and the range chart), without the page
    around it: what ``render_html`` writes and the dashboard shows."""
    profile = [(t, int(liq)) for t, liq in report["chart"]["profile"]]
    chart = range_chart(
        profile=profile,
        current_tick=report["price"]["spot_tick"],
        old_range=tuple(report["position"]["old_range"]),
        new_range=tuple(report["position"]["new_range"]),
        price_label=lambda t: _tick_price(report, t),
    )
    body = _markdown_to_html(render_markdown(report))
    return f"{body}\n<h2>Liquidity around the price</h2>\n{chart}"


def render_html(report: dict[str, Any]) -> str:
    """The Markdown report as a self-contained page, with the range chart."""
    colour = "#2e8b57" if approvable(report) else "#d9534f"
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>Rebalance dry-run {escape(report["report_id"])}</title>
<style>
body {{ font-family: sans-serif; max-width: 860px; margin: 2em auto; color: #222; }}
h1 {{ border-bottom: 4px solid {colour}; }}
table {{ border-collapse: collapse; }} td, th {{ border: 1px solid #ccc; padding: 4px 8px; }}
code {{ font-size: 90%; word-break: break-all; }}
</style></head><body>
{render_body(report)}
</body></html>
"""

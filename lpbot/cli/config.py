"""``lpbot init`` and ``lpbot config check [--online]``: write an example configuration, check
one.

``check`` decrypts nothing: each keystore must exist, parse as a V3 keystore and declare the
address the configuration expects. ``--online`` also asks the chain: the RPC answers with the
configured chain id, the Safe exists with the configured owners and threshold, the module (if
configured) is enabled on it with the operator key the configuration names, each configured
position belongs to the Safe (in the configured pool, on the NFT the database manages: what
`lpbot run` refuses to start on), and the price source (``[pricing]``) has a route for each
position's tokens. ``pricing.stable`` must be a token of every configured chain (checked
offline too).
"""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING, Any

import click

from lpbot.cli.common import app, config_option, emit_json, json_option, table

if TYPE_CHECKING:
    from lpbot.app import App
    from lpbot.config import SafeConfig

__all__ = ["check_keystores", "check_online", "check_quorum", "check_quorums", "config", "init"]


@click.command()
@config_option
@click.option("--force", is_flag=True, help="overwrite an existing file")
@click.option(
    "--token-id",
    type=int,
    help="manage this existing position NFT instead of opening one with [positions.open]",
)
def init(force: bool, token_id: int | None) -> int:
    """Write a commented lpbot.toml (where --config points, else $LPBOT_CONFIG or ./lpbot.toml)."""
    from lpbot.config import EXAMPLE_TOML, resolve_config_path, write_example

    ctx = click.get_current_context()
    path = resolve_config_path(ctx.meta.get("lpbot.config"))
    write_example(path, force=force)
    if token_id is not None:
        text = EXAMPLE_TOML.replace("# token_id = 1234  ", f"token_id = {token_id}", 1)
        start = text.index("[positions.open]")
        end = text.index("[positions.strategy]")
        text = text[:start] + text[end:]
        path.write_text(text, encoding="utf-8")
    what = f"position #{token_id}" if token_id is not None else "one new position"
    click.echo(f"wrote {path}: the devnet, {what}, paper hedging")
    click.echo("next: `lpbot keys new NAME` for each keystore it names, then `lpbot config check`")
    return 0


@click.group()
@config_option
def config() -> None:
    """The configuration file."""


def check_keystores(a: App) -> list[tuple[str, str, str, bool]]:
    """(name, path, what was found, ok) for each keystore: exists, parses, expected address."""
    from lpbot.app import keystore_address
    from lpbot.errors import ConfigError

    expected = a.expected_addresses()
    rows: list[tuple[str, str, str, bool]] = []
    for name, ref in a.config.signer.keystores.items():
        try:
            found = keystore_address(ref.path)
        except ConfigError as exc:
            rows.append((name, str(ref.path), str(exc), False))
            continue
        want = expected.get(name)
        if want is not None and found != want:
            rows.append(
                (name, str(ref.path), f"holds {found}, the configuration expects {want}", False)
            )
        else:
            rows.append((name, str(ref.path), found, True))
    return rows


def check_quorum(
    a: App,
    keystores: list[tuple[str, str, str, bool]],
    safe: SafeConfig | None = None,
) -> tuple[str, bool] | None:
    """(finding, ok): how many of ``safe``'s (default [signer.safe]) owner keys the bot's
    process holds or can unlock (every configured keystore: it is given their passwords'
    variables), read from the keystore files' addresses as well as the owners' entries. A
    threshold of them is refused unless ``signer.allow_hot_quorum = true``."""
    signer = a.config.signer
    safe = safe or signer.safe
    if safe is None:
        return None
    owners = {o.address.lower() for o in safe.owners}
    held = set(signer.hot_owner_keystores(safe=safe))
    held |= {name for name, _path, found, good in keystores if good and found.lower() in owners}
    n, threshold = len(held), safe.threshold
    names = f" ({', '.join(sorted(held))})" if held else ""
    finding = f"the bot can unlock {n} of the {threshold} owner keys the Safe needs{names}"
    if n < threshold:
        return finding + ": it cannot move the Safe's funds alone", True
    if signer.allow_hot_quorum:
        return finding + ": allow_hot_quorum = true, the multisig is a hot wallet", True
    return (
        finding + ": refused, the process alone could move everything the Safe holds; keep at "
        f"most {threshold - 1} owner key(s) here and rebalance through [signer.module], or set "
        "signer.allow_hot_quorum = true",
        False,
    )


def check_quorums(
    a: App, keystores: list[tuple[str, str, str, bool]]
) -> list[tuple[str, str, bool]]:
    """(key path, finding, ok): ``check_quorum`` for each configured Safe ([signer.safe] and
    each chain's own [chains.NAME.safe])."""
    rows = []
    for where, safe in a.config.safes():
        found = check_quorum(a, keystores, safe)
        if found is not None:
            rows.append((where, *found))
    return rows


def _module_budget_row(
    w3: Any, module: str, module_cfg: Any, where: str = "signer.module"
) -> tuple[str, str, bool]:
    """The limits the Safe's owners set on the module, as read from chain, and whether the
    configuration's budgets (at key path ``where``) are the same numbers."""
    from lpbot.signing.module import budget_mismatches, fetch_module_bounds

    bounds = fetch_module_bounds(w3, module)
    mismatches = budget_mismatches(
        bounds,
        per_call_bps=module_cfg.loss_budget_per_call_bps,
        per_day_bps=module_cfg.loss_budget_per_day_bps,
        where=where,
    )
    return ("module budget", "; ".join(bounds.lines() + mismatches), not mismatches)


def _configured_chain_id(a: App, name: str) -> int | None:
    """Chain ``name``'s id from the configuration alone (the devnet's from its manifest, None
    while it is not written)."""
    from lpbot.chain.registry import CHAINS
    from lpbot.devnet.manifest import Manifest

    chain = a.config.chains[name]
    if chain.manifest is not None:
        try:
            return Manifest.read(chain.manifest).chain_id
        except (OSError, ValueError):
            return None
    if chain.chain_id is not None:
        return chain.chain_id
    return next((c.chain_id for c in CHAINS.values() if c.name == name), None)


def check_routes(a: App) -> dict[str, dict[str, Any]]:
    """Per chain, where a transaction carrying a swap and one carrying none is sent, and why
    (``chain.submit.submission_route``); a route that cannot be taken is said so."""
    from lpbot.chain.submit import submission_route
    from lpbot.errors import Refused

    out: dict[str, dict[str, Any]] = {}
    for name, chain in a.config.chains.items():
        chain_id = _configured_chain_id(a, name)
        endpoint = chain.private_endpoint(chain_id)
        row: dict[str, Any] = {"private_submission": chain.private_submission}
        for what, swap in (("swap", True), ("no_swap", False)):
            try:
                route = submission_route(
                    chain_id or 0,
                    chain.private_submission,
                    swap=swap,
                    endpoint=endpoint,
                    public_fallback=chain.public_fallback,
                )
            except Refused as exc:
                row[what] = {"route": "refused", "why": str(exc)}
                continue
            row[what] = {**route.to_json(), "text": route.text()}
        out[name] = row
    return out


def check_slippage(a: App) -> dict[str, dict[str, Any]]:
    """Per position, its execution slippage and where it comes from: the policy's value, or
    derived per plan from the range's width (with the value for the strategy's fixed width,
    when it has one)."""
    from lpbot.execution.plan import default_slippage_bps, sandwich_bound_bps
    from lpbot.uniswap.tick_math import MAX_TICK

    out: dict[str, dict[str, Any]] = {}
    m = a.config.execution.max_sandwich_bps
    for p in a.config.positions:
        explicit, source = a.slippage_setting(p.name)
        row: dict[str, Any] = {"bps": explicit, "source": source}
        half = getattr(p.strategy, "half_width_ticks", None)
        if p.strategy.kind == "full_range":
            half = MAX_TICK
        if explicit is None and half is not None:
            bps = default_slippage_bps(half, m)
            row["bps"] = bps
            row["source"] = (
                f"derived from the range's half-width of {half} ticks: a sandwich takes at "
                f"most {float(sandwich_bound_bps(bps, half)):.2f} bps of the position "
                f"(execution.max_sandwich_bps {m}, at most 300 bps)"
            )
        out[p.name] = row
    return out


def _module_operator_row(
    a: App, w3: Any, module: str, name: str, where: str = "signer.module"
) -> tuple[str, str, bool]:
    """Whether keystore ``name`` (``<where>.operator``) holds the key the module lets
    rebalance (read from the keystore file, nothing decrypted): the module refuses any other
    key, so a rebalance the configuration auto-executes through it would wait for the owners."""
    from eth_utils.address import to_checksum_address

    from lpbot.app import keystore_address
    from lpbot.chain import artifacts
    from lpbot.errors import ConfigError

    contract = w3.eth.contract(
        address=to_checksum_address(module), abi=artifacts.abi("LPRebalanceModule")
    )
    on_chain = to_checksum_address(contract.functions.operator().call())
    try:
        ref = a.keystore(name)
        mine = keystore_address(ref.path)
    except ConfigError as exc:
        return "module operator", f"{on_chain} on chain; keystore {name}: {exc}", False
    if mine.lower() == on_chain.lower():
        return "module operator", f"{on_chain}: keystore {name}", True
    return (
        "module operator",
        f"the module's operator is {on_chain}, but keystore {name} ({where}.operator) "
        f"holds {mine}: the module refuses it, so every rebalance waits for the owners; the "
        f"owners make {mine} the operator (a Safe transaction calling setOperator on {module}), "
        f"or `lpbot keys import {name}` the operator's key",
        False,
    )


def _dry_run_row(a: App, chain: str, w3: Any, contracts: dict[str, str]) -> tuple[str, str, bool]:
    """How the chain's plans are dry-run; for "call", the contracts it needs have code."""
    from eth_utils.address import to_checksum_address

    from lpbot.chain.registry import default_contract

    resolved = a.chain(chain)
    if resolved.dry_run == "fork":
        return ("dry-run", "on a local Anvil fork of the chain", True)
    missing = []
    for name in ("SimulateTxAccessor", "Multicall3"):
        address = contracts.get(name) or default_contract(resolved.chain_id, name)
        if address is None or not w3.eth.get_code(to_checksum_address(address)):
            missing.append(f"no {name} at {address}" if address else f"no {name} known")
    finding = "by eth_call on the chain's node (SimulateTxAccessor, Multicall3)"
    return ("dry-run", "; ".join(missing) if missing else finding, not missing)


def check_online(a: App) -> list[tuple[str, str, bool]]:
    """(what, finding, ok) for each thing the chain must confirm: each chain answers; on each
    one that does, its dry-run, its Safe, module and sender, and its positions. With several
    chains each chain's rows name it ("Safe (arbitrum)")."""
    from lpbot.errors import LpbotError

    rows: list[tuple[str, str, bool]] = []
    answering = []
    for name in a.config.chains:
        try:
            a.w3(name)
            rows.append((f"chain {name}", f"answers with chain id {a.chain(name).chain_id}", True))
            answering.append(name)
        except LpbotError as exc:
            rows.append((f"chain {name}", str(exc), False))
    if not answering:
        return rows
    try:
        unpriced = a.pricing_problems(online=True)
    except LpbotError as exc:
        unpriced = [str(exc)]
    rows.append(
        ("pricing", "; ".join(unpriced) or "every position token has a route", not unpriced)
    )
    rows.extend(_hedge_rows(a))
    several = len(a.config.chains) > 1
    for chain in answering:
        label = f" ({chain})" if several else ""
        try:
            chain_rows = _chain_rows(a, chain)
        except LpbotError as exc:
            chain_rows = [("chain", str(exc), False)]
        rows.extend((what + label, finding, ok) for what, finding, ok in chain_rows)
    return rows


def _chain_rows(a: App, chain: str) -> list[tuple[str, str, bool]]:
    """Chain ``chain``'s rows of ``check_online``: its dry-run, its Safe (owners, threshold),
    its module (enabled, operator, budgets), its sender's key, and its positions."""
    from eth_utils.address import to_checksum_address

    from lpbot.app import keystore_address
    from lpbot.chain import artifacts
    from lpbot.errors import ConfigError

    w3, manifest = a.w3(chain), a.manifest(chain)
    signers = a.chain_signer(chain)
    rows: list[tuple[str, str, bool]] = [_dry_run_row(a, chain, w3, manifest.contracts)]
    if signers.sender is not None:
        try:
            sender = keystore_address(a.keystore(signers.sender).path)
            balance = int(w3.eth.get_balance(to_checksum_address(sender)))
            held = f"{Decimal(balance) / 10**18:f} of the gas token"
            if balance == 0:
                held = "no gas token: it cannot send a transaction until it is funded"
            rows.append(
                (
                    "sender",
                    f"{sender}: keystore {signers.sender} ({signers.where['sender']}), {held}",
                    balance > 0,
                )
            )
        except ConfigError as exc:
            rows.append(("sender", f"{signers.where['sender']}: {exc}", False))
    safe_cfg = signers.safe
    safe_where = signers.where["safe"]
    safe_addr: str | None = None
    if safe_cfg is not None:
        safe_addr = manifest.safe if safe_cfg.address == "devnet" else safe_cfg.address
    if safe_cfg is not None and safe_addr is None:
        rows.append(
            ("Safe", f'{safe_where}.address = "devnet" but this chain has no devnet Safe', False)
        )
    elif safe_cfg is not None and safe_addr is not None:
        safe_addr = to_checksum_address(safe_addr)
        if not w3.eth.get_code(safe_addr):
            rows.append(("Safe", f"no contract at {safe_addr} ({safe_where}.address)", False))
            safe_addr = None
        else:
            safe = w3.eth.contract(address=safe_addr, abi=artifacts.abi("SafeL2"))
            owners = {to_checksum_address(o) for o in safe.functions.getOwners().call()}
            threshold = int(safe.functions.getThreshold().call())
            want = {o.address for o in safe_cfg.owners}
            ok = owners == want and threshold == safe_cfg.threshold
            finding = f"{safe_addr}: {threshold} of {len(owners)} owners"
            if owners != want:
                missing, extra = sorted(want - owners), sorted(owners - want)
                finding += (
                    f"; not owners: {', '.join(missing) or '-'}"
                    f"; unlisted: {', '.join(extra) or '-'}"
                )
            if threshold != safe_cfg.threshold:
                finding += f"; the configuration says threshold {safe_cfg.threshold}"
            rows.append(("Safe", finding, ok))
            module_cfg = signers.module
            module_where = signers.where["module"]
            if module_cfg is not None:
                module = (
                    manifest.contracts.get("LPRebalanceModule")
                    if module_cfg.address == "devnet"
                    else module_cfg.address
                )
                if module is None:
                    rows.append(
                        (
                            "module",
                            f'{module_where}.address = "devnet" but none is deployed',
                            False,
                        )
                    )
                else:
                    enabled = bool(
                        safe.functions.isModuleEnabled(to_checksum_address(module)).call()
                    )
                    rows.append(
                        (
                            "module",
                            f"{module} {'enabled' if enabled else 'NOT enabled'} on the Safe",
                            enabled,
                        )
                    )
                    rows.append(
                        _module_operator_row(a, w3, module, module_cfg.operator, module_where)
                    )
                    rows.append(_module_budget_row(w3, module, module_cfg, module_where))
    npm = w3.eth.contract(
        address=to_checksum_address(manifest.contracts["NonfungiblePositionManager"]),
        abi=artifacts.abi("NonfungiblePositionManager"),
    )
    factory = w3.eth.contract(
        address=to_checksum_address(manifest.contracts["UniswapV3Factory"]),
        abi=artifacts.abi("UniswapV3Factory"),
    )
    for p in a.config.positions:
        if p.open is not None and p.chain == chain:
            rows.append(_open_row(a, p, manifest, w3, safe_addr))
        if p.token_id is None or p.chain != chain:
            continue
        # after a rebalance the store manages the NFT that replaced the configured one
        token_id = _managed_token(a, p.name, a.chain(chain).chain_id, p.token_id)
        follows = "" if token_id == p.token_id else f" (follows the configured #{p.token_id})"
        try:
            owner = to_checksum_address(npm.functions.ownerOf(token_id).call())
        except Exception:
            rows.append((f"position {p.name}", f"#{token_id}{follows} does not exist", False))
            continue
        # what `lpbot run` refuses to start on: another pool, a token_id the store does not know
        refusal = _start_refusal(a, p, manifest, token_id, npm, factory)
        if refusal is not None:
            rows.append((f"position {p.name}", refusal, False))
            continue
        if safe_addr is None:
            rows.append((f"position {p.name}", f"#{token_id}{follows} owned by {owner}", True))
        else:
            ok = owner == safe_addr
            rows.append(
                (
                    f"position {p.name}",
                    f"#{token_id}{follows} owned by {owner}" + ("" if ok else ", not the Safe"),
                    ok,
                )
            )
    return rows


def _open_row(a: App, p: Any, manifest: Any, w3: Any, safe: str | None) -> tuple[str, str, bool]:
    """``[positions.open]`` as ``lpbot run`` would take it: its capital in the pool's tokens,
    with no more decimals than they have, and (with a Safe) no more than the Safe holds."""
    from decimal import Decimal

    from eth_utils.address import to_checksum_address

    from lpbot.chain import artifacts
    from lpbot.errors import ConfigError, Refused
    from lpbot.jobs.runtime import _pool_address, open_capital

    what = f"open {p.name}"
    engine = a.read_engine()
    if engine is not None:
        from sqlalchemy.orm import sessionmaker

        from lpbot.jobs.runtime import current_token

        held = current_token(sessionmaker(engine), p.name)
        if held is not None:
            return what, f"opened: the database manages #{held}", True
    try:
        # the pool's tokens as the address book has them: read from their contracts where the
        # chain's manifest does not list them
        book = a.book(p.chain)
        info = book.pool(_pool_address(manifest, p.pool))
        t0, t1 = book.symbol_token(info.token0), book.symbol_token(info.token1)
        tokens = [to_checksum_address(t0.address), to_checksum_address(t1.address)]
        erc20 = [w3.eth.contract(address=t, abi=artifacts.abi("TestERC20")) for t in tokens]
        symbols, decimals = (t0.symbol, t1.symbol), (t0.decimals, t1.decimals)
        raw = open_capital(p, (symbols[0], symbols[1]), (decimals[0], decimals[1]))
    except (ConfigError, Refused) as exc:
        return what, str(exc), False
    capital = " + ".join(f"{amount} {symbol}" for symbol, amount in p.open.capital.items())
    if safe is None:
        return what, f"{capital} into {p.pool}", True
    short = []
    for symbol, need, c, d in zip(symbols, raw, erc20, decimals, strict=True):
        held = int(c.functions.balanceOf(safe).call())
        if held < need:
            amounts = [f"{Decimal(x).scaleb(-d).normalize():f}" for x in (need, held)]
            short.append(f"{amounts[0]} {symbol} (it holds {amounts[1]})")
    if short:
        return what, f"the Safe {safe} holds less than the capital: {'; '.join(short)}", False
    return what, f"{capital} into {p.pool}, held by the Safe", True


def _start_refusal(
    a: App, p: Any, manifest: Any, token_id: int, npm: Any, factory: Any
) -> str | None:
    """Why ``lpbot run`` would refuse position ``p`` on NFT ``token_id`` (its pool is not the
    configured one, or the database manages another NFT under its name), in the daemon's own
    words; None when it would start. The database is only read."""
    from sqlalchemy.orm import sessionmaker

    from lpbot.errors import ConfigError
    from lpbot.jobs.runtime import check_position, current_token, known_tokens

    nft = npm.functions.positions(token_id).call()
    pool = str(factory.functions.getPool(nft[2], nft[3], nft[4]).call())
    engine = a.read_engine()
    db_token: int | None = None
    known: set[int] = set()
    if engine is not None:
        sessions = sessionmaker(engine)
        db_token, known = current_token(sessions, p.name), known_tokens(sessions, p.name)
    try:
        check_position(p, pool, token_id, db_token, known, manifest)
    except ConfigError as exc:
        return str(exc)
    return None


def _managed_token(a: App, name: str, chain_id: int, configured: int) -> int:
    """The NFT the store manages as position ``name``: the newest open one, when the
    configured ``token_id`` is among those it has managed under that name (rebalances replaced
    it); else the configured one. The database is only read (none yet: the configured one)."""
    from sqlalchemy import select
    from sqlalchemy.orm import Session

    from lpbot.store.models import Position

    engine = a.read_engine()
    if engine is None:
        return configured
    with Session(engine) as s:
        rows = s.scalars(
            select(Position)
            .where(Position.label == name, Position.chain_id == chain_id)
            .order_by(Position.id)
        ).all()
    if configured not in {int(r.token_id) for r in rows}:
        return configured
    current = [int(r.token_id) for r in rows if r.closed_at is None]
    return current[-1] if current else configured


def _chain_signers(a: App) -> dict[str, dict[str, Any]]:
    """Per chain, the Safe, module, sender and gas limits it uses, each with its key path."""
    out: dict[str, dict[str, Any]] = {}
    for name in a.config.chains:
        cs, limits = a.config.chain_signer(name), a.config.chain_limits(name)
        fee, gwei = limits.max_fee_usd, limits.max_gas_price_gwei
        out[name] = {
            "safe": "none" if cs.safe is None else f"{cs.safe.address} ({cs.where['safe']})",
            "module": "none"
            if cs.module is None
            else f"{cs.module.address} ({cs.where['module']})",
            "sender": "none" if cs.sender is None else f"{cs.sender} ({cs.where['sender']})",
            "max_fee_usd": "no fee limit" if fee is None else f"${fee} per rebalance",
            "max_gas_price_gwei": "no gas price limit"
            if gwei is None
            else f"{gwei} gwei max fee per gas",
        }
    return out


def _offline_problems(a: App) -> list[str]:
    """What needs no RPC to be found: on a devnet, a manifest that does not exist or cannot be
    read, and a position's pool that the manifest does not name; a paper hedge market that does
    not exist."""
    from eth_utils.address import is_address

    from lpbot.errors import ConfigError

    problems: list[str] = []
    for name, chain in a.config.chains.items():
        if chain.manifest is None:
            continue  # its RPC variable may be set only where `lpbot run` runs: --online asks
        try:
            a.chain(name)
        except ConfigError as exc:
            problems.append(str(exc))
    for p in a.config.positions:
        if not p.enabled or is_address(p.pool) or a.config.chains[p.chain].manifest is None:
            continue
        try:
            manifest = a.chain(p.chain).manifest
        except ConfigError:
            continue  # said above
        if manifest is None:
            continue  # a live chain's pools are asked of the chain (--online)
        try:
            manifest.pool(p.pool)
        except KeyError:
            pools = ", ".join(f"{x.token0}/{x.token1}-{x.fee}" for x in manifest.pools)
            problems.append(
                f"positions.{p.name}.pool: {p.pool!r} is not a pool of chain {p.chain} "
                f"(its pools: {pools})"
            )
    hedge = a.config.hedge
    if hedge is not None and hedge.exchange == "paper":
        from lpbot.hedge.paper import PAPER_MARKETS

        if hedge.symbol not in PAPER_MARKETS:
            problems.append(
                f"hedge.symbol: no paper market for {hedge.symbol}; known: "
                + ", ".join(PAPER_MARKETS)
            )
    return problems


def _hedge_rows(a: App) -> list[tuple[str, str, bool]]:
    """The ``[hedge]`` perp against each hedged position's volatile token, as ``lpbot run``
    checks it before any trade (the pool's tokens are asked of the chain)."""
    from lpbot.errors import ConfigError
    from lpbot.hedge.delta import check_perp_symbol, risky_index

    hedge = a.config.hedge
    rows: list[tuple[str, str, bool]] = []
    if hedge is None:
        return rows
    for p in a.config.positions:
        if not p.enabled or (hedge.positions and p.name not in hedge.positions):
            continue
        try:
            symbols = a.position_symbols(p.name)
            token = symbols[risky_index(symbols[0], symbols[1])]
            check_perp_symbol(hedge.symbol, token)
        except ConfigError as exc:
            rows.append((f"hedge {p.name}", str(exc), False))
            continue
        rows.append((f"hedge {p.name}", f"{hedge.exchange} {hedge.symbol} against {token}", True))
    return rows


@config.command()
@config_option
@click.option("--online", is_flag=True, help="also ask the chain: RPC, Safe, module, positions")
@json_option
def check(online: bool, as_json: bool) -> int:
    """Validate the configuration and its keystores (decrypting nothing); summarise it."""
    from lpbot.errors import ConfigError
    from lpbot.store.session import redact_url

    a = app()
    c = a.config
    problems = a.pricing_problems()
    if problems:  # a bad key, like any the configuration's own validation finds
        raise ConfigError("; ".join(problems))
    offline_problems = _offline_problems(a)
    keystores = check_keystores(a)
    quorums = check_quorums(a, keystores)
    quorum = quorums[0][1:] if quorums else None
    chain_rows = check_online(a) if online else []
    ok = (
        not offline_problems
        and all(k[3] for k in keystores)
        and all(r[2] for r in chain_rows)
        and all(q[2] for q in quorums)
    )
    summary: dict[str, Any] = {
        "source": a.source,
        "valid": ok,
        "problems": offline_problems,
        "chains": list(c.chains),
        "positions": [
            {
                "name": p.name,
                "chain": p.chain,
                "pool": p.pool,
                "token_id": p.token_id,
                "open": None if p.open is None else {k: str(v) for k, v in p.open.capital.items()},
                "strategy": p.strategy.kind,
            }
            for p in c.positions
        ],
        "keystores": [
            {"name": n, "path": path, "found": f, "ok": good} for n, path, f, good in keystores
        ],
        "online": [{"check": w, "finding": f, "ok": good} for w, f, good in chain_rows],
        "hedge": None
        if c.hedge is None
        else {"exchange": c.hedge.exchange, "symbol": c.hedge.symbol},
        "auto_execute": c.auto_execute.model_dump(mode="json"),
        "pricing": c.pricing.model_dump(mode="json"),
        "owner_keys": None if quorum is None else {"finding": quorum[0], "ok": quorum[1]},
        "owner_keys_per_safe": [{"safe": w, "finding": f, "ok": good} for w, f, good in quorums],
        "chain_signers": _chain_signers(a),
        "database": (
            f"${c.database_url_env}" if c.database_url_env else redact_url(c.resolve_database_url())
        ),
        "data_dir": str(c.data_dir),
        "reports": str(c.reports_path),
        "submission": check_routes(a),
        "slippage": check_slippage(a),
    }
    if as_json:
        emit_json(summary)
        return 0 if ok else 1
    click.echo(f"{a.source}: {'valid' if ok else 'NOT ready'}")
    for problem in offline_problems:
        click.echo(f"  BAD {problem}")
    click.echo(f"  chains: {', '.join(c.chains)}")
    for p in c.positions:
        what = f"token {p.token_id}" if p.token_id is not None else "open new"
        click.echo(f"  position {p.name}: {p.chain} {p.pool}, {what}, strategy {p.strategy.kind}")
    for name, slip in summary["slippage"].items():
        value = "per plan" if slip["bps"] is None else f"{slip['bps']:g} bps"
        click.echo(f"  slippage {name}: {value} ({slip['source']})")
    for name, row in summary["submission"].items():
        for what, label in (("swap", "carrying a swap"), ("no_swap", "carrying none")):
            r = row[what]
            where = r["text"] if r["route"] != "refused" else f"REFUSED: {r['why']}"
            click.echo(f"  sending on {name}, a transaction {label}: {where}")
    if c.hedge is not None:
        click.echo(f"  hedge: {c.hedge.exchange} {c.hedge.symbol}")
    pr = c.pricing
    how = {
        "pools": f"the pools against {pr.stable} at "
        + (f"a {pr.twap_seconds} s TWAP" if pr.twap_seconds else "spot")
        + ", checked against Chainlink",
        "chainlink": "Chainlink feeds",
        "fixed": "fixed marks (" + ", ".join(f"{t} ${v}" for t, v in pr.fixed.items()) + ")",
    }[pr.source]
    click.echo(
        f"  pricing: {how}; alerts past {pr.max_age_seconds} s, {pr.max_deviation_bps} bps "
        f"apart, {pr.depeg_bps} bps off peg"
    )
    auto = c.auto_execute
    if auto.enabled:
        click.echo(f"  auto-execute: up to ${auto.max_value_usd} per rebalance via {auto.via}")
    else:
        click.echo("  auto-execute: off (every rebalance waits for a person)")
    for name, row in summary["chain_signers"].items():
        click.echo(
            f"  signers on {name}: Safe {row['safe']}, module {row['module']}, sender "
            f"{row['sender']}; gas limits: {row['max_fee_usd']}, {row['max_gas_price_gwei']}"
        )
    for where, finding, good in quorums:
        of = "" if len(quorums) == 1 else f" ({where})"
        click.echo(f"  owner keys{of}: {'' if good else 'BAD '}{finding}")
    click.echo(f"  database: {summary['database']}")
    click.echo(f"  data: {c.data_dir}, reports: {c.reports_path}")
    if keystores:
        table(
            "keystores",
            ["", "name", "path", "address"],
            [("ok" if good else "BAD", n, path, f) for n, path, f, good in keystores],
        )
    if chain_rows:
        table(
            "on chain",
            ["", "check", "finding"],
            [("ok" if g else "BAD", w, f) for w, f, g in chain_rows],
        )
    if not ok:
        bad = [n for n, _p, _f, good in keystores if not good]
        if bad:
            click.echo(
                f"fix: `lpbot keys new NAME` (or `lpbot keys import NAME`) for: {', '.join(bad)}"
            )
    return 0 if ok else 1

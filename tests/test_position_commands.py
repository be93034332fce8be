"""``lpbot position quote|show|plan`` against the devnet's contracts.

A quote is carried out through the contracts (its swap through SwapRouter02, then a mint through
the NonfungiblePositionManager) and every number must match to the wei; ``show``'s fees owed
must equal what ``collect`` would pay (an ``eth_call`` from the owner) after a market crossed the
positions' ticks; capital strings are parsed exactly or refused with exit code 2.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from web3.logs import DISCARD

from lpbot import cli
from lpbot.devnet.deploy import GAS, contract
from lpbot.devnet.manifest import TokenInfo
from lpbot.devnet.market import run_market
from lpbot.errors import ConfigError
from lpbot.position_commands import build_strategy, capital_amounts, parse_capital
from lpbot.strategy.fixed import FixedWidth
from lpbot.uniswap.constants import MAX_UINT128
from tests.conftest import Devnet

POOL = "USDC/WETH-500"
USDC = TokenInfo(symbol="USDC", address="0x" + "11" * 20, decimals=6)
WETH = TokenInfo(symbol="WETH", address="0x" + "22" * 20, decimals=18)


@dataclass(frozen=True)
class Run:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)


Cli = Callable[..., Run]


@pytest.fixture
def lpbot(
    devnet: Devnet,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> Iterator[Cli]:
    """``lpbot --config C ARGS --rpc URL`` on the session devnet: exit code, out, err."""
    path = tmp_path / "manifest.json"
    devnet.manifest.write(path)
    config = tmp_path / "lpbot.toml"
    config.write_text(f'version = 1\n[chains.devnet]\nmanifest = "{path}"\n')

    def run(*argv: str) -> Run:
        capsys.readouterr()
        code = cli.main(["--config", str(config), *argv, "--rpc", devnet.url])
        captured = capsys.readouterr()
        return Run(code, captured.out, captured.err)

    yield run


def _quote(lpbot: Cli, *args: str) -> dict[str, Any]:
    run = lpbot("position", "quote", "--pool", POOL, *args, "--json")
    assert run.code == 0, run.err
    quote: dict[str, Any] = run.json()
    return quote


def _swap_and_mint(chain: Devnet, quote: dict[str, Any], who: str) -> dict[str, Any]:
    """Do what the quote says through the contracts; return the mint's IncreaseLiquidity."""
    w3, m = chain.w3, chain.manifest
    info = m.pool(quote["pool"]["name"])
    t0, t1 = m.token(info.token0), m.token(info.token1)
    erc = [contract(w3, "TestERC20", t.address) for t in (t0, t1)]
    router = contract(w3, "SwapRouter02", m.contracts["SwapRouter02"])
    npm = contract(w3, "NonfungiblePositionManager", m.contracts["NonfungiblePositionManager"])
    pool = contract(w3, "UniswapV3Pool", info.address)

    def balances() -> tuple[int, int]:
        return erc[0].functions.balanceOf(who).call(), erc[1].functions.balanceOf(who).call()

    capital = [int(quote["capital"]["amount0"]), int(quote["capital"]["amount1"])]
    swap = quote["swap"]
    if swap is not None:
        i_in = 0 if swap["zero_for_one"] else 1
        tin, tout = (t0, t1) if i_in == 0 else (t1, t0)
        amount_in, out = int(swap["amount_in"]), int(swap["expected_out"])
        before = balances()
        swap_params = (tin.address, tout.address, info.fee, who, amount_in, out, 0)
        tx = router.functions.exactInputSingle(swap_params).transact({"from": who, "gas": GAS})
        assert w3.eth.wait_for_transaction_receipt(tx)["status"] == 1
        after = balances()
        assert before[i_in] - after[i_in] == amount_in
        assert after[1 - i_in] - before[1 - i_in] == out
        assert pool.functions.slot0().call()[0] == int(swap["sqrt_price_after_x96"])
        capital[i_in] -= amount_in
        capital[1 - i_in] += out
    deposit, dust = quote["deposit"], quote["dust"]
    assert capital == [
        int(deposit["amount0"]) + int(dust["amount0"]),
        int(deposit["amount1"]) + int(dust["amount1"]),
    ]
    assert pool.functions.slot0().call()[0] == int(deposit["sqrt_price_x96"])
    rng = quote["range"]
    params = (
        t0.address,
        t1.address,
        info.fee,
        rng["tick_lower"],
        rng["tick_upper"],
        capital[0],
        capital[1],
        int(deposit["amount0"]),
        int(deposit["amount1"]),
        who,
        2**40,
    )
    tx = npm.functions.mint(params).transact({"from": who, "gas": GAS})
    receipt = w3.eth.wait_for_transaction_receipt(tx)
    assert receipt["status"] == 1
    event: dict[str, Any] = npm.events.IncreaseLiquidity().process_receipt(receipt, errors=DISCARD)[
        0
    ]["args"]
    return event


@pytest.mark.devnet
@pytest.mark.parametrize(
    "args",
    [
        ("--capital", "5000 USDC", "--capital", "0.2 WETH", "--strategy", "fixed",
         "--width-pct", "5"),
        ("--capital", "3 WETH", "--strategy", "full"),
        ("--capital", "1000.5 usdc", "--capital", "1 WETH", "--strategy", "fixed",
         "--width-ticks", "40"),
    ],
    ids=["usdc-heavy-fixed-pct", "weth-only-full-range", "weth-heavy-fixed-ticks"],
)  # fmt: skip
def test_quote_equals_a_swap_then_mint_through_the_contracts_to_the_wei(
    chain: Devnet, lpbot: Cli, args: tuple[str, ...]
) -> None:
    quote = _quote(lpbot, *args)
    assert quote["swap"] is not None
    event = _swap_and_mint(chain, quote, chain.manifest.accounts.lps[0])
    d = quote["deposit"]
    assert (event["liquidity"], event["amount0"], event["amount1"]) == (
        int(d["liquidity"]),
        int(d["amount0"]),
        int(d["amount1"]),
    )
    assert int(quote["dust"]["amount0"]) <= int(quote["dust"]["bound0"])
    assert int(quote["dust"]["amount1"]) <= int(quote["dust"]["bound1"])


@pytest.mark.devnet
def test_quote_text_shows_range_swap_deposit_and_dust(lpbot: Cli) -> None:
    run = lpbot(
        "position", "quote", "--pool", POOL, "--capital", "5000 USDC", "--capital", "1.5 WETH",
        "--strategy", "fixed", "--width-pct", "10",
    )  # fmt: skip
    assert run.code == 0, run.err
    for label in ("range", "USDC per WETH", "swap", "amount in", "expected out", "price after",
                  "deposit", "liquidity", "dust"):  # fmt: skip
        assert label in run.out


@pytest.fixture
def traded(chain: Devnet, lpbot: Cli) -> dict[str, int]:
    """Two positions of lps[0] (one a few ticks wide) and the Safe's, then an hour of market
    (30 steps of 2 minutes) that crosses their ticks: the token ids by name."""
    lp = chain.manifest.accounts.lps[0]
    wide = _swap_and_mint(
        chain, _quote(lpbot, "--capital", "20000 USDC", "--strategy", "fixed", "--width-pct", "2"),
        lp,
    )  # fmt: skip
    narrow = _swap_and_mint(
        chain,
        _quote(lpbot, "--capital", "2000 USDC", "--capital", "1 WETH", "--strategy", "fixed",
               "--width-ticks", "10"),
        lp,
    )  # fmt: skip
    run_market(
        chain.w3, chain.manifest, chain.manifest.pool(POOL),
        steps=30, vol=3.0, seed=5, step_seconds=120, trades_per_step=2,
    )  # fmt: skip
    assert chain.manifest.safe_position is not None
    return {
        "wide": wide["tokenId"],
        "narrow": narrow["tokenId"],
        "safe": chain.manifest.safe_position,
        "wide_amount0": wide["amount0"],
        "wide_amount1": wide["amount1"],
    }


@pytest.mark.devnet
def test_show_fees_equal_what_collect_would_pay(
    chain: Devnet, lpbot: Cli, traded: dict[str, int]
) -> None:
    npm = contract(
        chain.w3, "NonfungiblePositionManager",
        chain.manifest.contracts["NonfungiblePositionManager"],
    )  # fmt: skip
    crossed = 0
    for name in ("wide", "narrow", "safe"):
        token_id = traded[name]
        shown = lpbot("position", "show", str(token_id), "--json")
        assert shown.code == 0, shown.err
        report = shown.json()
        owner = npm.functions.ownerOf(token_id).call()
        assert report["owner"] == owner
        collect = npm.functions.collect((token_id, owner, MAX_UINT128, MAX_UINT128)).call(
            {"from": owner}
        )
        fees = report["fees"]
        assert (int(fees["amount0"]), int(fees["amount1"])) == tuple(collect)
        assert collect[0] > 0 or collect[1] > 0
        crossed += not report["range"]["in_range"]
        assert len(report["var"]) == 3
        # out of range in the stablecoin, a position risks nothing until the price comes back
        in_range = report["range"]["in_range"]
        assert all(v["parametric_usd"] > 0 or not in_range for v in report["var"])
        assert report["var"][-1]["parametric_usd"] > 0
        assert report["greeks"]["risky"] == "WETH"
    assert crossed >= 1  # the narrow range was left: fee growth outside both ways

    shown = lpbot("position", "show", str(traded["wide"]), "--json").json()
    opening = shown["opening"]
    assert (int(opening["amount0"]), int(opening["amount1"])) == (
        traded["wide_amount0"],
        traded["wide_amount1"],
    )
    assert shown["impermanent_loss"]["vs_hold"] <= 0
    text = lpbot("position", "show", str(traded["safe"]))
    assert text.code == 0, text.err
    for label in ("fees owed", "IL vs hold", "IL vs 50/50", "delta", "gamma", "VaR"):
        assert label in text.out


@pytest.mark.devnet
def test_plan_prints_the_policy_decision_with_its_reasons(
    lpbot: Cli, traded: dict[str, int]
) -> None:
    token_id = str(traded["safe"])
    text = lpbot("position", "plan", token_id)
    assert text.code == 0, text.err
    assert any(f"decision: {kind}: " in text.out for kind in ("Hold", "Rebalance", "Compound"))
    assert "  - " in text.out  # the reasons
    decided = lpbot("position", "plan", token_id, "--strategy", "fixed", "--width-pct", "3",
                    "--json").json()  # fmt: skip
    assert decided["decision"] in ("Hold", "Rebalance", "Compound")
    assert decided["reasons"]
    assert decided["signals"]["age_seconds"] > 0


@pytest.mark.devnet
@pytest.mark.parametrize(
    ("capital", "problem"),
    [
        ("5000.0000001 USDC", "USDC has 6 decimals; 5000.0000001 has 7"),
        ("-5 USDC", "must not be negative"),
        ("0 WETH", "must be > 0"),
        ("5 DAI", "unknown token 'DAI'"),
        ("five USDC", "'five' is not a number"),
        ("5000", '"AMOUNT SYMBOL"'),
        ("NaN USDC", "not a finite number"),
    ],
)
def test_bad_capital_exits_2_naming_the_problem(lpbot: Cli, capital: str, problem: str) -> None:
    run = lpbot("position", "quote", "--pool", POOL, "--capital", capital, "--strategy", "full")
    assert run.code == 2
    assert f'--capital "{capital}"' in run.err
    assert problem in run.err


@pytest.mark.devnet
def test_show_of_a_missing_position_exits_2(lpbot: Cli) -> None:
    run = lpbot("position", "show", "999999")
    assert run.code == 2
    assert "999999" in run.err


# ------------------------------------------------------------------------------ pure parts


def test_capital_is_converted_exactly() -> None:
    tokens = {"USDC": USDC, "WETH": WETH}
    assert parse_capital("5000 USDC", tokens).raw == 5_000_000_000
    assert parse_capital("0.000001 usdc", tokens).raw == 1
    assert parse_capital("1.500000000000000000 WETH", tokens).raw == 15 * 10**17
    assert parse_capital("123456789012345678901.123456789012345678 WETH", tokens).raw == (
        123456789012345678901123456789012345678
    )
    assert parse_capital("1e3 USDC", tokens).raw == 1_000_000_000
    with pytest.raises(ConfigError, match="without commas"):
        parse_capital("1,5 WETH", tokens)
    assert capital_amounts(["2 WETH", "10 USDC"], USDC, WETH) == (10_000_000, 2 * 10**18)
    with pytest.raises(ConfigError, match="given twice"):
        capital_amounts(["2 WETH", "1 WETH"], USDC, WETH)
    with pytest.raises(ConfigError, match="uint128"):
        parse_capital(f"{Decimal(2**128)} WETH", tokens)


def test_strategy_options_are_checked() -> None:
    assert build_strategy("fixed", width_pct=5.0, width_ticks=None, k=None) == FixedWidth(
        half_width_pct=5.0
    )
    for kwargs, message in (
        ({"width_pct": None, "width_ticks": None, "k": None}, "needs --width-pct"),
        ({"width_pct": 1.0, "width_ticks": 10, "k": None}, "one of"),
        ({"width_pct": 150.0, "width_ticks": None, "k": None}, "half_width_pct"),
        ({"width_pct": None, "width_ticks": 10, "k": 2.0}, "--k applies"),
    ):
        with pytest.raises(ConfigError, match=message):
            build_strategy("fixed", **kwargs)
    with pytest.raises(ConfigError, match="apply to --strategy fixed"):
        build_strategy("vol_band", width_pct=5.0, width_ticks=None, k=None)


@pytest.mark.devnet
def test_show_and_plan_agree_to_the_cent_at_the_same_block(
    lpbot: Cli, traded: dict[str, int]
) -> None:
    token_id = str(traded["safe"])
    shown = lpbot("position", "show", token_id, "--json").json()
    planned = lpbot("position", "plan", token_id, "--json").json()
    assert shown["pool"]["block"] == planned["pool"]["block"]
    # one marking: the same marks at the same block, from the chain's pools and feeds
    assert shown["pool"]["marks"] == planned["pool"]["marks"]
    marks = shown["pool"]["marks"]
    assert set(marks["usd"]) >= {"USDC", "WETH"}
    assert "pool:spot" in marks["sources"]["WETH"]
    # the fees a person reads in `show` are the fees the policy weighed in `plan`
    fees = Decimal(shown["value"]["fees_usd"])
    assert fees > 0
    assert fees == Decimal(repr(planned["signals"]["fees_usd"])).quantize(Decimal("0.01"))
    # and both value the tokens at the marks, not at a constant
    weth = Decimal(marks["usd"]["WETH"])
    assert weth != 3000
    usdc = Decimal(marks["usd"]["USDC"])
    f = shown["fees"]
    expect = Decimal(f["amount0"]) / 10**6 * usdc + Decimal(f["amount1"]) / 10**18 * weth
    assert fees == expect.quantize(Decimal("0.01"))


@pytest.mark.devnet
def test_show_without_a_price_route_names_token_and_chain(
    devnet: Devnet, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # a chain whose stablecoin nothing anchors to USD: refused, not valued at a made-up 1.0
    path = tmp_path / "no-feeds.json"
    devnet.manifest.model_copy(update={"price_feeds": {}}).write(path)
    assert devnet.manifest.safe_position is not None
    config = tmp_path / "lpbot.toml"
    config.write_text(f'version = 1\n[chains.devnet]\nmanifest = "{path}"\n')
    argv = ["position", "show", str(devnet.manifest.safe_position), "--rpc", devnet.url]
    code = cli.main(["--config", str(config), *argv])
    err = capsys.readouterr().err
    assert code == 2
    assert "no price route for USDC on devnet" in err
    assert "Traceback" not in err


@pytest.mark.devnet
def test_var_of_a_weth_quoted_position_includes_weths_own_usd_price_risk(
    chain: Devnet, lpbot: Cli
) -> None:
    # WBTC/WETH is quoted in WETH: its USD value moves with WETH's USD price as well
    from lpbot.analytics.var import position_var
    from lpbot.chain.history import fetch_oracle_history
    from lpbot.chain.reader import PoolReader
    from lpbot.execution.snapshots import pool_snapshot, position_snapshot

    m = chain.manifest
    btc_pool = next(p for p in m.pools if {p.token0, p.token1} == {"WETH", "WBTC"})
    for info, vol in ((m.pool(POOL), 1.0), (btc_pool, 0.5)):
        run_market(chain.w3, m, info, steps=20, vol=vol, seed=7, step_seconds=60,
                   trades_per_step=1)  # fmt: skip
    npm = contract(
        chain.w3, "NonfungiblePositionManager", m.contracts["NonfungiblePositionManager"]
    )
    token_id = next(i for i in range(1, 40) if npm.functions.positions(i).call()[4] == btc_pool.fee)
    shown = lpbot("position", "show", str(token_id), "--json")
    assert shown.code == 0, shown.err
    var = shown.json()["var"]
    assert all("joint with the quote token's USD price" in v["price_basis"] for v in var)
    reader = PoolReader(
        chain.w3, multicall=m.contracts["Multicall3"], tick_lens=m.contracts["TickLens"],
        position_manager=m.contracts["NonfungiblePositionManager"],
    )  # fmt: skip
    snap = reader.fetch_pool_state(btc_pool.address, token_ids=[token_id], twap_seconds=(0,))
    d0, d1 = m.token(btc_pool.token0).decimals, m.token(btc_pool.token1).decimals
    history = fetch_oracle_history(chain.w3, btc_pool.address, window_seconds=6 * 3600,
                                   step_seconds=60)  # fmt: skip
    fixed = position_var(
        pool_snapshot(snap, d0, d1), position_snapshot(snap.positions[token_id]), history,
        quote=0, quote_usd=3000.0, horizons=(60.0,),
    )  # fmt: skip
    assert var[0]["parametric_usd"] > 1.2 * fixed[0].parametric_usd


@pytest.mark.devnet
def test_quote_shows_expected_fees_against_lvr_and_a_verdict(chain: Devnet, lpbot: Cli) -> None:
    run_market(
        chain.w3, chain.manifest, chain.manifest.pool(POOL),
        steps=30, vol=1.0, seed=7, step_seconds=120, trades_per_step=2,
    )  # fmt: skip
    args = ("--capital", "3000 USDC", "--capital", "1 WETH", "--strategy", "full")
    outlook = _quote(lpbot, *args)["outlook"]
    assert outlook is not None
    assert outlook["fee_apr"] > 0 and outlook["lvr_apr"] > 0 and outlook["volatility"] > 0
    # fee/LVR is the same ratio as the two rates (full range is in range all day)
    assert outlook["fee_to_lvr"] == pytest.approx(outlook["fee_apr"] / outlook["lvr_apr"], rel=1e-3)
    assert outlook["expects_loss"] == (outlook["fee_apr"] <= outlook["lvr_apr"])
    verdict = "do not LP here" if outlook["expects_loss"] else "LP here"
    assert outlook["verdict"].startswith(verdict)
    text = lpbot("position", "quote", "--pool", POOL, *args)
    assert text.code == 0 and "expected LVR" in text.out and verdict in text.out
    # a volatility band without --k: the width with the highest expected value (full range
    # where fees are below LVR), with the same verdict
    band = _quote(lpbot, *args[:4], "--strategy", "vol_band")
    assert band["outlook"]["expects_loss"] == outlook["expects_loss"]
    if outlook["expects_loss"]:
        assert (band["range"]["tick_lower"], band["range"]["tick_upper"]) == (-887270, 887270)

"""The configuration: the example loads, and every mistake is named by its key path."""

from __future__ import annotations

import textwrap
from datetime import time
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lpbot.cli import main
from lpbot.config import (
    EXAMPLE_TOML,
    Config,
    load_config,
    parse_config,
    resolve_config_path,
    write_example,
)
from lpbot.errors import ConfigError
from lpbot.strategy import FixedWidth, FullRange, RebalancePolicy, SkewedBand, VolatilityBand

ARB_POOL = "0xC6962004f452bE9203591991D15f6b388e09E8D0"
MINIMAL = """
[chains.arbitrum]
rpc_url_env = "LPBOT_ARB_RPC"

[[positions]]
name = "p"
chain = "arbitrum"
pool = "{pool}"
token_id = 42
[positions.strategy]
kind = "full_range"
"""


def _parse(text: str = MINIMAL, **fmt: str) -> Config:
    return parse_config(textwrap.dedent(text).format(pool=ARB_POOL, **fmt))


def _errors(text: str) -> str:
    with pytest.raises(ConfigError) as info:
        parse_config(textwrap.dedent(text))
    return str(info.value)


def _with(extra: str, base: str = MINIMAL) -> str:
    return base.format(pool=ARB_POOL) + textwrap.dedent(extra)


# ------------------------------------------------------------------------------ the example


def test_the_example_loads_and_validates(tmp_path: Path) -> None:
    path = write_example(tmp_path / "lpbot.toml")
    config = load_config(path)
    assert list(config.chains) == ["devnet"]
    assert config.chains["devnet"].manifest == tmp_path / ".lpbot/devnet/manifest.json"
    assert config.data_dir == tmp_path / ".lpbot"
    assert config.reports_path == tmp_path / ".lpbot/reports"
    assert config.resolve_database_url() == f"sqlite:///{tmp_path / '.lpbot' / 'lpbot.db'}"
    (position,) = config.positions
    assert position.open is not None
    assert position.open.raw_amount("USDC", 6) == 3_000 * 10**6
    assert position.open.raw_amount("WETH", 18) == 10**18
    assert position.open.raw_amount("WBTC", 8) == 0
    policy = position.build_policy()
    assert isinstance(policy, RebalancePolicy)
    assert policy.strategy == VolatilityBand(
        k="auto", horizon_seconds=86_400, halflife_seconds=21_600
    )
    assert (policy.edge_pct, policy.max_age_seconds, policy.vol_ratio_trigger) == (1.0, None, 2.0)
    assert config.signer.safe is not None and config.signer.safe.address == "devnet"
    assert config.signer.keystores["bot"].path == tmp_path / ".lpbot/keys/bot.json"
    assert config.hedge is not None and config.hedge.band_abs == Decimal("0.05")
    assert config.schedule.daily_report_time == time(0, 5)
    assert config.auto_execute.enabled and config.auto_execute.max_value_usd == Decimal(10_000)
    with pytest.raises(ConfigError, match="exists"):
        write_example(path)
    write_example(path, force=True)


def test_models_are_frozen() -> None:
    config = _parse()
    with pytest.raises(ValueError, match="frozen"):
        config.data_dir = Path("/elsewhere")


# ---------------------------------------------------------------------------- strategies


@pytest.mark.parametrize(
    ("table", "expected"),
    [
        ('kind = "fixed"\nhalf_width_ticks = 600', FixedWidth(half_width_ticks=600)),
        ('kind = "fixed"\nhalf_width_pct = 5', FixedWidth(half_width_pct=5.0)),
        ('kind = "vol_band"\nk = 3', VolatilityBand(k=3.0)),
        (
            'kind = "skewed"\nk = 1.5\nmax_shift = 0.3\nstatic_skew = 0.2',
            SkewedBand(band=VolatilityBand(k=1.5), max_shift=0.3, static_skew=0.2),
        ),
        ('kind = "full_range"', FullRange()),
    ],
)
def test_strategies_map_onto_the_strategy_classes(table: str, expected: object) -> None:
    text = MINIMAL.replace('kind = "full_range"', table)
    assert _parse(text).positions[0].strategy.build() == expected


def test_policy_maps_onto_rebalance_policy() -> None:
    config = parse_config(
        _with("""
        [positions.policy]
        edge_pct = "off"
        max_age_seconds = 604800
        vol_ratio_trigger = 3
        horizon_seconds = 43200
        slippage_bps = 25
        min_gain_over_cost = 1.5
        compound_margin = 4
        """)
    )
    policy = config.positions[0].build_policy()
    assert policy == RebalancePolicy(
        strategy=FullRange(),
        edge_pct=None,
        max_age_seconds=604_800,
        vol_ratio_trigger=3,
        horizon_seconds=43_200,
        slippage_bps=25,
        min_gain_over_cost=1.5,
        compound_margin=4,
    )


def test_policy_defaults_are_the_strategy_packages() -> None:
    policy = _parse().positions[0].build_policy()
    assert policy == RebalancePolicy(strategy=FullRange())


# -------------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            ('kind = "full_range"', 'kind = "vol_band"\nk = 0'),
            "positions[0].strategy.k: must be > 0",
        ),
        (
            ('kind = "full_range"', 'kind = "vol_band"\nk = -1\nhorizon_seconds = 0'),
            "positions[0].strategy.horizon_seconds: must be > 0",
        ),
        (
            ('kind = "full_range"', 'kind = "fixed"\nhalf_width_pct = 100'),
            "positions[0].strategy.half_width_pct: must be < 100",
        ),
        (
            ('kind = "full_range"', 'kind = "fixed"'),
            "positions[0].strategy: give exactly one of half_width_ticks and half_width_pct",
        ),
        (
            (
                'kind = "full_range"',
                'kind = "vol_band"\nmin_half_width_ticks = 50\nmax_half_width_ticks = 20',
            ),
            "positions[0].strategy: max_half_width_ticks 20 must be >= min_half_width_ticks 50",
        ),
        (
            ('kind = "full_range"', 'kind = "skewed"\nmax_shift = 0.6\nstatic_skew = 0.5'),
            "positions[0].strategy: |static_skew| + max_shift must be < 1",
        ),
        (
            ('kind = "full_range"', 'kind = "wide"'),
            "positions[0].strategy.kind: must be one of 'fixed', 'vol_band', 'skewed', "
            "'full_range'",
        ),
        (('kind = "full_range"', "k = 2"), "positions[0].strategy.kind: required"),
        (
            ('kind = "full_range"', 'kind = "full_range"\nk = 2'),
            "positions[0].strategy.k: unknown key",
        ),
        (("token_id = 42", ""), "positions[0]: give token_id (an existing position) or [open]"),
        (("token_id = 42", "token_id = 0"), "positions[0].token_id: must be > 0"),
        (
            ('chain = "arbitrum"', 'chain = "base"'),
            "positions[0].chain: no chain 'base' in [chains]",
        ),
        ((ARB_POOL, "USDC/WETH-500"), "positions[0].pool: must be a 0x address"),
        ((ARB_POOL, ARB_POOL.replace("C6", "c6")), "positions[0].pool: "),
        (
            ('rpc_url_env = "LPBOT_ARB_RPC"', 'rpc_url_env = "sk-live-abc123"'),
            "chains.arbitrum.rpc_url_env: must be the name of an environment variable",
        ),
        (
            (
                'rpc_url_env = "LPBOT_ARB_RPC"',
                'rpc_url = "https://arb-mainnet.example/v2/Abc123Def456Ghi789Jkl012Mno"',
            ),
            "chains.arbitrum.rpc_url: looks like it carries an API key",
        ),
        (
            ('rpc_url_env = "LPBOT_ARB_RPC"', 'rpc_url = "https://rpc.example/?apikey=x"'),
            "chains.arbitrum.rpc_url: has a 'apikey' parameter",
        ),
        (('rpc_url_env = "LPBOT_ARB_RPC"', ""), "chains.arbitrum.rpc_url_env: required"),
        (("[chains.arbitrum]", "[chains.mainnet]"), "chains.mainnet: unknown chain name"),
        (
            ('rpc_url_env = "LPBOT_ARB_RPC"', 'rpc_url_env = "X"\nchain_id = 10'),
            "chains.arbitrum.chain_id: 10 is not supported",
        ),
    ],
)
def test_errors_name_the_key_path(change: tuple[str, str], message: str) -> None:
    text = MINIMAL.format(pool=ARB_POOL).replace(*change)
    with pytest.raises(ConfigError) as info:
        parse_config(text, source="lpbot.toml")
    assert message in str(info.value)
    assert str(info.value).startswith("invalid configuration lpbot.toml:")


def test_every_error_is_listed_at_once() -> None:
    text = _with("""
    [schedule]
    monitor_seconds = 0
    daily_report_time = "25:00"
    timezone = "Mars/Olympus"
    surprise = 1
    """)
    with pytest.raises(ConfigError) as info:
        parse_config(text)
    message = str(info.value)
    for line in (
        "schedule.monitor_seconds: must be > 0",
        "schedule.daily_report_time: ",
        "schedule.timezone: unknown time zone 'Mars/Olympus'",
        "schedule.surprise: unknown key",
    ):
        assert line in message


def test_standby_takeover_seconds_is_bounded() -> None:
    assert parse_config(_with("[schedule]\n")).schedule.standby_takeover_seconds == 30
    too_short = _errors(_with("[schedule]\nstandby_takeover_seconds = 2\n"))
    assert "schedule.standby_takeover_seconds: must be >= 3" in too_short
    assert "schedule.standby_takeover_seconds: must be <= 3600" in _errors(
        _with("[schedule]\nstandby_takeover_seconds = 3601\n")
    )


def test_policy_errors() -> None:
    bad = {
        "edge_pct = -1": "positions[0].policy.edge_pct: must be > 0",
        "vol_ratio_trigger = 1": "positions[0].policy.vol_ratio_trigger: must be > 1",
        'edge_pct = "of"': "positions[0].policy.edge_pct: must be a number",
        "slippage_bps = -5": "positions[0].policy.slippage_bps: must be >= 0",
        # the execution's minimums use it: wider than 300 bps only with --force, per command
        "slippage_bps = 301": "positions[0].policy.slippage_bps: must be <= 300",
        "vol_long_halflife_seconds = 60": "positions[0].policy: vol_long_halflife_seconds 60.0 "
        "must exceed",
    }
    for line, message in bad.items():
        assert message in _errors(_with(f"[positions.policy]\n{line}\n")), line


def test_capital_is_exact() -> None:
    base = MINIMAL.format(pool=ARB_POOL).replace("token_id = 42", "")
    config = parse_config(base + '[positions.open]\ncapital = { WETH = "0.123456789012345678" }\n')
    opening = config.positions[0].open
    assert opening is not None
    assert opening.raw_amount("WETH", 18) == 123_456_789_012_345_678
    with pytest.raises(ConfigError, match="more than 6 decimals"):
        opening.raw_amount("WETH", 6)
    assert "write amounts as strings" in _errors(
        base + "[positions.open]\ncapital = { WETH = 0.1 }\n"
    )
    assert "positions[0].open.capital: at least one amount must be > 0" in _errors(
        base + '[positions.open]\ncapital = { WETH = "0" }\n'
    )
    assert "positions[0].open.capital.USDC: must be >= 0" in _errors(
        base + '[positions.open]\ncapital = { USDC = "-1" }\n'
    )


def test_signer_references_and_thresholds() -> None:
    owner = "0xa0Ee7A142d267C1f36714E4a8F75612F20a79720"
    message = _errors(
        _with(f"""
        [signer]
        sender = "hot"
        [signer.keystores.bot]
        path = "k.json"
        password_env = "PW"
        [signer.safe]
        address = "{ARB_POOL}"
        threshold = 3
        owners = [
            {{ address = "{owner}", keystore = "cold" }},
            {{ address = "{owner}", mpc = true }},
        ]
        [signer.module]
        address = "{ARB_POOL}"
        operator = "bot"
        """)
    )
    assert "signer.safe.threshold: 3 exceeds the 2 owners" in message
    message = _errors(
        _with(f"""
        [signer]
        sender = "hot"
        [signer.keystores.bot]
        path = "k.json"
        password_env = "PW"
        [signer.safe]
        address = "{ARB_POOL}"
        threshold = 1
        owners = [{{ address = "{owner}", keystore = "cold" }}]
        """)
    )
    assert "signer.sender: no keystore 'hot' in [signer.keystores] (bot)" in message
    assert "signer.safe.owners[0].keystore: no keystore 'cold'" in message
    mpc = _errors(
        _with("""
        [signer.mpc]
        threshold = 3
        share_count = 2
        parties = [{ kind = "local", index = 1, dir = "p1", passphrase_env = "P1" },
                   { kind = "remote", index = 2, url = "ftp://x" }]
        """)
    )
    assert "signer.mpc.parties[1].url: a remote party is reached on the loopback" in mpc


MPC_OWNER = "0xa0Ee7A142d267C1f36714E4a8F75612F20a79720"
OTHER = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"
MPC_TOML = """
[signer.keystores.owner1]
path = "owner1.json"
password_env = "OWNER1_PW"
[signer.keystores.policy]
path = "policy.json"
password_env = "POLICY_PW"
[signer.safe]
address = "{pool}"
threshold = 2
owners = [{{ address = "{pool}", keystore = "owner1" }}, {{ address = "{owner}", mpc = true }}]
[signer.mpc]
threshold = 2
share_count = 3
address = "{mpc_owner}"
parties = [
    {{ kind = "local", index = 1, dir = "mpc/party-1", passphrase_env = "LPBOT_MPC_PW" }},
    {{ kind = "{kind2}", index = 2, url = "http://127.0.0.1:7410" }},
    {{ kind = "remote", index = 3, url = "http://127.0.0.1:7411", offline = true }},
]
[auto_execute]
enabled = true
via = "multisig"
max_value_usd = "1000"
{approver}
"""


def _mpc(
    owner: str = MPC_OWNER, kind2: str = "remote", approver: str = 'approver = "policy"'
) -> str:
    extra = MPC_TOML.format(
        pool=ARB_POOL, owner=owner, mpc_owner=MPC_OWNER, kind2=kind2, approver=approver
    )
    return _with(extra)


def test_signer_mpc_is_the_mpc_json_schema(tmp_path: Path) -> None:
    """[signer.mpc] is the one MPC schema (lpbot.signing.mpc.config.MpcConfig): this host's
    party, the co-signer every signature needs, the recovery party offline."""
    from lpbot.signing.mpc.config import LocalParty
    from lpbot.signing.mpc.config import MpcConfig as KeySchema

    config = parse_config(_mpc(), base_dir=tmp_path)
    mpc = config.signer.mpc
    assert isinstance(mpc, KeySchema)
    assert mpc.required_party == 2  # the co-signer, never replaced by party 3
    local = mpc.party(1)
    assert isinstance(local, LocalParty) and local.dir == tmp_path / "mpc" / "party-1"
    assert config.signer.safe is not None and config.signer.safe.owners[1].bot_signs
    # the same document is an mpc.json for the lpbot mpc commands
    path = tmp_path / "mpc.json"
    mpc.write(path)
    assert KeySchema.read(path) == mpc


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            {"owner": OTHER},
            f"signer.safe.owners[1].address: {OTHER} is not the MPC key's address",
        ),
        (
            {"kind2": "local"},
            "signer.mpc.parties[1].dir: required",
        ),
        (
            {"approver": ""},
            "auto_execute.approver: an MPC owner's co-signer signs only an approved report",
        ),
        (
            {"approver": 'approver = "nobody"'},
            "auto_execute.approver: no keystore 'nobody' in [signer.keystores]",
        ),
    ],
)
def test_signer_mpc_errors_name_the_key(change: dict[str, str], message: str) -> None:
    assert message in _errors(_mpc(**change))


def test_signer_mpc_refuses_two_shares_on_this_host_and_no_cosigner() -> None:
    two_local = _mpc().replace(
        '{ kind = "remote", index = 2, url = "http://127.0.0.1:7410" }',
        '{ kind = "local", index = 2, dir = "p2", passphrase_env = "P2" }',
    )
    errors = _errors(two_local)
    assert "signer.mpc.parties: 2 parties' shares on this host" in errors
    assert "signer.mpc.cosigner: no co-signer" in errors
    no_address = _mpc().replace(f'address = "{MPC_OWNER}"\nparties', "parties")
    assert "signer.mpc.address: no address yet; run `lpbot mpc keygen`" in _errors(no_address)


def test_config_check_names_the_mpc_key(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "lpbot.toml"
    path.write_text(_mpc(owner=OTHER))
    assert _cli("config", "check", "--config", str(path)) != 0
    err = capsys.readouterr().err
    assert "signer.safe.owners[1].address" in err and "MPC key's address" in err


def test_auto_execute_needs_a_way_to_sign() -> None:
    assert "auto_execute.via: 'module' needs [signer.module]" in _errors(
        _with("[auto_execute]\nenabled = true\nmax_value_usd = 100\n")
    )
    owner = "0xa0Ee7A142d267C1f36714E4a8F75612F20a79720"
    two_of_two = f"""
    [signer.keystores.a]
    path = "a.json"
    password_env = "A_PW"
    [signer.safe]
    address = "{ARB_POOL}"
    threshold = 2
    owners = [{{ address = "{owner}", keystore = "a" }}, {{ address = "{ARB_POOL}" }}]
    [auto_execute]
    enabled = true
    via = "multisig"
    """
    assert "needs the bot to sign for 2 owners; it holds keys for 1" in _errors(_with(two_of_two))


HOT = """
[signer.keystores.a]
path = "a.json"
password_env = "A_PW"
[signer.keystores.b]
path = "b.json"
password_env = "B_PW"
[signer.safe]
address = "{pool}"
threshold = 2
owners = [
    {{ address = "0xa0Ee7A142d267C1f36714E4a8F75612F20a79720", keystore = "a" }},
    {{ address = "0xBcd4042DE499D14e55001CcbB24a551F3b954096", keystore = "b" }},
    {{ address = "0x71bE63f3384f5fb98995898A86B02Fb2426c5788" }},
]
"""


def test_a_hot_quorum_is_refused_unless_allowed_explicitly() -> None:
    hot = HOT.format(pool=ARB_POOL)
    message = _errors(_with(hot))
    assert "signer.safe: the bot holds keystores (a, b) for 2 Safe owners" in message
    assert "signer.allow_hot_quorum = true" in message
    # said explicitly, it is accepted (the multisig is then a hot wallet, as the check says)
    allowed = parse_config(_with("[signer]\nallow_hot_quorum = true\n" + hot))
    assert allowed.signer.allow_hot_quorum
    assert allowed.signer.hot_owner_keystores() == ["a", "b"]
    # one owner key is the safe arrangement
    one = parse_config(_with(hot.replace(', keystore = "b"', "")))
    assert one.signer.hot_owner_keystores() == ["a"]


def test_config_check_counts_a_keystore_holding_an_owner_key_under_another_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from eth_account import Account

    from lpbot.signing.local import write_keystore

    monkeypatch.delenv("LPBOT_CONFIG", raising=False)
    keys = [Account.create() for _ in range(3)]
    for name, key in zip(("a", "b"), keys[:2], strict=True):
        write_keystore(tmp_path / f"{name}.json", bytes(key.key), "pw")

    # owner a is named; the sender "b" is not listed as an owner's keystore, yet it holds the
    # second owner's key: the process can unlock two of the two owner keys the Safe needs
    def config_text(second_owner: str) -> str:
        return textwrap.dedent(f"""
        [chains.arbitrum]
        rpc_url_env = "LPBOT_ARB_RPC"
        [signer]
        sender = "b"
        [signer.keystores.a]
        path = "a.json"
        password_env = "A_PW"
        [signer.keystores.b]
        path = "b.json"
        password_env = "B_PW"
        [signer.safe]
        address = "{ARB_POOL}"
        threshold = 2
        owners = [
            {{ address = "{keys[0].address}", keystore = "a" }},
            {{ address = "{second_owner}" }},
            {{ address = "0x71bE63f3384f5fb98995898A86B02Fb2426c5788" }},
        ]
        """)

    config = tmp_path / "lpbot.toml"
    config.write_text(config_text(keys[1].address))
    assert _cli("--config", str(config), "config", "check") == 1
    out = capsys.readouterr().out
    assert "NOT ready" in out
    assert "owner keys: BAD the bot can unlock 2 of the 2 owner keys the Safe needs (a, b)" in out
    # the sender's key is no owner's: one owner key, ready
    config.write_text(config_text(keys[2].address))
    assert _cli("--config", str(config), "config", "check") == 0
    out = capsys.readouterr().out
    assert "owner keys: the bot can unlock 1 of the 2 owner keys the Safe needs (a)" in out


def test_the_twap_bound_is_never_looser_than_the_slippage() -> None:
    looser = "[positions.policy]\nslippage_bps = 10\n[execution]\nmax_twap_deviation_bps = 30\n"
    message = _errors(_with(looser))
    assert "execution.max_twap_deviation_bps: 30 is looser than positions[0].policy." in message
    config = parse_config(_with(looser.replace("= 30", "= 10")))
    assert config.execution.max_twap_deviation_bps == 10
    # unset, it is the slippage itself (the execution context's bound, lpbot.app)
    assert parse_config(_with("")).execution.max_twap_deviation_bps is None


def test_hedge_requires_key_names_for_real_exchanges() -> None:
    hedge = '[hedge]\nexchange = "okx"\nsymbol = "ETH/USDT:USDT"\nband_pct = 5\n'
    message = _errors(_with(hedge))
    for key in ("api_key_env", "api_secret_env", "api_password_env"):
        assert f"hedge.{key}: required" in message
    assert "hedge.band_pct: band_abs or band_pct must be > 0" in _errors(
        _with('[hedge]\nexchange = "paper"\nsymbol = "ETH/USDC:USDC"\n')
    )
    assert "hedge.exchange: must be " in _errors(
        _with('[hedge]\nexchange = "ftx"\nsymbol = "x"\nband_pct = 1\n')
    )
    assert "hedge.positions[0]: no position named 'q'" in _errors(
        _with('[hedge]\nexchange = "paper"\nsymbol = "x"\nband_pct = 1\npositions = ["q"]\n')
    )


def test_database_url_secrets_stay_in_the_environment() -> None:
    assert "database_url: contains a password" in _errors(
        'database_url = "postgresql://bot:hunter2@db/lpbot"\n' + MINIMAL.format(pool=ARB_POOL)
    )
    config = parse_config('database_url_env = "LPBOT_DB"\n' + MINIMAL.format(pool=ARB_POOL))
    assert config.resolve_database_url({"LPBOT_DB": "postgresql://u:p@h/d"}) == (
        "postgresql://u:p@h/d"
    )
    with pytest.raises(ConfigError, match="LPBOT_DB is not set"):
        config.resolve_database_url({})


def test_unknown_top_level_key_and_bad_toml(tmp_path: Path) -> None:
    assert "colour: unknown key" in _errors("colour = 'blue'\n" + MINIMAL.format(pool=ARB_POOL))
    assert "chains: required" in _errors("")
    path = tmp_path / "lpbot.toml"
    path.write_text("[chains\n")
    with pytest.raises(ConfigError, match="is not valid TOML"):
        load_config(path)
    with pytest.raises(ConfigError, match="lpbot init"):
        load_config(tmp_path / "missing.toml")


# ------------------------------------------------------------------------- chains, paths


def test_resolve_chains(tmp_path: Path) -> None:
    text = """
    [chains.devnet]
    manifest = "devnet/manifest.json"
    [chains.arbitrum]
    rpc_url_env = "LPBOT_ARB_RPC"
    [chains.local]
    chain_id = 1
    rpc_url = "http://127.0.0.1:8545"
    """
    path = tmp_path / "lpbot.toml"
    path.write_text(textwrap.dedent(text))
    config = load_config(path)
    arb = config.resolve_chain("arbitrum", {"LPBOT_ARB_RPC": "https://arb.example/key"})
    assert (arb.chain_id, arb.rpc_url) == (42161, "https://arb.example/key")
    local = config.resolve_chain("local", {})
    assert (local.chain_id, local.rpc_url) == (1, "http://127.0.0.1:8545")
    with pytest.raises(ConfigError, match="LPBOT_ARB_RPC is not set"):
        config.resolve_chain("arbitrum", {})
    with pytest.raises(ConfigError, match="lpbot devnet up"):
        config.resolve_chain("devnet", {})
    _write_manifest(tmp_path / "devnet" / "manifest.json")
    devnet = config.resolve_chain("devnet", {})
    assert (devnet.chain_id, devnet.rpc_url) == (31337, "http://127.0.0.1:8545")
    assert devnet.manifest is not None and devnet.manifest.pool("USDC/WETH-500").fee == 500


def _write_manifest(path: Path, chain_id: int = 31337) -> None:
    from lpbot.devnet.manifest import Accounts, Manifest, PoolInfo, TokenInfo

    Manifest(
        chain_id=chain_id,
        rpc_url="http://127.0.0.1:8545",
        block=1,
        timestamp=0,
        contracts={},
        pool_init_code_hash="0x" + "00" * 32,
        tokens={"USDC": TokenInfo(symbol="USDC", address=ARB_POOL, decimals=6)},
        pools=[
            PoolInfo(
                name="USDC/WETH 0.05%",
                address=ARB_POOL,
                token0="USDC",
                token1="WETH",
                fee=500,
                tick_spacing=10,
                price="3000 USDC/WETH",
            )
        ],
        accounts=Accounts(deployer=ARB_POOL, lps=[], traders=[], bot=ARB_POOL, safe_owners=[]),
    ).write(path)


def test_config_path_precedence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert resolve_config_path(None, {}) == tmp_path / "lpbot.toml"
    assert resolve_config_path(None, {"LPBOT_CONFIG": "/etc/lpbot.toml"}) == Path("/etc/lpbot.toml")
    assert resolve_config_path("my.toml", {"LPBOT_CONFIG": "/etc/lpbot.toml"}) == Path("my.toml")


# ------------------------------------------------------------------------------------ CLI


def _cli(*argv: str) -> int:
    return main(list(argv))


def test_init_then_check(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("LPBOT_CONFIG", raising=False)
    assert _cli("init") == 0
    assert (tmp_path / "lpbot.toml").read_text() == EXAMPLE_TOML
    capsys.readouterr()
    assert _cli("init") == 2
    assert "--force" in capsys.readouterr().err
    assert _cli("init", "--force") == 0
    capsys.readouterr()
    # the example names keystores that do not exist yet: not ready, and it says so
    assert _cli("config", "check") == 1
    out = capsys.readouterr().out
    assert "NOT ready" in out and "position eth-usdc: devnet USDC/WETH-500, open new" in out
    assert "lpbot keys new" in out
    assert "auto-execute: up to $10000 per rebalance via module" in out
    # the example gives the bot one owner key of a 2-of-3 Safe, never a quorum
    assert "owner keys: the bot can unlock 1 of the 2 owner keys the Safe needs (owner1)" in out


# ---------------------------------------------------- the strategies' rules, without loading them


def test_written_out_defaults_are_the_strategy_classes() -> None:
    """config.py writes the strategies' defaults out (reading a configuration must not load
    numpy); they must stay the dataclasses' own."""
    import dataclasses

    from lpbot.config import _DEFAULTS
    from lpbot.strategy import RebalancePolicy, SkewedBand, VolatilityBand

    for cls in (VolatilityBand, SkewedBand, RebalancePolicy):
        defaults = {
            f.name: f.default
            for f in dataclasses.fields(cls)
            if f.default is not dataclasses.MISSING and f.name in _DEFAULTS[cls.__name__]
        }
        assert defaults == _DEFAULTS[cls.__name__], cls.__name__


def test_reading_a_configuration_loads_no_strategy() -> None:
    import subprocess
    import sys

    code = (
        "import sys; from lpbot.config import parse_config, EXAMPLE_TOML; "
        "parse_config(EXAMPLE_TOML); "
        "print(sorted(m for m in ('numpy', 'lpbot.strategy', 'web3') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


_WIDTHS = st.one_of(st.none(), st.integers(-5, 400))
_FLOATS = st.one_of(st.none(), st.floats(-2.0, 200.0, allow_nan=False))


@settings(max_examples=150, deadline=None)
@given(
    kind=st.sampled_from(["fixed", "vol_band", "skewed"]),
    ticks=_WIDTHS,
    pct=_FLOATS,
    low=_WIDTHS,
    high=_WIDTHS,
    shift=st.one_of(st.none(), st.floats(-0.5, 1.2, allow_nan=False)),
    skew=st.one_of(st.none(), st.floats(-1.2, 1.2, allow_nan=False)),
    short=st.one_of(st.none(), st.floats(1.0, 2e6, allow_nan=False)),
    long=st.one_of(st.none(), st.floats(1.0, 2e6, allow_nan=False)),
)
def test_configuration_accepts_exactly_what_the_strategies_accept(
    kind: str,
    ticks: int | None,
    pct: float | None,
    low: int | None,
    high: int | None,
    shift: float | None,
    skew: float | None,
    short: float | None,
    long: float | None,
) -> None:
    strategy: dict[str, object] = {"kind": kind}
    if kind == "fixed":
        strategy.update(half_width_ticks=ticks, half_width_pct=pct)
    else:
        strategy.update(min_half_width_ticks=low, max_half_width_ticks=high)
        if kind == "skewed":
            strategy.update(max_shift=shift, static_skew=skew)
    policy = {"vol_short_halflife_seconds": short, "vol_long_halflife_seconds": long}
    strategy = {k: v for k, v in strategy.items() if v is not None}
    policy = {k: v for k, v in policy.items() if v is not None}
    from pydantic import ValidationError

    from lpbot.config import PositionConfig

    data = {"name": "p", "chain": "devnet", "pool": "USDC/WETH-500", "token_id": 1,
            "strategy": strategy, "policy": policy}  # fmt: skip
    try:
        position = PositionConfig.model_validate(data)
    except ValidationError:
        config_ok = False
    else:
        config_ok = True
    try:
        if config_ok:
            position.build_policy()
        else:
            _build_directly(strategy, policy)
        classes_ok = True
    except (ValueError, TypeError):
        classes_ok = False
    assert config_ok == classes_ok, (strategy, policy)


def _build_directly(strategy: dict[str, object], policy: dict[str, object]) -> None:
    from lpbot.strategy import FixedWidth, RebalancePolicy, SkewedBand, VolatilityBand

    s = dict(strategy)
    kind = s.pop("kind")
    built: object
    if kind == "fixed":
        built = FixedWidth(**s)  # type: ignore[arg-type]
    else:
        band_keys = {"min_half_width_ticks", "max_half_width_ticks"}
        band = VolatilityBand(**{k: v for k, v in s.items() if k in band_keys})  # type: ignore[arg-type]
        built = band
        if kind == "skewed":
            built = SkewedBand(band=band, **{k: v for k, v in s.items() if k not in band_keys})  # type: ignore[arg-type]
    RebalancePolicy(strategy=built, **policy)  # type: ignore[arg-type]


# ------------------------------------------------------------- submission route and slippage

ETH_POOL = "0x88e6A0c2dDD26FEEb64F039a2c41296FcB3f5640"
ROUTED = """
[chains.ethereum]
rpc_url_env = "RPC"
{extra}
[[positions]]
name = "wide"
chain = "ethereum"
pool = "{pool}"
token_id = 1
[positions.strategy]
kind = "full_range"

[[positions]]
name = "narrow"
chain = "ethereum"
pool = "{pool}"
token_id = 2
[positions.strategy]
kind = "fixed"
half_width_ticks = 2000

[[positions]]
name = "set"
chain = "ethereum"
pool = "{pool}"
token_id = 3
[positions.strategy]
kind = "fixed"
half_width_ticks = 2000
[positions.policy]
slippage_bps = 40
"""


def _routed(extra: str = "") -> str:
    return textwrap.dedent(ROUTED).format(pool=ETH_POOL, extra=extra)


def test_ethereum_sends_privately_by_default_and_the_variable_overrides_the_endpoint() -> None:
    config = parse_config(_routed())
    chain = config.resolve_chain("ethereum", {"RPC": "http://a"})
    assert chain.private_submission == "auto" and chain.public_fallback is False
    assert chain.submit_url == "https://rpc.flashbots.net"
    assert "Flashbots Protect" in (chain.submit_endpoint or "")
    config = parse_config(_routed('submit_url_env = "PROTECT"'))
    chain = config.resolve_chain("ethereum", {"RPC": "http://a", "PROTECT": "http://b/key"})
    assert (chain.submit_url, chain.submit_endpoint) == ("http://b/key", "$PROTECT")
    config = parse_config(_routed('private_submission = "never"'))
    assert config.resolve_chain("ethereum", {"RPC": "http://a"}).submit_url is None


def test_contradictory_private_submission_settings_are_named_by_key() -> None:
    both = 'private_submission = "never"\nsubmit_url_env = "PROTECT"'
    assert "chains.ethereum.submit_url_env: private_submission = 'never'" in _errors(_routed(both))
    always = _with("", MINIMAL).replace(
        'rpc_url_env = "LPBOT_ARB_RPC"',
        'rpc_url_env = "LPBOT_ARB_RPC"\nprivate_submission = "always"',
    )
    assert "chains.arbitrum.private_submission: 'always' needs a private endpoint" in _errors(
        always
    )
    assert "private_submission" in _errors(_routed('private_submission = "sometimes"'))


def test_config_check_explains_the_route_and_each_positions_slippage(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "lpbot.toml"
    path.write_text(_routed())
    _cli("config", "check", "--config", str(path))
    out = capsys.readouterr().out
    assert (
        "sending on ethereum, a transaction carrying a swap: privately to "
        "https://rpc.flashbots.net (Flashbots Protect, the chain's default) (carries a swap on "
        "Ethereum; private_submission = 'auto'); if it cannot be reached, nothing is sent"
    ) in out
    assert "sending on ethereum, a transaction carrying none: the public mempool" in out
    # a full range's derived slippage is the tightest; the narrower range's looser; a set
    # value is the policy's own
    assert "slippage wide: 10 bps (derived from the range's half-width of 887272 ticks" in out
    assert "slippage narrow: 105 bps (derived from the range's half-width of 2000 ticks" in out
    assert "slippage set: 40 bps (positions.set.policy.slippage_bps)" in out


# ------------------------------------------------------------------- several chains, one file

OWNER_A = "0xa0Ee7A142d267C1f36714E4a8F75612F20a79720"
OWNER_B = "0xBcd4042DE499D14e55001CcbB24a551F3b954096"
ETH_SAFE = "0x71bE63f3384f5fb98995898A86B02Fb2426c5788"
ETH_POOL = "0x88e6A0c2dDD26FEEb64F039a2c41296FcB3f5640"
TWO_CHAINS = f"""
[chains.ethereum]
rpc_url_env = "LPBOT_ETH_RPC"
[chains.arbitrum]
rpc_url_env = "LPBOT_ARB_RPC"
sender = "arb-bot"
max_gas_price_gwei = 0.1
max_fee_usd = "2"
[chains.arbitrum.safe]
address = "{ARB_POOL}"
threshold = 2
owners = [{{ address = "{OWNER_A}", keystore = "owner" }}, {{ address = "{OWNER_B}" }}]
[chains.arbitrum.module]
address = "{ARB_POOL}"
operator = "arb-bot"

[[positions]]
name = "eth"
chain = "ethereum"
pool = "{ETH_POOL}"
token_id = 1
[positions.strategy]
kind = "full_range"
[[positions]]
name = "arb"
chain = "arbitrum"
pool = "{ARB_POOL}"
token_id = 2
[positions.strategy]
kind = "full_range"

[signer]
sender = "bot"
[signer.keystores.bot]
path = "bot.json"
password_env = "BOT_PW"
[signer.keystores.arb-bot]
path = "arb-bot.json"
password_env = "ARB_BOT_PW"
[signer.keystores.owner]
path = "owner.json"
password_env = "OWNER_PW"
[signer.safe]
address = "{ETH_SAFE}"
threshold = 2
owners = [{{ address = "{OWNER_A}", keystore = "owner" }}, {{ address = "{OWNER_B}" }}]
[execution]
max_fee_usd = "25"
"""


def test_a_chain_uses_its_own_safe_module_sender_and_gas_limits_else_the_global_ones() -> None:
    config = parse_config(TWO_CHAINS)
    arb = config.chain_signer("arbitrum")
    assert arb.safe is not None and arb.safe.address == ARB_POOL
    assert arb.module is not None and arb.module.operator == "arb-bot"
    assert arb.sender == "arb-bot" and arb.where["safe"] == "chains.arbitrum.safe"
    eth = config.chain_signer("ethereum")
    assert eth.safe is not None and eth.safe.address == ETH_SAFE
    assert (eth.module, eth.sender, eth.where["sender"]) == (None, "bot", "signer.sender")
    assert config.chain_signer() == eth  # no chain named: the first position's
    limits = config.chain_limits("arbitrum")
    assert (limits.max_fee_usd, limits.max_gas_price_gwei) == (Decimal(2), Decimal("0.1"))
    assert limits.max_gas_price_wei == 100_000_000
    eth_limits = config.chain_limits("ethereum")
    assert (eth_limits.max_fee_usd, eth_limits.max_gas_price_wei) == (Decimal(25), None)
    assert [w for w, _safe in config.safes()] == ["signer.safe", "chains.arbitrum.safe"]


@pytest.mark.parametrize(
    ("change", "error"),
    [
        (
            ('sender = "arb-bot"\nmax', 'sender = "arb-bto"\nmax'),
            "chains.arbitrum.sender: no keystore 'arb-bto' in [signer.keystores]",
        ),
        (
            ('operator = "arb-bot"', 'operator = "cold"'),
            "chains.arbitrum.module.operator: no keystore 'cold' in [signer.keystores]",
        ),
        (
            (
                f'address = "{ARB_POOL}"\nthreshold = 2\nowners = [{{ address = "{OWNER_A}", '
                'keystore = "owner"',
                f'address = "{ARB_POOL}"\nthreshold = 2\nowners = [{{ address = "{OWNER_A}", '
                'keystore = "owner2"',
            ),
            "chains.arbitrum.safe.owners[0].keystore: no keystore 'owner2'",
        ),
        (
            ("max_gas_price_gwei = 0.1", "max_gas_price_gwei = 0"),
            "chains.arbitrum.max_gas_price_gwei: must be > 0",
        ),
        (
            # below one wei per gas: every new transaction would wait for ever
            ("max_gas_price_gwei = 0.1", 'max_gas_price_gwei = "0.0000000009"'),
            "chains.arbitrum.max_gas_price_gwei: must be at least 0.000000001 gwei (1 wei)",
        ),
        (
            (
                f'[chains.arbitrum.safe]\naddress = "{ARB_POOL}"',
                '[chains.arbitrum.safe]\naddress = "devnet"',
            ),
            'chains.arbitrum.safe.address: "devnet" is the devnet\'s safe, but chain arbitrum '
            "is live",
        ),
        (
            (f'[signer.safe]\naddress = "{ETH_SAFE}"', '[signer.safe]\naddress = "devnet"'),
            'signer.safe.address: "devnet" is the devnet\'s safe, but chain ethereum is live; '
            "give its 0x address in [chains.ethereum.safe]",
        ),
        (
            ("[chains.arbitrum]\n", "[chains.arbitrum]\nchain_id = 1\n"),
            "chains.arbitrum: chain id 1, as chains.ethereum: two tables of one chain would "
            "share the sender's nonces",
        ),
        (
            (
                f'{{ address = "{OWNER_B}" }}]\n[chains.arbitrum.module]',
                f'{{ address = "{OWNER_B}", keystore = "bot" }}]\n[chains.arbitrum.module]',
            ),
            "chains.arbitrum.safe: the bot holds keystores (bot, owner) for 2 Safe owners, the "
            "threshold is 2",
        ),
    ],
)
def test_a_bad_chain_signer_is_named_by_its_key_path(change: tuple[str, str], error: str) -> None:
    old, new = change
    assert old in TWO_CHAINS
    assert error in _errors(TWO_CHAINS.replace(old, new, 1))


def test_a_devnet_on_the_chain_id_of_another_table_is_refused_when_resolved(
    tmp_path: Path,
) -> None:
    """The devnet's chain id is known from its manifest only: checked when it is resolved."""
    text = """
    [chains.devnet]
    manifest = "devnet/manifest.json"
    [chains.ethereum]
    rpc_url = "http://127.0.0.1:8545"
    """
    path = tmp_path / "lpbot.toml"
    path.write_text(textwrap.dedent(text))
    _write_manifest(tmp_path / "devnet" / "manifest.json", chain_id=1)  # a fork of Ethereum
    config = load_config(path)
    with pytest.raises(ConfigError, match=r"chains.devnet: chain id 1, as chains.ethereum"):
        config.resolve_chain("devnet", {})
    with pytest.raises(ConfigError, match=r"chains.ethereum: chain id 1, as chains.devnet"):
        config.resolve_chain("ethereum", {})
    _write_manifest(tmp_path / "devnet" / "manifest.json")  # the devnet's own id: 31337
    assert config.resolve_chain("devnet", {}).chain_id == 31337
    assert config.resolve_chain("ethereum", {}).chain_id == 1


def test_config_check_shows_each_chains_signers_and_the_owner_keys_of_each_safe(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("LPBOT_CONFIG", raising=False)
    config = tmp_path / "lpbot.toml"
    config.write_text(TWO_CHAINS)
    assert _cli("--config", str(config), "config", "check") == 1  # the keystores do not exist
    out = capsys.readouterr().out
    assert (
        f"signers on arbitrum: Safe {ARB_POOL} (chains.arbitrum.safe), module {ARB_POOL} "
        "(chains.arbitrum.module), sender arb-bot (chains.arbitrum.sender); gas limits: $2 per "
        "rebalance, 0.1 gwei max fee per gas"
    ) in out
    assert (
        f"signers on ethereum: Safe {ETH_SAFE} (signer.safe), module none, sender bot "
        "(signer.sender); gas limits: $25 per rebalance, no gas price limit"
    ) in out
    for where in ("signer.safe", "chains.arbitrum.safe"):
        assert f"owner keys ({where}): the bot can unlock 1 of the 2 owner keys" in out


def test_keys_list_names_each_keys_role_on_each_chain(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import json

    monkeypatch.delenv("LPBOT_CONFIG", raising=False)
    config = tmp_path / "lpbot.toml"
    config.write_text(TWO_CHAINS)
    assert _cli("--config", str(config), "keys", "list", "--json") == 0
    roles = {k["name"]: k["roles"] for k in json.loads(capsys.readouterr().out)}
    assert roles == {
        "bot": ["sender"],
        "arb-bot": ["sender on arbitrum", "module operator on arbitrum"],
        "owner": ["Safe owner", "Safe owner on arbitrum"],
    }


def test_owner_keys_split_between_two_chains_safes_still_make_a_hot_quorum() -> None:
    """Ethereum's Safe names the key of owner A, Arbitrum's the key of owner B; both Safes
    have owners A and B with threshold 2: the process holds both keys, so on each chain it
    could move the Safe alone. Refused, each Safe named, unless allow_hot_quorum."""
    split = (
        TWO_CHAINS.replace(
            f'owners = [{{ address = "{OWNER_A}", keystore = "owner" }}, '
            f'{{ address = "{OWNER_B}" }}]\n[chains.arbitrum.module]',
            f'owners = [{{ address = "{OWNER_A}" }}, '
            f'{{ address = "{OWNER_B}", keystore = "owner2" }}]\n[chains.arbitrum.module]',
        )
        + '[signer.keystores.owner2]\npath = "owner2.json"\npassword_env = "OWNER2_PW"\n'
    )
    assert 'keystore = "owner2"' in split
    message = _errors(split)
    assert "chains.arbitrum.safe: the bot holds keystores (owner, owner2) for 2 Safe owners" in (
        message
    )
    assert "signer.safe: the bot holds keystores (owner, owner2) for 2 Safe owners" in message
    allowed = parse_config(split.replace("[signer]\n", "[signer]\nallow_hot_quorum = true\n"))
    assert allowed.signer.allow_hot_quorum


def test_a_live_venue_hedges_one_position() -> None:
    # the venue keeps one position per symbol in the account: two positions' hedges (one per
    # chain, each on its own thread) would each size that one short against its own delta
    # alone and adopt the other's short as its own, hedging the pair as if it were one
    second = MINIMAL.split("[[positions]]")[1].replace('name = "p"', 'name = "q"')
    keys = 'api_key_env = "K"\napi_secret_env = "S"\n'
    hedge = f'[hedge]\nexchange = "binanceusdm"\nsymbol = "ETH/USDT:USDT"\nband_pct = 5\n{keys}'
    two = _with("[[positions]]" + second.format(pool=ARB_POOL) + hedge)
    message = _errors(two)
    assert "hedge.positions: binanceusdm keeps one ETH/USDT:USDT position" in message
    assert "'p', 'q'" in message
    config = parse_config(two.replace(keys, keys + 'positions = ["q"]\n'))
    assert config.hedge is not None and config.hedge.positions == ("q",)
    # the paper venue keeps an account per position: any number
    assert parse_config(two.replace('"binanceusdm"', '"paper"')).hedge is not None

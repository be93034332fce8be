"""``lpbot db upgrade|current|check`` on the database a config file names."""

from __future__ import annotations

from pathlib import Path

import pytest

from lpbot.cli import main
from lpbot.store import migrate
from lpbot.store.session import make_engine


def _run(*argv: str) -> int:
    return main(list(argv))


def _config(tmp_path: Path) -> Path:
    path = tmp_path / "lpbot.toml"
    path.write_text(
        'database_url_env = "LPBOT_TEST_DB_URL"\n[chains.devnet]\nmanifest = "m.json"\n'
    )
    return path


def test_upgrade_then_current_then_check(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("LPBOT_TEST_DB_URL", db_url)
    config = str(_config(tmp_path))
    assert _run("db", "--config", config, "current") == 1
    assert "not migrated" in capsys.readouterr().out
    assert _run("db", "--config", config, "upgrade") == 0
    assert f"-> {migrate.head()}" in capsys.readouterr().out
    assert _run("db", "--config", config, "upgrade") == 0
    assert "already" in capsys.readouterr().out
    assert _run("db", "--config", config, "current") == 0
    assert f"revision {migrate.head()} (newest)" in capsys.readouterr().out
    assert _run("db", "--config", config, "check") == 0
    assert "matches" in capsys.readouterr().out
    engine = make_engine(db_url)
    try:
        assert migrate.schema_diff(engine) == []
    finally:
        engine.dispose()


def test_default_database_is_sqlite_in_the_data_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "lpbot.toml").write_text('data_dir = "state"\n[chains.devnet]\nmanifest = "m"\n')
    monkeypatch.setenv("LPBOT_CONFIG", str(tmp_path / "lpbot.toml"))
    assert _run("db", "upgrade") == 0
    assert (tmp_path / "state" / "lpbot.db").exists()
    assert str(tmp_path / "state" / "lpbot.db") in capsys.readouterr().out

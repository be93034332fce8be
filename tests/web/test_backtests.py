"""The backtests page: every ``lpbot backtest run`` and ``sweep`` made with a configuration is
kept under its report_dir and shown with the content of its own report, behind the token."""

from __future__ import annotations

import json
import re
from html import unescape
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from lpbot.app import App
from lpbot.backtest.saved import FOLDER, sweep_line
from lpbot.backtest.synthetic import synthetic_minutes, write_demeter_csv
from lpbot.cli import main
from lpbot.web.server import create_app

TOKEN = "a-test-token-of-some-length"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
POOL = "0xC6962004f452bE9203591991D15f6b388e09E8D0"


def backtest_with(config: Path, tmp_path: Path) -> None:
    """A two-day run (labelled "two days", its page also written to tmp_path/own.html) and a
    two-point sweep (one refused) on synthetic USDC/WETH bars, made with ``config``."""
    history = synthetic_minutes(2, seed=5)
    paths = write_demeter_csv(history, tmp_path / "csv", chain="arbitrum", pool=POOL)
    data = tmp_path / "bars.sqlite"
    assert main(["data", "import-csv", *map(str, paths), "--out", str(data), "--fee", "500",
                 "--decimals0", "6", "--decimals1", "18", "--symbol0", "USDC",
                 "--symbol1", "WETH"]) == 0  # fmt: skip
    common = ["--config", str(config), "backtest"]
    assert main([*common, "run", "--data", str(data), "--label", "two days",
                 "--html", str(tmp_path / "own.html")]) == 0  # fmt: skip
    assert main([*common, "sweep", "--data", str(data), "--workers", "1",
                 "--grid", "strategy.half_width_pct=2,150"]) == 0  # fmt: skip


def backtested(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[Path, str, str]:
    """A configuration, a run and a two-point sweep made with it; (config, run's output,
    sweep's output)."""
    history = synthetic_minutes(2, seed=5)
    paths = write_demeter_csv(history, tmp_path / "csv", chain="arbitrum", pool=POOL)
    data = tmp_path / "bars.sqlite"
    assert main(["data", "import-csv", *map(str, paths), "--out", str(data), "--fee", "500",
                 "--decimals0", "6", "--decimals1", "18", "--symbol0", "USDC",
                 "--symbol1", "WETH"]) == 0  # fmt: skip
    config = tmp_path / "lpbot.toml"
    config.write_text(
        'version = 1\ndata_dir = "data"\n[chains.devnet]\nmanifest = "manifest.json"\n'
    )
    capsys.readouterr()
    common = ["--config", str(config), "backtest"]
    assert main([*common, "run", "--data", str(data), "--label", "two days",
                 "--html", str(tmp_path / "own.html")]) == 0  # fmt: skip
    run = capsys.readouterr().out
    assert main([*common, "sweep", "--data", str(data), "--workers", "1",
                 "--grid", "strategy.half_width_pct=2,150"]) == 0  # fmt: skip
    swept = capsys.readouterr().out
    return config, run, swept


def test_runs_and_sweeps_are_kept_and_shown_as_their_reports(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config, run, swept = backtested(tmp_path, capsys)
    kept = tmp_path / "data" / "reports" / FOLDER
    assert f"saved for the dashboard: {kept}" in run and f"saved for the dashboard: {kept}" in swept
    folders = sorted(p.name for p in kept.iterdir())
    assert len(folders) == 2
    run_id = next(f for f in folders if "-run-two-days" in f)
    sweep_id = next(f for f in folders if "-sweep-" in f)
    # the kept report is the page --html wrote, byte for byte
    own = (tmp_path / "own.html").read_text()
    assert (kept / run_id / "report.html").read_text() == own
    summary = json.loads((kept / run_id / "summary.json").read_text())

    a = App.load(config)
    try:
        with TestClient(create_app(a, TOKEN), base_url="http://127.0.0.1:8765") as c:
            for path in ("/backtests", f"/backtests/{run_id}", f"/backtests/{run_id}/report.html"):
                assert c.get(path).status_code == 401, path  # the token, as everywhere
            # an open page redraws when a backtest is kept
            assert c.get("/api/version", headers=AUTH).json()["version"].endswith(max(folders))
            listing = c.get("/backtests", headers=AUTH)
            assert listing.status_code == 200
            row = listing.text[listing.text.index(f'data-backtest="{run_id}"') :].split("</tr>")[0]
            m = summary["metrics"]
            assert f">{m['apr']:+.2%}<" in row and f">{m['lp_vs_hold']:+.3%}<" in row
            assert "USDC/WETH 0.05%" in row and "two days" in row
            assert f'href="/backtests/{sweep_id}"' in listing.text

            page = c.get(f"/backtests/{run_id}", headers=AUTH)
            assert page.status_code == 200
            body = own[own.index("<body>") + 6 : own.rindex("</body>")]
            assert body in page.text  # the report's own content, charts and tables
            assert f"{m['apr']:+.2%}" in page.text and "<svg" in page.text
            whole = c.get(f"/backtests/{run_id}/report.html", headers=AUTH)
            assert whole.text == own
            assert whole.headers["content-security-policy"].startswith("default-src 'self'")

            page = c.get(f"/backtests/{sweep_id}", headers=AUTH)
            assert page.status_code == 200
            rows = json.loads((kept / sweep_id / "sweep.json").read_text())["rows"]
            table = page.text[page.text.index('id="sweep-rows"') :].split("</table>")[0]
            shown = re.findall(r"<tr data-row=\"\d+\">(.*?)</tr>", table, re.S)
            assert len(shown) == len(rows) == 2
            for html, row in zip(shown, rows, strict=True):
                cells = [unescape(t).strip() for t in re.findall(r">([^<>]+)<", html)]
                line = sweep_line(row)  # what `lpbot backtest sweep` printed
                assert line in swept
                if row["error"]:
                    assert f"refused: {row['error']}" in " ".join(cells)
                else:
                    text = ", ".join(cells[1:])
                    for value in re.findall(r"[-+$]?[\d,]+\.\d+%?", line):
                        assert value in text, (value, text)
            for bad in ("../../etc", "nothing", f"{run_id}x", "20261202T191500Z-run-x"):
                assert c.get(f"/backtests/{bad}", headers=AUTH).status_code == 404, bad
            assert c.get(f"/backtests/{sweep_id}/report.html", headers=AUTH).status_code == 404
    finally:
        a.close()


def test_without_a_configuration_or_with_no_save_nothing_is_kept(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    history = synthetic_minutes(1, seed=3)
    paths = write_demeter_csv(history, tmp_path / "csv", chain="arbitrum", pool=POOL)
    data = tmp_path / "bars.sqlite"
    assert main(["data", "import-csv", *map(str, paths), "--out", str(data), "--fee", "500",
                 "--decimals0", "6", "--decimals1", "18", "--symbol0", "USDC",
                 "--symbol1", "WETH"]) == 0  # fmt: skip
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("LPBOT_CONFIG", raising=False)
    assert main(["backtest", "run", "--data", str(data)]) == 0
    assert "saved for the dashboard" not in capsys.readouterr().out
    (tmp_path / "lpbot.toml").write_text(
        'version = 1\ndata_dir = "d"\n[chains.devnet]\nmanifest = "manifest.json"\n'
    )
    assert main(["backtest", "run", "--data", str(data), "--no-save"]) == 0
    assert "saved for the dashboard" not in capsys.readouterr().out
    assert not (tmp_path / "d").exists()
    assert main(["backtest", "run", "--data", str(data)]) == 0  # ./lpbot.toml: kept
    assert len(list((tmp_path / "d" / "reports" / FOLDER).iterdir())) == 1
    capsys.readouterr()
    (tmp_path / "lpbot.toml").write_text('version = 1\ndata_dir = "d"\nnot_a_key = 1\n')
    assert main(["backtest", "run", "--data", str(data)]) == 2  # refused before running
    captured = capsys.readouterr()
    assert "not_a_key" in captured.err and "APR" not in captured.out
    assert len(list((tmp_path / "d" / "reports" / FOLDER).iterdir())) == 1

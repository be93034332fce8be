"""A malformed bar CSV gets one line naming the file and the line, and writes nothing."""

from __future__ import annotations

from pathlib import Path

import pytest

from lpbot.backtest.synthetic import DEMETER_HEADER
from lpbot.cli import main

GOOD = [
    "2024-01-01 00:00:00,100,-1,200000,200000,199990,200010,100,0,2000000000000000000",
    "2024-01-01 00:01:00,0,-5,200001,200000,199995,200004,0,5,2000000000000000000",
]


@pytest.mark.parametrize(
    ("bad", "says"),
    [
        ("2024-01-01 00:02:00,0,-5,abc,200000,199995,200004,0,5,2000000000000000000", "abc"),
        ("2024-01-01 00:02:00,0,-5,200001,200000,199995,200004,0,5", "a value is missing"),
        ("2024-01-01 00:02:00,0,-5,200001,200000,199995,200004,nan,5,2000", "not a finite"),
        ("2024-01-01 00:02:00,0,-5,200001,200000,199995,200004,0,5,-2000", "negative"),
        # the same minute again with other numbers: two pools' files, or overlapping exports
        ("2024-01-01 00:01:00,0,-7,200003,200000,199995,200004,0,7,2000000000000000000", "before"),
    ],
)
def test_a_bad_row_is_one_line_with_its_place_and_nothing_is_written(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], bad: str, says: str
) -> None:
    csv = tmp_path / "ethereum-pool-2024-01-01.minute.csv"
    csv.write_text("\n".join([DEMETER_HEADER, *GOOD, bad]) + "\n")
    out = tmp_path / "bars.sqlite"
    argv = ["data", "import-csv", str(csv), "--out", str(out), "--fee", "500"]
    code = main([*argv, "--decimals0", "6", "--decimals1", "18"])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith(f"lpbot: {csv}, line 4: ") and says in err
    assert len(err.strip().splitlines()) == 1
    assert not out.exists()


def test_the_same_file_given_twice_is_read_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    csv = tmp_path / "ethereum-pool-2024-01-01.minute.csv"
    csv.write_text("\n".join([DEMETER_HEADER, *GOOD]) + "\n")
    out = tmp_path / "bars.sqlite"
    argv = ["data", "import-csv", str(csv), str(csv), "--out", str(out), "--fee", "500"]
    assert main([*argv, "--decimals0", "6", "--decimals1", "18"]) == 0
    assert "2 bars of 60 s" in capsys.readouterr().out

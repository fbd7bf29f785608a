"""``sessiondata import --parquet`` and ``sessiondata replay --parquet``: a dataset written from CSV files
replays exactly as the CSV files do; errors are one line and exit status 1."""

from __future__ import annotations

import importlib
import io
import json
from pathlib import Path
from typing import Any

import pytest

from sessiondata import ParquetBarRepository
from sessiondata._cli import main
from sessiondata._sample import sample_csv_path
from sessiondata.parallel import RepositorySpec

pytest.importorskip("pyarrow")


def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), out=out, err=err)
    return code, out.getvalue(), err.getvalue()


def _sessions(text: str) -> list[Any]:
    return json.loads(text)["sessions"]  # type: ignore[no-any-return]


def test_import_then_replay_matches_the_csv_replay(tmp_path: Path) -> None:
    sample = sample_csv_path()
    code, out, err = run("import", str(sample), "--parquet", str(tmp_path / "pq"), "--json")
    assert code == 0, err
    body = json.loads(out)
    assert body["parquet"] == str(tmp_path / "pq")
    assert body["files"][0]["added"] > 0
    args = ("--start", "2011-01-27", "--drop-minutes", "3", "--seed", "2", "--json", "--no-progress")
    code, from_csv, err = run("replay", "--csv-dir", str(sample.parent), *args)
    assert code == 0, err
    code, from_parquet, err = run("replay", "--parquet", str(tmp_path / "pq"), *args)
    assert code == 0, err
    assert _sessions(from_parquet) == _sessions(from_csv)
    assert len(_sessions(from_csv)) == 3
    # The same replay on a worker process reopens the dataset by path.
    code, parallel, err = run("replay", "--parquet", str(tmp_path / "pq"), "--workers", "1", *args)
    assert code == 0, err
    assert _sessions(parallel) == _sessions(from_csv)


def test_reimporting_replaces_the_file_and_reports_in_text(tmp_path: Path) -> None:
    sample = str(sample_csv_path())
    first = run("import", sample, "--parquet", str(tmp_path))
    second = run("import", sample, "--parquet", str(tmp_path))
    assert first == second
    assert first[1].endswith(f"bars added to {tmp_path}\n")
    assert len(list(tmp_path.rglob("*.parquet"))) == 1


def test_a_bad_csv_row_writes_nothing_unless_skipped(tmp_path: Path) -> None:
    bad = tmp_path / "BAD_1m.csv"
    bad.write_text(
        "timestamp,open,high,low,close,volume\n"
        "2024-01-02T09:30:00,1,2,0.5,1.5,10\n"
        "2024-01-02T09:31:00,1,2,0.5,nan,10\n"
    )
    code, _, err = run("import", str(bad), "--parquet", str(tmp_path / "out"))
    assert code == 1
    assert "BAD_1m.csv" in err
    assert len(err.splitlines()) == 1
    assert not (tmp_path / "out").exists()
    code, out, err = run("import", str(bad), "--parquet", str(tmp_path / "out"), "--skip-bad-rows", "--json")
    assert code == 0, err
    assert json.loads(out)["files"][0]["rejected_lines"] == [3]
    repo = ParquetBarRepository(tmp_path / "out")
    assert repo.symbols() == ["BAD"]


def test_replay_errors_are_one_line(tmp_path: Path) -> None:
    code, _, err = run("replay", "--parquet", str(tmp_path / "missing"))
    assert (code, err.count("\n")) == (1, 1)
    assert "no such Parquet file or directory" in err
    junk = tmp_path / "junk.parquet"
    junk.write_text("not parquet")
    code, _, err = run("replay", "--parquet", str(junk))
    assert (code, err.count("\n")) == (1, 1)
    assert "junk.parquet" in err


def test_without_pyarrow_the_commands_name_the_extra(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    real = importlib.import_module

    def fake(name: str, package: str | None = None) -> Any:
        if name.startswith("pyarrow"):
            raise ImportError(name)
        return real(name, package)

    monkeypatch.setattr(importlib, "import_module", fake)
    code, _, err = run("replay", "--parquet", str(tmp_path))
    assert code == 1
    assert "sessiondata[parquet]" in err
    code, _, err = run("import", str(sample_csv_path()), "--parquet", str(tmp_path / "x"))
    assert code == 1
    assert "sessiondata[parquet]" in err


def test_repository_spec_reopens_a_parquet_dataset(tmp_path: Path) -> None:
    run("import", str(sample_csv_path()), "--parquet", str(tmp_path))
    spec = RepositorySpec.of(ParquetBarRepository(tmp_path))
    assert spec == RepositorySpec("parquet", str(tmp_path))
    assert isinstance(spec.open(), ParquetBarRepository)
    assert spec.open().symbols() == ["SPY"]

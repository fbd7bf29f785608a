"""`sessiondata.parallel` argument checking and the command line's parallel options (in-process)."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from sessiondata import CsvBarRepository, InMemoryBarRepository, SqliteBarRepository
from sessiondata._cli import main
from sessiondata._sample import sample_csv_path
from sessiondata.parallel import RepositorySpec, replay_many


def test_repository_spec_of(tmp_path: Path) -> None:
    db = tmp_path / "bars.db"
    with SqliteBarRepository(db) as repo:
        assert RepositorySpec.of(repo) == RepositorySpec("sqlite", str(db))
    assert RepositorySpec.of(CsvBarRepository(tmp_path)) == RepositorySpec("csv", str(tmp_path))
    assert RepositorySpec.of(("csv", tmp_path)) == RepositorySpec("csv", str(tmp_path))
    assert RepositorySpec.of(str(tmp_path)) == RepositorySpec("csv", str(tmp_path))
    assert RepositorySpec.of(db) == RepositorySpec("sqlite", str(db))
    assert RepositorySpec.of(InMemoryBarRepository()) is None
    spec = RepositorySpec.of(RepositorySpec("sqlite", str(db)))
    assert spec is not None
    opened = spec.open()
    assert isinstance(opened, SqliteBarRepository)
    opened.close()
    with pytest.raises(FileNotFoundError):
        RepositorySpec.of(tmp_path / "missing")
    with pytest.raises(ValueError, match="kind"):
        RepositorySpec("hdf5", "x")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="path"):
        RepositorySpec("csv", "")
    with pytest.raises(ValueError, match="path"):
        RepositorySpec.of(("csv", 42))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"fn": 42}, "fn"),
        ({"retries": -1}, "retries"),
        ({"workers": 0}, "workers"),
        ({"group_size": 0}, "group"),
        ({"drop_minutes": -1}, "drop_minutes"),
        ({"symbols": "SPY"}, "not one string"),
        ({"symbols": ["SPY", ""]}, "non-empty"),
        ({"symbols": []}, "no symbols"),
    ],
)
def test_replay_many_rejects_bad_arguments(kwargs: dict[str, object], match: str) -> None:
    repo = CsvBarRepository(sample_csv_path().parent)
    symbols = kwargs.pop("symbols", ["SPY"])
    with pytest.raises(ValueError, match=match):
        replay_many(repo, symbols, **kwargs)  # type: ignore[arg-type]


def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    return main(list(argv), out=out, err=err), out.getvalue(), err.getvalue()


def test_cli_parallel_replay_of_the_bundled_sample_matches_the_serial_one() -> None:
    base = ["replay", "--json", "--drop-minutes", "2", "--start", "2011-01-25"]
    code, serial, err = run(*base)
    assert code == 0, err
    code, pooled, err = run(*base, "--workers", "2", "--group-size", "1")
    assert code == 0, err
    a, b = json.loads(serial), json.loads(pooled)
    assert a["symbols"] == b["symbols"]
    assert a["sessions"] == b["sessions"]
    assert len(a["sessions"]) == 5


def test_cli_parallel_replay_matches_the_serial_one(real_data: Path) -> None:
    base = ["replay", "--csv-dir", str(real_data / "quantconnect_lean"), "--symbols", "AIG,BAC", "--json"]
    code, serial, err = run(*base, "--start", "2013-10-09")
    assert code == 0, err
    code, inline, err = run(*base, "--start", "2013-10-09", "--workers", "1", "--group-size", "1")
    assert code == 0, err
    a, b = json.loads(serial), json.loads(inline)
    assert a["symbols"] == b["symbols"]
    assert a["sessions"] == b["sessions"]


@pytest.mark.parametrize(
    ("extra", "needle"),
    [
        (["--workers", "0"], "--workers"),
        (["--workers", "1", "--group-size", "0"], "--group-size"),
        (["--workers", "1", "--retries", "2"], "--scheduler"),
        (["--workers", "1", "--speed", "60"], "--speed"),
        (["--group-size", "2"], "only with"),
    ],
)
def test_cli_parallel_option_errors(extra: list[str], needle: str) -> None:
    code, _, err = run("replay", "--dates", "2011-01-03", *extra)
    assert code == 1
    assert needle in err
    assert len(err.strip().splitlines()) == 1


def test_worker_cache_closes_evicted_repositories_once_no_task_uses_them(tmp_path: Path) -> None:
    # A long-lived worker serves many calls: repositories pushed out of its small cache must be closed (an
    # idle one at once, one still in use when its last task ends), not left for the GC.
    from datetime import datetime

    from sessiondata.parallel import _OpenedRepositories

    specs = []
    for i in range(3):
        path = tmp_path / f"r{i}.db"
        SqliteBarRepository(path).close()
        specs.append(RepositorySpec("sqlite", str(path)))
    cache = _OpenedRepositories(capacity=1)
    probe = (datetime(2024, 1, 2, 9, 30), datetime(2024, 1, 2, 16))

    def is_closed(repo: object) -> bool:
        try:
            repo.get_bars("X", *probe)  # type: ignore[attr-defined]
        except ValueError:
            return True
        return False

    with cache.lease(specs[0], "t") as first, cache.lease(specs[0], "t") as again:
        assert again is first
        with cache.lease(specs[1], "t") as second:
            assert not is_closed(first)  # evicted but in use by two tasks
        assert is_closed(second) is False  # cached and idle: kept for the next task
    assert is_closed(first)  # the last lease ended after the eviction
    with cache.lease(specs[2], "t"):
        assert is_closed(second)  # evicted while idle: closed at once
    assert len(cache) == 1
    with cache.lease(specs[2], "t") as kept:
        assert not is_closed(kept)
    cache.clear()
    assert len(cache) == 0
    assert is_closed(kept)
    user_made = object()
    with cache.lease(user_made, "t") as same:  # type: ignore[arg-type]
        assert same is user_made

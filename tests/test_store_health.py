"""Damaged, unusable and live stores: one line naming the file and what to do, nothing written;
``htflow check``, ``htflow backup`` and a write-ahead log folded into the file on exit."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
import yaml
from helpers import run_cli

from htflow.cli import main
from htflow.store import connections

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def clean_store(tmp_path_factory):
    """A finished four-result campaign in an embedded store, and its campaign file."""
    from helpers import small_campaign_config

    root = tmp_path_factory.mktemp("health")
    cfg = small_campaign_config()
    cfg["search"] = {"sampler": "sobol", "batch_size": 2, "budget": 4, "seed": 1}
    cfg["store"] = str(root / "clean")
    (root / "c.yaml").write_text(yaml.safe_dump(cfg))
    cwd = Path.cwd()
    os.chdir(root)
    try:
        main(["run", "-q", "c.yaml"])
    finally:
        os.chdir(cwd)
        connections.close_all()
    return root


def htflow(argv, capsys) -> tuple[int, str, list[str]]:
    return run_cli(argv, capsys)


def copy(clean_store, tmp_path) -> Path:
    dest = tmp_path / "store"
    shutil.copytree(clean_store / "clean", dest, ignore=shutil.ignore_patterns("plots"))
    return dest


def scribble(path: Path, offset: int, data: bytes) -> None:
    with open(path, "r+b") as f:
        f.seek(offset)
        f.write(data)


DAMAGE = {
    "garbage in the middle": (lambda s: scribble(s / "htflow.sqlite", 120_000, b"\xff" * 8192), "is damaged"),
    "truncated": (lambda s: os.truncate(s / "htflow.sqlite", 100_000), "is damaged"),
    "garbage header": (lambda s: scribble(s / "htflow.sqlite", 0, b"garbage" * 20), "is damaged"),
    "a folder for the file": (lambda s: ((s / "htflow.sqlite").unlink(), (s / "htflow.sqlite").mkdir()),
                              "cannot be opened"),
    "a folder for the WAL": (lambda s: (s / "htflow.sqlite-wal").mkdir(), "cannot be opened"),
    "a symlink loop": (lambda s: ((s / "htflow.sqlite").unlink(), (s / "htflow.sqlite").symlink_to("loop"),
                                  (s / "loop").symlink_to("htflow.sqlite")), "leads nowhere"),
}


@pytest.mark.parametrize("damage", list(DAMAGE))
def test_a_damaged_store_is_one_line_and_nothing_is_written(clean_store, tmp_path, capsys, damage):
    store = copy(clean_store, tmp_path)
    harm, words = DAMAGE[damage]
    harm(store)
    before = {p.name: p.read_bytes() for p in store.iterdir() if p.is_file() and not p.is_symlink()}
    for argv in (["status", "small"], ["export", "small"], ["run", str(clean_store / "c.yaml")]):
        rc, out, err = htflow([*argv, "--store", str(store)], capsys)
        assert rc == 2, (argv, out, err)
        assert len(err) == 1 and err[0].startswith("error: ") and words in err[0], err
        assert "htflow.sqlite" in err[0] and "Traceback" not in out
    after = {p.name: p.read_bytes() for p in store.iterdir() if p.is_file() and not p.is_symlink()}
    assert after == before


def test_check_finds_damage_and_passes_a_whole_store(clean_store, tmp_path, capsys):
    store = copy(clean_store, tmp_path)
    rc, out, err = htflow(["check", "--store", str(store)], capsys)
    assert rc == 0 and "ok (1 campaigns, 4 candidates, 4 results)" in out
    scribble(store / "htflow.sqlite", 120_000, b"\xff" * 8192)
    rc, out, err = htflow(["check", "--store", str(store)], capsys)
    assert rc == 1 and err[0].startswith("problem: ") and "damaged" in err[-1]


def test_a_full_disk_stops_the_run_with_one_line(clean_store, tmp_path, capsys, monkeypatch):
    store = copy(clean_store, tmp_path)
    cfg = yaml.safe_load((clean_store / "c.yaml").read_text())
    cfg["search"]["budget"] = 40
    (tmp_path / "more.yaml").write_text(yaml.safe_dump(cfg))
    opened = connections._open

    def no_room(path):  # SQLite's own way to make a file full: no page beyond those it has
        conn = opened(path)
        pages = conn.execute("PRAGMA page_count").fetchone()[0]
        conn.execute(f"PRAGMA max_page_count={pages}")
        return conn

    monkeypatch.setattr(connections, "_open", no_room)
    rc, _, err = htflow(["run", "-q", str(tmp_path / "more.yaml"), "--store", str(store)], capsys)
    assert rc == 2 and len(err) == 1 and "the disk is full" in err[0], err
    monkeypatch.undo()
    rc, _, err = htflow(["check", "--store", str(store)], capsys)
    assert rc == 0, err  # what was written before is whole


def test_backup_copies_a_live_store_with_what_is_still_in_its_log(clean_store, tmp_path, capsys):
    from htflow.store.sqlite import SQLiteStore

    store = copy(clean_store, tmp_path)
    live = SQLiteStore(store / "htflow.sqlite", "results", key="key")
    live.connect()
    live.update([{"key": f"extra-{i}", "campaign": "other"} for i in range(50)])  # kept in the WAL
    assert (store / "htflow.sqlite-wal").stat().st_size > 0
    rc, out, err = htflow(["backup", str(tmp_path / "copy"), "--store", str(store)], capsys)
    assert rc == 0 and "use it with --store" in out
    assert sorted(p.name for p in (tmp_path / "copy").iterdir()) == ["htflow.sqlite"]  # one file, no log
    copied = SQLiteStore(tmp_path / "copy" / "htflow.sqlite", "results", key="key")
    copied.connect()
    assert copied.count({"campaign": "other"}) == 50 and copied.count({"campaign": "small"}) == 4
    rc, out, err = htflow(["backup", str(tmp_path / "copy"), "--store", str(store)], capsys)
    assert rc == 2 and "not an empty folder" in err[0]


def test_a_clean_exit_leaves_no_write_ahead_log(clean_store, tmp_path, capsys):
    store = copy(clean_store, tmp_path)
    rc, _, err = htflow(["status", "small", "--store", str(store)], capsys)
    assert rc == 0, err
    wal = store / "htflow.sqlite-wal"
    assert not wal.exists() or wal.stat().st_size == 0
    assert (clean_store / "clean" / "htflow.sqlite").stat().st_size > 0
    assert not (clean_store / "clean" / "htflow.sqlite-wal").exists() or \
        (clean_store / "clean" / "htflow.sqlite-wal").stat().st_size == 0  # after the run, too

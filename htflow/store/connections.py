"""SQLite connections of the embedded store: one per file and thread, in WAL mode, cached.

Every failure to open or use a file becomes one :class:`~htflow.errors.StoreError` naming the file
and what to do (:func:`store_error`); a file is checked (``PRAGMA quick_check``) the first time a
process opens it, so a damaged store is refused before anything reads from or writes into it.
:func:`close_all` checkpoints the write-ahead log into the main file, so a store copied after a
clean exit is whole (a live store is copied with :func:`backup`).
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from pathlib import Path

from htflow.errors import StoreError

_CONNECTIONS: dict[tuple[str, int], sqlite3.Connection] = {}
_CHECKED: set[str] = set()
_CONN_LOCK = threading.Lock()

#: SQLite's messages -> what the user should do
_ADVICE = (
    (("symlink loop",), "is a symbolic link that leads nowhere (a loop or a missing target); point it at "
     "the store file or remove it"),
    (("malformed", "not a database", "file is encrypted"),
     "is damaged: restore it from a copy made with `htflow backup`, or move it aside and start a new store"),
    (("readonly", "read-only"),
     "is read-only: make it and its folder writable (chmod u+w) or use another --store"),
    (("disk is full", "disk full", "no space"),
     "cannot be written: the disk is full; free space and run again"),
    (("locked", "busy"), "is locked by another process for too long; wait for it to finish or stop it"),
    (("unable to open", "disk i/o", "too many levels of symbolic links", "is a directory", "not a directory"),
     "cannot be opened: check that it (and its -wal and -shm files) are plain files in a folder you can "
     "write, or use another --store"),
)


def store_error(exc: BaseException, path: str | Path | None) -> StoreError:
    """One line for a failure of the store file ``path``: what happened and what to do."""
    text = str(exc).strip() or type(exc).__name__
    low = text.lower()
    where = str(path) if path else "the store"
    for words, advice in _ADVICE:
        if any(w in low for w in words):
            return StoreError(f"{where} {advice} ({text})")
    return StoreError(f"{where} cannot be used ({text})")


def open_files() -> list[str]:
    """The store files this process has open (for naming the file in an error met later)."""
    with _CONN_LOCK:
        return sorted({path for path, _ in _CONNECTIONS})


def quick_check(conn: sqlite3.Connection, full: bool = False) -> list[str]:
    """SQLite's own check of the file's pages and indexes: an empty list when the file is whole."""
    pragma = "integrity_check" if full else "quick_check"
    rows = [r[0] for r in conn.execute(f"PRAGMA {pragma}(20)").fetchall()]
    return [] if rows == ["ok"] else rows


def _open(path: str) -> sqlite3.Connection:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    # Autocommit mode; transactions are opened explicitly with BEGIN.
    conn = sqlite3.connect(path, timeout=60, isolation_level=None, check_same_thread=False)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA busy_timeout=60000")
        # Index b-trees are updated at random places: keep them in memory.
        conn.execute("PRAGMA cache_size=-131072")
        conn.execute("PRAGMA mmap_size=1073741824")
        conn.execute("PRAGMA temp_store=MEMORY")
        if path not in _CHECKED:
            problems = quick_check(conn)
            if problems:
                raise sqlite3.DatabaseError(f"database disk image is malformed: {problems[0]}")
            _CHECKED.add(path)
    except BaseException:
        conn.close()
        raise
    return conn


def connect_file(path: str | Path) -> sqlite3.Connection:
    """One shared connection per database file and thread, in WAL mode (checked on first open)."""
    try:
        path = str(Path(path).resolve())
    except (OSError, RuntimeError) as exc:  # a symlink loop
        raise store_error(exc, path) from None
    ident = (path, threading.get_ident())
    with _CONN_LOCK:
        conn = _CONNECTIONS.get(ident)
        if conn is None:
            try:
                conn = _open(path)
            except (sqlite3.Error, OSError) as exc:
                raise store_error(exc, path) from None
            _CONNECTIONS[ident] = conn
        return conn


def backup(source: str | Path, dest: str | Path) -> int:
    """Copy a store file, live or not, with SQLite's online backup API; returns the pages copied."""
    src = connect_file(source)
    try:
        target = sqlite3.connect(str(dest))
    except sqlite3.Error as exc:
        raise store_error(exc, dest) from None
    try:
        src.backup(target)
        target.execute("PRAGMA journal_mode=DELETE")  # the copy is one self-contained file
        return target.execute("PRAGMA page_count").fetchone()[0]
    except sqlite3.Error as exc:
        raise store_error(exc, dest) from None
    finally:
        target.close()


def close_all(checkpoint: bool = True) -> None:
    """Close every cached connection (end of a command, tests, forked workers); with
    ``checkpoint``, first move the write-ahead log into the main file."""
    with _CONN_LOCK:
        for conn in _CONNECTIONS.values():
            if checkpoint:
                with contextlib.suppress(sqlite3.Error):
                    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            conn.close()
        _CONNECTIONS.clear()

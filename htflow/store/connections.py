"""SQLite connections of the embedded store: one per file and thread, in WAL mode, cached."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

_CONNECTIONS: dict[tuple[str, int], sqlite3.Connection] = {}
_CONN_LOCK = threading.Lock()


def connect_file(path: str | Path) -> sqlite3.Connection:
    """One shared connection per database file and thread, in WAL mode."""
    path = str(Path(path).resolve())
    ident = (path, threading.get_ident())
    with _CONN_LOCK:
        conn = _CONNECTIONS.get(ident)
        if conn is None:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            # Autocommit mode; transactions are opened explicitly with BEGIN.
            conn = sqlite3.connect(path, timeout=60, isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA busy_timeout=60000")
            # Index b-trees are updated at random places: keep them in memory.
            conn.execute("PRAGMA cache_size=-131072")
            conn.execute("PRAGMA mmap_size=1073741824")
            conn.execute("PRAGMA temp_store=MEMORY")
            _CONNECTIONS[ident] = conn
        return conn


def close_all() -> None:
    """Close every cached connection (tests, forked workers)."""
    with _CONN_LOCK:
        for conn in _CONNECTIONS.values():
            conn.close()
        _CONNECTIONS.clear()

"""One driver per campaign: a lock document (owner host and pid, start, heartbeat) in the store.

A second ``htflow run`` of a campaign that another live process is running stops with a message
naming the owner. A lock is stale, and taken over with a message, when its owner ran on this host
and that process is gone (exact), or when its heartbeat is older than
``HTFLOW_LOCK_STALE_SECONDS`` (another host: the only sign of life there is the heartbeat, which
the driver refreshes whenever it stores a result). ``--force`` takes any lock.

On the embedded store, taking the lock is atomic: the read and the write happen in one
``BEGIN IMMEDIATE`` transaction, so only one writer at a time across processes. On MongoDB and
in memory they are a read followed by a write: two drivers started within the same few
milliseconds could both pass.
"""

from __future__ import annotations

import os
import socket
from datetime import UTC, datetime, timedelta
from typing import Any

import psutil

from htflow.errors import InputError
from htflow.schemas.documents import LOCKS
from htflow.settings import get_settings
from htflow.store.db import CampaignDB


class CampaignLocked(InputError):
    """Another driver is running this campaign."""


def _now() -> datetime:
    return datetime.now(UTC)


def _alive_here(owner: dict) -> bool | None:
    """Whether the owner's process is alive, if it ran on this host (None: another host)."""
    if owner.get("host") != socket.gethostname():
        return None
    pid = owner.get("pid")
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        started = owner.get("process_started", 1e300)
        return psutil.pid_exists(pid) and psutil.Process(pid).create_time() <= started + 1e-3
    except psutil.Error:
        return False


def _when(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    return None


class DriverLock:
    """The lock of one campaign, held by this process while it drives the campaign."""

    def __init__(self, db: CampaignDB, name: str):
        self.db, self.name = db, name
        self.store = db.collection(LOCKS)
        self.me = {"host": socket.gethostname(), "pid": os.getpid(),
                   "process_started": psutil.Process().create_time()}
        self.taken_over: dict | None = None
        self._beat = 0.0

    def stale(self, doc: dict) -> str | None:
        """Why a lock held by someone else may be taken over, or None when its owner may be alive."""
        owner = doc.get("owner") or {}
        alive = _alive_here(owner)
        if alive is False:
            return f"its driver (pid {owner.get('pid')} on this host) is gone"
        beat = _when(doc.get("heartbeat_at"))
        limit = get_settings().lock_stale_seconds
        if alive is None and (beat is None or _now() - beat > timedelta(seconds=limit)):
            return f"its driver on {owner.get('host')} has not been heard from for over {limit:g} s"
        return None

    def acquire(self, force: bool = False) -> None:
        """Take the lock, or raise :class:`CampaignLocked` naming the owner."""
        with self.db, self.db.transaction():
            doc = self.store.query_one({"name": self.name})
            if doc and doc.get("owner") and not self._mine(doc):
                why = "--force" if force else self.stale(doc)
                if why is None:
                    o = doc["owner"]
                    raise CampaignLocked(
                        f"campaign {self.name!r} is being run by pid {o.get('pid')} on {o.get('host')} "
                        f"(since {doc.get('started_at')}, last heard {doc.get('heartbeat_at')}); wait for it "
                        "to finish, stop it, or use --force if it is gone")
                self.taken_over = {**doc["owner"], "reason": why}
            now = _now()
            doc = {"name": self.name, "owner": self.me, "started_at": now, "heartbeat_at": now}
            if self.taken_over:
                doc["taken_over_from"] = self.taken_over
            self.store.update(doc, key="name")

    def _mine(self, doc: dict) -> bool:
        owner = doc.get("owner") or {}
        return owner.get("host") == self.me["host"] and owner.get("pid") == self.me["pid"]

    def heartbeat(self, every: float = 10.0) -> None:
        """Refresh the heartbeat (at most every ``every`` seconds)."""
        now = _now()
        if now.timestamp() - self._beat < every:
            return
        self._beat = now.timestamp()
        with self.db, self.db.transaction():
            doc = self.store.query_one({"name": self.name})
            if doc and self._mine(doc):
                doc.pop("_id", None)
                doc["heartbeat_at"] = now
                self.store.update(doc, key="name")

    def release(self) -> None:
        """Give the lock up (only if it is still this process's)."""
        with self.db, self.db.transaction():
            doc = self.store.query_one({"name": self.name})
            if doc and self._mine(doc):
                self.store.remove_docs({"name": self.name})

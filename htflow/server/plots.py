"""The report's plots for ``htflow serve``, drawn off the request path.

Drawing a plot takes 0.1–1 s of matplotlib; on the event loop's thread that time would be added to
every other request waiting behind it. Plots are drawn instead on one worker thread that has its
own connection to the store (an embedded store's connection belongs to one thread), and kept per
campaign state (the campaign document's ``updated_at`` and its number of results), so a plot is
drawn once per round however often it is asked for; older states are dropped.
"""

from __future__ import annotations

import asyncio
import tempfile
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from htflow.report.html import campaign_plots
from htflow.report.view import CampaignView
from htflow.store.db import CampaignDB

Key = tuple[str, str, str, int]


class PlotWorker:
    """One thread drawing plots from its own connection, with a cache of the drawn PNGs."""

    def __init__(self, db: CampaignDB, max_entries: int = 256):
        # a memory store lives in one object only: share it (mongomock is safe across threads)
        self._shared = db if db.cfg.backend == "memory" else None
        self._cfg = db.cfg
        self._local = threading.local()
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="htflow-plots")
        self.cache: dict[Key, bytes | None] = {}
        self._pending: dict[Key, asyncio.Future] = {}
        self.max_entries = max_entries

    def _db(self) -> CampaignDB:
        if self._shared is not None:
            return self._shared
        if getattr(self._local, "db", None) is None:
            self._local.db = CampaignDB(self._cfg).connect()
        return self._local.db

    def _draw(self, name: str, plot: str) -> bytes | None:
        db = self._db()
        doc = db.campaigns.query_one({"name": name})
        if doc is None:
            return None
        view = CampaignView.open(db, doc)
        with tempfile.TemporaryDirectory(prefix="htflow-plot-") as tmp:
            made = campaign_plots(view, doc, view.summaries(), Path(tmp), only=plot)[f"{plot}.png"]
            return made.read_bytes() if made else None

    async def get(self, key: Key) -> bytes | None:
        """The PNG for ``key`` (campaign, plot, state...), drawn on the worker if not cached."""
        if key in self.cache:
            return self.cache[key]
        if key not in self._pending:  # one drawing per key however many requests wait for it
            loop = asyncio.get_running_loop()
            self._pending[key] = loop.run_in_executor(self._pool, self._draw, key[0], key[1])
        try:
            png = await asyncio.shield(self._pending[key])
        finally:
            if self._pending.get(key) is not None and self._pending[key].done():
                self._pending.pop(key, None)
        stale = [k for k in self.cache if k[:2] == key[:2]]
        for k in stale:
            self.cache.pop(k)
        if len(self.cache) >= self.max_entries:
            self.cache.pop(next(iter(self.cache)))
        self.cache[key] = png
        return png

    def close(self) -> None:
        def close_db() -> None:
            if self._shared is None and getattr(self._local, "db", None) is not None:
                self._local.db.close()

        self._pool.submit(close_db).result()
        self._pool.shutdown(wait=True)

    def __repr__(self) -> str:
        return f"PlotWorker({len(self.cache)} plots cached)"


def plot_key(db: CampaignDB, doc: dict, plot: str) -> Key:
    """What a plot depends on: the campaign document's last update and its number of results."""
    return doc["name"], plot, str(doc.get("updated_at")), db.results.count({"campaign": doc["name"]})



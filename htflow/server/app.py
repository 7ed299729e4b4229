"""``htflow serve``: a read-only HTTP API over a store.

- ``GET /api/campaigns``: every campaign (state, best, counts).
- ``GET /api/campaigns/{name}``: one campaign document (its config with
  connection strings hidden).
- ``GET /api/{collection}`` for ``results``, ``candidates``, ``materials``:
  ``filter`` (a MongoDB filter as JSON, operators from a whitelist),
  ``fields``, ``sort`` (``-field`` descending), ``limit`` (≤ 1000), ``skip``;
  answers ``{"data": [...], "meta": {"count", "skip", "limit", "more"}}``
  (:mod:`htflow.server.api`).
- ``/optimade``: the OPTIMADE API over the materials (:mod:`htflow.server.optimade`).
- ``/``: the dashboard (``htflow/data/dashboard.html``).

Only GET exists. A bad query is a 400 with one message naming what is wrong;
nothing else the server meets is shown to the client (a 500 says only
"internal error" and the request id, :mod:`htflow.server.guard`), and
connection strings never appear in answers or logs. Endpoints are ``async``
so every request runs on the event loop's one thread, which owns the store's
connection (SQLite connections belong to one thread); queries are bounded in
time, and plots are drawn on a worker thread with its own connection
(:mod:`htflow.server.plots`), so neither holds the other endpoints.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import sys
from collections.abc import AsyncIterator, Callable
from importlib.resources import files
from typing import Any

import uvicorn
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi_offline import FastAPIOffline

from htflow.schemas.config import StoreConfig
from htflow.server.api import materials_behind, router
from htflow.server.guard import Guard, bad_parameters
from htflow.server.optimade import OptimadeMirror
from htflow.server.plots import PlotWorker
from htflow.server.queries import BadQuery
from htflow.store.db import CampaignDB

logger = logging.getLogger(__name__)


def _mount_optimade(app: FastAPI, db: Callable[[], CampaignDB], public_url: str) -> None:
    mirror = OptimadeMirror(db().materials, base_url=public_url.rstrip("/") + "/optimade")
    app.state.optimade = mirror

    @app.middleware("http")
    async def fresh_entries(request: Request, call_next: Any) -> Any:
        if request.url.path.startswith("/optimade"):
            mirror.refresh()
        return await call_next(request)

    app.mount("/optimade", mirror.app)


def create_app(store_cfg: StoreConfig, optimade: bool = True,
               public_url: str = "http://127.0.0.1:8000") -> FastAPI:
    """The FastAPI application over the store ``store_cfg`` describes (read only).

    ``optimade``: mount the OPTIMADE API over the store's materials at
    ``/optimade``; ``public_url`` is where clients reach this server (OPTIMADE
    answers carry absolute links).
    """
    state: dict[str, Any] = {}

    def db() -> CampaignDB:
        if "db" not in state:
            state["db"] = CampaignDB(store_cfg).connect()
        return state["db"]

    def plots() -> PlotWorker:
        if "plots" not in state:
            state["plots"] = PlotWorker(db())
        return state["plots"]

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        if "plots" in state:
            state.pop("plots").close()
        if "db" in state:
            state.pop("db").close()

    # Swagger UI's scripts and styles served from the fastapi-offline wheel, not a CDN: /api/docs
    # works without the internet (a lab network, a cluster's login node)
    app = FastAPIOffline(title="htflow", description="Read-only access to an htflow store.",
                         docs_url="/api/docs", openapi_url="/api/openapi.json", redoc_url=None,
                         static_url="/api/docs-assets", lifespan=lifespan)
    app.state.db = db
    app.state.plots = plots

    @app.exception_handler(BadQuery)
    async def bad_query(request: Request, exc: BadQuery) -> Any:
        return JSONResponse({"error": str(exc)}, status_code=400)

    app.add_exception_handler(RequestValidationError, bad_parameters)
    app.add_middleware(Guard)

    if optimade:
        _mount_optimade(app, db, public_url)

    @app.get("/", include_in_schema=False)
    async def dashboard() -> Any:
        return HTMLResponse((files("htflow") / "data" / "dashboard.html").read_text(encoding="utf-8"))

    app.include_router(router)
    return app


def serve(store_cfg: StoreConfig, host: str = "127.0.0.1", port: int = 8000, public_url: str | None = None,
          announce: Callable[[str], Any] = print) -> None:
    """Run the API with uvicorn until Ctrl-C."""
    if public_url is None:
        name = socket.getfqdn() if host in ("0.0.0.0", "::") else host
        public_url = f"http://{name}:{port}"
    public_url = public_url.rstrip("/")
    with CampaignDB(store_cfg).connect() as db:
        n_materials, behind = db.materials.count(), materials_behind(db)
    announce(f"serving {host}:{port} read-only")
    announce(f"  dashboard: {public_url}/")
    announce(f"  API:       {public_url}/api/campaigns (docs: {public_url}/api/docs)")
    announce(f"  OPTIMADE:  {public_url}/optimade/v1/structures ({n_materials} materials)")
    if behind:
        announce(f"  {behind} results are newer than the materials collection: run `htflow build` to add "
                 "them (the server picks them up without a restart)")
    app = create_app(store_cfg, public_url=public_url)
    # the OPTIMADE routes and the plot worker run on threads: hand the GIL over every 1 ms, not 5,
    # so a request waiting for it is not held behind another's work
    sys.setswitchinterval(0.001)
    uvicorn.run(app, host=host, port=port, log_level="warning")

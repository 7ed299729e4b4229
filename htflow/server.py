"""``htflow serve``: a read-only HTTP API over a store.

- ``GET /api/campaigns``: every campaign (state, best, counts).
- ``GET /api/campaigns/{name}``: one campaign document (its config with
  connection strings hidden).
- ``GET /api/{collection}`` for ``results``, ``candidates``, ``materials``:
  ``filter`` (a MongoDB filter as JSON, operators from a whitelist),
  ``fields``, ``sort`` (``-field`` descending), ``limit`` (≤ 1000), ``skip``;
  answers ``{"data": [...], "meta": {"count", "skip", "limit", "more"}}``.

Only GET exists. A bad query is a 400 with one message naming what is wrong;
nothing else the server meets is shown to the client (a 500 says only
"internal error"), and connection strings never appear in answers or logs.
Endpoints are ``async`` so every request runs on the event loop's one
thread, which owns the store's connection (SQLite connections belong to one
thread).
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
from typing import Any

from htflow.store.query import QueryError, check_field, check_filter

logger = logging.getLogger(__name__)

COLLECTIONS = ("results", "candidates", "materials")
MAX_LIMIT = 1000
MAX_SKIP = 1_000_000
MAX_FILTER_CHARS = 10_000
MAX_DEPTH = 8
MAX_REGEX_CHARS = 200
HEAVY_FIELDS = ("structure", "input_structure")  # left out of lists unless asked for by name


class BadQuery(ValueError):
    """Answered with 400 and this message."""


def _depth(x: Any, level: int = 0) -> int:
    if isinstance(x, dict):
        return max((_depth(v, level + 1) for v in x.values()), default=level + 1)
    if isinstance(x, list):
        return max((_depth(v, level + 1) for v in x), default=level + 1)
    return level


def _check_regexes(x: Any) -> None:
    if isinstance(x, dict):
        for k, v in x.items():
            if k == "$regex":
                if not isinstance(v, str) or len(v) > MAX_REGEX_CHARS:
                    raise BadQuery(f"filter: $regex must be a string of at most {MAX_REGEX_CHARS} characters")
                try:
                    re.compile(v)
                except re.error as exc:
                    raise BadQuery(f"filter: $regex {v!r} is not a valid regular expression "
                                   f"({exc})") from None
            _check_regexes(v)
    elif isinstance(x, list):
        for v in x:
            _check_regexes(v)


def parse_query(filter: str | None, fields: str | None, sort: str | None, limit: int, skip: int) -> dict:
    """Check every part of a query; raise :class:`BadQuery` naming the first problem."""
    if not 0 <= limit <= MAX_LIMIT:
        raise BadQuery(f"limit must be between 0 and {MAX_LIMIT}, got {limit}")
    if not 0 <= skip <= MAX_SKIP:
        raise BadQuery(f"skip must be between 0 and {MAX_SKIP}, got {skip}")
    crit: Any = {}
    if filter:
        if len(filter) > MAX_FILTER_CHARS:
            raise BadQuery(f"filter is longer than {MAX_FILTER_CHARS} characters")
        try:
            crit = json.loads(filter)
        except json.JSONDecodeError as exc:
            raise BadQuery(f"filter is not valid JSON ({exc.msg} at column {exc.colno})") from None
        if _depth(crit) > MAX_DEPTH:
            raise BadQuery(f"filter is nested deeper than {MAX_DEPTH} levels")
    try:
        check_filter(crit)
        field_list = [check_field(f.strip()) for f in fields.split(",") if f.strip()] if fields else None
        sort_spec = {}
        for s in (sort or "").split(","):
            if s.strip():
                sort_spec[check_field(s.strip().lstrip("-+"))] = -1 if s.strip().startswith("-") else 1
    except QueryError as exc:
        raise BadQuery(str(exc)) from None
    _check_regexes(crit)
    return {"criteria": crit, "properties": field_list, "sort": sort_spec or None, "limit": limit,
            "skip": skip}


def create_app(store_cfg: Any, optimade: bool = True, public_url: str = "http://127.0.0.1:8000") -> Any:
    """The FastAPI application over the store ``store_cfg`` describes (read only).

    ``optimade``: mount the OPTIMADE API over the store's materials at
    ``/optimade``; ``public_url`` is where clients reach this server (OPTIMADE
    answers carry absolute links).
    """
    from fastapi import FastAPI, Request
    from fastapi.responses import JSONResponse

    from htflow.store.db import CampaignDB

    state: dict[str, Any] = {}

    @contextlib.asynccontextmanager
    async def lifespan(app: Any) -> Any:
        yield
        if "db" in state:
            state.pop("db").close()

    app = FastAPI(title="htflow", description="Read-only access to an htflow store.",
                  docs_url="/api/docs", openapi_url="/api/openapi.json", redoc_url=None, lifespan=lifespan)

    def db() -> CampaignDB:
        if "db" not in state:
            state["db"] = CampaignDB(store_cfg).connect()
        return state["db"]

    def answer(data: Any, status: int = 200) -> Any:
        import orjson
        from fastapi import Response

        # plain JSON for HTTP clients: datetimes as ISO 8601 strings
        body = orjson.dumps(data, option=orjson.OPT_NON_STR_KEYS | orjson.OPT_SERIALIZE_NUMPY, default=str)
        return Response(body, status_code=status, media_type="application/json")

    @app.exception_handler(BadQuery)
    async def bad_query(request: Request, exc: BadQuery) -> Any:
        return JSONResponse({"error": str(exc)}, status_code=400)

    @app.exception_handler(Exception)
    async def internal(request: Request, exc: Exception) -> Any:  # never a traceback or a URI
        logger.error("internal error on %s: %s", request.url.path, type(exc).__name__)
        return JSONResponse({"error": "internal error"}, status_code=500)

    if optimade:
        from htflow.optimade_api import OptimadeMirror

        mirror = OptimadeMirror(db().materials, base_url=public_url.rstrip("/") + "/optimade")
        app.state.optimade = mirror

        @app.middleware("http")
        async def fresh_entries(request: Request, call_next: Any) -> Any:
            if request.url.path.startswith("/optimade"):
                mirror.refresh()
            return await call_next(request)

        app.mount("/optimade", mirror.app)

    @app.get("/api/campaigns")
    async def campaigns() -> Any:
        out = []
        d = db()
        for doc in d.campaigns.query({}, ["name", "state", "best", "stop_reason", "config.search.budget",
                                          "config.objectives", "config.description", "updated_at", "rounds"]):
            counts = {s: d.candidates.count({"campaign": doc["name"], "status": s})
                      for s in ("proposed", "running", "done", "failed", "pruned")}
            out.append({"name": doc["name"], "state": doc.get("state"), "best": doc.get("best"),
                        "stop_reason": doc.get("stop_reason"), "budget": doc["config"]["search"]["budget"],
                        "objectives": doc["config"].get("objectives", []),
                        "description": doc["config"].get("description"),
                        "updated_at": doc.get("updated_at"), "counts": counts,
                        "plots": [p for p, ok in (("learning-curve", counts["done"] > 0),
                                                  ("parity", any(r.get("cv") for r in doc.get("rounds", []))),
                                                  ("composition-map", counts["done"] > 0),
                                                  ("hull", any(r.get("hull") for r in doc.get("rounds", []))),
                                                  ("pareto", len(doc["config"].get("objectives", [])) > 1
                                                   and counts["done"] > 1))
                                  if ok]})
        return answer({"data": sorted(out, key=lambda c: c["name"])})

    @app.get("/api/campaigns/{name}")
    async def campaign(name: str) -> Any:
        doc = db().campaigns.query_one({"name": name})
        if doc is None:
            return JSONResponse({"error": f"no campaign named {name!r}"}, status_code=404)
        doc.pop("_id", None)
        doc.pop("cv_predictions", None)
        store = doc.get("config", {}).get("store") or {}
        if store.get("uri"):
            store["uri"] = "(hidden)"
        return answer({"data": doc})

    plot_cache: dict[tuple, bytes | None] = {}

    @app.get("/api/campaigns/{name}/plots/{plot}.png")
    async def plot(name: str, plot: str) -> Any:
        """One of the report's plots, drawn from the store when first asked for (cached until the
        campaign changes)."""
        import tempfile
        from pathlib import Path

        from fastapi import Response

        from htflow.campaign import Campaign
        from htflow.config import CampaignConfig
        from htflow.report import PLOTS, campaign_plots

        if plot not in PLOTS:
            return JSONResponse({"error": f"unknown plot {plot!r}; plots: {', '.join(PLOTS)}"},
                                status_code=404)
        d = db()
        doc = d.campaigns.query_one({"name": name})
        if doc is None:
            return JSONResponse({"error": f"no campaign named {name!r}"}, status_code=404)
        key = (name, plot, str(doc.get("updated_at")), d.results.count({"campaign": name}))
        if key not in plot_cache:
            cfg = CampaignConfig.model_validate({**doc["config"], "executor": {},
                                                 "store": store_cfg.model_dump()})
            camp = Campaign(cfg, db=d)
            with tempfile.TemporaryDirectory(prefix="htflow-plot-") as tmp:
                made = campaign_plots(camp, doc, camp.summaries(), Path(tmp), only=plot)[f"{plot}.png"]
                plot_cache[key] = made.read_bytes() if made else None
        png = plot_cache[key]
        if png is None:
            return JSONResponse({"error": f"{plot}: not enough results yet"}, status_code=404)
        return Response(png, media_type="image/png", headers={"Cache-Control": "no-cache"})

    @app.get("/", include_in_schema=False)
    async def dashboard() -> Any:
        from importlib.resources import files

        from fastapi.responses import HTMLResponse

        return HTMLResponse((files("htflow") / "data" / "dashboard.html").read_text(encoding="utf-8"))

    @app.get("/api/{collection}")
    async def query(collection: str, filter: str | None = None, fields: str | None = None,
                    sort: str | None = None, limit: int = 20, skip: int = 0) -> Any:
        if collection not in COLLECTIONS:
            return JSONResponse({"error": f"unknown collection {collection!r}; allowed: "
                                          f"campaigns, {', '.join(COLLECTIONS)}"}, status_code=404)
        q = parse_query(filter, fields, sort, limit, skip)
        store = db().collection(collection)
        try:
            count = store.count(q["criteria"])
            rows = list(store.query(q["criteria"], properties=q["properties"], sort=q["sort"],
                                    skip=q["skip"], limit=q["limit"])) if q["limit"] else []
        except (QueryError, ValueError, TypeError) as exc:
            raise BadQuery(f"cannot run this query ({exc})") from None
        for r in rows:
            r.pop("_id", None)
            if q["properties"] is None:
                for f in HEAVY_FIELDS:
                    r.pop(f, None)
        meta = {"count": count, "skip": q["skip"], "limit": q["limit"],
                "more": q["skip"] + len(rows) < count}
        return answer({"data": rows, "meta": meta})

    return app


def materials_behind(db: Any) -> int:
    """How many done results are newer than the last ``htflow build`` (0 when materials are current)."""
    newest = list(db.materials.query({}, ["built_from"], sort={"built_from": -1}, limit=1))
    since = newest[0].get("built_from") if newest else None
    crit: dict = {"status": "done"}
    if since:
        crit["created_at"] = {"$gt": since}
    return db.results.count(crit)


def serve(store_cfg: Any, host: str = "127.0.0.1", port: int = 8000, public_url: str | None = None,
          announce: Any = print) -> None:
    """Run the API with uvicorn until Ctrl-C."""
    import socket

    import uvicorn

    from htflow.store.db import CampaignDB

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
    uvicorn.run(app, host=host, port=port, log_level="warning")

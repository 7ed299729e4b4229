"""The JSON API's routes (``/api/...``): campaigns, their plots, and queries of the collections.

Every route reads the store through ``request.app.state.db()`` (one connection, owned by the
event loop's thread) and never builds a campaign: plots come from a read-only
:class:`~htflow.report.view.CampaignView`.
"""

from __future__ import annotations

import logging
from typing import Any

import orjson
from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from htflow.errors import InputError
from htflow.report.explain import EXPLAIN_PLOTS, OBJECTIVES_PLOT
from htflow.report.html import plot_names
from htflow.schemas.documents import Status
from htflow.server.plots import plot_key
from htflow.server.queries import COLLECTIONS, HEAVY_FIELDS, BadQuery, parse_query
from htflow.store.db import CampaignDB
from htflow.store.filters import QUERY_FAILURES
from htflow.store.repository import CampaignRepository, explained_round, explanation

logger = logging.getLogger(__name__)

router = APIRouter(prefix="/api")


def answer(data: Any, status: int = 200) -> Response:
    """Plain JSON for HTTP clients: datetimes as ISO 8601 strings."""
    body = orjson.dumps(data, option=orjson.OPT_NON_STR_KEYS | orjson.OPT_SERIALIZE_NUMPY, default=str)
    return Response(body, status_code=status, media_type="application/json")


def _db(request: Request) -> CampaignDB:
    return request.app.state.db()


def _available_plots(doc: dict, counts: dict[str, int]) -> list[str]:
    rounds = doc.get("rounds", [])
    objectives = doc["config"].get("objectives", [])
    return [p for p, ok in (("learning-curve", counts["done"] > 0),
                            ("parity", any(r.get("cv") for r in rounds)),
                            ("composition-map", counts["done"] > 0),
                            ("hull", any(r.get("hull") for r in rounds)),
                            ("pareto", len(objectives) > 1 and counts["done"] > 1),
                            *((p, any(r.get("explain") for r in rounds)) for p in EXPLAIN_PLOTS),
                            (OBJECTIVES_PLOT, any(r.get("explain_objectives") for r in rounds)),
                            ("generative", any(r.get("generative") for r in rounds)),
                            *((f"learning-curve-{o['name']}", counts["done"] > 0) for o in objectives[1:]))
            if ok]


def _pareto(doc: dict) -> dict | None:
    """Several objectives: the front's keys and its size and hypervolume after each round."""
    if len(doc["config"].get("objectives", [])) < 2:
        return None
    per_round = [{"round": r["round"], "size": r["pareto"].get("size"),
                  "hypervolume": r["pareto"].get("hypervolume")}
                 for r in sorted(doc.get("rounds", []), key=lambda r: r["round"]) if r.get("pareto")]
    return {"front": doc.get("pareto_front") or [], "per_round": per_round}


@router.get("/campaigns")
async def campaigns(request: Request) -> Any:
    """Every campaign: state, best, counts by status and which plots it has."""
    d = _db(request)
    out = []
    for doc in d.campaigns.query({}, ["name", "state", "best", "stop_reason", "config.search.budget",
                                      "config.objectives", "config.description", "updated_at", "rounds",
                                      "pareto_front"]):
        counts = CampaignRepository(d, doc["name"]).counts()
        out.append({"name": doc["name"], "state": doc.get("state"), "best": doc.get("best"),
                    "stop_reason": doc.get("stop_reason"), "budget": doc["config"]["search"]["budget"],
                    "objectives": doc["config"].get("objectives", []),
                    "description": doc["config"].get("description"),
                    "updated_at": doc.get("updated_at"), "counts": counts,
                    "plots": _available_plots(doc, counts), "pareto": _pareto(doc)})
    return answer({"data": sorted(out, key=lambda c: c["name"])})


@router.get("/campaigns/{name}")
async def campaign(request: Request, name: str) -> Any:
    """One campaign document (connection strings hidden, CV arrays left out)."""
    doc = _db(request).campaigns.query_one({"name": name})
    if doc is None:
        return JSONResponse({"error": f"no campaign named {name!r}"}, status_code=404)
    doc.pop("_id", None)
    doc.pop("cv_predictions", None)
    store = doc.get("config", {}).get("store") or {}
    if store.get("uri"):
        store["uri"] = "(hidden)"
    return answer({"data": doc})


@router.get("/campaigns/{name}/explain")
async def explain(request: Request, name: str, round: int | None = None,
                  objective: str | None = None) -> Any:
    """The model's explanation of a round (the latest explained by default) for one objective (the first
    by default): elements and pairs ranked by importance, Shapley values, partial dependence, length
    scales (what ``htflow explain`` prints)."""
    doc = _db(request).campaigns.query_one({"name": name})
    if doc is None:
        return JSONResponse({"error": f"no campaign named {name!r}"}, status_code=404)
    try:
        entry = explained_round(doc.get("rounds", []), round)
        ex = explanation(entry, objective, [o["name"] for o in doc["config"]["objectives"]])
    except InputError as exc:
        return JSONResponse({"error": str(exc)}, status_code=404)
    return answer({"data": {"campaign": name, "round": entry["round"], "model": entry.get("model"), **ex}})


@router.get("/campaigns/{name}/plots/{plot}.png")
async def plot(request: Request, name: str, plot: str) -> Any:
    """One of the report's plots, drawn on the plot worker's thread when first asked for (cached
    until the campaign changes)."""
    d = _db(request)
    doc = d.campaigns.query_one({"name": name})
    if doc is None:
        return JSONResponse({"error": f"no campaign named {name!r}"}, status_code=404)
    names = plot_names(doc["config"].get("objectives", []))
    if plot not in names:
        return JSONResponse({"error": f"unknown plot {plot!r}; plots: {', '.join(names)}"}, status_code=404)
    png = await request.app.state.plots().get(plot_key(d, doc, plot))
    if png is None:
        return JSONResponse({"error": f"{plot}: not enough results yet"}, status_code=404)
    return Response(png, media_type="image/png", headers={"Cache-Control": "no-cache"})


@router.get("/{collection}")
async def query(request: Request, collection: str, filter: str | None = None, fields: str | None = None,
                sort: str | None = None, limit: int = 20, skip: int = 0) -> Any:
    """Documents of ``results``, ``candidates`` or ``materials`` matching a whitelisted filter."""
    if collection not in COLLECTIONS:
        return JSONResponse({"error": f"unknown collection {collection!r}; allowed: "
                                      f"campaigns, {', '.join(COLLECTIONS)}"}, status_code=404)
    q = parse_query(filter, fields, sort, limit, skip)
    store = _db(request).collection(collection)
    try:
        count = store.count(q["criteria"])
        rows = list(store.query(q["criteria"], properties=q["properties"], sort=q["sort"],
                                skip=q["skip"], limit=q["limit"])) if q["limit"] else []
    except QUERY_FAILURES as exc:
        raise BadQuery(f"cannot run this query ({exc})") from None
    for r in rows:
        r.pop("_id", None)
        if q["properties"] is None:
            for f in HEAVY_FIELDS:
                r.pop(f, None)
    meta = {"count": count, "skip": q["skip"], "limit": q["limit"], "more": q["skip"] + len(rows) < count}
    return answer({"data": rows, "meta": meta})


def materials_behind(db: CampaignDB) -> int:
    """How many done results are newer than the last ``htflow build`` (0 when materials are current)."""
    newest = list(db.materials.query({}, ["built_from"], sort={"built_from": -1}, limit=1))
    since = newest[0].get("built_from") if newest else None
    crit: dict = {"status": Status.DONE.value}
    if since:
        crit["created_at"] = {"$gt": since}
    return db.results.count(crit)

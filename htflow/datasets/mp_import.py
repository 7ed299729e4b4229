"""Importing Materials Project entries through its own API (``htflow import --mp Fe-Ni``).

For users with an MP API key (``MP_API_KEY``, as MP's own client reads it): the ``summary``
endpoint (``GET /materials/summary/``, header ``X-API-KEY``) is paged with ``_skip``/``_limit``
until ``meta.total_doc`` entries came, each page stored as it arrives (Ctrl-C keeps what came;
a rerun adds only what is missing: one document per ``material_id``). It asks only for the
fields htflow maps (:data:`FIELDS`): formation energy, energy above hull, band gap, energy and
volume per atom, density. Plain ``requests`` (MP's ``mp-api`` client needs Python 3.12 and
pyarrow); the endpoint is ``HTFLOW_MP_ENDPOINT`` (default https://api.materialsproject.org).
OPTIMADE (``--optimade https://optimade.materialsproject.org``) needs no key.
"""

from __future__ import annotations

import contextlib
import math
import os
import re
from collections.abc import Callable
from datetime import UTC, datetime

import requests

from htflow.datasets.optimade_import import store_entries
from htflow.errors import InputError
from htflow.schemas.config import StoreConfig
from htflow.settings import get_settings
from htflow.space.compositions import composition_key
from htflow.space.formulas import SYMBOLS
from htflow.store.db import CampaignDB

#: MP summary field -> htflow property
FIELDS = {"formation_energy_per_atom": "formation_energy_per_atom", "energy_above_hull": "e_above_hull",
          "band_gap": "band_gap", "energy_per_atom": "energy_per_atom", "density": "density"}
REQUESTED = ["material_id", "formula_pretty", "composition_reduced", "nsites", "volume", *FIELDS]
PAGE = 1000
KEY_HELP = "set MP_API_KEY to your Materials Project API key (https://next-gen.materialsproject.org/api)"


def query_of(spec: str) -> dict[str, str]:
    """``Fe-Ni`` (exactly these elements) → ``chemsys``; ``Fe,Ni`` (at least these) → ``elements``."""
    sep = "-" if "-" in spec or "," not in spec else ","
    parts = [p.strip() for p in spec.split(sep)]
    bad = [p for p in parts if p not in SYMBOLS]
    if not spec.strip() or bad or not re.fullmatch(r"[A-Za-z,\- ]+", spec):
        raise InputError(f"--mp: {spec!r} is not a chemical system; give elements joined by '-' (exactly "
                         "these, e.g. Fe-Ni) or ',' (at least these, e.g. Fe,Ni)")
    return {"chemsys": "-".join(sorted(parts))} if sep == "-" else {"elements": ",".join(parts)}


def entry_record(doc: dict) -> dict | None:
    """One MP summary document as an imported record (None without a composition)."""
    comp = doc.get("composition_reduced") or {}
    try:
        amounts = {str(el): float(v) for el, v in comp.items() if float(v) > 0}
        key = composition_key(amounts)
    except (TypeError, ValueError, AttributeError):
        return None
    total = sum(amounts.values())
    properties = {name: float(doc[f]) for f, name in FIELDS.items()
                  if isinstance(doc.get(f), int | float) and math.isfinite(doc[f])}
    if doc.get("volume") and doc.get("nsites"):
        properties["volume_per_atom"] = float(doc["volume"]) / int(doc["nsites"])
    fractions = {el: round(v / total, 9) for el, v in sorted(amounts.items())}
    return {"key": key, "composition": fractions, "elements": sorted(fractions), "nelements": len(fractions),
            "formula": doc.get("formula_pretty") or key, "properties": properties,
            "source": "Materials Project API", "provider_id": str(doc.get("material_id")),
            "fidelity": "database"}


def _page(session: requests.Session, url: str, params: dict) -> dict:
    try:
        r = session.get(url, params=params, timeout=60)
    except requests.RequestException:
        raise InputError(f"--mp: cannot reach {url}; check the network (or HTFLOW_MP_ENDPOINT)") from None
    if r.status_code in (401, 403):
        raise InputError(f"--mp: the Materials Project refused the API key (HTTP {r.status_code}); "
                         f"{KEY_HELP}")
    if r.status_code != 200:
        raise InputError(f"--mp: {url} answered HTTP {r.status_code}: {' '.join(r.text.split())[:200]}")
    try:
        body = r.json()
    except ValueError:
        raise InputError(f"--mp: {url} did not answer JSON") from None
    if not isinstance(body, dict) or not isinstance(body.get("data"), list):
        raise InputError(f"--mp: {url} answered without a data list")
    return body


def import_mp(store_cfg: StoreConfig, spec: str, campaign: str, max_results: int = 0,
              on_page: Callable[[int], None] | None = None) -> tuple[dict[str, int], str]:
    """Fetch every MP summary entry of ``spec`` and store it under ``campaign``; counts of entries
    fetched, stored anew, already there and without a composition, and the store's location. The
    store is opened once the first page has come (a refused key or an unreachable API writes
    nothing)."""
    key = os.environ.get("MP_API_KEY", "").strip()
    if not key:
        raise InputError(f"--mp: no API key; {KEY_HELP}")
    query = query_of(spec)
    url = get_settings().mp_endpoint.rstrip("/") + "/materials/summary/"
    counts = {"fetched": 0, "new": 0, "already": 0, "unusable": 0}
    with requests.Session() as session, contextlib.ExitStack() as stack:
        session.headers.update({"X-API-KEY": key, "accept": "application/json"})
        db: CampaignDB | None = None
        skip = 0
        while True:
            limit = PAGE if not max_results else min(PAGE, max_results - skip)
            params = {**query, "_fields": ",".join(REQUESTED), "_skip": skip, "_limit": limit}
            body = _page(session, url, params)
            if db is None:
                db = stack.enter_context(CampaignDB(store_cfg))
            entries = body["data"]
            _store(db, campaign, entries, counts)
            if on_page:
                on_page(len(entries))
            skip += len(entries)
            total = (body.get("meta") or {}).get("total_doc")
            done = isinstance(total, int) and skip >= total
            if not entries or done or (max_results and skip >= max_results):
                return counts, db.location


def _store(db: CampaignDB, campaign: str, entries: list[dict], counts: dict[str, int]) -> None:
    now = datetime.now(UTC)
    docs = [{**rec, "row_id": f"{campaign}:mp:{rec['provider_id']}", "campaign": campaign,
             "imported_at": now} for rec in map(entry_record, entries) if rec is not None]
    store_entries(db, docs, len(entries), counts)

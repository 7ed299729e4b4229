"""Importing entries of a public database through its OPTIMADE API (Materials Project, OQMD,
AFLOW, Alexandria, or any htflow serve) into the ``imported`` collection.

The ``optimade`` package's client fetches every page of ``structures`` matching the filter; each
page is stored as it arrives (Ctrl-C keeps what came), one document per entry keyed by the
provider's URL and entry id, so running the same import again only adds what is missing.
Composition comes from the standard ``elements``/``elements_ratios``; the provider's own fields
(``_<prefix>_<name>``) whose meaning is known are mapped to htflow's names
(:data:`KNOWN_FIELDS`), every other numeric provider field is kept under ``raw``.
"""

from __future__ import annotations

import contextlib
import io
import math
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from htflow.errors import InputError
from htflow.schemas.documents import IMPORTED
from htflow.space.compositions import composition_key
from htflow.store.db import CampaignDB

#: provider field names (after ``_<prefix>_``) -> htflow property, as the major databases name them
KNOWN_FIELDS = {
    "formation_energy_per_atom": "formation_energy_per_atom",  # htflow, Alexandria, MP
    "delta_e": "formation_energy_per_atom",  # OQMD
    "enthalpy_formation_atom": "formation_energy_per_atom",  # AFLOW
    "e_above_hull": "e_above_hull",  # htflow, Alexandria, MP
    "energy_above_hull": "e_above_hull",
    "stability": "e_above_hull",  # OQMD
    "band_gap": "band_gap",  # MP, OQMD, Alexandria
    "egap": "band_gap",  # AFLOW
    "energy_per_atom": "energy_per_atom",
    "volume_per_atom": "volume_per_atom",
    "density": "density",
}


def entry_record(entry: dict, base_url: str) -> dict | None:
    """One OPTIMADE structure entry as an imported record (None when it has no usable composition)."""
    attrs = entry.get("attributes") or {}
    elements, ratios = attrs.get("elements"), attrs.get("elements_ratios")
    if not elements or not ratios or len(elements) != len(ratios):
        return None
    try:
        amounts = {str(el): float(r) for el, r in zip(elements, ratios, strict=True)}
        key = composition_key(amounts)
    except (TypeError, ValueError):
        return None
    properties: dict[str, float] = {}
    raw: dict[str, Any] = {}
    for name, value in attrs.items():
        if not name.startswith("_") or isinstance(value, bool) or not isinstance(value, int | float):
            continue
        if not math.isfinite(value):
            continue
        field = name.split("_", 2)[-1] if name.count("_") >= 2 else name
        if field in KNOWN_FIELDS:
            properties.setdefault(KNOWN_FIELDS[field], float(value))
        raw[name] = value
    total = sum(amounts.values())
    fractions = {el: round(v / total, 9) for el, v in sorted(amounts.items()) if v > 0}
    return {"key": key, "composition": fractions, "elements": sorted(fractions), "nelements": len(fractions),
            "formula": attrs.get("chemical_formula_reduced") or key,
            "properties": properties, "raw": raw, "source": base_url, "provider_id": str(entry.get("id")),
            "fidelity": "database"}


def store_entries(db: CampaignDB, docs: list[dict], fetched: int, counts: dict[str, int]) -> None:
    """Store a page of a database's entries (``docs``: those with a composition, of ``fetched``) that
    are not stored yet (by ``row_id``), in one transaction; add to ``counts``."""
    store = db.collection(IMPORTED)
    ids = [d["row_id"] for d in docs]
    seen = {d["row_id"] for d in store.query({"row_id": {"$in": ids}}, ["row_id"])}
    new = [d for d in docs if d["row_id"] not in seen]
    if new:
        with db.transaction():
            store.update(new, key="row_id")
    counts["fetched"] += fetched
    counts["new"] += len(new)
    counts["already"] += len(docs) - len(new)
    counts["unusable"] += fetched - len(docs)


def import_optimade(db: CampaignDB, base_url: str, filter: str, campaign: str, max_results: int = 0,
                    on_page: Callable[[int], None] | None = None) -> dict[str, int]:
    """Fetch every entry matching ``filter`` from ``base_url`` and store it under ``campaign``;
    counts of entries fetched, stored anew, already there and without a composition."""
    from optimade.client import OptimadeClient  # heavy: reads its settings when first imported
    from optimade.filterparser import LarkParser  # heavy: as above

    if filter:
        try:  # checked here: the client would print a panel of its own for a bad filter
            LarkParser().parse(filter)
        except Exception as exc:  # the parser raises BadRequest (an HTTP exception) with the reason
            detail = " ".join(str(getattr(exc, "detail", exc)).split())[:200]
            raise InputError(f"--filter: {filter!r} is not an OPTIMADE filter ({detail})") from None

    counts = {"fetched": 0, "new": 0, "already": 0, "unusable": 0}
    base_url = base_url.rstrip("/")

    def store_page(_url: str, page: dict) -> None:
        records = [(e, entry_record(e, base_url)) for e in page.get("data") or []]
        now = datetime.now(UTC)
        docs = [{**rec, "row_id": f"{campaign}:{base_url}:{e.get('id')}", "campaign": campaign,
                 "imported_at": now} for e, rec in records if rec is not None]
        store_entries(db, docs, len(records), counts)
        if on_page:
            on_page(len(records))

    client = OptimadeClient(base_urls=[base_url], max_results_per_provider=max_results, use_async=False,
                            silent=True, callbacks=[store_page], http_timeout=60)
    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            results = client.get(filter=filter)  # the client prints its own errors even when silent
    except (RuntimeError, SystemExit, ValueError) as exc:
        why = str(exc).splitlines()[0] if str(exc) else repr(exc)
        raise InputError(f"--optimade: {base_url}: {why}") from None
    errors = results.get("structures", {}).get(filter, {}).get(base_url, {}).get("errors") or []
    if errors and counts["fetched"] == 0:
        first = " ".join(str(errors[0]).split())
        if "refused" in first or "Max retries" in first or "Name or service not known" in first:
            raise InputError(f"--optimade: cannot reach {base_url}; check the URL and the network")
        raise InputError(f"--optimade: {base_url} answered with an error: {first[:300]}")
    return counts

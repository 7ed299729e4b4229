"""An OPTIMADE API over the store's materials, mounted by ``htflow serve`` at ``/optimade``.

It is the reference server of the ``optimade`` package (optimade-python-tools):
its filter grammar, its JSON:API answers, ``/info``, ``/versions``,
``/links``, ``/references`` and ``/structures``. htflow only supplies the
entries: every document of the ``materials`` collection (``htflow build``
makes it; one per distinct material, highest fidelity kept) as an OPTIMADE
structure, with htflow's numbers as provider fields (``_htflow_...``).

The entries live in a private in-memory (mongomock) copy that is refreshed
when the store's materials change (checked at most every
``REFRESH_SECONDS``): OPTIMADE filters then never reach the store, and the
server stays read-only however a filter is written.
"""

from __future__ import annotations

import math
import os
import tempfile
import time
import uuid
import warnings
from datetime import UTC, datetime
from importlib.resources import files
from typing import Any

import pydash
from fastapi.exceptions import RequestValidationError
from pymatgen.core import Structure

from htflow import __version__
from htflow.server.guard import request_id, validation_message

PREFIX = "htflow"
REFRESH_SECONDS = 5.0

# htflow's numbers served beside the standard fields: OPTIMADE name -> (material field, type, unit, text)
PROVIDER_FIELDS: dict[str, tuple[str, str, str | None, str]] = {
    "material_id": ("material_id", "string", None,
                    "htflow's id of the material: composition key, prototype, atoms"),
    "energy_per_atom": ("energy_per_atom", "float", "eV", "total energy per atom of the relaxed structure"),
    "formation_energy_per_atom": ("formation_energy_per_atom", "float", "eV",
                                  "formation energy per atom against the elemental references"),
    "e_above_hull": ("e_above_hull", "float", "eV",
                     "energy above the convex hull of the results of the chemical system, per atom"),
    "volume_per_atom": ("volume_per_atom", "float", "Å^3", "volume per atom of the relaxed structure"),
    "density": ("density", "float", "g/cm^3", "density of the relaxed structure"),
    "prototype": ("prototype", "string", None, "the structure prototype the composition was realised on"),
    "calculator": ("calculator.name", "string", None, "the calculator that computed the entry"),
    "fidelity": ("fidelity", "integer", None, "fidelity rank of the calculator (higher is better)"),
    "campaign": ("source.campaign", "string", None, "the campaign whose result this entry is"),
    "seen_in": ("seen_in", "list", None, "every campaign that evaluated this material"),
    "source": ("", "string", None, "where the entry comes from: computed (calculator, campaign), measured "
                                   "(campaign, worksheet) or imported (data set, file, DOI)"),
    "properties": ("", "dictionary", None, "measured or imported properties by name (units in "
                                           "_htflow_units)"),
    "units": ("units", "dictionary", None, "the unit of each property, where the campaign or import "
                                           "gave one"),
}


def source_text(material: dict) -> str:
    """Where a material's numbers come from, in words."""
    src = material.get("source") or {}
    if "imported" in src:
        text = f"imported into {src['imported']} from {src.get('file') or 'a table'}"
        if src.get("doi"):
            text += f" (doi {src['doi']})"
        return text + (f", fidelity {src['fidelity']}" if src.get("fidelity") else "")
    calc = (material.get("calculator") or {}).get("name", "?")
    if calc == "experiment":
        where = f" ({src['file']})" if src.get("file") else f" (replayed from {src['oracle']})" \
            if src.get("oracle") else ""
        return f"measured in campaign {src.get('campaign')}{where}"
    return f"computed with {calc} in campaign {src.get('campaign')}"


def _integer_amounts(composition: dict[str, float]) -> dict[str, int]:
    """Whole-number proportions (to 0.1 at%) of a composition, reduced by their common divisor."""
    amounts = {el: max(1, round(1000 * x)) for el, x in composition.items() if x > 0}
    g = math.gcd(*amounts.values())
    return {el: n // g for el, n in amounts.items()}


def _composition_attributes(material: dict) -> dict | None:
    """OPTIMADE attributes of a composition without a structure (measured or imported): the element
    and formula fields; sites, lattice and positions are unknown (absent)."""
    comp = material.get("composition")
    if not isinstance(comp, dict) or not comp:
        return None
    amounts = _integer_amounts(comp)
    elements = sorted(amounts)
    total = sum(amounts.values())
    formula = "".join(f"{el}{n if n > 1 else ''}" for el, n in sorted(amounts.items()))
    anonymous = "".join(f"{chr(65 + i)}{n if n > 1 else ''}"
                        for i, n in enumerate(sorted(amounts.values(), reverse=True)))
    return {"elements": elements, "nelements": len(elements),
            "elements_ratios": [amounts[el] / total for el in elements],
            "chemical_formula_descriptive": str(material.get("formula") or formula),
            "chemical_formula_reduced": formula, "chemical_formula_anonymous": anonymous,
            "structure_features": []}


def _when(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value)
            return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
        except ValueError:
            pass
    return datetime(1970, 1, 1, tzinfo=UTC)


def to_optimade(material: dict) -> dict | None:
    """One ``materials`` document as an OPTIMADE structure entry (database form): a computed
    structure, or a measured or imported composition (elements and formulas, no sites). Every entry
    says where it comes from (``_htflow_source``). ``None`` for a document without either.
    """
    from optimade.adapters.structures.pymatgen import (
        from_pymatgen,  # heavy: reads its settings when first imported
    )

    if isinstance(material.get("structure"), dict):
        structure = Structure.from_dict(material["structure"])
        attrs = from_pymatgen(structure).model_dump(exclude_none=True)
        # pymatgen's descriptive formula has spaces ("Cu4 Ni28"); OPTIMADE allows any string, keep it
        attrs["species"] = sorted(attrs["species"], key=lambda s: s["name"])
        attrs["chemical_formula_hill"] = structure.composition.hill_formula.replace(" ", "")
    else:
        attrs = _composition_attributes(material)
        if attrs is None:
            return None
    doc = {"id": str(material["material_id"]), "immutable_id": str(material["material_id"]),
           "last_modified": _when(material.get("built_from") or material.get("created_at")), **attrs}
    for name, (field, _type, _unit, _text) in PROVIDER_FIELDS.items():
        value = pydash.get(material, field) if field else None
        if value is not None and value != {}:
            doc[name] = value
    doc["source"] = source_text(material)
    props = {p: material[p] for p in material.get("properties") or [] if material.get(p) is not None}
    if props:
        doc["properties"] = props
    return doc


def _config(database: str, base_url: str) -> Any:
    from optimade.models import Implementation, Provider  # heavy: reads its settings when first imported
    from optimade.server.config import ServerConfig  # heavy: reads its settings when first imported

    provider_fields = [{"name": name, "type": t, "unit": unit, "description": text}
                       for name, (_f, t, unit, text) in PROVIDER_FIELDS.items()]
    for f in provider_fields:
        if f["unit"] is None:
            f.pop("unit")
    return ServerConfig(
        database_backend="mongomock", mongo_uri="mongodb://localhost:27017", mongo_database=database,
        insert_test_data=False, debug=False, base_url=base_url, page_limit=20, page_limit_max=500,
        provider=Provider(prefix=PREFIX, name="htflow", homepage="https://github.com/htflow/htflow",
                          description="Materials computed by htflow campaigns (a private database)"),
        implementation=Implementation(name="htflow", version=__version__,
                                      source_url="https://github.com/htflow/htflow",
                                      maintainer={"email": "htflow@example.org"}),
        provider_fields={"structures": provider_fields},
        log_level="warning", log_dir=_log_dir(),
    )


def _log_dir() -> str:
    """The optimade package logs to files; keep them out of /var/log and out of the store."""
    return os.environ.get("OPTIMADE_LOG_DIR") or os.path.join(tempfile.gettempdir(), "htflow-optimade-logs")


def _quiet_import() -> None:
    """Settings the optimade package reads when it is first imported (a user's own win)."""
    os.environ.setdefault("OPTIMADE_LOG_DIR", _log_dir())
    os.environ.setdefault("OPTIMADE_LOG_LEVEL", "warning")
    os.environ.setdefault("OPTIMADE_INSERT_TEST_DATA", "false")
    # without a config file the package warns on every app it makes: point it at an empty one
    if "OPTIMADE_CONFIG_FILE" not in os.environ:

        os.environ["OPTIMADE_CONFIG_FILE"] = str(files("htflow") / "data" / "optimade.json")


MAX_FILTER_DEPTH = 32


def _short_errors(app: Any) -> None:
    """OPTIMADE error bodies that name the problem in one line and never carry a path or a traceback:
    bad parameters are 400 (the package answers 500 with its source file), a filter nested past
    :data:`MAX_FILTER_DEPTH` parentheses is 400 (the parser would hit Python's recursion limit),
    anything unexpected is 500 "internal error" with the request id."""
    from optimade.models import OptimadeError  # heavy: reads its settings when first imported
    from optimade.server.exception_handlers import general_exception  # heavy: as above

    def answer(request: Any, exc: Exception, status: int, title: str, detail: str) -> Any:
        return general_exception(request, exc, status_code=status,
                                 errors=[OptimadeError(detail=detail, status=str(status), title=title)])

    def bad_parameters(request: Any, exc: RequestValidationError) -> Any:
        return answer(request, exc, 400, "Bad Request", validation_message(exc))

    def too_deep(request: Any, exc: RecursionError) -> Any:
        return answer(request, exc, 400, "Bad Request", "filter: nested too deeply")

    def internal(request: Any, exc: Exception) -> Any:
        detail = f"internal error (request {request_id(request)})"
        return answer(request, exc, 500, "Internal Server Error", detail)

    app.add_exception_handler(RequestValidationError, bad_parameters)
    app.add_exception_handler(RecursionError, too_deep)
    app.add_exception_handler(Exception, internal)

    @app.middleware("http")
    async def shallow_filters(request: Any, call_next: Any) -> Any:
        text = request.query_params.get("filter") or ""
        depth = deepest = 0
        for c in text:
            depth += (c == "(") - (c == ")")
            deepest = max(deepest, depth)
        if deepest > MAX_FILTER_DEPTH:
            return answer(request, ValueError(), 400, "Bad Request",
                          f"filter: parentheses nested deeper than {MAX_FILTER_DEPTH} levels")
        return await call_next(request)


class _PagedCollection:
    """The mirror's mongomock collection, with ``find`` that copies only the page it returns.

    mongomock projects (deep-copies) every matching document before it applies skip and limit, so
    each OPTIMADE request cost a copy of every entry (95% of a request's time with 48 entries,
    growing with the database). Here the page is chosen on ``_id`` alone, then only its documents
    are fetched with the requested projection, in the same order.
    """

    def __init__(self, collection: Any) -> None:
        self._collection = collection

    def __getattr__(self, name: str) -> Any:
        return getattr(self._collection, name)

    def find(self, filter: Any = None, projection: Any = None, skip: int = 0, limit: int = 0,
             sort: Any = None, **kwargs: Any) -> list[dict]:
        page = self._collection.find(filter, {"_id": 1}, skip=skip, limit=limit, sort=sort, **kwargs)
        ids = [d["_id"] for d in page]
        keep_id = not isinstance(projection, dict) or projection.get("_id", True) not in (False, 0)
        if isinstance(projection, dict) and not keep_id:
            projection = {**projection, "_id": True}  # needed to put the page back in order
        docs = {d["_id"]: d for d in self._collection.find({"_id": {"$in": ids}}, projection)}
        page_docs = [docs[i] for i in ids if i in docs]
        if not keep_id:
            for d in page_docs:
                d.pop("_id", None)
        return page_docs


class OptimadeMirror:
    """The OPTIMADE app plus its in-memory copy of the store's materials."""

    def __init__(self, materials_store: Any, base_url: str, refresh_seconds: float = REFRESH_SECONDS):
        _quiet_import()

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from optimade.server.create_app import create_app  # heavy: reads its settings when first imported

        self.materials = materials_store
        self.refresh_seconds = refresh_seconds
        self.config = _config(f"htflow_{uuid.uuid4().hex[:12]}", base_url)
        self.app = create_app(self.config, logger_tag="htflow")
        _short_errors(self.app)
        entries = self.app.state.entry_collections["structures"]
        entries.collection = _PagedCollection(entries.collection)
        self.collection = entries.collection
        self._signature: tuple | None = None
        self._checked = 0.0
        self.count = 0

    def signature(self) -> tuple:
        """What changes when the materials do: their number and the newest build."""
        newest = list(self.materials.query({}, ["built_from"], sort={"built_from": -1}, limit=1))
        return self.materials.count(), (newest[0].get("built_from") if newest else None)

    def refresh(self, force: bool = False) -> int:
        """Copy the materials again if they changed; returns the number of OPTIMADE entries."""
        now = time.monotonic()
        if not force and now - self._checked < self.refresh_seconds:
            return self.count
        self._checked = now
        sig = self.signature()
        if sig == self._signature and not force:
            return self.count
        docs = [d for d in (to_optimade(m) for m in self.materials.query({})) if d is not None]
        self.collection.delete_many({})
        if docs:
            self.collection.insert_many(docs)
        self._signature = sig
        self.count = len(docs)
        return self.count

"""A private materials database: one document per distinct material across campaigns.

:class:`MaterialsBuilder` is a maggma ``Builder`` (so maggma's runners, e.g.
``mrun``, can run it too): it reads the ``results`` of every campaign in a
store and writes ``materials``, one document per composition (as realised)
and structure prototype/cell, keeping the result of the highest fidelity
(DFT over ML potentials over EMT over lookup tables; the most recent among
equals). Reruns are incremental: only materials with a result newer than the
one their document was built from are rebuilt.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from typing import Any

from maggma.core import Builder, Store

from htflow.schemas.documents import Status

FIDELITY = {"lookup": 0, "emt": 1, "chgnet": 2, "sevenn": 2, "mace": 2, "m3gnet": 2, "orb": 2,
            "matgl": 2, "fairchem": 2, "vasp": 3, "experiment": 4}
#: rank of imported rows by their fidelity label (``htflow import --fidelity``); unknown labels rank 1
IMPORTED_FIDELITY = {"experiment": 4, "measured": 4, "dft": 3, "ml": 2, "computed": 3}
"""Rank of a calculator's results: a result's ``calculator.fidelity`` wins; unknown names rank 1."""

FIELDS = ["campaign", "key", "status", "prototype", "n_atoms", "created_at", "calculator"]


def fidelity(result: dict) -> int:
    """The fidelity rank of a result."""
    calc = result.get("calculator") or {}
    if isinstance(calc.get("fidelity"), int):
        return calc["fidelity"]
    name = str(calc.get("name", "")).split(":")[-1].lower()
    return next((rank for prefix, rank in FIDELITY.items() if name.startswith(prefix)), 1)


def material_id(result: dict) -> str:
    """One material: the composition as realised, on one prototype and cell size (measured: as made)."""
    if result.get("n_atoms") is None:
        return f"{result['key']}:{result.get('prototype')}"
    return f"{result['key']}:{result.get('prototype')}:{result.get('n_atoms')}"


class MaterialsBuilder(Builder):
    """``results`` of every campaign → ``materials`` (one per composition and structure).

    Parameters
    ----------
    results
        The campaigns' results store.
    materials
        Where the materials go (key ``material_id``).
    query
        Only results matching this filter (e.g. ``{"campaign": {"$in": [...]}}``).
    """

    def __init__(self, results: Store, materials: Store, query: dict | None = None,
                 imported: Store | None = None, **kwargs: Any):
        self.results = results
        self.materials = materials
        self.imported = imported
        self.query = query or {}
        self.processed = 0
        super().__init__(sources=[results] + ([imported] if imported is not None else []),
                         targets=[materials], **kwargs)

    def ensure_indexes(self) -> None:
        for field in ("material_id", "elements", "nelements", "formation_energy_per_atom"):
            self.materials.ensure_index(field)

    def get_items(self) -> Iterator[list[dict]]:
        """Groups of results (summaries) of the materials that have something new."""
        self.ensure_indexes()
        built = {d["material_id"]: d.get("built_from", "")
                 for d in self.materials.query({}, ["material_id", "built_from"])}
        groups: dict[str, list[dict]] = defaultdict(list)
        for r in self.results.query({**self.query, "status": Status.DONE.value}, FIELDS):
            groups[material_id(r)].append(r)
        if self.imported is not None:  # each imported data set's rows of a composition: one material
            for r in self.imported.query({}, ["campaign", "key", "imported_at"]):
                groups[f"{r['key']}:imported:{r['campaign']}"].append({**r, "created_at": r["imported_at"]})
        todo = [mid for mid, rs in groups.items()
                if max(str(r.get("created_at", "")) for r in rs) > built.get(mid, "")]
        self.total = len(todo)
        for mid in todo:
            yield groups[mid]

    def process_item(self, item: list[dict]) -> dict:
        """The material document from its results: the best-fidelity result, plus where else it was seen."""
        if "imported_at" in item[0]:
            return self._imported(item)
        chosen = max(item, key=lambda r: (fidelity(r), str(r.get("created_at", ""))))
        full = self.results.query_one({"campaign": chosen["campaign"], "key": chosen["key"]})
        doc = {k: v for k, v in full.items() if k not in ("_id", "campaign", "round", "timings")}
        doc.update({
            "material_id": material_id(chosen),
            "fidelity": fidelity(chosen),
            "source": {**(full.get("source") or {}), "campaign": chosen["campaign"], "key": chosen["key"]},
            "seen_in": sorted({r["campaign"] for r in item}),
            "n_results": len(item),
            "built_from": max(str(r.get("created_at", "")) for r in item),
        })
        return doc

    def _imported(self, item: list[dict]) -> dict:
        """An imported data set's rows of one composition: the mean of each property, and the source."""
        first = item[0]
        rows = list(self.imported.query({"campaign": first["campaign"], "key": first["key"]}))
        props: dict[str, list[float]] = defaultdict(list)
        for r in rows:
            for name, v in (r.get("properties") or {}).items():
                props[name].append(v)
        label = next((r["fidelity"] for r in rows if r.get("fidelity")), None)
        top = rows[0]
        doc = {k: top[k] for k in ("key", "composition", "elements", "nelements", "formula") if k in top}
        doc.update({k: sum(v) / len(v) for k, v in props.items()})
        doc.update({
            "material_id": f"{first['key']}:imported:{first['campaign']}", "status": Status.DONE.value,
            "prototype": "imported", "fidelity": IMPORTED_FIDELITY.get(str(label).lower(), 1),
            "properties": sorted(props), "units": top.get("units", {}),
            "source": {"imported": first["campaign"], "file": top.get("file"), "fidelity": label,
                       **{k: top[k] for k in ("doi", "source") if top.get(k)}},
            "seen_in": [first["campaign"]], "n_results": len(rows),
            "built_from": max(str(r.get("imported_at", "")) for r in item),
        })
        return doc

    def update_targets(self, items: list[dict]) -> None:
        if items:
            self.materials.update(items, key="material_id")
            self.processed += len(items)

    def build(self, progress: Any = None) -> int:
        """Run the builder (quietly; maggma's ``run`` turns on DEBUG logging); returns materials written."""
        self.processed = 0
        batch: list[dict] = []
        for group in self.get_items():
            batch.append(self.process_item(group))
            if progress:
                progress(len(batch) + self.processed, self.total)
            if len(batch) >= self.chunk_size:
                self.update_targets(batch)
                batch = []
        self.update_targets(batch)
        return self.processed


"""Checks of a campaign file across layers, before anything is written.

:class:`~htflow.schemas.config.CampaignConfig` checks each field on its own;
this module is the one place allowed to import every layer, so that checks
which need the composition space, the structure builder, the calculator, the
samplers, the executor's cluster file or the store run here. Every problem is
an :class:`~htflow.errors.InputError` naming the field.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from htflow.analysis.hull import load_phases
from htflow.calculators.registry import get_calculator
from htflow.datasets.oracle import Oracle
from htflow.errors import InputError
from htflow.execution.cluster_file import load_cluster_file
from htflow.schemas.config import CampaignConfig, GenerativeConfig, SurrogateConfig
from htflow.schemas.documents import IMPORTED
from htflow.schemas.messages import format_validation_error
from htflow.search import ehvi
from htflow.search.planner import Planner
from htflow.search.registry import MODEL_SAMPLERS, get_generator
from htflow.search.samplers import SPACE_FILLING
from htflow.space.build import build_space
from htflow.space.compositions import CompositionSpace, SpaceError
from htflow.space.structures import PROTOTYPE_ATOMS, StructureBuilder, StructureError
from htflow.store.db import CampaignDB, check_store_config
from htflow.utils.imports import allow_local_modules, import_object
from htflow.utils.text import suggest
from htflow.utils.yaml import read_yaml


def _check_structure(cfg: CampaignConfig) -> None:
    st = cfg.structure
    if st.prototype in PROTOTYPE_ATOMS:
        per = PROTOTYPE_ATOMS[st.prototype]
        if st.n_atoms % per:
            ok = ", ".join(str(per * k) for k in (1, 2, 4, 8, 16, 27))
            raise InputError(f"structure.n_atoms: {st.n_atoms} is not a multiple of the {per} atoms in the "
                             f"{st.prototype} cell; allowed e.g. {ok}")
    else:
        try:
            StructureBuilder(st.prototype, st.n_atoms).template()
        except StructureError as exc:
            raise InputError(str(exc)) from None
    if st.configurations > 1 and cfg.calculator.name == "lookup":
        raise InputError(f"structure.configurations: {st.configurations} decorations of each composition, "
                         "but the lookup calculator answers per composition (one value each); use 1")


def _check_realisable(cfg: CampaignConfig, space: CompositionSpace) -> None:
    """The grid step (or the bounds of a continuous space) fit whole atoms of the supercell."""
    n_atoms = cfg.structure.n_atoms
    if space.points is not None or (cfg.is_experiment and space.is_grid):  # made as listed (or as proposed)
        try:
            space.check_grid()
            space.pool()
        except SpaceError as exc:
            raise InputError(str(exc)) from None
        return
    if cfg.is_experiment:  # a laboratory makes any composition in the bounds
        return
    if space.is_grid:
        atoms = space.step * n_atoms
        if abs(atoms - round(atoms)) > 1e-6:
            fine = [f"{1 / k:g}" for k in range(1, n_atoms + 1) if n_atoms % k == 0][1:6]
            raise InputError(f"space.step: {space.step:g} of {n_atoms} atoms is {atoms:g} atoms, which "
                             f"cannot be realised on the supercell; allowed steps for n_atoms "
                             f"{n_atoms}: {', '.join(fine)} (or change structure.n_atoms)")
        try:
            space.check_grid()
            if space.constraints is not None:
                space.pool()  # the constraints leave at least one composition
        except SpaceError as exc:
            raise InputError(str(exc)) from None
        return
    for el, (lo, hi) in space.limits.items():
        lo_n, hi_n = lo * n_atoms, hi * n_atoms
        if int(hi_n + 1e-9) < lo_n - 1e-9:
            raise InputError(f"space.bounds.{el}: [{lo:g}, {hi:g}] holds no whole number of atoms out "
                             f"of structure.n_atoms {n_atoms}; widen it or use more atoms")


def check_surrogate_settings(sur: SurrogateConfig, elements: list[str]) -> None:
    """Names of the initial sampler, model, features and acquisition, and BoTorch where EHVI is asked for."""
    if sur.initial_sampler not in SPACE_FILLING:
        raise InputError(f"search.surrogate.initial_sampler: {sur.initial_sampler!r} is not a space-filling "
                         f"sampler; allowed: {', '.join(SPACE_FILLING)}")
    if sur.multi_objective == "ehvi" and not ehvi.available():
        raise InputError(f"search.surrogate.multi_objective: 'ehvi' needs BoTorch, which is not installed: "
                         f"{ehvi.INSTALL}; or use 'parego' (or 'auto': EHVI when BoTorch is installed, "
                         "else ParEGO)")
    Planner(sur, elements)  # names of model, features, acquisition


def _check_trust_region(cfg: CampaignConfig, space: CompositionSpace) -> None:
    """``trust_region`` narrows a finite candidate set around one best result: a grid or list space and
    one objective."""
    if cfg.search.surrogate.trust_region is not True:  # "auto" applies only where it can work
        return
    where = "search.surrogate.trust_region: true"
    if not space.is_grid:
        raise InputError(f"{where} narrows a grid or list of candidates; a continuous space's search "
                         "already refines around the acquisition's best (search.surrogate.evolve)")
    if len(cfg.objectives) > 1:
        raise InputError(f"{where} centres on one best result, and with several objectives there is a "
                         "front of them; leave it false")


def _check_graph_features(cfg: CampaignConfig, space: CompositionSpace) -> None:
    """``features: chgnet`` builds each composition's cell and runs CHGNet on it: a grid or list space
    (a model pass per composition, cached), a campaign with structures, and the chgnet package."""
    if "chgnet" not in (f.strip() for f in cfg.search.surrogate.features.split("+")):
        return
    where = "search.surrogate.features: 'chgnet'"
    if cfg.is_experiment:
        raise InputError(f"{where} reads the campaign's cells, and an experiment campaign has none; "
                         "use fractions, pairs or magpie")
    if not space.is_grid:
        raise InputError(f"{where} costs a model pass per composition, which a continuous space's search "
                         "makes by the thousand; use it with space.step (a grid) or space.points (a list)")
    if importlib.util.find_spec("chgnet") is None:
        raise InputError(f"{where} needs the chgnet package, which is not installed: "
                         "pip install 'htflow[mlip]'")


#: fields of every result document: an objective read by path must have a name of its own
RESERVED = frozenset({"campaign", "key", "round", "status", "composition", "counts", "elements", "nelements",
                      "formula", "n_atoms", "prototype", "calculator", "timings", "error", "created_at",
                      "energy", "structure", "input_structure", "n_steps", "converged", "e_above_hull",
                      "elastic", "source", "dataset", "uncertainty", "note"})


def _check_source(i: int, obj: Any, cfg: CampaignConfig, calc: Any) -> None:
    """An objective read by path or extractor: a calculator with documents, a known root, an importable
    function, a name of its own."""
    where = f"objectives[{i}].{'path' if obj.path else 'extractor'}"
    if calc.properties is None or cfg.calculator.name == "lookup":
        raise InputError(f"{where}: calculator {cfg.calculator.name!r} has no task documents to read; its "
                         "objectives are the columns of its table")
    builtin = calc.available(cfg.calculator) or ()
    if obj.name in RESERVED or obj.name in builtin:
        kind = "a property" if obj.name in builtin else "a field"
        raise InputError(f"objectives[{i}].name: {obj.name!r} is {kind} htflow already stores; give the "
                         f"value read by {where.rsplit('.', 1)[1]} a name of its own")
    if obj.path:
        roots = {"task": "the calculator's task document"}
        if cfg.calculator.flow == "elastic":
            roots["elastic"] = "atomate2's ElasticDocument"
        root = obj.path.split(".", 1)[0]
        if root not in roots:
            raise InputError(f"{where}: {obj.path!r} starts with {root!r}; a path starts with "
                             + ", or ".join(f"{r} ({what})" for r, what in roots.items()))
    elif not callable(import_object(obj.extractor, where)):
        raise InputError(f"{where}: {obj.extractor!r} is not a function")


def _check_objectives(cfg: CampaignConfig, calc: Any) -> None:
    properties = calc.available(cfg.calculator)
    for i, obj in enumerate(cfg.objectives):
        if obj.path or obj.extractor:
            _check_source(i, obj, cfg, calc)
            continue
        if properties is not None and obj.name not in properties:
            raise InputError(f"objectives[{i}].name: {obj.name!r} is not computed by calculator "
                             f"{cfg.calculator.name!r}{suggest(obj.name, properties)}; allowed: "
                             f"{', '.join(sorted(properties))}")
    if cfg.search.surrogate.stable_within is not None:
        objs = [(o.name, o.goal) for o in cfg.objectives]
        if cfg.search.sampler not in MODEL_SAMPLERS or objs != [("formation_energy_per_atom", "minimize")]:
            raise InputError(
                "search.surrogate.stable_within: needs sampler surrogate and the one objective "
                "formation_energy_per_atom (minimize), whose hull it measures; got sampler "
                f"{cfg.search.sampler!r} and objectives {', '.join(n for n, _ in objs)}")


def _check_flow(cfg: CampaignConfig, calc: Any) -> None:
    """A property flow needs a calculator that relaxes structures one at a time."""
    if cfg.calculator.flow == "relax":
        return
    if calc.properties is None or cfg.calculator.name == "lookup":
        raise InputError(f"calculator.flow: {cfg.calculator.flow!r} computes on structures; calculator "
                         f"{cfg.calculator.name!r} has none (use flow: relax)")
    if int(cfg.calculator.options.get("batch_size", 1)) > 1:
        raise InputError(f"calculator.options.batch_size: flow {cfg.calculator.flow!r} evaluates one "
                         "structure at a time; use batch_size: 1")
    calc.elastic_maker(cfg.calculator)  # a Maker without relax_cell is refused here


def _check_promotion(cfg: CampaignConfig) -> None:
    if cfg.promote is None:
        return
    if cfg.promote.calculator.name == "experiment":
        raise InputError("promote.calculator: 'experiment' cannot be promoted to; run an experiment campaign "
                         "with space mode list on the screening campaign's best (htflow export)")
    if cfg.promote.best == 0 and cfg.promote.uncertain == 0:
        raise InputError("promote: best and uncertain are both 0, so nothing would be promoted")
    try:
        check(cfg.promoted_config())
    except InputError as exc:
        msg = str(exc)
        raise InputError(f"promote.{msg}" if msg.startswith("calculator") else f"promote: {msg}") from None


def _check_prior(cfg: CampaignConfig) -> None:
    """``search.prior`` names imported data sets of the campaign's store that hold the objective."""
    if not cfg.search.prior:
        return
    if cfg.search.sampler not in MODEL_SAMPLERS or len(cfg.objectives) != 1:
        raise InputError("search.prior: warm start trains the surrogate on one objective; it needs sampler "
                         f"surrogate and one objective (got sampler {cfg.search.sampler!r} and "
                         f"{len(cfg.objectives)} objectives)")
    db = CampaignDB(cfg.store)
    if not db.exists():
        raise InputError(f"search.prior: there is no store at {db.location} yet; import the data first "
                         "(htflow import FILE --campaign NAME ...)")
    name = cfg.objective.name
    with db:
        imported = db.collection(IMPORTED)
        for i, source in enumerate(cfg.search.prior):
            if imported.count({"campaign": source, f"properties.{name}": {"$exists": True}}) == 0:
                sets = ", ".join(sorted(imported.distinct("campaign"))) or "none"
                raise InputError(f"search.prior[{i}]: no imported data set {source!r} with values of "
                                 f"{name!r} in {db.location}; imported data sets: {sets}")


def _check_experiment(cfg: CampaignConfig) -> None:
    """An experiment campaign has no structure block; its oracle table (a replay) holds the objectives."""
    if "structure" in cfg.model_fields_set:
        raise InputError("structure: an experiment campaign makes each composition in a laboratory, so it "
                         "has no structure block; remove it")
    if cfg.reference_phases:
        raise InputError("reference_phases: an experiment campaign has no energies for a convex hull; "
                         "remove it")
    if cfg.search.surrogate.stable_within is not None:
        raise InputError("search.surrogate.stable_within: measures distances to a computed convex hull; "
                         "an experiment campaign has none")
    oracle = cfg.calculator.options.get("oracle")
    if oracle:
        Oracle(str(oracle), tuple(o.name for o in cfg.objectives))


def check(cfg: CampaignConfig) -> None:
    """Every check across fields and layers; raises :class:`InputError` naming the field."""
    try:
        space = build_space(cfg.space)
    except SpaceError as exc:
        raise InputError(str(exc)) from None
    if cfg.space.mode != "grid" and "step" in cfg.space.model_fields_set:
        raise InputError(f"space.step: a {cfg.space.mode} space has no step; remove it or use mode: grid")
    if cfg.is_experiment:
        _check_experiment(cfg)
    else:
        _check_structure(cfg)
    _check_realisable(cfg, space)
    calc = get_calculator(cfg.calculator.name)
    calc.check(cfg, space)
    get_generator(cfg.search.sampler)
    if cfg.search.generative != GenerativeConfig() and cfg.search.sampler != "generative":
        raise InputError(f"search.generative: settings of the generative sampler, but search.sampler is "
                         f"{cfg.search.sampler!r}; set search.sampler: generative or remove them")
    if cfg.search.sampler in MODEL_SAMPLERS or "surrogate" in cfg.search.model_fields_set:
        check_surrogate_settings(cfg.search.surrogate, list(space.elements))
        _check_graph_features(cfg, space)
        _check_trust_region(cfg, space)
    _check_objectives(cfg, calc)
    _check_flow(cfg, calc)
    if cfg.executor.type == "dask" and cfg.executor.cluster is not None:
        load_cluster_file(cfg.executor.cluster)  # its errors name the file and the field
    check_store_config(cfg.store)
    if cfg.reference_phases:
        load_phases(cfg.reference_phases, space.elements)
    _check_promotion(cfg)
    _check_prior(cfg)


def parse_config(data: Any, source: str = "campaign") -> CampaignConfig:
    """Validate a mapping as a campaign and run every check; raises :class:`InputError`."""
    if not isinstance(data, dict):
        kind = "empty" if data is None else type(data).__name__
        raise InputError(f"{source}: a campaign file must be a YAML mapping, got {kind}")
    try:
        cfg = CampaignConfig.model_validate(data)
    except ValidationError as exc:
        raise InputError(format_validation_error(exc, source)) from None
    try:
        check(cfg)
    except InputError as exc:
        raise InputError(f"{source}: {exc}") from None
    return cfg


def load_config(path: str | Path, store: str | None = None, executor: dict | None = None) -> CampaignConfig:
    """Read and fully check a campaign file (optionally overriding its store or executor settings).

    An executor override of another ``type`` than the file's replaces the
    file's executor settings (keeping ``walltime``); of the same type, it
    updates them.
    """
    path = Path(path)
    data = read_yaml(path)
    allow_local_modules(path.parent)  # a plug-in module beside the campaign file: ``mymodule:MyMaker``
    if store is not None and isinstance(data, dict):
        data = {**data, "store": store}
    if executor and isinstance(data, dict):
        old = data.get("executor") if isinstance(data.get("executor"), dict) else {}
        if old.get("type", "local") != executor.get("type", old.get("type", "local")):
            old = {k: v for k, v in old.items() if k == "walltime"}
        data = {**data, "executor": {**old, **executor}}
    return parse_config(data, str(path))

"""The campaign file: YAML parsed into strict pydantic models.

Unknown keys are errors (a typo must not pass silently), and every invalid
value is reported as one line naming the field path, the value and what is
allowed. Checks that need more than one field (a grid step that the supercell
cannot realise, elements the calculator has no parameters for, an unusable
store) run in :meth:`CampaignConfig.check`, still before anything is written.
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from htflow.errors import InputError

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,99}$"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True, frozen=False)


class ConstraintsConfig(_Strict):
    """Limits on proposed compositions beyond bounds and element count (see htflow.constraints)."""

    max_cost: Annotated[float, Field(gt=0)] | None = None
    max_density: Annotated[float, Field(gt=0)] | None = None
    forbidden_pairs: list[tuple[str, str]] = Field(default_factory=list)
    prices: dict[str, Annotated[float, Field(ge=0)]] = Field(default_factory=dict)


class SpaceConfig(_Strict):
    """Which compositions may be proposed."""

    elements: Annotated[list[str], Field(min_length=1, max_length=30)]
    bounds: dict[str, tuple[float, float]] = Field(default_factory=dict)
    mode: Literal["grid", "continuous"] = "grid"
    step: Annotated[float, Field(gt=0, le=1)] | None = 0.25
    max_elements: Annotated[int, Field(ge=1)] | None = None
    max_pool: Annotated[int, Field(ge=1)] = 500_000
    constraints: ConstraintsConfig = Field(default_factory=ConstraintsConfig)

    @field_validator("constraints", mode="before")
    @classmethod
    def _empty_constraints(cls, value: Any) -> Any:
        return {} if value is None else value  # a `constraints:` key with every line commented out

    def build(self):  # -> CompositionSpace
        """The :class:`~htflow.space.CompositionSpace` this describes."""
        from htflow.constraints import Constraints
        from htflow.space import CompositionSpace

        c = self.constraints
        constraints = Constraints(c.max_cost, c.max_density, tuple(tuple(p) for p in c.forbidden_pairs),
                                  dict(c.prices))
        return CompositionSpace(
            constraints=constraints if constraints.active else None,
            elements=tuple(self.elements),
            bounds={k: tuple(v) for k, v in self.bounds.items()},
            step=self.step if self.mode == "grid" else None,
            max_elements=self.max_elements,
            max_pool=self.max_pool,
        )


class StructureConfig(_Strict):
    """How a composition becomes a structure."""

    prototype: str = "fcc"
    n_atoms: Annotated[int, Field(ge=1, le=2000)] = 32
    lattice_constant: Annotated[float, Field(gt=0, le=100)] | None = None


class CalculatorConfig(_Strict):
    """Which calculator evaluates a structure, and how."""

    name: str = "emt"
    relax: bool = True
    fmax: Annotated[float, Field(gt=0)] = 0.05
    steps: Annotated[int, Field(ge=0)] = 500
    options: dict[str, Any] = Field(default_factory=dict)


class PromoteConfig(_Strict):
    """Multi-fidelity: results of the screening calculator promoted to a more expensive one."""

    calculator: CalculatorConfig
    #: share of each round's successful screening results, best by the objective, to promote
    best: Annotated[float, Field(ge=0, le=1)] = 0.25
    #: and this share more: those the surrogate was least sure of when it chose them (model rounds)
    uncertain: Annotated[float, Field(ge=0, le=1)] = 0.0


class ObjectiveConfig(_Strict):
    """One quantity to optimise."""

    name: str = "formation_energy_per_atom"
    goal: Literal["minimize", "maximize"] = "minimize"
    target: float | None = None
    #: hypervolume reference value (several objectives); default: just beyond the first round's worst
    reference: float | None = None


class PruneConfig(_Strict):
    """When the model may rule candidates out."""

    enabled: bool = True
    kappa: Annotated[float, Field(ge=0)] = 3.0
    margin: Annotated[float, Field(ge=0)] = 0.0
    min_r2: Annotated[float, Field(le=1)] = 0.8
    min_results: Annotated[int, Field(ge=2)] = 20


class SurrogateConfig(_Strict):
    """Surrogate-guided search (sampler ``surrogate``)."""

    model: str = "gp"
    features: str = "fractions"
    acquisition: str = "ei"
    beta: Annotated[float, Field(ge=0)] = 2.0
    xi: Annotated[float, Field(ge=0)] = 0.0
    batch: Literal["believer", "top"] = "believer"
    initial: Annotated[int, Field(ge=2)] = 8
    initial_sampler: str = "sobol"
    cv_folds: Annotated[int, Field(ge=0, le=50)] = 5
    candidates: Annotated[int, Field(ge=1, le=1_000_000)] = 4096
    #: continuous spaces: refine the sampled candidates by optimising the acquisition over the
    #: simplex with differential evolution (scipy) for this many generations; 0 turns it off
    evolve: Annotated[int, Field(ge=0, le=1000)] = 30
    #: learn from failed calculations where they fail (a random-forest classifier on the
    #: fractions) and weight the acquisition by the probability of success
    feasibility: bool = True
    #: several objectives: expected hypervolume improvement (BoTorch), ParEGO, or ``auto``
    #: (EHVI when BoTorch is installed, else ParEGO)
    multi_objective: Literal["auto", "ehvi", "parego"] = "auto"
    #: eV/atom: search for compositions within this of the convex hull: the acquisition is the
    #: probability of a formation energy at most this far above the hull, and pruning rules out
    #: candidates whose optimistic bound is further above it (objective formation_energy_per_atom)
    stable_within: Annotated[float, Field(ge=0, le=10)] | None = None
    prune: PruneConfig = Field(default_factory=PruneConfig)

    @field_validator("multi_objective")
    @classmethod
    def _botorch_present(cls, value: str) -> str:
        from htflow import ehvi

        if value == "ehvi" and not ehvi.available():
            raise ValueError(f"multi_objective 'ehvi' needs BoTorch, which is not installed: {ehvi.INSTALL}; "
                             "or use 'parego' (or 'auto': EHVI when BoTorch is installed, else ParEGO)")
        return value


class SearchConfig(_Strict):
    """How candidates are chosen, how many, and when to stop."""

    sampler: str = "surrogate"
    batch_size: Annotated[int, Field(ge=1, le=100_000)] = 8
    budget: Annotated[int, Field(ge=1)]
    seed: int = 0
    patience: Annotated[int, Field(ge=1)] | None = None
    surrogate: SurrogateConfig = Field(default_factory=SurrogateConfig)


class ExecutorConfig(_Strict):
    """Where evaluation flows run: in-process, on Dask workers, or through FireWorks."""

    type: Literal["local", "dask", "fireworks"] = "local"
    walltime: Annotated[float, Field(gt=0)] | None = None
    # dask
    workers: Annotated[int, Field(ge=1, le=100_000)] | None = None
    threads_per_worker: Annotated[int, Field(ge=1, le=1024)] = 1
    address: Annotated[str, Field(pattern=r"^(tcp|tls|ucx|inproc|ws|wss)://\S+$")] | None = None
    cluster: str | None = None
    max_attempts: Annotated[int, Field(ge=1, le=100)] = 3
    pack: Any = "auto"
    # fireworks
    launchpad: str | None = None
    poll_seconds: Annotated[float, Field(gt=0)] = 5.0
    rlaunch: bool = False

    @field_validator("pack")
    @classmethod
    def _pack(cls, value: Any) -> str | int:
        whole = isinstance(value, int) and not isinstance(value, bool)
        if value == "auto" or (whole and 1 <= value <= 100_000):
            return value
        raise ValueError(f"pack is 'auto' or a number of flows per Dask task (1 to 100000), got {value!r}")

    @field_validator("cluster", "launchpad")
    @classmethod
    def _expand_home(cls, value: str | None) -> str | None:
        return None if value is None else str(Path(value).expanduser())

    @model_validator(mode="after")
    def _fields_match_type(self) -> ExecutorConfig:
        own = {
            "dask": {"workers", "threads_per_worker", "address", "cluster", "max_attempts", "pack"},
            "fireworks": {"launchpad", "poll_seconds", "rlaunch"},
        }
        for kind, names in own.items():
            if self.type != kind:
                used = sorted(n for n in names  # a stored (dumped) config holds every field at its default
                              if getattr(self, n) != type(self).model_fields[n].get_default())
                if used:
                    raise ValueError(f"{', '.join(used)} only apply to type {kind}, not {self.type}")
        if self.type == "fireworks" and self.walltime is not None:
            raise ValueError("walltime does not apply to type fireworks: set the queue's walltime in "
                             "my_qadapter.yaml (and custodian's for DFT)")
        if self.address and self.cluster:
            raise ValueError("give either address (a running scheduler) or cluster (a cluster file), "
                             "not both")
        if self.cluster is not None:
            if not Path(self.cluster).is_file():
                raise ValueError(f"cluster file {self.cluster} does not exist (see cluster/ for templates)")
            from htflow.dask_executor import load_cluster_file

            load_cluster_file(self.cluster)  # its errors name the file and the field
        if self.launchpad is not None and not Path(self.launchpad).is_file():
            raise ValueError(f"launchpad file {self.launchpad} does not exist "
                             "(see cluster/my_launchpad.yaml)")
        return self


class StoreConfig(_Strict):
    """Where results live: embedded (default), MongoDB, or memory (tests)."""

    backend: Literal["embedded", "mongodb", "memory"] = "embedded"
    path: str = "htflow-data"
    uri: str | None = None
    database: str = "htflow"

    @model_validator(mode="after")
    def _uri_matches_backend(self) -> StoreConfig:
        if self.backend == "mongodb" and not self.uri:
            raise ValueError("backend mongodb needs uri: mongodb://host:27017 or mongodb+srv://...")
        if self.backend != "mongodb" and self.uri:
            raise ValueError(f"uri is only used with backend mongodb, not {self.backend}")
        return self


class CampaignConfig(_Strict):
    """A whole campaign file."""

    name: Annotated[str, Field(pattern=NAME_PATTERN)]
    description: str = ""
    space: SpaceConfig
    structure: StructureConfig = Field(default_factory=StructureConfig)
    calculator: CalculatorConfig = Field(default_factory=CalculatorConfig)
    objectives: Annotated[list[ObjectiveConfig], Field(min_length=1)] = Field(
        default_factory=lambda: [ObjectiveConfig()]
    )
    search: SearchConfig
    executor: ExecutorConfig = Field(default_factory=ExecutorConfig)
    store: StoreConfig = Field(default_factory=StoreConfig)
    #: CSV (formula, energy_per_atom) of known phases computed with the same calculator: they join
    #: the convex hull (energy above hull, stable_within)
    reference_phases: str | None = None
    #: multi-fidelity: promote the best (and most uncertain) screening results to another calculator
    promote: PromoteConfig | None = None

    @field_validator("store", mode="before")
    @classmethod
    def _store_shorthand(cls, value: Any) -> Any:
        return store_from_shorthand(value) if isinstance(value, str) else value

    @property
    def objective(self) -> ObjectiveConfig:
        """The primary objective (the first one)."""
        return self.objectives[0]

    def promoted_config(self) -> CampaignConfig | None:
        """The campaign of the promoted fidelity: same space, structure, objectives and store, the
        promotion's calculator, named ``NAME.CALCULATOR`` (``NAME.promoted`` for import paths)."""
        if self.promote is None:
            return None
        calc = self.promote.calculator
        label = calc.name if calc.name.isidentifier() else "promoted"
        data = self.model_dump(mode="json")
        data.update(name=f"{self.name}.{label}"[:100], calculator=calc.model_dump(mode="json"), promote=None,
                    reference_phases=None)
        return CampaignConfig.model_validate(data)

    def _check_surrogate(self, space) -> None:
        _check_surrogate_settings(self.search.surrogate, space.elements)

    def check(self) -> None:
        """Checks across fields; raises :class:`InputError` naming the field."""
        from htflow.calculators import get_calculator
        from htflow.generators import get_generator
        from htflow.space import SpaceError
        from htflow.store.db import check_store_config
        from htflow.structures import PROTOTYPE_ATOMS, StructureBuilder, StructureError

        try:
            space = self.space.build()
        except SpaceError as exc:
            raise InputError(str(exc)) from None
        if self.space.mode == "continuous" and "step" in self.space.model_fields_set:
            raise InputError("space.step: a continuous space has no step; remove it or use mode: grid")

        st = self.structure
        if st.prototype in PROTOTYPE_ATOMS:
            per = PROTOTYPE_ATOMS[st.prototype]
            if st.n_atoms % per:
                ok = ", ".join(str(per * k) for k in (1, 2, 4, 8, 16, 27))
                raise InputError(
                    f"structure.n_atoms: {st.n_atoms} is not a multiple of the {per} atoms in the "
                    f"{st.prototype} cell; allowed e.g. {ok}"
                )
        else:
            try:
                StructureBuilder(st.prototype, st.n_atoms).template()
            except StructureError as exc:
                raise InputError(str(exc)) from None
        if space.is_grid:
            atoms = space.step * st.n_atoms
            if abs(atoms - round(atoms)) > 1e-6:
                fine = [f"{1 / k:g}" for k in range(1, st.n_atoms + 1) if st.n_atoms % k == 0][1:6]
                raise InputError(
                    f"space.step: {space.step:g} of {st.n_atoms} atoms is {atoms:g} atoms, which "
                    f"cannot be realised on the supercell; allowed steps for n_atoms "
                    f"{st.n_atoms}: {', '.join(fine)} (or change structure.n_atoms)"
                )
            try:
                space.check_grid()
                if space.constraints is not None:
                    space.pool()  # the constraints leave at least one composition
            except SpaceError as exc:
                raise InputError(str(exc)) from None
        else:
            for el, (lo, hi) in space.limits.items():
                lo_n, hi_n = lo * st.n_atoms, hi * st.n_atoms
                if int(hi_n + 1e-9) < lo_n - 1e-9:
                    raise InputError(
                        f"space.bounds.{el}: [{lo:g}, {hi:g}] holds no whole number of atoms out "
                        f"of structure.n_atoms {st.n_atoms}; widen it or use more atoms"
                    )

        calc = get_calculator(self.calculator.name)
        calc.check(self, space)
        get_generator(self.search.sampler)
        if self.search.sampler == "surrogate" or "surrogate" in self.search.model_fields_set:
            self._check_surrogate(space)
        for i, obj in enumerate(self.objectives):
            props = calc.properties
            if obj.name not in props:
                hint = _suggest(obj.name, props)
                raise InputError(
                    f"objectives[{i}].name: {obj.name!r} is not computed by calculator "
                    f"{self.calculator.name!r}{hint}; allowed: {', '.join(sorted(props))}"
                )
        check_store_config(self.store)
        if self.reference_phases:
            from htflow.thermo import load_phases

            load_phases(self.reference_phases, space.elements)
        if self.promote is not None:
            if self.promote.best == 0 and self.promote.uncertain == 0:
                raise InputError("promote: best and uncertain are both 0, so nothing would be promoted")
            try:
                self.promoted_config().check()
            except InputError as exc:
                msg = str(exc)
                where = f"promote.{msg}" if msg.startswith("calculator") else f"promote: {msg}"
                raise InputError(where) from None
        if self.search.surrogate.stable_within is not None:
            objs = [(o.name, o.goal) for o in self.objectives]
            if self.search.sampler != "surrogate" or objs != [("formation_energy_per_atom", "minimize")]:
                raise InputError(
                    "search.surrogate.stable_within: needs sampler surrogate and the one objective "
                    "formation_energy_per_atom (minimize), whose hull it measures; got sampler "
                    f"{self.search.sampler!r} and objectives {', '.join(n for n, _ in objs)}")


def _check_surrogate_settings(sur: SurrogateConfig, elements: list[str]) -> None:
    from htflow.active import Planner
    from htflow.generators import GENERATORS

    if sur.initial_sampler not in GENERATORS:
        raise InputError(
            f"search.surrogate.initial_sampler: {sur.initial_sampler!r} is not a space-filling "
            f"sampler; allowed: {', '.join(GENERATORS)}"
        )
    Planner(sur, elements)  # names of model, features, acquisition


def store_from_shorthand(value: str) -> dict:
    """``htflow-data`` / ``mongodb://...`` / ``memory://`` / ``stores/x.yaml`` → store mapping."""
    if value.startswith(("mongodb://", "mongodb+srv://")):
        return {"backend": "mongodb", "uri": value}
    if value.startswith("memory:"):
        return {"backend": "memory"}
    if value.endswith((".yaml", ".yml")):
        data = read_yaml(Path(value), what="store file")
        return data.get("store", data) if isinstance(data, dict) else data
    if "://" in value:
        scheme = value.split("://", 1)[0]
        raise InputError(
            f"store: unsupported URI scheme {scheme!r}; allowed: a folder path (embedded), "
            "mongodb://, mongodb+srv://, memory://, or a stores/*.yaml file"
        )
    return {"backend": "embedded", "path": value}


def _suggest(word: str, options: Any) -> str:
    close = difflib.get_close_matches(str(word), [str(o) for o in options], n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _allowed_keys(model: type[BaseModel], loc: tuple) -> list[str]:
    """Field names of the sub-model at ``loc`` (for unknown-key messages)."""
    for part in loc[:-1]:
        if isinstance(part, int):
            continue
        field = model.model_fields.get(part)
        if field is None:
            return []
        ann = field.annotation
        for cand in (ann, *getattr(ann, "__args__", ())):
            inner = getattr(cand, "__args__", None)
            for c in (cand, *(inner or ())):
                if isinstance(c, type) and issubclass(c, BaseModel):
                    model = c
                    break
            else:
                continue
            break
        else:
            return []
    return list(model.model_fields)


def format_validation_error(exc: ValidationError, source: str, model=None) -> str:
    """One line per problem: ``source: field.path: what is wrong (got value); allowed...``."""
    model = model or CampaignConfig
    lines = []
    errors = exc.errors()
    # A misspelt key also makes the real one "missing": report the typo only.
    typos = set()
    for err in errors:
        if err["type"] == "extra_forbidden":
            close = difflib.get_close_matches(str(err["loc"][-1]), _allowed_keys(model, err["loc"]), n=1)
            if close:
                typos.add((*err["loc"][:-1], close[0]))
    for err in errors:
        if err["type"] == "missing" and tuple(err["loc"]) in typos:
            continue
        loc = err["loc"]
        path = ".".join(f"[{p}]" if isinstance(p, int) else str(p) for p in loc).replace(".[", "[")
        if err["type"] == "extra_forbidden":
            allowed = _allowed_keys(model, loc)
            hint = _suggest(loc[-1], allowed)
            lines.append(
                f"{source}: {path}: unknown key{hint}; allowed keys here: {', '.join(allowed)}"
            )
            continue
        msg = err["msg"].removeprefix("Value error, ")
        got = err.get("input")
        if err["type"] == "missing":
            lines.append(f"{source}: {path}: required field is missing")
        else:
            shown = repr(got) if not isinstance(got, dict) else "a mapping"
            lines.append(f"{source}: {path or '(top level)'}: {msg} (got {shown})")
    return "\n".join(lines)


def read_yaml(path: Path, what: str = "campaign file") -> Any:
    """Read a YAML file, turning every failure into one clear :class:`InputError`."""
    if not path.exists():
        raise InputError(f"{path}: no such {what}")
    if path.is_dir():
        raise InputError(f"{path}: is a folder, expected a {what} (YAML)")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot read {what}: {exc}") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise InputError(f"{path}: malformed YAML{where}: {problem}") from None


def parse_config(data: Any, source: str = "campaign") -> CampaignConfig:
    """Validate a mapping as a campaign; raises :class:`InputError`."""
    if not isinstance(data, dict):
        kind = "empty" if data is None else type(data).__name__
        raise InputError(f"{source}: a campaign file must be a YAML mapping, got {kind}")
    try:
        cfg = CampaignConfig.model_validate(data)
    except ValidationError as exc:
        raise InputError(format_validation_error(exc, source)) from None
    try:
        cfg.check()
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
    if store is not None and isinstance(data, dict):
        data = {**data, "store": store}
    if executor and isinstance(data, dict):
        old = data.get("executor") if isinstance(data.get("executor"), dict) else {}
        if old.get("type", "local") != executor.get("type", old.get("type", "local")):
            old = {k: v for k, v in old.items() if k == "walltime"}
        data = {**data, "executor": {**old, **executor}}
    return parse_config(data, str(path))

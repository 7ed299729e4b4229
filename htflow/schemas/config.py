"""The campaign file as pure data: strict pydantic models, nothing else.

Unknown keys are errors (a typo must not pass silently), and every invalid
value is reported as one line naming the field path, the value and what is
allowed (:func:`htflow.schemas.messages.format_validation_error`). Values are
strict (no string or boolean becomes a number, no float an integer), floats
finite, numbers bounded to what the code takes: what ``validate`` accepts ``run`` runs. The models
import no other layer of htflow: checks that need the space, the calculators,
the samplers or the store run in :mod:`htflow.campaign.validation`, still
before anything is written.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    Discriminator,
    Field,
    Tag,
    field_validator,
    model_validator,
)

from htflow.errors import InputError
from htflow.schemas.base import MAX_COUNT, Strict
from htflow.schemas.calculators import CalculatorConfig, ObjectiveConfig
from htflow.settings import get_settings
from htflow.utils.yaml import read_yaml

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,99}$"
#: the largest seed numpy's generators take
MAX_SEED = 2**32 - 1


def _tuples(value: Any) -> Any:
    """YAML has lists, not tuples: pairs given as lists are taken as pairs (strict mode would not)."""
    if isinstance(value, dict):
        return {k: tuple(v) if isinstance(v, list) else v for k, v in value.items()}
    if isinstance(value, list):
        return [tuple(v) if isinstance(v, list) else v for v in value]
    return value


class ConstraintsConfig(Strict):
    """Limits on proposed compositions beyond bounds and element count (see htflow.space.constraints)."""

    max_cost: Annotated[float, Field(gt=0)] | None = None
    max_density: Annotated[float, Field(gt=0)] | None = None
    forbidden_pairs: list[tuple[str, str]] = Field(default_factory=list)
    prices: dict[str, Annotated[float, Field(ge=0)]] = Field(default_factory=dict)

    _pairs = field_validator("forbidden_pairs", mode="before")(lambda cls, v: _tuples(v))


class SpaceConfig(Strict):
    """Which compositions may be proposed (:func:`htflow.space.build_space` makes the space)."""

    #: the elements that may appear (a list space: optional, the list's own by default)
    elements: Annotated[list[str], Field(max_length=120)] = Field(default_factory=list)
    bounds: dict[str, tuple[float, float]] = Field(default_factory=dict)
    mode: Literal["grid", "continuous", "list"] = "grid"
    #: mode list: a CSV of the candidate compositions (a formula column, or one column per element)
    file: Annotated[str, Field(min_length=1)] | None = None
    step: Annotated[float, Field(ge=1e-4, le=1)] | None = 0.25
    max_elements: Annotated[int, Field(ge=1, le=30)] | None = None
    max_pool: Annotated[int, Field(ge=1, le=MAX_COUNT)] = Field(
        default_factory=lambda: get_settings().max_pool)
    constraints: ConstraintsConfig = Field(default_factory=ConstraintsConfig)

    _bounds = field_validator("bounds", mode="before")(lambda cls, v: _tuples(v))

    @model_validator(mode="after")
    def _mode_needs(self) -> SpaceConfig:
        listing, n = self.mode == "list", len(self.elements)
        problem = ("mode list needs file: a CSV of the candidate compositions" if listing and not self.file
                   else f"file is only used with mode list, not {self.mode}" if self.file and not listing
                   else "elements: list at least one element, e.g. [Cu, Ni]" if not listing and not n
                   else f"elements: at most 30 on a {self.mode} space, got {n}" if not listing and n > 30
                   else None)
        if problem:
            raise ValueError(problem)
        return self

    @field_validator("constraints", mode="before")
    @classmethod
    def _empty_constraints(cls, value: Any) -> Any:
        return {} if value is None else value  # a `constraints:` key with every line commented out


class StructureConfig(Strict):
    """How a composition becomes a structure."""

    prototype: str = "fcc"
    n_atoms: Annotated[int, Field(ge=1, le=2000)] = 32
    lattice_constant: Annotated[float, Field(gt=0, le=100)] | None = None
    decoration: Literal["random", "sqs"] = "random"  # sqs: pair correlations of the ideal random alloy
    #: decorations per composition: their mean is the value, their spread is stored and is the model's noise
    configurations: Annotated[int, Field(ge=1, le=100)] = 1


class PromoteConfig(Strict):
    """Multi-fidelity: results of the screening calculator promoted to a more expensive one."""

    calculator: CalculatorConfig
    #: share of each round's successful screening results, best by the objective, to promote
    best: Annotated[float, Field(ge=0, le=1)] = 0.25
    #: and this share more: those the surrogate was least sure of when it chose them (model rounds)
    uncertain: Annotated[float, Field(ge=0, le=1)] = 0.0


class PruneConfig(Strict):
    """When the model may rule candidates out (off by default: on the search suite it made the default miss
    the best composition of a pool in 6 of 50 runs, and it helped nowhere; docs/search-suite.md)."""

    enabled: bool = False
    kappa: Annotated[float, Field(ge=0)] = 3.0
    margin: Annotated[float, Field(ge=0)] = 0.0
    min_r2: Annotated[float, Field(le=1)] = 0.8
    min_results: Annotated[int, Field(ge=2, le=MAX_COUNT)] = 20


class SurrogateConfig(Strict):
    """Surrogate-guided search (sampler ``surrogate``)."""

    #: gp-plain (default): scikit-learn's textbook GP on the raw fractions; gp: anisotropic, standardised
    #: inputs; gp-iso; forest; auto (gp-plain or forest, each round, by CV); or package.module:object
    #: (the default was chosen on the search suite: docs/search-suite.md)
    model: str = "gp-plain"
    features: str = "fractions"
    acquisition: str = "ei"
    beta: Annotated[float, Field(ge=0)] = 2.0
    xi: Annotated[float, Field(ge=0)] = 0.0
    batch: Literal["believer", "top"] = "believer"
    initial: Annotated[int, Field(ge=2, le=MAX_COUNT)] = 8
    initial_sampler: str = "sobol"
    cv_folds: Annotated[int, Field(ge=0, le=50)] = 5
    #: cross-validate on at most this many results (a seeded random subset beyond it): bounded cost per round
    cv_max: Annotated[int, Field(ge=10, le=MAX_COUNT)] = 300
    candidates: Annotated[int, Field(ge=1, le=1_000_000)] = 4096
    #: continuous spaces: generations of differential evolution refining the candidates (0: off)
    evolve: Annotated[int, Field(ge=0, le=1000)] = 30
    #: learn where evaluations fail (a random-forest classifier); weight the acquisition by P(success)
    feasibility: bool = True
    #: several objectives: EHVI (BoTorch), ParEGO, or ``auto`` (EHVI when BoTorch is installed)
    multi_objective: Literal["auto", "ehvi", "parego"] = "auto"
    #: eV/atom: search within this of the hull (acquisition P(E above hull <= it); formation energy only)
    stable_within: Annotated[float, Field(ge=0, le=10)] | None = None
    prune: PruneConfig = Field(default_factory=PruneConfig)
    #: explain each model round: Shapley values per element and pair, partial dependence (htflow explain)
    explain: bool = True
    #: scale the model's sigma by the round's CV so that +-1 sigma covers 68% of held-out results, and
    #: acquire with the scaled sigma (the scale is recorded either way: cv.sigma_calibration)
    calibrate: bool = False
    #: choose only near the best result so far, in a box that grows on improvement and shrinks without
    #: it (TuRBO; htflow/search/trust.py): ``auto`` (the default) where it can work (a grid or list
    #: space, one objective), ``true`` (refused elsewhere) or ``false``
    trust_region: bool | Literal["auto"] = "auto"
    #: the trust region's radius (largest fraction difference from the best) at the start and at each
    #: restart: 1 (the default) is the whole space until rounds stop improving; 0.5 is TuRBO's own
    trust_start: Annotated[float, Field(ge=1 / 16, le=1)] = 1.0


class GenerativeConfig(Strict):
    """The generative sampler's conditional VAE (``search.sampler: generative``)."""

    #: compositions drawn per round (then made real, deduplicated and ranked by the acquisition)
    samples: Annotated[int, Field(ge=1, le=1_000_000)] = 2048
    epochs: Annotated[int, Field(ge=1, le=100_000)] = 400
    latent: Annotated[int, Field(ge=1, le=32)] = 2
    hidden: Annotated[int, Field(ge=2, le=4096)] = 32
    learning_rate: Annotated[float, Field(gt=0, le=1)] = 0.01
    #: weight of the KL term (annealed from 0 over the first quarter of the epochs)
    beta: Annotated[float, Field(ge=0, le=100)] = 1.0
    #: softmax temperature of the decoder when sampling (below 1: sharper, fewer elements)
    temperature: Annotated[float, Field(gt=0, le=100)] = 1.0
    #: each decoded composition is redrawn from a Dirichlet of this concentration around it (None: not)
    concentration: Annotated[float, Field(gt=0, le=1e6)] | None = 50.0
    #: condition on values as good as this top share of the results ...
    target_quantile: Annotated[float, Field(gt=0, le=1)] = 0.1
    #: ... up to this many standard deviations beyond the best
    beyond: Annotated[float, Field(ge=0, le=10)] = 1.0
    #: or a range of the objective in its own units, e.g. [-0.1, -0.05]
    target: Annotated[list[float], Field(min_length=2, max_length=2)] | None = None


class SearchConfig(Strict):
    """How candidates are chosen, how many, and when to stop."""

    sampler: str = "surrogate"
    batch_size: Annotated[int, Field(ge=1, le=100_000)] = 8
    budget: Annotated[int, Field(ge=1, le=MAX_COUNT)]
    seed: Annotated[int, Field(ge=0, le=MAX_SEED)] = 0
    patience: Annotated[int, Field(ge=1, le=MAX_COUNT)] | None = None
    #: warm start: imported data sets (``htflow import --campaign NAME``) training the surrogate from round 1
    prior: list[Annotated[str, Field(pattern=NAME_PATTERN)]] = Field(default_factory=list, max_length=20)
    surrogate: SurrogateConfig = Field(default_factory=SurrogateConfig)
    generative: GenerativeConfig = Field(default_factory=GenerativeConfig)


# -- executors: a union keyed on ``type`` ------------------------------------------------------
class LocalExecutorConfig(Strict):
    """Evaluations run one after another in the driver's process (the default)."""

    type: Literal["local"] = "local"
    walltime: Annotated[float, Field(gt=0, le=1e7)] | None = None


class DaskExecutorConfig(Strict):
    """Evaluations run on Dask workers: a LocalCluster, a running scheduler, or a cluster file."""

    type: Literal["dask"] = "dask"
    walltime: Annotated[float, Field(gt=0, le=1e7)] | None = None
    workers: Annotated[int, Field(ge=1, le=100_000)] | None = None
    threads_per_worker: Annotated[int, Field(ge=1, le=1024)] = 1
    address: Annotated[str, Field(pattern=r"^(tcp|tls|ucx|inproc|ws|wss)://\S+$")] | None = None
    cluster: str | None = None
    max_attempts: Annotated[int, Field(ge=1, le=100)] = 3
    pack: Any = "auto"

    @field_validator("pack")
    @classmethod
    def _pack(cls, value: Any) -> str | int:
        whole = isinstance(value, int) and not isinstance(value, bool)
        if value == "auto" or (whole and 1 <= value <= 100_000):
            return value
        raise ValueError("pack is 'auto' or a number of flows per Dask task (1 to 100000)")

    @field_validator("cluster")
    @classmethod
    def _expand_home(cls, value: str | None) -> str | None:
        return None if value is None else str(Path(value).expanduser())

    @model_validator(mode="after")
    def _one_way_to_workers(self) -> DaskExecutorConfig:
        if self.address and self.cluster:
            raise ValueError("give either address (a running scheduler) or cluster (a cluster file), "
                             "not both")
        if self.cluster is not None and not Path(self.cluster).is_file():
            raise ValueError(f"cluster file {self.cluster} does not exist (see cluster/ for templates)")
        return self


class FireWorksExecutorConfig(Strict):
    """Evaluations queued as FireWorks workflows on a LaunchPad (MongoDB)."""

    type: Literal["fireworks"] = "fireworks"
    launchpad: str | None = None
    poll_seconds: Annotated[float, Field(gt=0, le=3600)] = 5.0
    rlaunch: bool = False
    #: refused with a pointer to where FireWorks takes wall times
    walltime: None = None

    @field_validator("walltime", mode="before")
    @classmethod
    def _no_walltime(cls, value: Any) -> None:
        if value is not None:
            raise ValueError("walltime does not apply to type fireworks: set the queue's walltime in "
                             "my_qadapter.yaml (and custodian's for DFT)")
        return None

    @field_validator("launchpad")
    @classmethod
    def _launchpad_file(cls, value: str | None) -> str | None:
        if value is None:
            return None
        value = str(Path(value).expanduser())
        if not Path(value).is_file():
            raise ValueError(f"launchpad file {value} does not exist (see cluster/my_launchpad.yaml)")
        return value


EXECUTOR_TYPES = {"local": LocalExecutorConfig, "dask": DaskExecutorConfig,
                  "fireworks": FireWorksExecutorConfig}


def _executor_type(value: Any) -> str | None:
    if isinstance(value, dict):
        kind = value.get("type", "local")
        return kind if isinstance(kind, str) else None
    return getattr(value, "type", None)


ExecutorConfig = Annotated[
    Annotated[LocalExecutorConfig, Tag("local")]
    | Annotated[DaskExecutorConfig, Tag("dask")]
    | Annotated[FireWorksExecutorConfig, Tag("fireworks")],
    Discriminator(_executor_type),
]


class StoreConfig(Strict):
    """Where results live: embedded (default), MongoDB, or memory (tests)."""

    backend: Literal["embedded", "mongodb", "memory"] = "embedded"
    path: Annotated[str, Field(min_length=1)] = "htflow-data"
    uri: str | None = None
    database: str = "htflow"

    @model_validator(mode="after")
    def _uri_matches_backend(self) -> StoreConfig:
        if self.backend == "mongodb" and not self.uri:
            raise ValueError("backend mongodb needs uri: mongodb://host:27017 or mongodb+srv://...")
        if self.backend != "mongodb" and self.uri:
            raise ValueError(f"uri is only used with backend mongodb, not {self.backend}")
        return self


class CampaignConfig(Strict):
    """A whole campaign file."""

    name: Annotated[str, Field(pattern=NAME_PATTERN)]
    description: Annotated[str, Field(max_length=10_000)] = ""
    space: SpaceConfig
    structure: StructureConfig = Field(default_factory=StructureConfig)
    calculator: CalculatorConfig = Field(default_factory=CalculatorConfig)
    objectives: Annotated[list[ObjectiveConfig], Field(min_length=1)] = Field(
        default_factory=lambda: [ObjectiveConfig()]
    )
    search: SearchConfig
    executor: ExecutorConfig = Field(default_factory=LocalExecutorConfig)
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

    @field_validator("objectives")
    @classmethod
    def _unique_objectives(cls, value: list[ObjectiveConfig]) -> list[ObjectiveConfig]:
        names = [o.name for o in value]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"objective {', '.join(twice)} is listed more than once; each objective "
                             "names a different property")
        return value

    @property
    def is_experiment(self) -> bool:
        """Whether a laboratory (or its replay) measures the candidates (no supercell, any objective)."""
        return self.calculator.name == "experiment"

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


#: search.surrogate settings whose default changes the search, at the values that reproduce their absence
BEFORE = {"trust_region": False, "trust_start": 0.5}


def stored_config(stored: dict, store: StoreConfig | None = None) -> CampaignConfig:
    """A campaign's config as stored in its document, read by this version of htflow: the executor
    is not re-checked (its files may have moved), ``store`` replaces the stored store, and settings
    added since take the value that reproduces the search of their absence (:data:`BEFORE`)."""
    data = {**stored, "executor": {}}
    search = data.get("search")
    if isinstance(search, dict) and isinstance(search.get("surrogate"), dict):
        data["search"] = {**search, "surrogate": {**BEFORE, **search["surrogate"]}}
    if store is not None:
        data["store"] = store.model_dump()
    return CampaignConfig.model_validate(data)

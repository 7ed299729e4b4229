"""The calculator block and the objectives of a campaign file, and the options of each built-in calculator.

A typo or an ill-typed option is caught by pydantic and reported like any other
field of the campaign file. Calculators from plug-ins or import paths take any
options; their spec checks them (:meth:`htflow.calculators.CalculatorSpec.check`).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    ValidationInfo,
    field_validator,
    model_validator,
)

from htflow.schemas.base import MAX_COUNT, Strict
from htflow.utils.text import suggest

Whole = Annotated[StrictInt, Field(ge=1)]
#: the flows a calculator block may run after its relaxation (``calculator.flow``)
FLOWS = ("relax", "elastic")
#: a property name: letters, digits, '_' (a field of every result, a worksheet column)
PROPERTY_NAME = r"^[A-Za-z_][A-Za-z0-9_]{0,99}$"
#: a value of the evaluation's documents: ``ROOT.key.key.0`` (dotted; integers index lists)
PATH_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z0-9_]+)+$"
#: ``package.module:function``
EXTRACTOR_PATTERN = r"^[A-Za-z_][A-Za-z0-9_.]*:[A-Za-z_][A-Za-z0-9_.]*$"
#: units of the properties htflow names (the report's axis labels, the worksheet headings)
UNITS = {"bulk_modulus": "GPa", "shear_modulus": "GPa", "youngs_modulus": "GPa", "debye_temperature": "K",
         "energy_per_atom": "eV/atom", "formation_energy_per_atom": "eV/atom", "volume_per_atom": "Å³/atom",
         "density": "g/cm³"}
#: POTCAR sets atomate2 knows
FUNCTIONALS = ("PBE_54", "PBE_64", "PBE_52", "PBE")


class _Options(BaseModel):
    model_config = ConfigDict(extra="forbid")


class EmtOptions(_Options):
    """ASE's EMT calculator."""

    asap_cutoff: StrictBool = False


class LookupOptions(_Options):
    """The ``lookup`` calculator: a bundled table name or a CSV path."""

    #: required; the spec's check names the bundled tables when it is missing
    table: str | None = None


class MLIPOptions(_Options):
    """Machine-learned potentials (``chgnet``, ``sevennet``, ``mace``)."""

    model: str | None = None
    device: Literal["auto", "cpu", "cuda"] = "auto"
    batch_size: Whole = 1


class VaspOptions(_Options):
    """VASP through atomate2 and custodian."""

    command: str | None = None
    run_dir: str = "vasp-runs"
    static: StrictBool = True
    incar: dict[str, Any] = Field(default_factory=dict)
    kpoints_density: Whole | None = None
    potcar_functional: Literal[FUNCTIONALS] | None = None  # type: ignore[valid-type]
    max_errors: Whole = 5
    poll_seconds: Annotated[StrictInt | StrictFloat, Field(gt=0)] = 10


class ExperimentOptions(_Options):
    """Laboratory measurements: each round is a worksheet, filled in and read back (``htflow ingest``)."""

    #: replay: a table (CSV/Excel, formula or element columns, one column per objective) that answers
    #: each round at once instead of a laboratory, so the whole loop runs unattended (benchmarks, tests)
    oracle: str | None = None
    #: grams of each sample: the worksheet gives every element's mass to weigh out
    sample_mass_g: Annotated[StrictInt | StrictFloat, Field(gt=0, le=1e6)] = 10.0
    #: where worksheets are written (default: ``worksheets/`` in the embedded store's folder)
    worksheets: str | None = None
    #: worksheet formats, the first is the one to fill in
    formats: Annotated[list[Literal["csv", "xlsx"]], Field(min_length=1)] = Field(
        default_factory=lambda: ["csv", "xlsx"])


#: the options model of each built-in calculator
OPTION_MODELS: dict[str, type[_Options]] = {
    "emt": EmtOptions,
    "lookup": LookupOptions,
    "chgnet": MLIPOptions,
    "sevennet": MLIPOptions,
    "mace": MLIPOptions,
    "vasp": VaspOptions,
    "experiment": ExperimentOptions,
}


class CalculatorConfig(Strict):
    """Which calculator evaluates a structure, and how.

    ``options`` of a built-in calculator are checked against its own model
    (:data:`htflow.schemas.calculators.OPTION_MODELS`) and kept as the mapping
    the user wrote; a plug-in calculator's options pass through to its spec.
    """

    name: str = "emt"
    relax: bool = True
    fmax: Annotated[float, Field(gt=0)] = 0.05
    steps: Annotated[int, Field(ge=0, le=MAX_COUNT)] = 500
    options: dict[str, Any] = Field(default_factory=dict)
    #: ``relax``: the relaxation gives the properties; ``elastic``: then atomate2's elastic workflow on the
    #: relaxed structure (bulk_modulus, shear_modulus, youngs_modulus, poisson_ratio, pugh_ratio, ...)
    flow: Literal[FLOWS] = "relax"  # type: ignore[valid-type]

    @field_validator("options")
    @classmethod
    def _options_of_name(cls, value: dict[str, Any], info: ValidationInfo) -> dict[str, Any]:
        name = info.data.get("name")
        model = OPTION_MODELS.get(name) if isinstance(name, str) else None
        if model is None:
            return value
        unknown = sorted(set(value) - set(model.model_fields))
        if unknown:
            allowed = list(model.model_fields)
            raise ValueError(f"unknown option(s) {', '.join(unknown)} for {name!r}"
                             f"{suggest(unknown[0], allowed)}; allowed: {', '.join(allowed)}")
        model.model_validate(value)  # its errors carry the option's name under calculator.options
        return value


class ObjectiveConfig(Strict):
    """One quantity to optimise."""

    #: a property name: letters, digits, '_' (a field of every result, a worksheet column); ``unit``: e.g. MPa
    name: Annotated[str, Field(pattern=PROPERTY_NAME)] = "formation_energy_per_atom"
    goal: Literal["minimize", "maximize"] = "minimize"
    unit: Annotated[str, Field(max_length=40)] | None = None
    target: float | None = None
    #: hypervolume reference value (several objectives); default: just beyond the first round's worst
    reference: float | None = None
    #: a property the calculator does not name: its value at this path of the evaluation's documents
    #: (``task.output.energy``; ``elastic.elastic_tensor.ieee_format.0.0`` with ``calculator.flow: elastic``)
    path: Annotated[str, Field(pattern=PATH_PATTERN, max_length=500)] | None = None
    #: or ``package.module:function``, called with those documents (plain dicts by root), returning a number
    extractor: Annotated[str, Field(pattern=EXTRACTOR_PATTERN, max_length=300)] | None = None

    @model_validator(mode="after")
    def _one_source(self) -> ObjectiveConfig:
        if self.path and self.extractor:
            raise ValueError("give path or extractor, not both: the value comes from one place")
        return self

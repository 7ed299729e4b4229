"""Options of the built-in calculators (``calculator.options``), one strict model per calculator.

A typo or an ill-typed option is caught by pydantic and reported like any other
field of the campaign file. Calculators from plug-ins or import paths take any
options; their spec checks them (:meth:`htflow.calculators.CalculatorSpec.check`).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictFloat, StrictInt

Whole = Annotated[StrictInt, Field(ge=1)]
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

"""The base of every campaign-file model: strict, no unknown keys, finite floats."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

#: the most evaluations, steps, or candidates a campaign may ask for
MAX_COUNT = 10**9


class Strict(BaseModel):
    """Unknown keys are errors, no value is coerced, no float is infinite or NaN."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, frozen=False, strict=True,
                              allow_inf_nan=False)

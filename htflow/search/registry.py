"""Samplers by name: htflow's own, plug-ins' (entry points ``htflow.samplers``), or import paths."""

from __future__ import annotations

from typing import Any

from htflow.errors import InputError
from htflow.schemas.config import GenerativeConfig, SurrogateConfig
from htflow.search.context import Generator
from htflow.search.generative import GenerativeGenerator
from htflow.search.guided import SurrogateGenerator
from htflow.search.planner import surrogate_settings
from htflow.search.samplers import SPACE_FILLING
from htflow.utils.imports import plugin_names, resolve


def sampler_names() -> list[str]:
    """Every sampler a campaign file may name (besides import paths)."""
    return [*MODEL_SAMPLERS, *SPACE_FILLING, *plugin_names("samplers")]


#: the samplers that fit the surrogate model each round (and take ``search.surrogate``)
MODEL_SAMPLERS = ("surrogate", "generative")


def get_generator(name: str, surrogate: SurrogateConfig | dict | None = None,
                  generative: GenerativeConfig | None = None) -> Generator:
    """A generator by name, entry point or ``package.module:object`` (a class or an instance).

    ``surrogate`` holds the settings of the ``surrogate`` sampler (``search.surrogate``), which the
    ``generative`` sampler shares; ``generative`` those of its conditional VAE (``search.generative``).
    """
    if name == "surrogate":
        return SurrogateGenerator(surrogate_settings(surrogate))
    if name == "generative":
        return GenerativeGenerator(surrogate_settings(surrogate), generative)
    if name in SPACE_FILLING:
        return SPACE_FILLING[name]()
    obj: Any = resolve("samplers", name, "search.sampler")
    if obj is None:
        raise InputError(f"search.sampler: unknown sampler {name!r}; allowed: {', '.join(sampler_names())} "
                         "or an import path package.module:object")
    gen = obj() if isinstance(obj, type) else obj
    if not callable(getattr(gen, "propose", None)):
        raise InputError(f"search.sampler: {name!r} has no propose(ctx, n) method")
    return gen

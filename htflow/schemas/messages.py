"""Validation errors of the campaign file as one line per problem, naming the field."""

from __future__ import annotations

import difflib
import typing
from typing import Any

from pydantic import BaseModel, ValidationError

from htflow.schemas.calculators import EXTRACTOR_PATTERN, PATH_PATTERN, PROPERTY_NAME
from htflow.schemas.config import EXECUTOR_TYPES, NAME_PATTERN, CampaignConfig
from htflow.utils.text import suggest

#: tags of discriminated unions, which pydantic puts into error locations
_TAGS = {("executor", kind) for kind in EXECUTOR_TYPES}
#: what a string pattern of the models asks for, in words
_PATTERNS = {
    PROPERTY_NAME: "a name of letters, digits and '_' that does not start with a digit (e.g. bulk_modulus)",
    PATH_PATTERN: "a dotted path ROOT.key.key (integers index lists), e.g. elastic.derived_properties.k_vrh",
    EXTRACTOR_PATTERN: "package.module:function, e.g. mymodule:pugh_ratio",
    NAME_PATTERN: "letters, digits, '_', '.', '-' (at most 100, starting with a letter or digit)",
}


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    """The pydantic models an annotation can hold (through Optional, unions, Annotated, lists)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    out: list[type[BaseModel]] = []
    for arg in typing.get_args(annotation):
        out += _models_in(arg)
    return out


def _strip_tags(loc: tuple) -> tuple[tuple, str | None]:
    """``loc`` without a union tag (``executor.dask.workers`` → ``executor.workers``) and the tag."""
    for i in range(len(loc) - 1):
        if (loc[i], loc[i + 1]) in _TAGS:
            return (*loc[: i + 1], *loc[i + 2:]), loc[i + 1]
    return loc, None


def _model_at(model: type[BaseModel], loc: tuple, tag: str | None) -> type[BaseModel] | None:
    """The sub-model at ``loc`` (``tag`` picks the member of a discriminated union)."""
    for part in loc:
        if isinstance(part, int):
            continue
        field = model.model_fields.get(part)
        if field is None:
            return None
        models = _models_in(field.annotation)
        if part == "executor" and tag in EXECUTOR_TYPES:
            models = [EXECUTOR_TYPES[tag]]
        if not models:
            return None
        model = models[0]
    return model


def _allowed_keys(model: type[BaseModel], loc: tuple, tag: str | None = None) -> list[str]:
    """Field names of the sub-model holding ``loc``'s last key (for unknown-key messages)."""
    sub = _model_at(model, loc[:-1], tag)
    return list(sub.model_fields) if sub is not None else []


def _dotted(loc: tuple) -> str:
    return ".".join(f"[{p}]" if isinstance(p, int) else str(p) for p in loc).replace(".[", "[")


def _wrong_executor_type(key: str, tag: str) -> str | None:
    owners = [kind for kind, m in EXECUTOR_TYPES.items() if kind != tag and key in m.model_fields]
    return f"{key} only apply to type {' or '.join(owners)}, not {tag}" if owners else None


def format_validation_error(exc: ValidationError, source: str, model: type[BaseModel] | None = None) -> str:
    """One line per problem: ``source: field.path: what is wrong (got value); allowed...``."""
    model = model or CampaignConfig
    lines = []
    errors = exc.errors()
    # A misspelt key also makes the real one "missing": report the typo only.
    typos = set()
    for err in errors:
        if err["type"] == "extra_forbidden":
            loc, tag = _strip_tags(tuple(err["loc"]))
            close = difflib.get_close_matches(str(loc[-1]), _allowed_keys(model, loc, tag), n=1)
            if close:
                typos.add((*loc[:-1], close[0]))
    for err in errors:
        loc, tag = _strip_tags(tuple(err["loc"]))
        if err["type"] == "missing" and loc in typos:
            continue
        path = _dotted(loc)
        if err["type"] == "extra_forbidden":
            wrong = _wrong_executor_type(str(loc[-1]), tag) if loc[:1] == ("executor",) and tag else None
            if wrong:
                lines.append(f"{source}: {_dotted(loc[:-1])}: {wrong}")
                continue
            allowed = _allowed_keys(model, loc, tag)
            hint = suggest(loc[-1], allowed)
            lines.append(f"{source}: {path}: unknown key{hint}; allowed keys here: {', '.join(allowed)}")
            continue
        if err["type"] == "union_tag_invalid":
            kinds = list(EXECUTOR_TYPES)
            lines.append(f"{source}: {path}.type: unknown type {err['ctx']['tag']!r}; allowed: "
                         f"{', '.join(repr(k) for k in kinds[:-1])} or {kinds[-1]!r}")
            continue
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "string_pattern_mismatch" and err["ctx"]["pattern"] in _PATTERNS:
            msg = f"expected {_PATTERNS[err['ctx']['pattern']]}"
        got = err.get("input")
        if err["type"] == "missing":
            lines.append(f"{source}: {path}: required field is missing")
        else:
            # a mapping is not repeated: the message names its keys
            shown = "" if isinstance(got, dict) else f" (got {got!r})"
            lines.append(f"{source}: {path or '(top level)'}: {msg}{shown}")
    return "\n".join(lines)

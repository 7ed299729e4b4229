"""Reading a composition written as a formula: ``Zr41.2Ti13.8Cu12.5Ni10Be22.5``, ``Al0.5CoCrFeNi``,
``Fe2(SO4)3``. Plain symbol-and-amount formulas are parsed directly (10x faster than pymatgen);
anything else (brackets, hydrates) by pymatgen. Every symbol must be a chemical element."""

from __future__ import annotations

import re

from pymatgen.core import Composition, Element

SYMBOLS = frozenset(el.symbol for el in Element)
_PLAIN = re.compile(r"([A-Z][a-z]?)(\d+(?:\.\d*)?|\.\d+)?")
_WHOLE = re.compile(r"(?:[A-Z][a-z]?(?:\d+(?:\.\d*)?|\.\d+)?)+")


class FormulaError(ValueError):
    """A formula that cannot be read (the message says why)."""


def plain_formula(text: str) -> dict[str, float] | None:
    """Symbols and amounts only, spaces allowed; None for anything else."""
    text = text.replace(" ", "")
    if not _WHOLE.fullmatch(text):
        return None
    amounts: dict[str, float] = {}
    for symbol, amount in _PLAIN.findall(text):
        if symbol not in SYMBOLS:
            return None
        amounts[symbol] = amounts.get(symbol, 0.0) + (float(amount) if amount else 1.0)
    return amounts or None


def formula_amounts(text: str) -> dict[str, float]:
    """Element -> amount of a formula; :class:`FormulaError` when it cannot be read."""
    text = text.strip()
    if not text:
        raise FormulaError("empty formula")
    plain = plain_formula(text)
    if plain is not None:
        return plain
    try:
        amounts = Composition(text).get_el_amt_dict()
    except (ValueError, KeyError, TypeError) as exc:
        raise FormulaError(f"{text[:60]!r} is not a formula ({exc})") from None
    for el in amounts:
        if el not in SYMBOLS:
            raise FormulaError(f"{el!r} in {text[:60]!r} is not a chemical element")
    return amounts

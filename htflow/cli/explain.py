"""``htflow explain``: which elements and element pairs the round's model found to matter, and which way."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.table import Table

from htflow.cli.app import StoreOpt, app, console
from htflow.cli.common import campaign_doc, open_db
from htflow.schemas.calculators import UNITS
from htflow.store.repository import explained_round, explanation


def fmt(v: float) -> str:
    return f"{v:.3g}"


def ranking_table(ex: dict) -> Table:
    """Elements ranked by mean |Shapley value|, most important first, with the direction of their effect."""
    table = Table()
    for col, just in (("rank", "right"), ("element", "left"), ("importance", "right"),
                      ("more of it", "left"), ("per +10 at.%", "right")):
        table.add_column(col, justify=just, no_wrap=True)
    for i, r in enumerate(ex["elements"], 1):
        d = r["direction"]
        way = "raises it" if d > 0.3 else "lowers it" if d < -0.3 else "mixed"
        table.add_row(str(i), r["element"], fmt(r["importance"]), way, fmt(r.get("per_10_percent", 0.0)))
    return table


def note(entry: dict, ex: dict, unit: str | None, others: list[str]) -> str:
    """What the numbers are, under the ranking (``others``: the campaign's other objectives)."""
    u = f" in {unit}" if unit else ""
    model = ex.get("model") or f"the {entry.get('model', 'surrogate')} model"
    more = (f"; the other objectives: --objective {' / '.join(others)}" if others else "")
    objective = ex["objective"]
    return (f"round {entry['round']}: {ex['method']} of {model} on "
            f"{ex['points']} results against {ex['background']}; importance = mean |Shapley value| of "
            f"{objective}{u}; 'more of it' = the sign of the correlation of an element's Shapley value "
            f"with its fraction ('mixed' below 0.3); per +10 at.% = the slope of that relation{more}")


def pairs_table(ex: dict) -> Table | None:
    pairs = [p for p in ex.get("pairs") or [] if p["importance"] > 0]
    if not pairs:
        return None
    table = Table(caption="mean |Shapley interaction index|: what the pair adds beyond its two elements")
    for col, just in (("rank", "right"), ("pair", "left"), ("importance", "right"), ("mean", "right")):
        table.add_column(col, justify=just, no_wrap=True)
    for i, p in enumerate(pairs, 1):
        table.add_row(str(i), "–".join(p["pair"]), fmt(p["importance"]), fmt(p["mean_interaction"]))
    return table


@app.command()
def explain(
    name: Annotated[str, typer.Argument(help="Campaign name (see htflow status).")],
    round_: Annotated[int | None, typer.Option("--round", "-r", min=0,
                                               help="The round (default: the latest explained).")] = None,
    objective: Annotated[str | None, typer.Option(
        "--objective", "-o", help="Several objectives: which one (default: the first).")] = None,
    store: StoreOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="The round's whole explanation as JSON.")] = False,
) -> None:
    """Why the model predicts what it does: elements (and element pairs) ranked by importance.

    Shapley values of the round's surrogate, as a function of the element fractions, in the objective's
    own units and direction; an anisotropic GP's length scales; see the report for the plots.
    """
    db = open_db(store)
    with db:
        doc = campaign_doc(db, name)
    objectives = doc["config"]["objectives"]
    names = [o["name"] for o in objectives]
    entry = explained_round(doc.get("rounds", []), round_)
    ex = explanation(entry, objective, names)
    if as_json:
        print(json.dumps({"campaign": name, "round": entry["round"], **ex}))
        return
    obj = objectives[names.index(ex["objective"])]
    unit = obj.get("unit") or UNITS.get(obj["name"]) or ("eV/atom" if "energy" in obj["name"] else None)
    out = console()
    out.print(ranking_table(ex))
    out.print(note(entry, ex, unit, [n for n in names if n != ex["objective"]]), highlight=False)
    pairs = pairs_table(ex)
    if pairs is not None:
        out.print(pairs)
    ls = ex.get("length_scales")
    if ls:
        out.print("GP length scales (shorter: the model varies faster along it): "
                  + ", ".join(f"{k} {v:.3g}" for k, v in list(ls.items())[:10]), highlight=False)

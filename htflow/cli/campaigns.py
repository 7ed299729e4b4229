"""``htflow status``, ``report``, ``build`` and ``serve``: look at campaigns already in a store."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated

import typer

from htflow.cli.app import StoreOpt, app, console
from htflow.cli.common import campaign_doc, open_db
from htflow.cli.tables import best_table, model_table, pareto_section, rounds_table
from htflow.errors import InputError
from htflow.schemas.documents import IMPORTED
from htflow.store.db import CampaignDB
from htflow.store.repository import CampaignRepository


@app.command()
def status(
    name: Annotated[str, typer.Argument(help="Campaign name (the 'name' in its file), or the file.")],
    store: StoreOpt = None,
    top: Annotated[int, typer.Option(min=1, max=1000, help="Rows of best candidates.")] = 5,
) -> None:
    """Show a campaign's progress: state, rounds, counts and best candidates."""
    if name.endswith((".yaml", ".yml")):  # the campaign file: its name and its store
        from htflow.campaign.validation import load_config  # lazy: CLI start-up (atomate2)

        cfg = load_config(name, store=store)
        db = CampaignDB(cfg.store)
        if not db.exists():
            raise InputError(f"campaign {cfg.name!r} has not run yet: no store at {db.location}; "
                             f"htflow run {name}")
        name = cfg.name
    else:
        db = open_db(store)
    repo = CampaignRepository(db, name)
    with db:
        doc = campaign_doc(db, name)
        counts = repo.counts()
        obj = doc["config"]["objectives"][0]
        best = repo.best(obj["name"], obj["goal"], top)
    out = console()
    budget = doc["config"]["search"]["budget"]
    used = sum(v for k, v in counts.items() if k != "pruned")
    out.print(
        f"[bold]{name}[/]: {doc['state']}"
        + (f" ({doc.get('stop_reason')})" if doc.get("stop_reason") else "")
        + f"; {used}/{budget} of budget; done {counts['done']}, failed {counts['failed']}, "
        f"pending {counts['proposed'] + counts['running']}"
        + (f", pruned {counts['pruned']}" if counts["pruned"] else "")
        + f"; store {db.location}"
    )
    wait = doc.get("awaiting")
    if doc["state"] == "waiting" and wait:
        out.print(f"awaiting {counts['proposed'] + counts['running']} measurements (round "
                  f"{', '.join(map(str, wait['rounds']))}): fill in {' and '.join(wait['worksheets'])}, then "
                  "htflow ingest FILE and htflow run", soft_wrap=True, highlight=False)
    out.print(rounds_table(doc.get("rounds", []), obj["name"]))
    model = model_table(doc.get("rounds", []))
    if model is not None:
        out.print(model)
    others = tuple(o["name"] for o in doc["config"]["objectives"][1:])
    if best:
        units = {o["name"]: o.get("unit") for o in doc["config"]["objectives"]}
        out.print(best_table(best, obj["name"], f"best {len(best)} by {obj['name']} ({obj['goal']})", others,
                             units))
    with db:
        front = pareto_section(repo, doc, doc["config"]["objectives"])
    if front is not None:
        out.print(front)


@app.command()
def report(
    name: Annotated[str, typer.Argument(help="Campaign name (see htflow status).")],
    store: StoreOpt = None,
    out: Annotated[Path | None, typer.Option(
        "--out", "-o", help="Folder for index.html and the PNGs (default: <store>/reports/NAME).")] = None,
) -> None:
    """Write a campaign's report: one self-contained HTML page, with its plots also as PNGs.

    Learning curve against random orderings of the same evaluations, the
    surrogate's cross-validation (parity plot, MAE/RMSE/R² per round), a map
    of the compositions coloured by the objective, the best results and the
    failures.
    """
    from htflow.report import CampaignView, write_report  # lazy: CLI start-up (matplotlib, scikit-learn)

    if out is not None and out.exists() and not out.is_dir():
        raise InputError(f"--out: {out} exists and is not a folder; the report is a folder (index.html "
                         "and its PNGs): give a folder name")
    db = open_db(store)
    with db:
        view = CampaignView.open(db, campaign_doc(db, name))
        if out is None:
            out = (Path(db.cfg.path) if db.cfg.backend == "embedded" else Path(".")) / "reports" / name
        index = write_report(view, out)
    pngs = sorted(p.name for p in out.glob("*.png"))
    console().print(f"report: {index} (plots: {', '.join(pngs) or 'none yet'})")


@app.command()
def build(store: StoreOpt = None) -> None:
    """Gather every campaign's results into one materials collection (one document per material).

    A material is a composition (as realised) on one prototype and cell; the
    result of the highest fidelity is kept (measured over DFT over ML potentials
    over EMT). Each imported data set's compositions are materials too (the mean
    of each property, with the file and DOI as source). Reruns only rebuild
    materials with newer results. Query it with
    `htflow query --collection materials`.
    """
    from htflow.analysis.builder import MaterialsBuilder  # lazy: CLI start-up

    db = open_db(store)
    with db:
        builder = MaterialsBuilder(db.results, db.materials, imported=db.collection(IMPORTED))
        n = builder.build()
        total = db.materials.count()
    console().print(f"materials: {n} built or updated, {total} in all; store {db.location}")


@app.command()
def serve(
    store: StoreOpt = None,
    host: Annotated[str, typer.Option(help="Address to listen on; 0.0.0.0 exposes the store to the network.")]
    = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port.")] = 8000,
    public_url: Annotated[str | None, typer.Option(
        help="Where clients reach the server, e.g. https://db.example.org behind a proxy "
             "(OPTIMADE links are absolute). Default: http://HOST:PORT.")] = None,
) -> None:
    """Serve the store read-only: a dashboard, /api/campaigns, /api/results?filter=... and OPTIMADE."""
    from htflow.server.app import serve as run_server  # lazy: CLI start-up (FastAPI, OPTIMADE)

    if public_url is not None and not re.match(r"^https?://[^/\s]+(/\S*)?$", public_url):
        raise InputError(f"--public-url: {public_url!r} is not an http(s) URL such as https://db.example.org")
    db = open_db(store)
    run_server(db.cfg, host=host, port=port, public_url=public_url,
               announce=lambda line: console().print(line, soft_wrap=True))

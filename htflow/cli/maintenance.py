"""``htflow check`` and ``htflow backup``: the store's health and a safe copy of it."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from htflow.cli.app import StoreOpt, app, console
from htflow.cli.common import open_db


@app.command()
def check(store: StoreOpt = None) -> None:
    """Check the whole store: SQLite's integrity check of every page and index, and a read of
    every document. Exit 0 when it is whole; otherwise each problem is listed and the exit
    status is 1 (restore a copy made with `htflow backup`)."""
    db = open_db(store)
    problems = db.integrity()  # before connecting: a damaged file is refused on connecting
    out = console()
    if problems:
        for p in problems:
            console(stderr=True).print(f"problem: {p}", soft_wrap=True)
        console(stderr=True).print(f"{db.location}: damaged ({len(problems)} problems); restore a copy "
                                   "made with `htflow backup`")
        raise typer.Exit(1)
    with db:
        counts = {name: db.stores[name].count() for name in ("campaigns", "candidates", "results")}
    summary = ", ".join(f"{n} {name}" for name, n in counts.items())
    out.print(f"{db.location}: ok ({summary})", soft_wrap=True)


@app.command()
def backup(
    dest: Annotated[Path, typer.Argument(help="A new (or empty) folder for the copy; use it as --store.")],
    store: StoreOpt = None,
) -> None:
    """Copy the embedded store, even while a campaign writes to it, into a new folder.

    Uses SQLite's online backup API: the copy is consistent and self-contained (one file,
    no -wal), unlike copying htflow.sqlite by hand while it is open. Restore by pointing
    --store (or HTFLOW_STORE) at the copy, or by copying it back when nothing runs.
    """
    db = open_db(store)
    with db:
        pages = db.backup(dest)
    console().print(f"backed up {db.location} to {dest} ({pages} pages); use it with --store {dest}",
                    soft_wrap=True)

"""The ``htflow`` command line: the Typer application, its shared options, and the entry point.

Bad input of any kind (campaign file, arguments, store, query) ends with one
``error:`` line per problem on stderr and exit status 2, before anything is
written. Ctrl-C stops cleanly: finished results are already in the store and
the same command continues the campaign. The commands live in
:mod:`htflow.cli.run` (run, validate) and :mod:`htflow.cli.inspect` (status,
report, query, export, build, serve).
"""

from __future__ import annotations

import os
import signal
import sqlite3
import sys
import threading
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from htflow.errors import CampaignError, InputError
from htflow.store.connections import close_all, open_files, store_error

app = typer.Typer(
    name="htflow",
    help="Closed-loop composition screening: propose, compute, store, repeat.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=True,  # --install-completion / --show-completion (bash, zsh, fish, PowerShell)
)


def _version(value: bool) -> None:
    if value:
        from htflow import __version__  # lazy: the package's exports import pymatgen

        print(f"htflow {__version__}")
        raise typer.Exit()


@app.callback()
def _options(version: Annotated[bool, typer.Option(
        "--version", callback=_version, is_eager=True, help="Print htflow's version and exit.")] = False,
             ) -> None:
    """Closed-loop composition screening: propose, compute, store, repeat."""

ExecutorOpt = Annotated[str | None, typer.Option(
    "--executor", help="Where evaluations run: local (this process), dask, fireworks.")]
WorkersOpt = Annotated[int | None, typer.Option(
    "--workers", min=1, help="Dask: worker processes of a local cluster (default: one per core).")]
ClusterOpt = Annotated[Path | None, typer.Option(
    "--cluster", help="Dask: a cluster file, e.g. cluster/slurm.yaml (implies --executor dask).")]
AddressOpt = Annotated[str | None, typer.Option(
    "--address", help="Dask: a running scheduler, tcp://host:8786 (implies --executor dask).")]
StoreOpt = Annotated[
    str | None,
    typer.Option(
        "--store",
        help="Store to use: a folder (embedded, default ./htflow-data or $HTFLOW_STORE), mongodb://..., "
        "memory://, or a stores/*.yaml file.",
    ),
]


class Fmt(StrEnum):
    table = "table"
    json = "json"
    csv = "csv"


class ExportFmt(StrEnum):
    """What ``htflow export`` writes (a table is for the screen: ``htflow query``)."""

    json = "json"
    csv = "csv"
    parquet = "parquet"


def console(stderr: bool = False) -> Console:
    """A rich console for the command's output (no syntax highlighting of numbers)."""
    return Console(stderr=stderr, highlight=False)


INTERRUPTED = "\ninterrupted: finished results are saved; run the same command to continue"


def _terminated(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> None:
    """Entry point: pin threads, run, and turn bad input into exit status 2."""
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, "1")
    if threading.current_thread() is threading.main_thread():
        # a batch system's SIGTERM (the end of a job's wall time, scancel) stops a command as Ctrl-C
        # does: finished results are kept and the campaign's driver lock is released
        signal.signal(signal.SIGTERM, _terminated)
    try:
        # Not standalone: our errors propagate here. Typer then turns Ctrl-C and
        # typer.Exit into a returned exit code instead of raising.
        rv = app(args=argv, prog_name="htflow", standalone_mode=False)
        if rv == 130:
            print(INTERRUPTED, file=sys.stderr)
        if isinstance(rv, int) and rv:
            sys.exit(rv)
    except InputError as exc:
        for line in str(exc).splitlines():
            print(f"error: {line}", file=sys.stderr)
        sys.exit(2)
    except sqlite3.Error as exc:  # met after the store was opened: damage found on a read, a full disk
        files = open_files()
        print(f"error: {store_error(exc, files[0] if len(files) == 1 else None)}", file=sys.stderr)
        sys.exit(2)
    except CampaignError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        print(INTERRUPTED, file=sys.stderr)
        sys.exit(130)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.Abort:
        print("\naborted", file=sys.stderr)
        sys.exit(130)
    except typer.TyperException as exc:  # usage errors: bad option values, unknown commands
        print(f"error: {_usage_message(exc)}", file=sys.stderr)
        sys.exit(2)
    finally:
        close_all()  # the write-ahead log checkpointed into the store file


def _usage_message(exc: typer.TyperException) -> str:
    """Click's usage error as one line (the option, what is wrong, where to look)."""
    text = exc.format_message() if hasattr(exc, "format_message") else str(exc)
    message = " ".join(text.split())
    ctx = getattr(exc, "ctx", None)
    command = ctx.command_path if ctx is not None else "htflow"
    return f"{message} (see {command} --help)"

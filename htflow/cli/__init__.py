"""The ``htflow`` command line (Typer). ``main`` is the console script's entry point."""

# Importing a command module registers its commands, in this order in --help.
# isort: off
from htflow.cli import run, submit, campaigns, explain, finetune, data, importing, maintenance  # noqa: F401
# isort: on
from htflow.cli.app import app, main

__all__ = ["app", "main"]

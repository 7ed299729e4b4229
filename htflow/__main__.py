"""``python -m htflow``: the command line without the console script."""

from htflow.cli import main

main()

"""``python -m htflow.cli``: the command line without the console script."""

from htflow.cli import main

main()

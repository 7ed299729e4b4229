"""Errors the command line turns into one clear line.

Bad input exits with status 2; a campaign that cannot go on, with 1.
"""


class InputError(ValueError):
    """Bad input (campaign file, CLI argument, query): the message says what and what is allowed."""


class CampaignError(RuntimeError):
    """The campaign cannot go on (not a bad input: e.g. a reference calculation failed)."""


class StoreError(InputError):
    """A store that cannot be used as it is (damaged, read-only, locked, full, missing): the message
    names the file and what to do. Exit status 2, like other bad input."""

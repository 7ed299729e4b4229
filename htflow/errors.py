"""Errors the command line turns into one clear line.

Bad input exits with status 2; a campaign that cannot go on, with 1.
"""


class InputError(ValueError):
    """Bad input (campaign file, CLI argument, query): the message says what and what is allowed."""


class CampaignError(RuntimeError):
    """The campaign cannot go on (not a bad input: e.g. a reference calculation failed)."""

"""Errors that the command line turns into one clear line and exit status 2."""


class InputError(ValueError):
    """Bad input (campaign file, CLI argument, query): the message says what and what is allowed."""

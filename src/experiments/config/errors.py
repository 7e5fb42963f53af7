"""Exceptions whose message is shown to the user as a single line, without a traceback."""


class UserError(Exception):
    """Bad input the user can fix: a config value, a missing file, a dataset that is not there. Exit 2."""


class TrialsFailed(Exception):
    """A sweep ran to the end but some trials raised; their errors are in their directories. Exit 1."""

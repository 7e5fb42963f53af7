"""The one exception type whose message is shown to the user as a single line, without a traceback."""


class UserError(Exception):
    """Bad input the user can fix: a config value, a missing file, a dataset that is not there."""

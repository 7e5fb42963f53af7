"""Exceptions whose message is shown to the user as a single line, without a traceback."""


class UserError(Exception):
    """Bad input the user can fix: a config value, a missing file, a dataset that is not there. Exit 2."""


class TrialsFailed(Exception):
    """A sweep ran to the end but some trials raised; their errors are in their directories. Exit 1."""


def user_error_in(err: BaseException | None) -> UserError | None:
    """The UserError behind an exception; hydra.utils.instantiate wraps what a constructor raises."""
    while err is not None:
        if isinstance(err, UserError):
            return err
        err = err.__cause__ or err.__context__
    return None

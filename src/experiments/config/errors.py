"""Exceptions whose message is shown to the user as a single line, without a traceback."""

from collections.abc import Iterator


class UserError(Exception):
    """Bad input the user can fix: a config value, a missing file, a dataset that is not there. Exit 2."""


class TrialsFailed(Exception):
    """A sweep ran to the end but some trials raised; their errors are in their directories. Exit 1."""


def chain(err: BaseException | None) -> Iterator[BaseException]:
    """An exception, then what it was raised from or while handling, and so on down."""
    while err is not None:
        yield err
        err = err.__cause__ or err.__context__


def user_error_in(err: BaseException | None) -> UserError | None:
    """The UserError behind an exception; hydra.utils.instantiate wraps what a constructor raises."""
    return next((link for link in chain(err) if isinstance(link, UserError)), None)

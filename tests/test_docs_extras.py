"""The docs test runs where every extra is installed, which would hide a command that needs one: each
documented command that uses MLflow or W&B says, where it stands or earlier on its page, how to install it."""

import tomllib
from documented import REPO, documented_commands

EXTRAS = ("mlflow", "wandb")  # the optional dependencies a documented command may need (pyproject.toml)


def test_every_command_that_needs_an_extra_shows_how_to_install_it_first():
    declared = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    checked = 0
    for command in documented_commands():
        path, _, line = command.where.rpartition(":")
        before = "\n".join((REPO / path).read_text().splitlines()[: int(line)])
        for extra in (e for e in EXTRAS if e in command.text and not command.text.startswith("pip install")):
            assert extra in declared
            install = f'pip install -e ".[{extra}]"'
            assert install in command.comment or install in before, f"{command.where}: {command.text} needs {install}"
            checked += 1
    assert checked >= 10  # the tracking page's and the README's commands were found

"""The package's layout (pyproject.toml's [tool.importlinter]): its parts import downwards only, with no import
circles at any depth, and docs/architecture.md draws the same rows. Each contract is checked by import-linter
itself, on this tree and on copies with one wrong import planted."""

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from importlinter.api import read_configuration

REPO = Path(__file__).resolve().parents[1]


def lint(source_root: Path) -> subprocess.CompletedProcess:
    """`lint-imports` on the package found under `source_root` (PYTHONPATH puts it before the installed one)."""
    return subprocess.run(
        ["lint-imports", "--no-cache", "--no-logo", str(REPO / "pyproject.toml")],
        capture_output=True,
        text=True,
        cwd=source_root,
        env={"PATH": os.environ["PATH"], "PYTHONPATH": str(source_root)},
    )


@pytest.fixture
def planted(tmp_path):
    """A copy of src/ in which a test adds one import to one module."""
    shutil.copytree(REPO / "src", tmp_path / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))

    def plant(module: str, line: str) -> Path:
        path = tmp_path / "src" / Path(*module.split(".")).with_suffix(".py")
        path.write_text(path.read_text() + f"\n{line}  # noqa\n")
        return tmp_path / "src"

    return plant


def test_the_package_keeps_its_layers_and_has_no_circles():
    done = lint(REPO / "src")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Contracts: 2 kept, 0 broken." in done.stdout


def test_an_import_up_a_layer_breaks_the_layers_contract(planted):
    source = planted("experiments.config.errors", "from experiments.run import run")
    done = lint(source)
    assert done.returncode == 1
    assert "The parts of a run import downwards only BROKEN" in done.stdout
    assert "experiments.config.errors -> experiments.run" in done.stdout


def test_a_circle_inside_one_part_breaks_the_circles_contract(planted):
    # the trainer imports the divergence callback; the callback importing the trainer closes a circle
    source = planted("experiments.training.callbacks.divergence", "import experiments.training.trainer")
    done = lint(source)
    assert done.returncode == 1
    assert "The parts of a run import downwards only KEPT" in done.stdout  # inside one part: no layer crossed
    assert "No import circles, at any depth BROKEN" in done.stdout


def test_the_architecture_picture_draws_the_contracts_rows():
    contracts = read_configuration(str(REPO / "pyproject.toml"))["contracts_options"]
    [layers] = [contract["layers"] for contract in contracts if contract["type"] == "layers"]
    drawn_block = re.search(r"```mermaid\n(.*?)```", (REPO / "docs" / "architecture.md").read_text(), re.S)
    labels = list(dict.fromkeys(re.findall(r'L\d+\["([^"]+)"\]', drawn_block.group(1))))
    assert labels == [layer.replace(" | ", " · ") for layer in layers]

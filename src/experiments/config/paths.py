"""Where the project's configuration lives: conf/ beside src/ in a clone installed with `pip install -e .`."""

from pathlib import Path

CONF_DIR = Path(__file__).resolve().parents[3] / "conf"

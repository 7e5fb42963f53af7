"""paths.data_root: where the datasets are read, set on the command line or once per machine in conf/local/."""

import subprocess
import sys

from conftest import REPO, compose_config

DATASETS = ("mnist", "fashion_mnist", "cifar10", "cifar100")


def test_every_dataset_reads_from_the_data_root_unless_its_own_root_is_set():
    for data in DATASETS:
        assert compose_config(f"data={data}", "paths.data_root=/datasets").data.root == "/datasets", data
        assert compose_config(f"data={data}").data.root == "data", data  # as before: ./data
    mine = compose_config("data=mnist", "paths.data_root=/datasets", "data.root=/mine")
    assert mine.data.root == "/mine"


def test_a_machine_sets_its_data_root_once_in_conf_local(tmp_path):
    local = tmp_path / "machine" / "local"
    local.mkdir(parents=True)
    (local / "default.yaml").write_text("# @package _global_\npaths:\n  data_root: /datasets\n")
    command = [sys.executable, str(REPO / "train.py"), "--config-dir", str(tmp_path / "machine")]
    shown = subprocess.run([*command, "data=mnist", "--cfg", "job", "--resolve"], capture_output=True, text=True)
    assert shown.returncode == 0, shown.stderr[-2000:]
    assert "root: /datasets" in shown.stdout
    typed = subprocess.run(
        [*command, "data=mnist", "data.root=/mine", "--cfg", "job", "--resolve"], capture_output=True, text=True
    )
    assert typed.returncode == 0 and "root: /mine" in typed.stdout

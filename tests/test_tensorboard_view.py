"""What a student sees in TensorBoard, in a real headless Chromium: the documented screenshot script trains
three of the README's everyday overrides, serves them with `tensorboard --logdir outputs` on 127.0.0.1 and
reads the Time Series page. Skipped with its reason where Chromium or its driver is missing, unless
EXPERIMENTS_REQUIRE_BROWSER=1 (CI installs both)."""

import json
import os
import subprocess
import sys

import pytest
from conftest import REPO
from documented import documented
from PIL import Image, ImageStat
from test_docs import load_script

pytestmark = pytest.mark.slow


def test_time_series_opens_on_loss_and_accuracy_and_names_each_run_by_what_it_changed(tmp_path):
    script = load_script("tensorboard_screenshot")
    if (problem := script.missing_browser()) and not os.environ.get("EXPERIMENTS_REQUIRE_BROWSER"):
        pytest.skip(problem)
    documented("python bench/tensorboard_screenshot.py")
    picture, shown = tmp_path / "tensorboard.png", tmp_path / "shown.json"
    command = [sys.executable, str(REPO / "bench" / "tensorboard_screenshot.py"), "--out", str(picture)]
    command += ["--json", str(shown), "--workdir", str(tmp_path / "work"), "trainer.max_epochs=1"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    page = json.loads(shown.read_text())
    groups = page["groups"]
    # cards are grouped by a tag's first part: the loss and accuracy first, then the diagnostics
    assert groups[:3] == ["test", "train", "val"] and groups[3:] == ["watch", "weights"], groups
    # each run's row starts with what its command changed (the model is named after it, not twice)
    expected = ["runs/max_epochs-1_cnn_mnist_sample_", "runs/optimizer-sgd+lr-0.05+momentum-0.9+etc_mlp_mnist_sample_",
                "runs/regularization-dropout_l2+dropout-0.3+etc_mlp_mnist_sample_"]  # fmt: skip
    assert len(page["runs"]) == 3, page["runs"]
    for prefix in expected:
        assert any(run.startswith(prefix) for run in page["runs"]), (prefix, page["runs"])
    with Image.open(picture) as image:
        assert image.size[0] >= 1000, image.size
        assert max(ImageStat.Stat(image.convert("L")).stddev) > 20  # drawn, not a blank page
    assert f"card groups, top to bottom: {', '.join(groups)}" in done.stdout

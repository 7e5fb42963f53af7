"""The benchmark runs end to end and reports every figure the README's Performance section quotes."""

import json
import subprocess
import sys

import pytest
from conftest import REPO


@pytest.mark.slow
def test_bench_quick_mode_prints_table_and_json_ratios():
    done = subprocess.run(
        [sys.executable, str(REPO / "bench" / "epoch.py"), "--quick"], capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr[-2000:]
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    assert summary["repeats"] == 1 and 0 < summary["compose_s"] < 5
    for case in ("mlp_b64", "mlp_b256", "lenet_b64"):
        figures = summary[case]
        kinds = ("seed", "raw", "lightning", "framework", "framework_pty")
        assert min(figures[f"{kind}_s"] for kind in kinds) > 0 and figures["matmul_gflops"] > 0
        # one repeat: each ratio is exactly the ratio of the seconds shown
        framework = max(figures["framework_s"], figures["framework_pty_s"])
        assert figures["framework_over_raw"] == pytest.approx(framework / figures["raw_s"], rel=0.01)
        assert figures["lightning_over_raw"] == pytest.approx(figures["lightning_s"] / figures["raw_s"], rel=0.01)
        assert figures["seed_over_framework"] == pytest.approx(figures["seed_s"] / framework, rel=0.01)
        assert set(figures["peak_mib"]) == set(kinds)
    assert 0 < summary["mlp_b256"]["matmul_share"] < 1.5 and summary["lenet_b64"]["matmul_share"] is None
    assert "seconds per training epoch" in done.stdout

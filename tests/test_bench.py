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
    assert summary["matmul_gflops"] > 0 and 0 < summary["compose_s"] < 5
    for case in ("mlp_b64", "mlp_b256", "lenet_b64"):
        figures = summary[case]
        assert min(figures["seed_s"], figures["raw_s"], figures["framework_s"], figures["framework_pty_s"]) > 0
        assert figures["framework_over_raw"] == pytest.approx(
            max(figures["framework_s"], figures["framework_pty_s"]) / figures["raw_s"], rel=0.01
        )
        assert set(figures["peak_mib"]) == {"seed", "raw", "framework", "framework_pty"}
    assert 0 < summary["mlp_b256"]["matmul_share"] < 1.5
    assert "seconds per training epoch" in done.stdout

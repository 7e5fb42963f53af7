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
    assert summary["rounds"] == 1 and 0 < summary["compose_s"] < 5
    for case in ("mlp_b64", "mlp_b256", "lenet_b64"):
        figures = summary[case]
        kinds = ("seed", "raw", "lightning", "framework", "framework_pty")
        assert min(figures[f"{kind}_s"] for kind in kinds) > 0 and figures["matmul_gflops"] > 0
        [main], [pty] = figures["rounds"]["main"], figures["rounds"]["pty"]
        # ratios are taken within a round, each against the raw loop of its own process; the slower framework counts
        framework = max(main["framework"] / main["raw"], pty["framework"] / pty["raw"])
        assert figures["framework_over_raw"] == pytest.approx(framework, rel=0.01)
        assert figures["lightning_over_raw"] == pytest.approx(figures["lightning_s"] / figures["raw_s"], rel=0.01)
        assert figures["seed_over_framework"] == pytest.approx(main["seed"] / main["raw"] / framework, rel=0.01)
        assert set(figures["peak_mib"]) == {"seed", "raw", "lightning", "framework"}
        assert min(figures["peak_mib"].values()) > 100  # torch alone takes more than that
    b256 = summary["mlp_b256"]
    assert 0 < b256["raw_matmul_share"] < 1.5
    assert b256["matmul_share"] == pytest.approx(b256["raw_matmul_share"] / b256["framework_over_raw"], rel=0.01)
    assert summary["lenet_b64"]["matmul_share"] is None
    assert "seconds per training epoch" in done.stdout

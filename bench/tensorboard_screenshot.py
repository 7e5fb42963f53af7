"""TensorBoard as a student first sees it: the README's everyday overrides are trained in a scratch folder,
`tensorboard --logdir outputs` serves them on 127.0.0.1, and a headless Chromium takes a picture of the
Time Series tab. It prints the card groups in the order the page shows them and the run names in its list.

    python bench/tensorboard_screenshot.py                      # writes docs/images/tensorboard.png

Needs Chromium and its driver (Debian: `apt-get install chromium chromium-driver`) and selenium (in the dev
extra)."""

import argparse
import contextlib
import json
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# Three of the README's everyday overrides that run offline on the embedded sample, as typed there.
EVERYDAY = [
    ["model=cnn"],
    ["optimizer=sgd", "optimizer.lr=0.05", "optimizer.momentum=0.9"],
    ["regularization=[dropout,l2]", "regularization.dropout=0.3"],
]
BROWSER, DRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
GROUPS_JS = "return [...document.querySelectorAll('metrics-card-groups .group-title')].map(e => e.innerText.trim())"
RUNS_JS = "return [...document.querySelectorAll('runs-selector tb-data-table-content-row')]"
RUNS_JS += ".map(e => e.innerText.trim())"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "images" / "tensorboard.png")
    parser.add_argument("--workdir", type=Path, help="where the runs are trained (default: a temporary folder)")
    parser.add_argument("--json", type=Path, help="also write the groups and run names the page shows")
    parser.add_argument("extra", nargs="*", help="overrides added to every run, e.g. trainer.max_epochs=2")
    return parser


def missing_browser() -> str | None:
    """What is missing to take the picture, as the line to print; None when all is there."""
    for path, package in ((BROWSER, "chromium"), (DRIVER, "chromium-driver")):
        if not Path(path).is_file():
            return f"{path} not found: install it with `apt-get install {package}` (Debian)"
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed: pip install -e '.[dev]'"
    return None


def train_everyday_runs(workdir: Path, extra: list[str]) -> None:
    for overrides in EVERYDAY:
        print(f"python train.py {' '.join([*overrides, *extra])}", flush=True)
        done = subprocess.run([sys.executable, str(REPO / "train.py"), *overrides, *extra], cwd=workdir)
        if done.returncode:
            sys.exit(f"error: the run {' '.join(overrides)} exited with {done.returncode}")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextlib.contextmanager
def tensorboard(logdir: Path):
    """`tensorboard --logdir LOGDIR` on a free port of 127.0.0.1: its address once it answers."""
    port = free_port()
    command = [shutil.which("tensorboard") or "tensorboard", "--logdir", str(logdir), "--host", "127.0.0.1"]
    server = subprocess.Popen([*command, "--port", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    address = f"http://127.0.0.1:{port}"
    try:
        hung = time.monotonic() + 300
        while True:
            with contextlib.suppress(OSError):
                urllib.request.urlopen(f"{address}/data/runs", timeout=5).close()
                break
            if server.poll() is not None:
                sys.exit(f"error: tensorboard exited with {server.returncode}: {server.stderr.read().decode()[-500:]}")
            if time.monotonic() > hung:
                sys.exit("error: tensorboard neither answered nor exited in 300 s")
            time.sleep(0.3)
        yield address
    finally:
        server.terminate()
        server.wait(timeout=30)


def screenshot(address: str, out: Path, runs: int) -> dict:
    """The Time Series tab in a 1400 x 1000 headless Chromium, once its card groups and `runs` run rows show."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.support.ui import WebDriverWait

    options = webdriver.ChromeOptions()
    options.binary_location = BROWSER
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"):
        options.add_argument(argument)
    options.add_argument("--window-size=1400,1000")
    browser = webdriver.Chrome(options=options, service=Service(DRIVER))
    try:
        browser.get(f"{address}/#timeseries")
        WebDriverWait(browser, 120, poll_frequency=0.5).until(
            lambda page: page.execute_script(GROUPS_JS) and len(page.execute_script(RUNS_JS)) >= runs
        )
        time.sleep(2)  # the charts draw after their cards appear
        shown = {"groups": browser.execute_script(GROUPS_JS), "runs": browser.execute_script(RUNS_JS)}
        out.parent.mkdir(parents=True, exist_ok=True)
        browser.save_screenshot(str(out))
        return shown
    finally:
        browser.quit()


def main(argv: list[str] | None = None) -> dict:
    args = build_parser().parse_args(argv)
    if problem := missing_browser():
        sys.exit(f"error: {problem}")
    with tempfile.TemporaryDirectory() as scratch:
        workdir = args.workdir or Path(scratch)
        workdir.mkdir(parents=True, exist_ok=True)
        train_everyday_runs(workdir, args.extra)
        with tensorboard(workdir / "outputs") as address:
            shown = screenshot(address, args.out, runs=len(EVERYDAY))
    print(f"card groups, top to bottom: {', '.join(shown['groups'])}")
    print("runs:\n  " + "\n  ".join(shown["runs"]))
    print(f"wrote {args.out}")
    if args.json:
        args.json.write_text(json.dumps(shown, indent=1) + "\n")
    return shown


if __name__ == "__main__":
    main()

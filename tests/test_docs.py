"""Every command the docs show works as written, every path they name is one the code writes, and every
generated figure matches its result file. A subset, one per entry point and mode, runs end to end."""

import importlib.util
import json
import re
import shlex
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from conftest import REPO
from docs_world import HOME, TINY, World, build_world, train_py
from documented import DOCS, blocks, documented_commands, inline_commands_in, output_paths

TRACKERS = ("mlflow", "wandb")  # their commands read a tracker's store, which the default run has not
COMMANDS = documented_commands()


@pytest.fixture(scope="session")
def world(tmp_path_factory) -> World:
    """`python train.py` and the documented fused sweep, both at the defaults on a few batches."""
    return build_world(tmp_path_factory)


def test_the_docs_show_the_commands_of_every_entry_point():
    assert len(COMMANDS) > 250 and sum(c.inline for c in COMMANDS) > 90
    shown = {" ".join(c.argv[:3]) for c in COMMANDS}
    for entry in ("python train.py", "python -m experiments.scratch", "python -m experiments.kernels"):
        assert any(s.startswith(entry) for s in shown), entry
    for command in END_TO_END:
        assert command in {c.text for c in COMMANDS}, f"the end-to-end command {command!r} is not in the docs"


def test_the_readme_is_a_front_page_whose_links_all_resolve():
    readme = (REPO / "README.md").read_text()
    assert len(readme.splitlines()) <= 260
    for page in DOCS:
        for target in re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", page.read_text()):
            if not target.startswith("http"):
                assert (page.parent / target).exists(), f"{page.name} links to {target}, which does not exist"
    for page in sorted((REPO / "docs").glob("*.md")):
        assert f"docs/{page.name}" in readme, f"the README does not link {page.name}"


def test_every_script_the_docs_submit_is_shown_as_it_is_in_the_repository():
    submitted = {c.argv[1] for c in COMMANDS if c.argv[0] == "sbatch"}
    assert "examples/slurm/ddp_cpu.sbatch" in submitted  # the script test_slurm.py submits to its cluster
    shown = ["\n".join(body) + "\n" for page in DOCS for _, body, _ in blocks(page)]
    for script in submitted:
        assert (REPO / script).read_text() in shown, f"{script} is not shown unchanged in the docs"


def test_every_generated_figure_matches_its_result_file():
    report = load_script("report")
    assert report.stale_blocks() == [], "run python bench/report.py"
    for command in COMMANDS:
        assert "RUN" not in command.text or "outputs/runs/RUN" in command.text, command.where


@pytest.mark.slow
def test_every_single_run_command_composes_and_passes_the_checks(world, monkeypatch):
    monkeypatch.chdir(world.cwd)
    failures = [failure for command in COMMANDS if (failure := single_run_failure(world, command, monkeypatch))]
    assert not failures, "\n".join(failures)


def single_run_failure(world, command, monkeypatch) -> str | None:
    """What a single `python train.py ...` command the docs show would refuse with, composed and checked as
    its run would be; None when it passes or is not a single run."""
    from experiments.job import check_printed_config, prepare_arguments

    argv = world_argv(world, command)
    if argv[:2] == ["srun", "python"]:
        argv = argv[1:]
        monkeypatch.setenv("SLURM_JOB_ID", "4242")  # trainer=slurm reads its job id
    else:
        monkeypatch.delenv("SLURM_JOB_ID", raising=False)
    if argv[:2] != ["python", "train.py"] or "-m" in argv or "--help" in argv or expects_error(command):
        return None
    if "tracking_uri=http" in command.text:  # needs a server: test_mlflow_logger.py starts one and runs it
        return None
    arguments = [a for a in argv[2:] if a not in ("--cfg", "job")]
    try:
        check_printed_config([*prepare_arguments(arguments), "--cfg", "job"], REPO / "conf")
    except Exception as err:  # UserError, and Hydra's own composition errors
        return f"{command.where}: {command.text}\n    {type(err).__name__}: {err}"
    return None


def test_a_typo_in_a_table_of_commands_fails_the_docs_test(tmp_path, monkeypatch):
    page = tmp_path / "page.md"
    page.write_text("| step | command |\n|---|---|\n| 1 | `python train.py experimnt=note_quickstart` |\n")
    [command] = inline_commands_in(page)
    world = World(tmp_path, run="r", stopped="s", sweep="w")
    failure = single_run_failure(world, command, monkeypatch)
    assert failure and "experimnt" in failure and "page.md:3" in failure


def test_inline_templates_are_checked_once_per_option():
    fashion = [c.text for c in COMMANDS if c.inline and c.where.startswith("docs/results.md:42")]
    assert sorted(fashion) == [
        f"python train.py model={m} data=fashion_mnist" for m in ("cnn", "gru", "lstm", "mlp", "rnn")
    ]
    readme_table = [c for c in COMMANDS if c.inline and c.where.startswith("README.md:") and "experiment=" in c.text]
    assert len(readme_table) == 6


@pytest.fixture(scope="session")
def planned_sweeps(world, tmp_path_factory) -> dict[str, str]:
    """Every documented sweep, previewed with dry_run=true in a folder of its own (the world's fused sweep
    has other fixed overrides): {command: the sweep folder it plans}."""
    sweeps = [c for c in COMMANDS if c.argv[:2] == ["python", "train.py"] and "-m" in c.argv and not expects_error(c)]
    cwd = tmp_path_factory.mktemp("previews")

    def preview(command):
        done = train_py(cwd, [*world_argv(world, command)[2:], "dry_run=true"], timeout=120)
        found = re.search(r"^dry run of sweep \S+: \d+ \S* ?trials in (\S+) with", done.stdout, re.M)
        return command, done, found

    with ThreadPoolExecutor(2) as pool:  # no torch is imported: two at a time do not slow each other
        previews = list(pool.map(preview, sweeps))
    failures = [f"{c.where}: {c.text}\n    {d.stderr.strip()[-500:]}" for c, d, found in previews if not found]
    assert not failures, "\n".join(failures)
    return {command.text: found.group(1) for command, _, found in previews}


def expects_error(command) -> bool:
    """An error transcript: the docs show the command failing (test_every_error_transcript...)."""
    return any(line.startswith("error: ") for line in command.output)


def world_argv(world: World, command) -> list[str]:
    """The command's arguments in the world; `sbatch SCRIPT ARGS` is the script's srun line with ARGS as its
    "$@", so the overrides a user passes to the script are composed as well."""
    argv = shlex.split(world.concrete(command.text))
    if argv[0] == "sbatch":
        [line] = [line for line in (REPO / argv[1]).read_text().splitlines() if line.startswith("srun ")]
        script = shlex.split(line)
        at = script.index("$@")
        return [*script[:at], *argv[2:], *script[at + 1 :]]
    return [argument for argument in argv if argument != "$@"]


@pytest.mark.slow
def test_every_sweep_command_composes_and_checks_all_its_trials(planned_sweeps):
    assert planned_sweeps["python train.py -m sweep=lr_wd"] == "outputs/sweeps/lr_wd"
    assert len(planned_sweeps) >= 15


def load_script(name: str):
    """bench/NAME.py as a module, for its parser."""
    sys.path.insert(0, str(REPO / "bench"))
    spec = importlib.util.spec_from_file_location(f"bench_{name}", REPO / "bench" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_every_other_command_parses_with_its_own_parser(world, monkeypatch):
    from experiments import kernels, predict
    from experiments.scratch import __main__ as scratch
    from experiments.scratch.command_line import compose_data_config

    monkeypatch.chdir(world.cwd)
    tomllib = pytest.importorskip("tomllib", reason="reading pyproject.toml needs Python 3.11's tomllib")
    extras = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    for command in COMMANDS:
        argv = world_argv(world, command)
        if argv[:2] == ["python", "-m"] and argv[2] in ("experiments.scratch", "experiments.kernels"):
            args = (scratch if argv[2] == "experiments.scratch" else kernels).parse_args(argv[3:])
            compose_data_config(args.overrides)
        elif argv[:3] == ["python", "-m", "experiments.predict"] or argv[0] == "experiments-predict":
            predict.parse_args(argv[3:] if argv[0] == "python" else argv[1:])
        elif argv[0] == "python" and argv[1].startswith("bench/"):
            load_script(Path(argv[1]).stem).build_parser().parse_args(argv[2:])
        elif argv[:2] == ["pip", "install"]:
            for extra in re.findall(r"\[(\w+)\]", command.text):
                assert extra in extras, f"{command.where}: pip install names the extra {extra}, which does not exist"
        elif argv[:3] == ["python", "-m", "experiments.data.synthetic_files"]:
            assert importlib.util.find_spec("experiments.data.synthetic_files")


@pytest.mark.slow
def test_every_path_a_command_names_is_one_the_code_writes(world, planned_sweeps):
    planned = set(planned_sweeps.values())
    failures = []
    for command in COMMANDS:
        if command.argv[0] in TRACKERS:  # run against a run that logs to them: test_loggers, test_mlflow_logger
            continue
        for path in output_paths(world_argv(world, command)):
            parts = Path(path).parts
            if parts[:2] == ("outputs", "sweeps") and len(parts) > 2:
                sweep = "/".join(parts[:3])
                if sweep not in planned:
                    failures.append(f"{command.where}: {sweep} is not the folder of any documented sweep")
                elif len(parts) > 3 and not (world.cwd / path).exists():
                    failures.append(f"{command.where}: {path} is not written by the sweep {sweep}")
            elif not (world.cwd / path).exists():
                failures.append(f"{command.where}: {path} is not written by python train.py")
    assert not failures, "\n".join(failures)


def matches(documented: str, printed: str) -> bool:
    """A documented line against a printed one; `...` in the docs stands for the rest of the line."""
    if documented.endswith("..."):
        return printed.startswith(documented.removesuffix("...").rstrip())
    return printed == documented


@pytest.mark.slow
def test_every_error_transcript_prints_the_line_the_docs_show(world):
    import torch

    transcripts = [c for c in COMMANDS if expects_error(c) and not (torch.cuda.is_available() and not c.runs_here)]

    def run(command):
        argv = world_argv(world, command)
        program = [sys.executable, str(REPO / argv[1])] if argv[1].endswith(".py") else [sys.executable]
        arguments = argv[2:] if argv[1].endswith(".py") else argv[1:]
        done = subprocess.run([*program, *arguments], cwd=world.cwd, capture_output=True, text=True, timeout=120)
        return command, done

    with ThreadPoolExecutor(2) as pool:  # mostly imports before a one-line refusal: two at a time
        finished = list(pool.map(run, transcripts))
    for command, done in finished:
        errors = [line for line in command.output if line.startswith("error: ")]
        printed = [line.replace(str(world.cwd), HOME) for line in done.stderr.splitlines() if line.startswith("error:")]
        assert done.returncode == 2, f"{command.where}: {command.text} exited {done.returncode}"
        assert printed and matches(errors[0], printed[-1]), f"{command.where}: printed {printed}, the docs {errors[0]}"
        assert "Traceback" not in done.stderr
    assert len(finished) >= 10


# The commands run end to end here, one per entry point and mode, with the overrides that make them small.
# The other modes run as documented in their own tests, which take their command from the docs
# (documented()): the fused sweep in `world`; optuna, joblib and the submitit launchers in test_sweeps.py
# and test_scale_out.py; tune=lr_find in test_lr_find.py; scratch and kernels in test_scratch.py and
# test_kernels.py; check=procedure with a broken net in test_procedure.py.
END_TO_END = {
    "python train.py train=false ckpt_path=outputs/runs/RUN/checkpoints/last.ckpt": TINY,
    "python train.py ckpt_path=outputs/runs/RUN/checkpoints/last.ckpt trainer.max_epochs=20": [
        *TINY,
        "trainer.max_epochs=2",
    ],
    "python -m experiments.predict outputs/runs/RUN/checkpoints/last.ckpt my_digits/ --top-k 3": [],
    "experiments-predict outputs/runs/RUN/checkpoints/last.ckpt scans/ --invert --resize": [],
    "python train.py -m 'optimizer.lr=logspace(1e-4,1e-1)' model=cnn sweep_name=cnn_lr": [
        *TINY,
        "optimizer.lr=1e-4,1e-3",
    ],
    "python train.py trainer=ddp trainer.devices=2 trainer.accelerator=cpu": TINY,
    "python train.py check=procedure": [],
    # last: they finish the run stopped by Ctrl-C and train the finished one on, in place, which the tests
    # above read as they were
    "python train.py resume=outputs/runs/RUN": [],
    "python train.py resume=outputs/runs/RUN trainer.max_epochs=20": ["trainer.max_epochs=2"],
}


@pytest.mark.slow
@pytest.mark.parametrize("command", list(END_TO_END), ids=lambda c: re.sub(r"\W+", "_", c)[:60])
def test_documented_command_runs_end_to_end(world, command):
    argv = world_argv(world, next(c for c in COMMANDS if c.text == command)) + END_TO_END[command]
    before = set((world.cwd / "outputs").rglob("metrics.json"))  # what this command adds is its own
    if argv[0] == "experiments-predict":
        program = [shutil.which("experiments-predict")]
    elif argv[1].endswith(".py"):
        program = [sys.executable, str(REPO / argv[1])]
    else:
        program = [sys.executable, "-m", argv[2]]
    arguments = argv[1:] if argv[0] == "experiments-predict" else argv[2:] if argv[1].endswith(".py") else argv[3:]
    done = subprocess.run([*program, *arguments], cwd=world.cwd, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, f"{command}\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}"
    assert "Traceback" not in done.stderr
    written = set((world.cwd / "outputs").rglob("metrics.json")) - before
    if "predict" in command:
        assert "#1 class" in done.stdout and "looks inverted" not in done.stderr
    elif "check=procedure" in command:
        assert "PASS" in done.stdout
    elif "resume=" in command:  # in place, in the run's own folder: every epoch counted, the split one too
        run = world.run if "max_epochs" in command else world.stopped
        resumed = json.loads((world.cwd / "outputs" / "runs" / run / "metrics.json").read_text())
        epochs = 2 if "max_epochs" in command else 20
        assert resumed["status"] == "completed" and resumed["epochs"] == epochs == len(resumed["epoch_seconds"])
    elif "train=false" in command:  # an evaluation: its own folder, named for what it does, and the same figure
        [evaluated] = [json.loads(path.read_text()) for path in written]
        assert "evaluation of" in done.stdout and "eval_mnist_sample_20" in Path(evaluated["run_dir"]).name
        trained = json.loads((world.cwd / "outputs" / "runs" / world.run / "metrics.json").read_text())
        assert evaluated["test_acc"] == trained["test_acc"]  # one epoch: last.ckpt is the best one
    else:
        assert written, "the command wrote no metrics.json"
        statuses = {json.loads(path.read_text()).get("status") for path in written}
        assert statuses <= {"completed", "diverged", None}, statuses
    if "trainer=ddp" in command:  # one run folder for both ranks, with the test pictures of the default run
        [run_dir] = {path.parent for path in written}
        assert {"test_confusion_matrix.png", "test_confident_mistakes.png"} <= {
            p.name for p in (run_dir / "figures").iterdir()
        }

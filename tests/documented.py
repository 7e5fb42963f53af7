"""The commands the docs show: every command line in the fenced blocks of README.md, docs/*.md and
bench/README.md, with where it is written, its comment, and (in a `$ command` transcript) what it printed;
and every command in their inline code (`python train.py ...` in a sentence or a table).

Placeholders are capital words: RUN, NAME, CKPT and IMAGES... name what the test's folder holds
(docs_world.World.concrete), and `GROUP=X` in inline code stands for every option of that config group,
so `python train.py model=X data=fashion_mnist` is checked once per model."""

import re
import shlex
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md")), REPO / "bench" / "README.md"]
STARTS = (
    "python train.py", "srun python train.py", "python -m ", "python bench/", "tensorboard ",
    "experiments-predict", "experiments-sweep-summary", "pip install", "mlflow ", "wandb ", "optuna-dashboard ",
    "sbatch ",
)  # fmt: skip
# Commands the docs mark as needing what a test machine lacks: they are composed, never run.
NOT_HERE = ("needs a GPU", "needs GPUs", "on a SLURM cluster", "on a machine without a GPU")


@dataclass(frozen=True)
class Documented:
    where: str  # file:line
    text: str  # the command, continuation lines joined, without its comment
    comment: str
    output: tuple[str, ...] = ()  # what a `$ command` transcript shows it printed
    context: str = ""  # the sentence before the block, for "On a SLURM cluster:"; inline: its own line
    inline: bool = False  # written in a sentence or a table, not in a fenced block

    @property
    def argv(self) -> list[str]:
        return shlex.split(self.text)

    @property
    def runs_here(self) -> bool:
        marked = any(mark in f"{self.comment} {self.context}" for mark in NOT_HERE)
        return not marked and not self.text.startswith("srun ")


def split_comment(line: str) -> tuple[str, str]:
    """`command  # comment` -> (command, comment); a # inside quotes is part of the command."""
    quote = None
    for index, char in enumerate(line):
        if char in "'\"" and quote in (None, char):
            quote = None if quote == char else char
        elif char == "#" and quote is None and (index == 0 or line[index - 1] == " "):
            return line[:index].rstrip(), line[index + 1 :].strip()
    return line.rstrip(), ""


def blocks(path: Path):
    """(first line number, lines, the paragraph before) of every fenced block."""
    lines = path.read_text().splitlines()
    inside, start, body, before = False, 0, [], ""
    for number, line in enumerate(lines, 1):
        if line.startswith("```"):
            if inside:
                yield start, body, before
            inside, start, body = not inside, number + 1, []
            if inside:
                before = next((text for text in reversed(lines[: number - 1]) if text.strip()), "")
        elif inside:
            body.append(line)


def commands_in(path: Path) -> list[Documented]:
    found = []
    for start, body, before in blocks(path):
        joined: list[tuple[int, str]] = []
        for offset, line in enumerate(body):
            if joined and joined[-1][1].endswith("\\"):
                joined[-1] = (joined[-1][0], joined[-1][1][:-1].rstrip() + " " + line.strip())
            else:
                joined.append((start + offset, line))
        for index, (number, line) in enumerate(joined):
            transcript = line.startswith("$ ")
            text, comment = split_comment(line.removeprefix("$ ").strip())
            if not text.startswith(STARTS):
                continue
            output = ()
            if transcript:
                rest = [later for _, later in joined[index + 1 :]]
                output = tuple(rest[: next((i for i, r in enumerate(rest) if r.startswith("$ ")), len(rest))])
            found.append(Documented(f"{path.relative_to(REPO)}:{number}", text, comment, output, before))
    return found


def inline_commands_in(path: Path) -> list[Documented]:
    """Every command in inline code outside the fenced blocks, its templates written out."""
    found, inside = [], False
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if line.startswith("```"):
            inside = not inside
        elif not inside:
            for code in re.findall(r"`([^`]+)`", line):
                if code.startswith(STARTS):
                    where = f"{path.relative_to(REPO) if path.is_relative_to(REPO) else path}:{number}"
                    found += [Documented(where, text, "", (), line, inline=True) for text in written_out(code)]
    return found


def written_out(template: str) -> list[str]:
    """`GROUP=X` -> one command per option of conf/GROUP; a command without it is itself."""
    match = re.search(r"(?:^| )(\w+)=X(?= |$)", template)
    if not match:
        return [template]
    group = REPO / "conf" / match.group(1)
    assert group.is_dir(), f"{template!r}: {match.group(1)}=X names no config group"
    options = sorted(path.stem for path in group.glob("*.yaml"))
    return [template.replace(f"{match.group(1)}=X", f"{match.group(1)}={option}") for option in options]


def documented_commands(inline: bool = True) -> list[Documented]:
    """The fenced blocks' commands, then (unless inline=False) the inline ones."""
    fenced = [command for path in DOCS for command in commands_in(path)]
    return fenced + [command for path in DOCS for command in inline_commands_in(path)] if inline else fenced


def output_paths(argv: list[str]) -> list[str]:
    """Every path under outputs/ a command names, as a value (`key=PATH`, quoted or not) or an argument."""
    paths = []
    for argument in argv:
        value = argument.split("=", 1)[1] if re.match(r"^[\w.+~]+=", argument) else argument
        value = value.strip("'\"")
        if value == "outputs" or value.startswith("outputs/"):
            paths.append(value)
    return paths


def documented(command: str) -> list[str]:
    """The arguments of a command the docs show, for a test that runs it as written (plus its own small
    settings): the test fails when the docs and the test drift apart."""
    assert command in {c.text for c in documented_commands()}, f"{command!r} is not in the docs"
    argv = shlex.split(command)
    return argv[3:] if argv[:2] == ["python", "-m"] else argv[2:]

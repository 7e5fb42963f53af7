"""How bench/report.py and its renderers write a table and the line saying where its figures come from."""


def origin(record: dict) -> str:
    where = record["provenance"]
    return (
        f"_Measured on {where['date']} at commit {where['commit']}, on {where['machine']}, by `{where['command']}`._\n"
    )


def origins(record: dict, runs: list[dict]) -> str:
    """One origin line per distinct provenance of `runs` (a run re-measured by `--update` carries its own)."""
    seen = []
    for run in runs:
        where = run.get("provenance", record["provenance"])
        if where not in seen:
            seen.append(where)
    return "\n".join(origin({"provenance": where}) for where in seen or [record["provenance"]])


def not_measured(command: str) -> str:
    return f"_Not measured yet: `{command}` writes these figures._\n"


def table(header: list[str], rows: list[list[str]]) -> str:
    lines = [header, ["---"] * len(header), *rows]
    return "\n".join("| " + " | ".join(cells) + " |" for cells in lines) + "\n"


def percent(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"

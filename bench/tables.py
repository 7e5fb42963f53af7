"""How bench/report.py and its renderers write a table and the line saying where its figures come from."""


def origin(record: dict) -> str:
    where = record["provenance"]
    return (
        f"_Measured on {where['date']} at commit {where['commit']}, on {where['machine']}, by `{where['command']}`._\n"
    )


def not_measured(command: str) -> str:
    return f"_Not measured yet: `{command}` writes these figures._\n"


def table(header: list[str], rows: list[list[str]]) -> str:
    lines = [header, ["---"] * len(header), *rows]
    return "\n".join("| " + " | ".join(cells) + " |" for cells in lines) + "\n"


def percent(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"

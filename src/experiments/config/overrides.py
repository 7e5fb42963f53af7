"""The command line's grammar as this project reads it: an override's key, and a value Hydra takes verbatim."""


def override_key(override: str) -> str:
    """`+trainer.max_epochs=5` -> `trainer.max_epochs`."""
    return override.lstrip("+~").split("=", 1)[0]


def quoted(value) -> str:
    """A value as a Hydra override takes it verbatim: `=` and `,` in a path or trial name would be syntax."""
    text = str(value).replace("\\", "\\\\").replace("'", "\\'")
    return f"'{text}'"

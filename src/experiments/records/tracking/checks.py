"""The `logger` choices, checked before anything runs: each chosen logger's package is installed, its keys hold
allowed values, and a tracking server answers. Torch-free, so a bad choice is one line within a second."""

import importlib.util
import netrc
import os
import urllib.error
import urllib.request
from functools import lru_cache

from omegaconf import DictConfig

from experiments.config.errors import UserError

LOGGERS = ("tensorboard", "csv", "mlflow", "wandb")
PACKAGES = {"mlflow": "mlflow", "wandb": "wandb"}  # logger -> the module it needs, and the extra that brings it
DATABASES = ("sqlite", "postgresql", "mysql", "mssql")  # SQLAlchemy stores MLflow accepts
SERVERS = ("http", "https")
WANDB_MODES = ("offline", "online", "disabled")


def chosen_loggers(cfg: DictConfig) -> list[str]:
    return list(cfg.get("logger") or {})


def unchosen_logger(key: str, chosen: list[str]) -> str | None:
    """The line for a key of a logger that is not chosen (logger.mlflow.X without logger=[...,mlflow])."""
    section, _, rest = key.partition(".")
    name = rest.split(".")[0]
    if section != "logger" or name not in LOGGERS or name in chosen:
        return None
    example = ",".join([*chosen, name])
    return f"{key}: logger={name} is not chosen; add it to the list, e.g. logger=[{example}]"


def check_loggers(cfg: DictConfig) -> None:
    for name in chosen_loggers(cfg):
        if name not in LOGGERS:
            raise UserError(f"logger.{name} is not a logger: choose from {', '.join(LOGGERS)} (logger=[a,b])")
        module = PACKAGES.get(name)
        if module is not None and importlib.util.find_spec(module) is None:
            raise UserError(f'logger={name} needs the {module} package: pip install -e ".[{name}]"')
    if "mlflow" in chosen_loggers(cfg):
        check_tracking_uri(str(cfg.logger.mlflow.tracking_uri))
    if "wandb" in chosen_loggers(cfg):
        check_wandb(cfg.logger.wandb)


def check_tracking_uri(uri: str) -> None:
    scheme = uri.partition(":")[0].split("+")[0].lower() if ":" in uri else ""
    if scheme not in DATABASES + SERVERS:
        raise UserError(
            f"logger.mlflow.tracking_uri={uri} is not allowed: expected sqlite:///FILE.db, another SQLAlchemy "
            "database URL or http(s)://HOST:PORT of an MLflow server (MLflow refuses its plain file store)"
        )
    if scheme in SERVERS:
        reason = unanswered(uri.rstrip("/") + "/health")
        if reason is not None:
            raise UserError(
                f"logger.mlflow.tracking_uri={uri}: no MLflow server answers there ({reason}); start one "
                "(mlflow server --backend-store-uri sqlite:///outputs/mlflow.db --host 127.0.0.1) or leave the key "
                "at its default, a SQLite file"
            )


@lru_cache
def unanswered(url: str) -> str | None:
    """Why `url` gives no answer, or None when it answers (a sweep checks every trial: one probe each URL)."""
    try:
        with urllib.request.urlopen(url, timeout=5):
            return None
    except urllib.error.HTTPError as err:
        return f"HTTP {err.code}"
    except (urllib.error.URLError, OSError, ValueError) as err:
        return str(getattr(err, "reason", err))


def check_wandb(settings: DictConfig) -> None:
    mode = settings.get("mode")
    if mode not in WANDB_MODES:
        raise UserError(f"logger.wandb.mode={mode} is not allowed: expected one of {', '.join(WANDB_MODES)}")
    if mode == "online" and not has_wandb_login():
        raise UserError(
            "logger.wandb.mode=online needs a W&B login (run `wandb login`, or set WANDB_API_KEY); "
            "offline runs upload later with `wandb sync`"
        )


def has_wandb_login() -> bool:
    if os.environ.get("WANDB_API_KEY"):
        return True
    try:
        return netrc.netrc().authenticators("api.wandb.ai") is not None
    except (OSError, netrc.NetrcParseError):
        return False

"""`python train.py [key=value ...]`: train, validate and test one configuration (see README)."""

from pathlib import Path

import hydra
from omegaconf import DictConfig

from experiments.job import register_resolvers, run_hydra, run_job

register_resolvers()


@hydra.main(version_base="1.3", config_path="conf", config_name="config")
def main(cfg: DictConfig) -> float | None:
    return run_job(cfg)


if __name__ == "__main__":
    run_hydra(main, conf_dir=Path(__file__).parent / "conf")

"""The experiment config: pydantic models of one YAML file. The only package that knows YAML."""

from harness.config.base import ConfigError
from harness.config.experiment import (
    DUMMY_PREFIX,
    ExperimentConfig,
    _first_error,
    load_config,
    looks_like_path,
)

__all__ = ["DUMMY_PREFIX", "ConfigError", "ExperimentConfig", "_first_error", "load_config",
           "looks_like_path"]

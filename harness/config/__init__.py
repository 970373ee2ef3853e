"""The experiment config: pydantic models of one YAML file. The only package that knows YAML."""

from harness.config.base import ConfigError, first_error, read_yaml_mapping
from harness.config.experiment import DUMMY_PREFIX, ExperimentConfig, load_config, looks_like_path

__all__ = ["DUMMY_PREFIX", "ConfigError", "ExperimentConfig", "first_error", "load_config",
           "looks_like_path", "read_yaml_mapping"]

"""Configuration: YAML in, validated :class:`Config` out, errors located by file and line."""

from modelyard.config.loader import load_config, parse_config
from modelyard.config.schema import AgentConfig, Config, ModelConfig, Timeouts

__all__ = ["AgentConfig", "Config", "ModelConfig", "Timeouts", "load_config", "parse_config"]

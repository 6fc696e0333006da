from ttsframe.config.loading import GROUPS, load_group, load_run_config, parse_overrides

__all__ = ["GROUPS", "load_group", "load_run_config", "parse_overrides"]

"""Recipes (classify, translate, language), their configs (the one list of train options), opening a run,
checkpoints and tracking."""
from .checkpoint import load_checkpoint, save_checkpoint
from .classify import ClassifyConfig, build_config, train
from .config import RunConfig, check_option_names, options_help, options_markdown
from .language import LanguageConfig
from .runs import CONFIGS, RECIPES, open_run, result_line
from .tracking import Tracker
from .translate import TranslateConfig

__all__ = ["CONFIGS", "ClassifyConfig", "LanguageConfig", "RECIPES", "RunConfig", "Tracker", "TranslateConfig",
           "build_config", "check_option_names", "load_checkpoint", "open_run", "options_help", "options_markdown",
           "result_line", "save_checkpoint", "train"]

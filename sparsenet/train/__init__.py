"""Recipes (classify), checkpoints and run tracking."""
from .checkpoint import load_checkpoint, save_checkpoint
from .classify import ClassifyConfig, build_config, train
from .tracking import Tracker

__all__ = ["ClassifyConfig", "Tracker", "build_config", "load_checkpoint", "save_checkpoint", "train"]

"""Data sets: vision (MNIST family, digits) and, later, translation."""
from .files import DataError, data_root
from .idx import read_idx
from .vision import DATASETS, SUBSTITUTE, VisionData, load_vision, split_validation

__all__ = ["DATASETS", "DataError", "SUBSTITUTE", "VisionData", "data_root", "load_vision", "read_idx", "split_validation"]

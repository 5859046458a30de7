"""Data sets: vision (MNIST family, digits) and translation (Multi30k, IWSLT14, WMT17), each through one
loader returning one object (``load_vision`` -> ``VisionData``, ``load_translation`` -> ``TranslationData``)."""
from .files import DataError, data_root
from .idx import read_idx
from .translation import TranslationData, load_translation
from .vision import DATASETS, SUBSTITUTE, VisionData, load_vision, split_validation

__all__ = ["DATASETS", "DataError", "SUBSTITUTE", "TranslationData", "VisionData", "data_root", "load_translation",
           "load_vision", "read_idx", "split_validation"]

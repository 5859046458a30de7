"""Data sets: vision (MNIST family, digits), translation (Multi30k, IWSLT14, WMT17) and text for language
models, each through one loader returning one object (``load_vision`` -> ``VisionData``,
``load_translation`` -> ``TranslationData``, ``load_text`` -> ``TextData``), and the resumable batch streams a
run draws from (``EpochBatches``, ``RandomWindows``)."""
from .batches import EpochBatches, RandomWindows
from .files import DataError, data_root
from .idx import read_idx
from .text import TextData, load_text
from .translation import TranslationData, load_translation
from .vision import DATASETS, SUBSTITUTE, VisionData, load_vision, split_validation

__all__ = ["DATASETS", "DataError", "EpochBatches", "RandomWindows", "SUBSTITUTE", "TextData", "TranslationData",
           "VisionData", "data_root", "load_text", "load_translation", "load_vision", "read_idx", "split_validation"]

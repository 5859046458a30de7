"""The translation corpora sparsenet knows: where each one's files lie under the data root, its languages and
its default BPE vocabulary; and which of them ``--download`` can fetch and prepare."""
from dataclasses import dataclass

PREPARABLE = ("iwslt14", "wmt17")  # corpora that ``--download`` fetches (``prepare_translation``)


@dataclass(frozen=True)
class Corpus:
    """``files[split] = (source pattern, target pattern)`` with ``{lang}`` for the language code."""
    folder: str
    files: dict
    languages: tuple  # (source, target) of the paper's direction
    vocab_size: int


CORPORA = {
    "multi30k": Corpus("multi30k", {"train": ("train.{lang}.gz",) * 2, "valid": ("val.{lang}.gz",) * 2,
                                    "test": ("test_2016_flickr.{lang}.gz",) * 2}, ("en", "de"), 8000),
    "iwslt14": Corpus("iwslt14-de-en", {"train": ("train.{lang}",) * 2, "valid": ("valid.{lang}",) * 2,
                                        "test": ("test.{lang}",) * 2}, ("en", "de"), 10000),
    "wmt17": Corpus("wmt17-en-de", {"train": ("train.{lang}",) * 2, "valid": ("valid.{lang}",) * 2,
                                    "test": ("test.{lang}",) * 2}, ("en", "de"), 40000),
    "wmt_sample": Corpus("wmt-ende-toy-opennmt", {"train": ("src-train.txt", "tgt-train.txt"),
                                                  "valid": ("src-val.txt", "tgt-val.txt")}, ("en", "de"), 8000),
}

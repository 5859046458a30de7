"""Translation corpora (Multi30k, IWSLT14, WMT17, the staged WMT sample), joint BPE, token-bucket batches.

A corpus is a folder under the data root holding line-aligned source/target files per split. The BPE
model (sentencepiece, joint over the training split's two languages) is trained once and cached under
``$SPARSENET_DATA`` (default ``~/.cache/sparsenet``) in ``bpe/<corpus>/``, keyed by the training file, so a
read-only or shared data folder is never written to (``bpe.cached_bpe``). Token ids: 0 pad, 1 bos, 2 eos, 3 unk.
"""
import gzip
import hashlib
from dataclasses import dataclass
from pathlib import Path

import torch

from .bpe import BOS, EOS, cached_bpe
from .corpora import CORPORA, PREPARABLE
from .files import DataError, data_root
from .prepare_translation import prepare

def read_lines(path: Path) -> list[str]:
    """Lines of a text file (``.gz`` or plain, UTF-8), without trailing newlines; ``DataError`` naming the
    file if it is truncated, not gzip, or not UTF-8."""
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rt", encoding="utf-8") as f:
            return [line.rstrip("\n") for line in f]
    except (OSError, EOFError, UnicodeDecodeError) as error:
        raise DataError(f"{path}: cannot read ({error}); replace the file, or fetch it again with --download "
                        f"where the data set offers it") from error


def split_paths(name: str, split: str, data_dir=None, languages: tuple | None = None) -> tuple[Path, Path]:
    """Source and target files of a split; ``DataError`` naming the folder, the files and --download if absent."""
    if name not in CORPORA:
        raise DataError(f"unknown dataset {name!r}; choose from {list(CORPORA)}")
    corpus = CORPORA[name]
    if split not in corpus.files:
        raise DataError(f"{name} has no {split} split; it has {list(corpus.files)}")
    src_lang, tgt_lang = languages or corpus.languages
    folder = data_root(data_dir) / corpus.folder
    src_pattern, tgt_pattern = corpus.files[split]
    paths = (folder / src_pattern.format(lang=src_lang), folder / tgt_pattern.format(lang=tgt_lang))
    missing = [p.name for p in paths if not p.exists()]
    if missing:
        how = "pass --download to fetch and prepare it there, " if name in PREPARABLE else ""
        raise DataError(f"{name}: {split} split missing in {folder} (expected {', '.join(missing)}); {how}prepare "
                        f"it there (fairseq's prepare-iwslt14.sh / prepare-wmt14en2de.sh layout) or point --data_dir "
                        f"to a folder that has it")
    return paths


def read_pairs(name: str, split: str, data_dir=None, languages: tuple | None = None) -> tuple[list[str], list[str]]:
    """Aligned (sources, targets) of a split; a line-count mismatch is a ``DataError``."""
    src_path, tgt_path = split_paths(name, split, data_dir, languages)
    sources, targets = read_lines(src_path), read_lines(tgt_path)
    if len(sources) != len(targets):
        raise DataError(f"{name} {split}: {src_path.name} has {len(sources)} lines, {tgt_path.name} {len(targets)}")
    return sources, targets


def bpe_model(name: str, data_dir=None, vocab_size: int | None = None, languages: tuple | None = None):
    """The joint sentencepiece BPE model of a corpus, trained on its training split once and cached."""
    corpus = CORPORA[name]
    vocab_size = vocab_size or corpus.vocab_size
    sources, targets = read_pairs(name, "train", data_dir, languages)
    train_file = split_paths(name, "train", data_dir, languages)[0].resolve()
    key = hashlib.sha1(f"{train_file}:{train_file.stat().st_size}".encode()).hexdigest()[:12]
    stem = f"bpe{vocab_size}-{'-'.join(languages or corpus.languages)}-{key}"
    return cached_bpe(sources + targets, data_root(None) / "bpe" / corpus.folder, stem, vocab_size, name)


@dataclass
class TranslationData:
    """A corpus ready to train on. ``processor``: its joint sentencepiece BPE; ``train``, ``valid``:
    ``(sources, targets)``, each a list of subword-id lists cut to ``max_length`` - 1 tokens (EOS fits);
    ``test_sources`` (ids, cut alike) and ``test_references`` (raw target lines): empty without a test split."""
    processor: object
    train: tuple[list[list[int]], list[list[int]]]
    valid: tuple[list[list[int]], list[list[int]]]
    test_sources: list[list[int]]
    test_references: list[str]


def load_translation(name: str, data_dir=None, download: bool = False, vocab_size: int | None = None,
                     languages: tuple | None = None, max_length: int = 256) -> TranslationData:
    """Corpus ``name`` (``--download`` prepares iwslt14 / wmt17 first), its BPE (trained once, cached) and
    every split encoded; ``DataError`` naming the file or folder for anything missing or unreadable."""
    if download:
        prepare(name, data_dir)
    processor = bpe_model(name, data_dir, vocab_size, languages)
    encoded = {}
    for split in ("train", "valid"):
        sources, targets = read_pairs(name, split, data_dir, languages)
        encoded[split] = (encode(processor, sources, max_length), encode(processor, targets, max_length))
    test_sources, references = (read_pairs(name, "test", data_dir, languages) if "test" in CORPORA[name].files
                                else ([], []))
    return TranslationData(processor, encoded["train"], encoded["valid"], encode(processor, test_sources, max_length),
                           references)


def encode(processor, lines: list[str], max_length: int = 256) -> list[list[int]]:
    """BPE ids of each line, cut to ``max_length`` - 1 so EOS fits."""
    return [ids[:max_length - 1] for ids in processor.encode(lines)]


def token_batches(sources: list[list[int]], targets: list[list[int]], batch_tokens: int,
                  generator: torch.Generator | None = None, shuffle: bool = True) -> list[tuple[torch.Tensor, ...]]:
    """Batches of similar length holding at most ``batch_tokens`` target+source tokens (padding included).

    Returns ``(src (B, S), tgt_in (B, T), tgt_out (B, T))`` with BOS/EOS added and 0 padding.
    """
    order = sorted(range(len(sources)), key=lambda i: (len(targets[i]), len(sources[i])))
    batches, current, longest = [], [], 0
    for i in order:
        length = max(len(sources[i]), len(targets[i])) + 1
        if current and (len(current) + 1) * max(longest, length) * 2 > batch_tokens:
            batches.append(current)
            current, longest = [], 0
        current.append(i)
        longest = max(longest, length)
    if current:
        batches.append(current)
    if shuffle:
        batches = [batches[i] for i in torch.randperm(len(batches), generator=generator).tolist()]
    return [_pad(sources, targets, batch) for batch in batches]


def _pad(sources, targets, batch):
    src = torch.zeros(len(batch), max(len(sources[i]) for i in batch) + 1, dtype=torch.long)
    tgt = torch.zeros(len(batch), max(len(targets[i]) for i in batch) + 2, dtype=torch.long)
    for row, i in enumerate(batch):
        src[row, :len(sources[i]) + 1] = torch.tensor(sources[i] + [EOS])
        tgt[row, :len(targets[i]) + 2] = torch.tensor([BOS] + targets[i] + [EOS])
    return src, tgt[:, :-1], tgt[:, 1:]

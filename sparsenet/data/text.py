"""Text corpora for language modelling: a sentencepiece BPE and one token stream per split.

``multi30k`` (offline): the English and German sides of Multi30k's training split, plus the staged WMT
sample's training sides when present, as one corpus; validation is Multi30k's val split (both sides).
``openwebtext`` and ``c4`` (online): ``--download`` streams documents through the ``datasets`` library into
``DATA_DIR/<name>/train.txt`` and ``valid.txt`` (every 100th document); without them it stops in one line.
``text`` with ``--text_file PATH``: any UTF-8 text file, one document per line; its last 5% of lines validate.
Each line becomes its BPE ids followed by EOS; a split is the concatenation (``(tokens,)`` int64).
"""
import hashlib
from dataclasses import dataclass
from pathlib import Path

import torch

from .bpe import EOS, cached_bpe
from .files import DataError, check_no_file_in_the_way, data_root, os_errors_as_data_errors
from .translation import read_lines, read_pairs

TEXT_DATASETS = ("multi30k", "openwebtext", "c4", "text")
ONLINE = {"openwebtext": ("Skylion007/openwebtext", None), "c4": ("allenai/c4", "en")}  # datasets.load_dataset
DOWNLOAD_DOCUMENTS = 200_000  # documents fetched by --download (about 200M characters of OpenWebText)


@dataclass
class TextData:
    """A corpus ready to train on: ``processor`` its BPE, ``train`` and ``valid`` token streams ``(n,)``."""
    processor: object
    train: torch.Tensor
    valid: torch.Tensor


def _multi30k_lines(data_dir) -> tuple[list[str], list[str]]:
    sources, targets = read_pairs("multi30k", "train", data_dir)
    train = sources + targets
    try:
        extra = read_pairs("wmt_sample", "train", data_dir)
        train += extra[0] + extra[1]
    except DataError:
        pass  # the WMT sample is optional
    valid = read_pairs("multi30k", "valid", data_dir)
    return train, valid[0] + valid[1]


def _online_lines(name: str, data_dir, download: bool) -> tuple[list[str], list[str]]:
    folder = data_root(data_dir) / name
    files = (folder / "train.txt", folder / "valid.txt")
    check_no_file_in_the_way(folder, name)
    if not all(f.exists() for f in files):
        if not download:
            raise DataError(f"{name}: not staged in {folder} (expected train.txt and valid.txt); pass --download to "
                            f"fetch {DOWNLOAD_DOCUMENTS:,} documents through the datasets library (needs the internet)")
        _download(name, folder)
    train, valid = read_lines(files[0]), read_lines(files[1])
    for path, lines in zip(files, (train, valid)):
        if not any(line.strip() for line in lines):
            raise DataError(f"{path}: holds no text; fill it, or delete it and fetch it again with --download")
    return train, valid


def _download(name: str, folder: Path) -> None:
    try:
        import datasets
    except ImportError:
        raise DataError(f"{name}: --download needs the datasets library (pip install -e \".[online]\")") from None
    folder.mkdir(parents=True, exist_ok=True)
    parts = (folder / "train.txt.part", folder / "valid.txt.part")
    try:
        stream = datasets.load_dataset(ONLINE[name][0], ONLINE[name][1], split="train", streaming=True)
        with open(parts[0], "w", encoding="utf-8") as train, open(parts[1], "w", encoding="utf-8") as valid:
            for i, document in enumerate(stream):
                if i == DOWNLOAD_DOCUMENTS:
                    break
                (valid if i % 100 == 99 else train).write(" ".join(document["text"].split()) + "\n")
    except Exception as error:  # network, hub or format errors: one line, nothing half-written kept
        for part in parts:
            part.unlink(missing_ok=True)
        raise DataError(f"{name}: download failed ({type(error).__name__}: {str(error).splitlines()[0][:200]})") \
            from None
    for part in parts:
        part.replace(part.with_suffix(""))


def _file_lines(text_file) -> tuple[list[str], list[str]]:
    if not text_file:
        raise DataError("--dataset text needs --text_file PATH (a UTF-8 text file, one document per line)")
    path = Path(text_file)
    if not path.exists():
        raise DataError(f"--text_file {path}: no such file")
    if not path.is_file():
        raise DataError(f"--text_file {path}: a folder, not a file")
    lines = [line for line in read_lines(path) if line.strip()]
    if len(lines) < 2:
        raise DataError(f"--text_file {path}: needs at least 2 non-empty lines (training and validation)")
    cut = len(lines) - max(1, len(lines) // 20)
    return lines[:cut], lines[cut:]


def _content_key(lines: list[str]) -> str:
    """What the BPE was trained on, for its cache name: a digest of the training lines themselves (a key on
    file names would reuse a stale BPE when, say, the WMT sample is staged after a first run)."""
    digest = hashlib.sha1()
    for line in lines:
        digest.update(line.encode())
        digest.update(b"\n")
    return digest.hexdigest()[:12]


def stream(processor, lines: list[str]) -> torch.Tensor:
    """The BPE ids of every line, each followed by EOS, concatenated: ``(n,)`` int64."""
    ids = [token for line in processor.encode(lines) for token in (*line, EOS)]
    return torch.tensor(ids, dtype=torch.int64)


def load_text(name: str, data_dir=None, download: bool = False, vocab_size: int = 8000,
              text_file: str | None = None) -> TextData:
    """Corpus ``name`` (``TEXT_DATASETS``; see the module docstring), its BPE (trained once, cached under
    ``$SPARSENET_DATA/bpe/lm-<name>``) and both splits encoded; ``DataError`` (one line) otherwise."""
    if name not in TEXT_DATASETS:
        raise DataError(f"unknown dataset {name!r} for language modelling; choose from {list(TEXT_DATASETS)}")
    with os_errors_as_data_errors(name):
        if name == "multi30k":
            train, valid = _multi30k_lines(data_dir)
        elif name == "text":
            train, valid = _file_lines(text_file)
        else:
            train, valid = _online_lines(name, data_dir, download)
        stem = f"bpe{vocab_size}-{_content_key(train)}"
        processor = cached_bpe(train, data_root(None) / "bpe" / f"lm-{name}", stem, vocab_size, name)
    return TextData(processor, stream(processor, train), stream(processor, valid))


def random_windows(tokens: torch.Tensor, batch: int, context: int, generator: torch.Generator
                   ) -> tuple[torch.Tensor, torch.Tensor]:
    """``batch`` windows of ``context`` + 1 tokens at random offsets: ``(inputs, targets)``, each
    ``(batch, context)``, targets shifted by one."""
    starts = torch.randint(0, tokens.numel() - context, (batch,), generator=generator)
    windows = tokens[starts[:, None] + torch.arange(context + 1)]
    return windows[:, :-1], windows[:, 1:]


def consecutive_windows(tokens: torch.Tensor, batch: int, context: int):
    """The stream cut into consecutive windows (the last partial one dropped), ``batch`` at a time:
    yields ``(inputs, targets)`` of shape ``(≤ batch, context)``."""
    count = (tokens.numel() - 1) // context
    for first in range(0, count, batch):
        starts = torch.arange(first, min(first + batch, count)) * context
        windows = tokens[starts[:, None] + torch.arange(context + 1)]
        yield windows[:, :-1], windows[:, 1:]

"""Sentencepiece BPE models trained once and cached (never inside a data folder: it may be shared or
read-only). Token ids: 0 pad, 1 bos, 2 eos, 3 unk.

A cached model ``STEM.model`` comes with ``STEM.model.sha256``, the digest of its bytes: a model that does
not match it or does not load (truncated, garbled) is trained again and replaced, with a line on stderr.
A cache that cannot be written (a file where its folder should be, no permission) is a one-line
``DataError`` naming the path."""
import contextlib
import hashlib
import os
import sys
from pathlib import Path

from .files import DataError, describe_os_error

PAD, BOS, EOS, UNK = 0, 1, 2, 3


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _load_cached(model: Path):
    """The processor of ``model``; ``None`` if it is absent, or (with a line on stderr) unusable."""
    import sentencepiece as spm
    if not model.exists():
        return None
    if not model.is_file():
        raise DataError(f"BPE cache {model} is not a file; remove it, or set $SPARSENET_DATA to another folder")
    try:
        digest_file = model.with_name(model.name + ".sha256")
        if digest_file.is_file() and digest_file.read_text().strip() != _digest(model):
            raise RuntimeError("its content does not match its .sha256")
        return spm.SentencePieceProcessor(model_file=str(model))
    except (OSError, RuntimeError) as error:
        reason = (str(error).strip().splitlines() or [type(error).__name__])[-1]
        print(f"BPE cache {model} is unusable ({reason}); training it again", file=sys.stderr)
        return None


def cached_bpe(lines: list[str], folder: Path, stem: str, vocab_size: int, what: str):
    """The ``SentencePieceProcessor`` of ``folder/stem.model``, trained on ``lines`` first if absent or
    unusable. ``what`` names the corpus in the ``DataError`` raised when sentencepiece cannot train that
    size; a cache folder that cannot be written is a ``DataError`` naming it."""
    import sentencepiece as spm
    model = folder / f"{stem}.model"
    processor = _load_cached(model)
    if processor is not None:
        return processor
    tmp = folder / f"{stem}.{os.getpid()}.part"  # runs starting together each train their own copy
    parts = [Path(f"{tmp}{suffix}") for suffix in (".vocab", ".model", ".model.sha256")]
    try:
        folder.mkdir(parents=True, exist_ok=True)
        spm.SentencePieceTrainer.train(sentence_iterator=iter(lines), model_prefix=str(tmp),
                                       vocab_size=vocab_size, model_type="bpe", character_coverage=1.0,
                                       pad_id=PAD, bos_id=BOS, eos_id=EOS, unk_id=UNK,
                                       hard_vocab_limit=False, minloglevel=2)
        parts[2].write_text(_digest(parts[1]) + "\n")
        for part in (parts[0], parts[2], parts[1]):  # the model last: its presence means the set is complete
            part.replace(folder / f"{stem}{part.name[len(tmp.name):]}")
    except OSError as error:
        raise DataError(f"{what}: cannot write the BPE cache {folder} ({describe_os_error(error)}); remove what is "
                        f"in the way, or set $SPARSENET_DATA to a writable folder") from None
    except RuntimeError as error:  # e.g. fewer pieces than the corpus has characters
        reason = (str(error).strip().splitlines() or [type(error).__name__])[-1].split("] ", 1)[-1]
        if not folder.is_dir() or not os.access(folder, os.W_OK):  # sentencepiece's own failure to write
            raise DataError(f"{what}: cannot write the BPE cache {folder} ({reason}); remove what is in the way, "
                            f"or set $SPARSENET_DATA to a writable folder") from None
        raise DataError(f"{what}: sentencepiece cannot train a BPE of {vocab_size} pieces on the training "
                        f"split: {reason}") from None
    finally:  # an error or an interruption (Ctrl-C) leaves no part behind
        for part in parts:
            with contextlib.suppress(OSError):
                part.unlink(missing_ok=True)
    return spm.SentencePieceProcessor(model_file=str(model))

"""Sentencepiece BPE models trained once and cached (never inside a data folder: it may be shared or
read-only). Token ids: 0 pad, 1 bos, 2 eos, 3 unk."""
import os
from pathlib import Path

from .files import DataError

PAD, BOS, EOS, UNK = 0, 1, 2, 3


def cached_bpe(lines: list[str], folder: Path, stem: str, vocab_size: int, what: str):
    """The ``SentencePieceProcessor`` of ``folder/stem.model``, trained on ``lines`` first if absent.
    ``what`` names the corpus in the ``DataError`` raised when sentencepiece cannot train that size."""
    import sentencepiece as spm
    model = folder / f"{stem}.model"
    if not model.exists():
        folder.mkdir(parents=True, exist_ok=True)
        tmp = folder / f"{stem}.{os.getpid()}.part"  # runs starting together each train their own copy
        parts = [Path(f"{tmp}{suffix}") for suffix in (".vocab", ".model")]
        try:
            spm.SentencePieceTrainer.train(sentence_iterator=iter(lines), model_prefix=str(tmp),
                                           vocab_size=vocab_size, model_type="bpe", character_coverage=1.0,
                                           pad_id=PAD, bos_id=BOS, eos_id=EOS, unk_id=UNK,
                                           hard_vocab_limit=False, minloglevel=2)
            for part in parts:  # the model last: its presence means the pair is complete
                part.replace(folder / f"{stem}{part.suffix}")
        except RuntimeError as error:  # e.g. fewer pieces than the corpus has characters
            reason = (str(error).strip().splitlines() or [type(error).__name__])[-1].split("] ", 1)[-1]
            raise DataError(f"{what}: sentencepiece cannot train a BPE of {vocab_size} pieces on the training "
                            f"split: {reason}") from None
        finally:  # an error or an interruption (Ctrl-C) leaves no part behind
            for part in parts:
                part.unlink(missing_ok=True)
    return spm.SentencePieceProcessor(model_file=str(model))

"""Translation corpora: readers on tiny hand-made corpora, missing-split errors, BPE cache, token batches."""
import gzip
from pathlib import Path

import pytest
import torch

from sparsenet.data import DataError, load_translation
from sparsenet.data.translation import BOS, EOS, bpe_model, encode, read_pairs, token_batches

SHARED = Path(__file__).resolve().parents[3] / "shared" / "data"
WORDS = "a man rides a red bike while two dogs run near the old house and the children play".split()


def _corpus(root: Path, lines: int = 200, mismatch: bool = False) -> Path:
    folder = root / "multi30k"
    folder.mkdir(parents=True)
    g = torch.Generator().manual_seed(0)
    for split in ("train", "val", "test_2016_flickr"):
        en = [" ".join(WORDS[i] for i in torch.randint(len(WORDS), (6,), generator=g).tolist()) for _ in range(lines)]
        de = [sentence.upper() for sentence in en][: lines - (1 if mismatch and split == "val" else 0)]
        for lang, text in (("en", en), ("de", de)):
            with gzip.open(folder / f"{split}.{lang}.gz", "wt", encoding="utf-8") as f:
                f.write("\n".join(text) + "\n")
    return root


def test_reads_aligned_pairs_and_flags_misalignment(tmp_path):
    root = _corpus(tmp_path / "ok")
    sources, targets = read_pairs("multi30k", "train", root)
    assert len(sources) == len(targets) == 200 and targets[0] == sources[0].upper()
    reverse = read_pairs("multi30k", "test", root, languages=("de", "en"))
    assert reverse[0][0] == reverse[1][0].upper()
    bad = _corpus(tmp_path / "bad", mismatch=True)
    with pytest.raises(DataError, match="multi30k valid: val.en.gz has 200 lines, val.de.gz 199"):
        read_pairs("multi30k", "valid", bad)


@pytest.mark.parametrize("damage, reason", [
    (lambda data: data[:len(data) // 2], "Compressed file ended"),
    (lambda data: b"plain text, not gzip", "Not a gzipped file"),
    (lambda data: gzip.compress(b"\xff\xfe broken utf-8\n"), "codec can't decode"),
], ids=["truncated", "not-gzip", "not-utf8"])
def test_damaged_corpus_file_is_a_data_error_naming_it(tmp_path, damage, reason):
    root = _corpus(tmp_path / "corpus")
    path = root / "multi30k" / "train.en.gz"
    path.write_bytes(damage(path.read_bytes()))
    with pytest.raises(DataError, match=f"{path}: cannot read \\(.*{reason}"):
        read_pairs("multi30k", "train", root)


@pytest.mark.skipif(not (SHARED / "iwslt14-de-en").exists(), reason="../shared/data not present")
def test_missing_training_split_names_folder_files_and_flag():
    with pytest.raises(DataError, match="iwslt14: train split missing in .*iwslt14-de-en \\(expected train.en, "
                                       "train.de\\); .*--data_dir"):
        read_pairs("iwslt14", "train", SHARED)
    sources, targets = read_pairs("iwslt14", "test", SHARED)
    assert len(sources) == len(targets) > 1000


def test_bpe_is_cached_outside_the_data_folder(tmp_path, monkeypatch):
    root = _corpus(tmp_path / "data")
    monkeypatch.setenv("SPARSENET_DATA", str(tmp_path / "cache"))
    before = sorted(p.name for p in (root / "multi30k").iterdir())
    processor = bpe_model("multi30k", root, vocab_size=60)
    assert processor.get_piece_size() == 60 and processor.pad_id() == 0 and processor.eos_id() == EOS
    assert sorted(p.name for p in (root / "multi30k").iterdir()) == before
    cached = list((tmp_path / "cache" / "bpe" / "multi30k").glob("*.model"))
    assert len(cached) == 1
    stamp = cached[0].stat().st_mtime_ns
    again = bpe_model("multi30k", root, vocab_size=60)
    assert cached[0].stat().st_mtime_ns == stamp
    assert again.decode(again.encode("a red bike")) == "a red bike"


def test_load_translation_is_every_split_encoded_with_the_corpus_bpe(tmp_path, monkeypatch):
    root = _corpus(tmp_path / "data", lines=50)
    monkeypatch.setenv("SPARSENET_DATA", str(tmp_path / "cache"))
    data = load_translation("multi30k", root, vocab_size=60, languages=("de", "en"), max_length=5)
    processor = bpe_model("multi30k", root, vocab_size=60, languages=("de", "en"))
    for split, name in (("train", "train"), ("valid", "valid")):
        sources, targets = read_pairs("multi30k", name, root, languages=("de", "en"))
        assert getattr(data, split) == (encode(processor, sources, 5), encode(processor, targets, 5))
    sources, references = read_pairs("multi30k", "test", root, languages=("de", "en"))
    assert data.test_sources == encode(processor, sources, 5) and data.test_references == references
    assert max(len(ids) for ids in data.train[0]) == 4 and sources[0].isupper()  # cut; German (upper) first
    with pytest.raises(DataError, match="sentencepiece cannot train a BPE of 5 pieces"):
        load_translation("multi30k", root, vocab_size=5)
    assert not list((tmp_path / "cache" / "bpe" / "multi30k").glob("*5-*.part*"))  # nothing half-written


def test_token_batches_cover_every_pair_within_the_budget():
    g = torch.Generator().manual_seed(0)
    sources = [list(range(4, 4 + int(n))) for n in torch.randint(1, 30, (300,), generator=g)]
    targets = [list(range(5, 5 + int(n))) for n in torch.randint(1, 30, (300,), generator=g)]
    batches = token_batches(sources, targets, batch_tokens=400, generator=g)
    seen = 0
    for src, tgt_in, tgt_out in batches:
        assert src.numel() + tgt_in.numel() <= 400 + 2 * 31 or src.shape[0] == 1
        assert bool((tgt_in[:, 0] == BOS).all()) and torch.equal(tgt_in[:, 1:], tgt_out[:, :-1])
        for row in range(src.shape[0]):
            length = int((tgt_out[row] != 0).sum())
            assert int(tgt_out[row, length - 1]) == EOS
        seen += src.shape[0]
    assert seen == 300


class _LongPieces:
    def encode(self, lines):
        return [[7] * 300 for _ in lines]


def test_encode_leaves_room_for_eos():
    assert encode(_LongPieces(), ["x"], max_length=256) == [[7] * 255]

"""The language-model corpus and its BPE cache: an unusable cached model (cut, garbled, replaced) is trained
again with one line on stderr; a cache that cannot be written and a corpus that cannot be used are one-line
DataErrors naming the path."""
import hashlib
import os
from pathlib import Path

import pytest
import torch

from sparsenet.data import DataError, load_text

WORDS = "the a cat dog sees runs to from small big red house garden tree bird sings".split()


@pytest.fixture
def cache(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("SPARSENET_DATA", str(tmp_path / "cache"))
    return tmp_path / "cache"


def _corpus(path: Path, lines: int = 200, seed: int = 0) -> Path:
    generator = torch.Generator().manual_seed(seed)
    pick = lambda: WORDS[int(torch.randint(len(WORDS), (1,), generator=generator))]  # noqa: E731
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(f"the {pick()} {pick()} sees the {pick()} ." for _ in range(lines)) + "\n")
    return path


def _load(corpus: Path):
    return load_text("text", text_file=str(corpus), vocab_size=60)


def _model(cache: Path) -> Path:
    model, = (cache / "bpe" / "lm-text").glob("*.model")
    return model


MISMATCH, UNPARSABLE = "its content does not match its .sha256", "could not parse ModelProto"


@pytest.mark.parametrize("damage,digest,reason", [
    (lambda model, other: model.write_bytes(model.read_bytes()[: model.stat().st_size // 2]), True, MISMATCH),
    (lambda model, other: model.write_bytes(model.read_bytes()[: model.stat().st_size // 2]), False, UNPARSABLE),
    (lambda model, other: model.write_bytes(b"\x0a\x05garbage" * 40), True, MISMATCH),
    (lambda model, other: model.write_bytes(b"\x0a\x05garbage" * 40), False, UNPARSABLE),
    (lambda model, other: model.write_bytes(b""), True, MISMATCH),
    (lambda model, other: model.write_bytes(other.read_bytes()), True, MISMATCH),  # parses, but is another model
])
def test_an_unusable_cached_model_is_trained_again(tmp_path, cache, capsys, damage, digest, reason):
    corpus = _corpus(tmp_path / "corpus.txt")
    first = _load(corpus)
    model = _model(cache)
    good = model.read_bytes()
    assert (model.parent / (model.name + ".sha256")).read_text().strip() == hashlib.sha256(good).hexdigest()
    other = load_text("text", text_file=str(_corpus(tmp_path / "other.txt", seed=1)), vocab_size=60)  # another model
    assert other.processor.get_piece_size() > 0
    other_model, = (m for m in model.parent.glob("*.model") if m != model)
    damage(model, other_model)
    if not digest:  # a cache written before digests existed
        (model.parent / (model.name + ".sha256")).unlink()
    capsys.readouterr()
    again = _load(corpus)
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"BPE cache {model} is unusable (")
    assert lines[0].endswith("); training it again")
    assert reason in lines[0], lines[0]
    assert torch.equal(again.train, first.train)  # rebuilt: the same tokens (the bytes may differ: threads)
    digest = (model.parent / (model.name + ".sha256")).read_text().strip()
    assert digest == hashlib.sha256(model.read_bytes()).hexdigest()
    _load(corpus)
    assert capsys.readouterr().err == ""  # and used from then on
    assert not list(model.parent.glob("*.part*"))


def test_a_cached_model_without_digest_is_used(tmp_path, cache, capsys):
    """Caches written before digests existed still load when they parse."""
    corpus = _corpus(tmp_path / "corpus.txt")
    first = _load(corpus)
    model = _model(cache)
    (model.parent / (model.name + ".sha256")).unlink()
    stamp = model.stat().st_mtime_ns
    capsys.readouterr()
    assert torch.equal(_load(corpus).train, first.train)
    assert model.stat().st_mtime_ns == stamp and capsys.readouterr().err == ""


def _file_at(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("in the way")


CANNOT_WRITE = "text: cannot write the BPE cache {cache}/bpe/lm-text \\({cache}/bpe/lm-text: "


@pytest.mark.parametrize("block,message", [
    (lambda cache: _file_at(cache), CANNOT_WRITE + "Not a directory\\); remove what is in the way, or set "
                                                   "\\$SPARSENET_DATA to a writable folder$"),
    (lambda cache: _file_at(cache / "bpe"), CANNOT_WRITE + "Not a directory\\)"),
    (lambda cache: _file_at(cache / "bpe" / "lm-text"), CANNOT_WRITE + "File exists\\)"),
])
def test_a_cache_folder_that_cannot_be_written(tmp_path, cache, block, message):
    block(cache)
    with pytest.raises(DataError, match="^" + message.format(cache=cache)):
        _load(_corpus(tmp_path / "corpus.txt"))
    assert (cache if cache.is_file() else cache / "bpe" if (cache / "bpe").is_file() else
            cache / "bpe" / "lm-text").read_text() == "in the way"  # nothing of the user's is removed


def test_a_folder_where_the_cached_model_should_be(tmp_path, cache):
    corpus = _corpus(tmp_path / "corpus.txt")
    _load(corpus)
    model = _model(cache)
    model.unlink()
    model.mkdir()
    with pytest.raises(DataError, match=f"^BPE cache {model} is not a file; remove it"):
        _load(corpus)


@pytest.mark.parametrize("make,message", [
    (lambda path: path.write_bytes("the cat sees the dog .\n".encode("utf-16")), "{path}: cannot read \\(.*codec can't "
                                                                                  "decode"),
    (lambda path: path.write_bytes(b"the cat \xff\xfe sees\nthe dog .\n"), "{path}: cannot read \\('utf-8' codec"),
    (lambda path: path.write_text(""), "--text_file {path}: needs at least 2 non-empty lines"),
    (lambda path: path.write_text("\n  \n\n"), "--text_file {path}: needs at least 2 non-empty lines"),
    (lambda path: path.mkdir(), "--text_file {path}: a folder, not a file$"),
])
def test_a_text_file_that_cannot_be_used(tmp_path, cache, make, message):
    path = tmp_path / "corpus.txt"
    make(path)
    with pytest.raises(DataError, match="^" + message.format(path=path)):
        _load(path)


@pytest.mark.parametrize("split", ["train.txt", "valid.txt"])
def test_an_empty_staged_corpus(tmp_path, cache, split):
    folder = tmp_path / "data" / "openwebtext"
    folder.mkdir(parents=True)
    for name in ("train.txt", "valid.txt"):
        (folder / name).write_text("" if name == split else "some text\nmore text\n")
    with pytest.raises(DataError, match=f"^{folder / split}: holds no text; fill it, or delete it and fetch"):
        load_text("openwebtext", tmp_path / "data")


def test_a_data_dir_that_is_a_file(tmp_path, cache):
    (tmp_path / "afile").write_text("not a folder")
    with pytest.raises(DataError, match=f"^openwebtext: {tmp_path / 'afile'} is a file, not a folder; --data_dir "
                                        f"must name the folder that holds openwebtext/$"):
        load_text("openwebtext", tmp_path / "afile")


@pytest.mark.parametrize("case", ["utf-16 text", "cache blocked"])
def test_the_cli_prints_one_error_line(tmp_path, cli, case):
    corpus = _corpus(tmp_path / "corpus.txt")
    cache = tmp_path / "cache"
    if case == "utf-16 text":
        corpus.write_bytes(corpus.read_text().encode("utf-16"))
        message = f"error: {corpus}: cannot read ('utf-8' codec can't decode byte 0xff in position 0"
    else:
        _file_at(cache)
        message = f"error: text: cannot write the BPE cache {cache}/bpe/lm-text ({cache}/bpe/lm-text: Not a directory)"
    result = cli("train", "--model", "lm", "--dataset", "text", "--text_file", corpus, "--vocab_size", 60,
                 "--wandb", "off", "--out_dir", tmp_path / "runs", cwd=tmp_path,
                 env={**os.environ, "SPARSENET_DATA": str(cache)})
    lines = result.stderr.strip().splitlines()
    assert result.returncode != 0 and len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    assert lines[0].startswith(message), lines[0]

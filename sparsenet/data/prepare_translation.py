"""Downloading and preparing IWSLT14 de-en and WMT17 en-de from their official sources (``--download``).

The steps follow fairseq's ``prepare-iwslt14.sh`` and ``prepare-wmt14en2de.sh``, the scripts the authors used
(data/iwslt14 and data/wmt17 of github.com/biomedical-cybernetics/Cannistraci-Hebb-training), up to but not
including BPE (``translation.bpe_model`` trains its own sentencepiece model).
We have no Moses/perl: sacrebleu's 13a tokenizer approximates Moses ``tokenizer.perl`` (it splits punctuation
the same way but neither splits ``'`` clitics nor escapes ``& < > | ' "``, and the ``-a`` hyphen splitting of the
WMT script is missing), and WMT's ``normalize-punctuation.perl`` / ``remove-non-printing-char.perl`` are not
applied. The result is close to, not identical with, the authors' data.

Layout written under ``<data root>/<CORPORA[name].folder>/``: ``{train,valid,test}.{en,de}``, UTF-8, one
tokenised sentence per line, the two languages line-aligned; ``SOURCE.md`` with the archives' URLs, byte sizes
and sha256 (so they can be pinned) and the steps; ``downloads/`` with the archives. An archive already in
``downloads/`` is not downloaded again (an interrupted run resumes; one can also be placed there by hand).
Outputs are written in a temp folder and moved in only when the whole corpus is done.
"""
import gzip
import http.client
import os
import re
import tarfile
import tempfile
import urllib.request
import zlib
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from itertools import chain
from pathlib import Path
from typing import Iterable, Iterator

import sacrebleu
from sacrebleu.tokenizers.tokenizer_13a import Tokenizer13a
from tqdm import tqdm

from .files import DataError, content_hash, data_root
from .translation import CORPORA, Corpus

CHUNK = 1 << 20  # bytes per read when downloading and decompressing
RATIO = 1.5  # clean-corpus-n -ratio of both fairseq scripts
MAX_TOKEN_CHARS = 1000  # clean-corpus-n's default -max-word-length
ARCHIVE_ERRORS = (OSError, EOFError, tarfile.TarError, zlib.error)  # what a broken gzip tar raises

TOKENISE = Tokenizer13a()
FAIRSEQ_METADATA = ("<url>", "<talkid>", "<keywords>")  # prepare-iwslt14.sh drops lines containing these
LEADING_TAG = re.compile(r"\s*</?([A-Za-z][\w-]*)[^>]*>")
KEPT_TAGS = {"title", "description"}  # their text is a training sentence; only the tags are removed
TITLE_DESCRIPTION_TAGS = re.compile(r"</?(?:title|description)>")
SEG_OPEN = re.compile(r'<seg id="[0-9]*">\s*')
SEG_CLOSE = re.compile(r"\s*</seg>\s*")


@dataclass(frozen=True)
class Parallel:
    """A text per language inside the gzip tar at ``url``: ``members[lang]`` is its path in the archive."""
    url: str
    members: dict[str, str]


def _parallel(url: str, member: str) -> Parallel:
    """A ``Parallel`` whose member paths are ``member`` with ``{lang}`` set to en and de."""
    return Parallel(url, {lang: member.format(lang=lang) for lang in ("en", "de")})


IWSLT14_URL = "http://dl.fbaipublicfiles.com/fairseq/data/iwslt14/de-en.tgz"
IWSLT14_TRAIN = _parallel(IWSLT14_URL, "de-en/train.tags.de-en.{lang}")
IWSLT14_TEST = tuple(_parallel(IWSLT14_URL, f"de-en/IWSLT14.{name}.de-en.{{lang}}.xml")  # concatenated in this order
                     for name in ("TED.dev2010", "TEDX.dev2012", "TED.tst2010", "TED.tst2011", "TED.tst2012"))
IWSLT14_STEPS = """\
fairseq's examples/translation/prepare-iwslt14.sh up to (not including) BPE, with Moses' tokenizer.perl
approximated by sacrebleu's 13a tokenizer:

1. train: `de-en/train.tags.de-en.{de,en}` read as aligned pairs. A pair is dropped if a side contains `<url>`,
   `<talkid>` or `<keywords>` (fairseq's rule) or starts with an XML tag other than `<title>`/`<description>`
   (`<speaker>`, `<reviewer>`, `<translator>`, ...: metadata fairseq would keep). The `<title>`, `</title>`,
   `<description>`, `</description>` tags are removed, their text kept.
2. Tokenised (13a), then cleaned like Moses clean-corpus-n.perl -ratio 1.5 ... 1 175: a pair is dropped if a
   side has 0 or more than 175 tokens, one side has more than 1.5 times the tokens of the other, or a token
   is longer than 1000 characters. Then lower-cased.
3. valid = every 23rd cleaned pair (1-based), train = the others.
4. test = the `<seg id="N">text</seg>` texts of IWSLT14.TED.dev2010, IWSLT14.TEDX.dev2012, IWSLT14.TED.tst2010,
   IWSLT14.TED.tst2011, IWSLT14.TED.tst2012 (`.de-en.{de,en}.xml`) in this order, ’ replaced by ', tokenised,
   lower-cased; not cleaned.
"""

WMT17_TRAIN = (  # concatenated in this order
    _parallel("http://statmt.org/wmt13/training-parallel-europarl-v7.tgz", "training/europarl-v7.de-en.{lang}"),
    _parallel("http://statmt.org/wmt13/training-parallel-commoncrawl.tgz", "commoncrawl.de-en.{lang}"),
    _parallel("http://data.statmt.org/wmt17/translation-task/training-parallel-nc-v12.tgz",
              "training/news-commentary-v12.de-en.{lang}"),
)
WMT17_TEST = Parallel("http://statmt.org/wmt14/test-full.tgz", {"en": "test-full/newstest2014-deen-src.en.sgm",
                                                                 "de": "test-full/newstest2014-deen-ref.de.sgm"})
WMT17_STEPS = """\
fairseq's examples/translation/prepare-wmt14en2de.sh (the authors' WMT17 variant) up to (not including) BPE,
with Moses' tokenizer.perl -a approximated by sacrebleu's 13a tokenizer; normalize-punctuation.perl and
remove-non-printing-char.perl are not applied; nothing is lower-cased:

1. train: europarl-v7, commoncrawl and news-commentary-v12 (de-en) concatenated in this order, read as aligned
   pairs and tokenised (13a).
2. valid = every 100th of these pairs (1-based, counted before cleaning as in fairseq), train = the others.
3. Both cleaned like Moses clean-corpus-n.perl -ratio 1.5 ... 1 250: a pair is dropped if a side has 0 or more
   than 250 tokens, one side has more than 1.5 times the tokens of the other, or a token is longer than 1000
   characters (fairseq cleans after BPE, so it counts subword tokens; we count words).
4. test = the `<seg id="N">text</seg>` texts of `test-full/newstest2014-deen-src.en.sgm` (en) and
   `test-full/newstest2014-deen-ref.de.sgm` (de), ’ replaced by ', tokenised; not cleaned.
"""


def prepare(name: str, data_dir=None, mirror: str | None = None) -> Path:
    """The folder of corpus ``name`` under the data root, downloaded and prepared first unless all its
    train/valid/test files exist. ``mirror`` replaces each archive URL up to its file name."""
    if name not in PREPARERS:
        raise DataError(f"cannot prepare {name!r}: --download prepares iwslt14 and wmt17; multi30k and wmt_sample "
                        f"are read from ../shared/data or --data_dir")
    corpus = CORPORA[name]
    folder = data_root(data_dir) / corpus.folder
    if not all((folder / file).exists() for file in _output_files(corpus)):
        PREPARERS[name](corpus, folder, mirror)
    return folder


def prepare_iwslt14(corpus: Corpus, folder: Path, mirror: str | None) -> None:
    """Write IWSLT14 de-en into ``folder`` (steps: ``IWSLT14_STEPS``)."""
    archives = _fetch_archives(folder, (IWSLT14_TRAIN, *IWSLT14_TEST), mirror)
    languages = corpus.languages
    raw = _progress(_read_pairs(archives, IWSLT14_TRAIN, languages), "iwslt14 train")
    unwrapped = (tuple(TITLE_DESCRIPTION_TAGS.sub("", side) for side in pair)
                 for pair in raw if not any(_is_metadata(side) for side in pair))
    cleaned = (pair for pair in _tokenised(unwrapped) if _keeps(pair, max_tokens=175))
    train_valid = _every_nth_to_valid(_lower_cased(cleaned), 23)
    test = (("test", pair) for source in IWSLT14_TEST
            for pair in _lower_cased(_tokenised(_read_test_pairs(archives, source, languages))))
    with _staged(folder) as stage:
        _write_splits(stage, corpus, chain(train_valid, test))
        _write_source(stage, "IWSLT14 de-en", archives, IWSLT14_STEPS)


def prepare_wmt17(corpus: Corpus, folder: Path, mirror: str | None) -> None:
    """Write WMT17 en-de into ``folder`` (steps: ``WMT17_STEPS``)."""
    archives = _fetch_archives(folder, (*WMT17_TRAIN, WMT17_TEST), mirror)
    languages = corpus.languages
    raw = _progress(chain.from_iterable(_read_pairs(archives, source, languages) for source in WMT17_TRAIN),
                    "wmt17 train")
    train_valid = ((split, pair) for split, pair in _every_nth_to_valid(_tokenised(raw), 100)
                   if _keeps(pair, max_tokens=250))
    test = (("test", pair) for pair in _tokenised(_read_test_pairs(archives, WMT17_TEST, languages)))
    with _staged(folder) as stage:
        _write_splits(stage, corpus, chain(train_valid, test))
        _write_source(stage, "WMT17 en-de", archives, WMT17_STEPS)


PREPARERS = {"iwslt14": prepare_iwslt14, "wmt17": prepare_wmt17}


def _output_files(corpus: Corpus) -> list[str]:
    """The file names of every split and language of ``corpus``."""
    return [pattern.format(lang=lang) for patterns in corpus.files.values()
            for pattern, lang in zip(patterns, corpus.languages)]


# --- archives ------------------------------------------------------------------------------------------------

def _fetch_archives(folder: Path, sources: Iterable[Parallel], mirror: str | None) -> dict[str, Path]:
    """``{official URL: path}`` of every archive ``sources`` need, in ``folder/downloads`` (downloaded unless
    already there), each checked to be a complete gzip tar holding the members ``sources`` read."""
    downloads = folder / "downloads"
    downloads.mkdir(parents=True, exist_ok=True)
    archives = {source.url: downloads / _file_name(source.url) for source in sources}
    for url, path in archives.items():
        if not path.exists():
            _download(_mirrored(url, mirror), path)
    for url, path in archives.items():
        _check_archive(path, [member for source in sources if source.url == url for member in source.members.values()])
    return archives


def _file_name(url: str) -> str:
    """The last path component of ``url``: the archive's name in ``downloads/``."""
    return url.rsplit("/", 1)[1]


def _mirrored(url: str, mirror: str | None) -> str:
    """``url`` with everything before the file name replaced by ``mirror``, if given."""
    return mirror.rstrip("/") + "/" + _file_name(url) if mirror else url


def _download(url: str, target: Path) -> None:
    """Stream ``url`` to a temp file next to ``target``; renamed to ``target`` only if it opens as a gzip tar."""
    handle, tmp_name = tempfile.mkstemp(prefix=target.name + ".", suffix=".part", dir=target.parent)
    tmp = Path(tmp_name)
    try:
        try:
            with os.fdopen(handle, "wb") as out, urllib.request.urlopen(url, timeout=60) as response:
                _copy_with_progress(response, out, target.name)
        except (OSError, http.client.HTTPException) as error:
            raise DataError(f"could not download {url}: {error}; you can place {target.name} in {target.parent} "
                            f"by hand and rerun") from error
        _check_gzip_tar(tmp, url)
        tmp.replace(target)
    finally:
        tmp.unlink(missing_ok=True)


def _copy_with_progress(response, out, name: str) -> None:
    """Copy an HTTP response to a file in chunks, with a byte progress bar when stderr is a terminal."""
    size = int(response.headers.get("Content-Length") or 0) or None
    with tqdm(total=size, unit="B", unit_scale=True, desc=name, disable=None) as bar:
        for chunk in iter(lambda: response.read(CHUNK), b""):
            out.write(chunk)
            bar.update(len(chunk))


def _check_gzip_tar(path: Path, url: str) -> None:
    """``DataError`` unless ``path`` starts like a gzip tar (an HTML error page does not)."""
    try:
        with gzip.open(path, "rb") as raw, tarfile.open(fileobj=raw, mode="r|"):
            pass  # opening reads and checks the first member's header
    except ARCHIVE_ERRORS as error:
        raise DataError(f"{url} did not give a gzip tar archive ({error}); nothing was kept") from error


def _check_archive(path: Path, members: list[str]) -> None:
    """``DataError`` unless ``path`` is a complete gzip tar (read to its end, so gzip checks its CRC and
    length) holding ``members``."""
    try:
        with gzip.open(path, "rb") as raw:
            with tarfile.open(fileobj=raw, mode="r|", bufsize=CHUNK) as tar:
                names = {_member_name(info) for info in tar}
            while raw.read(CHUNK):
                pass
    except ARCHIVE_ERRORS as error:
        raise DataError(f"{path} is corrupt ({error}); delete it and rerun to download it again") from error
    missing = [member for member in members if member not in names]
    if missing:
        raise DataError(f"{path} has no {', '.join(missing)}; delete it and rerun to download it again")


def _member_name(info: tarfile.TarInfo) -> str:
    """A member's path without the ``./`` some archivers prefix."""
    return info.name.removeprefix("./")


def _member_lines(path: Path, member: str) -> Iterator[str]:
    """The lines of one member of a gzip tar (UTF-8, undecodable bytes replaced, split at ``\\n`` only, without
    it), read forward in one pass: the archive is never extracted nor held in memory."""
    with gzip.open(path, "rb") as raw, tarfile.open(fileobj=raw, mode="r|", bufsize=CHUNK) as tar:
        for info in tar:
            if _member_name(info) == member:
                with tar.extractfile(info) as member_file:
                    for line in member_file:  # binary lines: split at b"\n" only
                        yield line.decode("utf-8", errors="replace").removesuffix("\n")
                return
    raise DataError(f"{path} has no {member}; delete it and rerun to download it again")


# --- text ----------------------------------------------------------------------------------------------------

def _read_pairs(archives: dict[str, Path], source: Parallel, languages: tuple) -> Iterator[tuple[str, ...]]:
    """Line-aligned ``(source line, target line)`` of ``source`` in the order of ``languages``."""
    path = archives[source.url]
    yield from _aligned([_member_lines(path, source.members[lang]) for lang in languages], path, source)


def _read_test_pairs(archives: dict[str, Path], source: Parallel, languages: tuple) -> Iterator[tuple[str, ...]]:
    """Aligned ``<seg>`` texts of an xml/sgm test set (``grep '<seg id'`` and fairseq's seds), ’ made '."""
    path = archives[source.url]
    yield from _aligned([_seg_texts(_member_lines(path, source.members[lang])) for lang in languages], path, source)


def _aligned(sides: list[Iterator[str]], path: Path, source: Parallel) -> Iterator[tuple[str, ...]]:
    """The sides zipped; ``DataError`` if one ends before the other."""
    try:
        yield from zip(*sides, strict=True)
    except ValueError as error:
        raise DataError(f"{path}: {' and '.join(source.members.values())} have different line counts") from error


def _seg_texts(lines: Iterable[str]) -> Iterator[str]:
    """The text of each line holding ``<seg id="N">text</seg>``, ’ replaced by '."""
    for line in lines:
        if "<seg id" in line:
            yield SEG_CLOSE.sub("", SEG_OPEN.sub("", line)).replace("\u2019", "'")


def _is_metadata(line: str) -> bool:
    """An IWSLT train.tags metadata line: one containing <url>, <talkid> or <keywords> (fairseq's rule), or
    starting with any XML tag other than <title>/<description>."""
    if any(tag in line for tag in FAIRSEQ_METADATA):
        return True
    tag = LEADING_TAG.match(line)
    return tag is not None and tag.group(1) not in KEPT_TAGS


def _tokenised(pairs: Iterable[tuple[str, ...]]) -> Iterator[tuple[str, ...]]:
    """Each side tokenised by 13a: tokens separated by single spaces, no leading or trailing space."""
    for pair in pairs:
        yield tuple(TOKENISE(side) for side in pair)


def _lower_cased(pairs: Iterable[tuple[str, ...]]) -> Iterator[tuple[str, ...]]:
    """Each side lower-cased (Moses ``lowercase.perl``)."""
    for pair in pairs:
        yield tuple(side.lower() for side in pair)


def _keeps(pair: tuple[str, ...], max_tokens: int) -> bool:
    """Moses ``clean-corpus-n.perl -ratio 1.5 ... 1 max_tokens`` on a tokenised pair: every side has 1 to
    ``max_tokens`` tokens, none more than ``RATIO`` times the tokens of another, no token over 1000 characters."""
    sides = [side.split() for side in pair]
    counts = [len(tokens) for tokens in sides]
    if min(counts) < 1 or max(counts) > max_tokens or max(counts) > RATIO * min(counts):
        return False
    return all(len(token) <= MAX_TOKEN_CHARS for tokens in sides for token in tokens)


def _every_nth_to_valid(pairs: Iterable[tuple[str, ...]], n: int) -> Iterator[tuple[str, tuple[str, ...]]]:
    """``("valid", pair)`` for every ``n``-th pair (1-based, awk's ``NR % n == 0``), ``("train", pair)`` otherwise."""
    for number, pair in enumerate(pairs, 1):
        yield ("valid" if number % n == 0 else "train"), pair


def _progress(pairs: Iterable, description: str) -> Iterable:
    """``pairs`` counted by a progress bar when stderr is a terminal."""
    return tqdm(pairs, desc=description, unit=" pairs", disable=None)


# --- output --------------------------------------------------------------------------------------------------

@contextmanager
def _staged(folder: Path) -> Iterator[Path]:
    """A temp folder inside ``folder``; its files are moved into ``folder`` if the block succeeds, else deleted."""
    with tempfile.TemporaryDirectory(prefix=".preparing-", dir=folder) as stage:
        yield Path(stage)
        for path in Path(stage).iterdir():
            path.replace(folder / path.name)


def _write_splits(stage: Path, corpus: Corpus, labelled_pairs: Iterable[tuple[str, tuple[str, ...]]]) -> None:
    """Each ``(split, pair)`` as one line of each of the split's files (names and language order from
    ``corpus``); every split's files are created, even if empty."""
    with ExitStack() as stack:
        files = {split: [stack.enter_context(open(stage / pattern.format(lang=lang), "w", encoding="utf-8",
                                                  newline="\n"))
                         for pattern, lang in zip(patterns, corpus.languages)]
                 for split, patterns in corpus.files.items()}
        for split, pair in labelled_pairs:
            for file, line in zip(files[split], pair):
                file.write(line + "\n")


def _write_source(stage: Path, title: str, archives: dict[str, Path], steps: str) -> None:
    """``SOURCE.md``: the archives (file, official URL, bytes, sha256) and the preparation steps."""
    rows = "".join(f"| {path.name} | {url} | {path.stat().st_size} | {content_hash(path)} |\n"
                   for url, path in archives.items())
    (stage / "SOURCE.md").write_text(
        f"# {title}\n\nPrepared by sparsenet.data.prepare_translation (sacrebleu {sacrebleu.__version__}) from these "
        f"archives (kept in downloads/):\n\n"
        f"| archive | official URL | bytes | sha256 |\n|---|---|---|---|\n{rows}\n## Steps\n\n{steps}",
        encoding="utf-8")

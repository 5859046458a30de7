"""--download of IWSLT14 / WMT17 against a local http.server serving tiny fake archives with the real layout."""
import functools
import gzip
import hashlib
import http.server
import io
import tarfile
import threading

import pytest

from sparsenet.data import DataError
from sparsenet.data.prepare_translation import prepare
from sparsenet.data.translation import read_pairs

IWSLT_TEST_SETS = ("TED.dev2010", "TEDX.dev2012", "TED.tst2010", "TED.tst2011", "TED.tst2012")
IWSLT_METADATA = {  # one line per side; every one of these pairs must be dropped
    "de": ["<url>http://www.ted.com/talks/a.html</url>", "<keywords>talks, wissen</keywords>",
           "<speaker>Jane Doe</speaker>", "<talkid>1</talkid>", '<reviewer href="http://r">Rev</reviewer>',
           '<translator href="http://t">Tr</translator>', "Siehe <url>http://x</url>"],
    "en": ["<url>http://www.ted.com/talks/a.html</url>", "<keywords>talks, science</keywords>",
           "<speaker>Jane Doe</speaker>", "<talkid>1</talkid>", '<reviewer href="http://r">Rev</reviewer>',
           '<translator href="http://t">Tr</translator>', "See <url>http://x</url>"],
}


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture
def server(tmp_path):
    root = tmp_path / "served"
    root.mkdir()
    handler = functools.partial(QuietHandler, directory=str(root))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield root, f"http://127.0.0.1:{httpd.server_address[1]}/", httpd
    httpd.shutdown()
    httpd.server_close()


def write_tgz(path, members: dict) -> None:
    """A gzip tar holding ``members`` (path -> list of lines)."""
    with tarfile.open(path, "w:gz") as tar:
        for name, lines in members.items():
            data = "".join(line + "\n" for line in lines).encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


def seg_file(texts: list[str]) -> list[str]:
    """xml/sgm lines with one ``<seg>`` per text, between non-seg lines that must be ignored."""
    return (['<?xml version="1.0" encoding="UTF-8"?>', "<mteval>", '<doc docid="1" genre="lectures">',
             "<url>http://x</url>", "<title>Not a segment</title>"]
            + [f'<seg id="{i}"> {text} </seg>' for i, text in enumerate(texts, 1)] + ["</doc>", "</mteval>"])


# --- IWSLT14 ---------------------------------------------------------------------------------------------------

def iwslt_members() -> dict:
    """The de-en.tgz members: train.tags (metadata, a title, a description, 50 numbered pairs, five pairs the
    clean rule drops and two at its limits) and the five test sets (two segs each, numbered in fairseq's order)."""
    de = IWSLT_METADATA["de"] + ["<title>Ein Titel: Wissen</title>", "<description>TED Talk: Etwas.</description>"]
    en = IWSLT_METADATA["en"] + ["<title>A Title: Knowledge</title>", "<description>TED Talk: Something.</description>"]
    for i in range(1, 51):
        de.append(f"Das ist Satz {i}, gut!")
        en.append(f"This is sentence {i}, good!")
        if i == 10:  # 2 vs 8 tokens: over ratio 1.5
            de.append("Ja.")
            en.append("Yes, this is far too long for it.")
        if i == 20:  # an empty side
            de.append("")
            en.append("Hello.")
        if i == 25:  # both sides empty
            de.append("")
            en.append("")
        if i == 30:  # 176 tokens each: over the length limit
            de.append(" ".join(["wort"] * 176))
            en.append(" ".join(["word"] * 176))
        if i == 40:  # 5 vs 8 tokens: a ratio of 1.6
            de.append("Ja, gut so.")
            en.append("Yes, well, so very good.")
    de.append(" ".join(["Wort"] * 175))  # 175 tokens each, ratio 1.5 exactly: kept
    en.append(" ".join(["Word"] * 175))
    de.append("Ja, gut.")  # 4 vs 6 tokens: ratio 1.5 exactly: kept
    en.append("Yes, well, good.")
    members = {"de-en/train.tags.de-en.de": de, "de-en/train.tags.de-en.en": en}
    for n, name in enumerate(IWSLT_TEST_SETS, 1):
        members[f"de-en/IWSLT14.{name}.de-en.de.xml"] = seg_file([f"Er sagt’s zu Set {n}.", f"Zweiter {n}."])
        members[f"de-en/IWSLT14.{name}.de-en.en.xml"] = seg_file([f"He says it’s Set {n}.", f"Second {n}."])
    return members


def iwslt_cleaned() -> list[tuple[str, str]]:
    """The (en, de) pairs ``iwslt_members`` must give after filtering, tokenising, cleaning, lower-casing."""
    return ([("a title : knowledge", "ein titel : wissen"), ("ted talk : something .", "ted talk : etwas .")]
            + [(f"this is sentence {i} , good !", f"das ist satz {i} , gut !") for i in range(1, 51)]
            + [(" ".join(["word"] * 175), " ".join(["wort"] * 175)), ("yes , well , good .", "ja , gut .")])


@pytest.fixture
def iwslt(server, tmp_path):
    root, url, httpd = server
    write_tgz(root / "de-en.tgz", iwslt_members())
    return root, url, httpd, tmp_path / "data"


def lines(path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines()


def test_iwslt14_train_valid_are_cleaned_lowercased_and_every_23rd_pair_is_valid(iwslt):
    _, url, _, data = iwslt
    folder = prepare("iwslt14", data, mirror=url)
    assert folder == data / "iwslt14-de-en"
    cleaned = iwslt_cleaned()
    assert len(cleaned) == 54
    valid = [cleaned[22], cleaned[45]]  # 1-based pairs 23 and 46
    train = [pair for number, pair in enumerate(cleaned, 1) if number % 23]
    assert lines(folder / "valid.en") == [en for en, _ in valid]
    assert lines(folder / "valid.de") == [de for _, de in valid]
    assert lines(folder / "train.en") == [en for en, _ in train]
    assert lines(folder / "train.de") == [de for _, de in train]


def test_iwslt14_test_is_the_five_sets_in_fairseq_order(iwslt):
    _, url, _, data = iwslt
    folder = prepare("iwslt14", data, mirror=url)
    numbers = range(1, 6)  # set n is the n-th of dev2010, dev2012, tst2010, tst2011, tst2012
    assert lines(folder / "test.de") == [s for n in numbers for s in (f"er sagt's zu set {n} .", f"zweiter {n} .")]
    assert lines(folder / "test.en") == [s for n in numbers for s in (f"he says it's set {n} .", f"second {n} .")]


def test_iwslt14_is_readable_and_its_source_is_recorded(iwslt):
    root, url, _, data = iwslt
    folder = prepare("iwslt14", data, mirror=url)
    sources, targets = read_pairs("iwslt14", "train", data)
    assert (sources[0], targets[0]) == ("a title : knowledge", "ein titel : wissen") and len(sources) == 52
    archive = (root / "de-en.tgz").read_bytes()
    source = (folder / "SOURCE.md").read_text()
    assert f"| de-en.tgz | http://dl.fbaipublicfiles.com/fairseq/data/iwslt14/de-en.tgz | {len(archive)} | " \
           f"{hashlib.sha256(archive).hexdigest()} |" in source
    assert (folder / "downloads" / "de-en.tgz").read_bytes() == archive
    outputs = [f"{split}.{lang}" for split in ("train", "valid", "test") for lang in ("en", "de")]
    assert sorted(p.name for p in folder.iterdir()) == sorted(["SOURCE.md", "downloads"] + outputs)


def test_a_prepared_corpus_is_returned_without_network_or_archives(iwslt):
    _, url, httpd, data = iwslt
    folder = prepare("iwslt14", data, mirror=url)
    httpd.shutdown()
    httpd.server_close()  # connections are refused, not left hanging
    (folder / "downloads" / "de-en.tgz").unlink()
    before = {p.name: p.stat().st_mtime_ns for p in folder.iterdir() if p.is_file()}
    assert prepare("iwslt14", data, mirror=url) == folder
    assert {p.name: p.stat().st_mtime_ns for p in folder.iterdir() if p.is_file()} == before


def test_an_archive_in_downloads_is_used_without_network(iwslt):
    _, url, httpd, data = iwslt
    folder = prepare("iwslt14", data, mirror=url)
    expected = lines(folder / "train.de")
    httpd.shutdown()
    httpd.server_close()  # connections are refused, not left hanging
    (folder / "train.de").unlink()
    prepare("iwslt14", data, mirror=url)
    assert lines(folder / "train.de") == expected


def test_a_corrupt_download_is_refused_and_nothing_is_left(server, tmp_path):
    root, url, _ = server
    (root / "de-en.tgz").write_bytes(b"<html>not found</html>")
    with pytest.raises(DataError, match=r"http://127.0.0.1:\d+/de-en.tgz did not give a gzip tar archive"):
        prepare("iwslt14", tmp_path, mirror=url)
    folder = tmp_path / "iwslt14-de-en"
    assert [p.name for p in folder.iterdir()] == ["downloads"] and list((folder / "downloads").iterdir()) == []


def test_a_truncated_archive_in_downloads_is_corrupt(tmp_path):
    downloads = tmp_path / "iwslt14-de-en" / "downloads"
    downloads.mkdir(parents=True)
    write_tgz(tmp_path / "full.tgz", iwslt_members())
    full = (tmp_path / "full.tgz").read_bytes()
    (downloads / "de-en.tgz").write_bytes(full[:len(full) - 200])
    with pytest.raises(DataError, match="de-en.tgz is corrupt .*delete it and rerun"):
        prepare("iwslt14", tmp_path, mirror="http://127.0.0.1:9/")
    assert not list((tmp_path / "iwslt14-de-en").glob("train.*"))


def test_an_archive_with_a_bad_crc_is_corrupt(tmp_path):
    """The tar ends long before the gzip stream (4 MB of padding), so only reading to the end finds the bad CRC."""
    downloads = tmp_path / "iwslt14-de-en" / "downloads"
    downloads.mkdir(parents=True)
    write_tgz(tmp_path / "full.tgz", iwslt_members())
    packed = gzip.compress(gzip.decompress((tmp_path / "full.tgz").read_bytes()) + bytes(4 << 20))
    crc = int.from_bytes(packed[-8:-4], "little") ^ 1
    (downloads / "de-en.tgz").write_bytes(packed[:-8] + crc.to_bytes(4, "little") + packed[-4:])
    with pytest.raises(DataError, match="de-en.tgz is corrupt .*CRC"):
        prepare("iwslt14", tmp_path, mirror="http://127.0.0.1:9/")
    assert not list((tmp_path / "iwslt14-de-en").glob("train.*"))


def test_a_missing_member_is_named_and_nothing_is_written(server, tmp_path):
    root, url, _ = server
    members = iwslt_members()
    del members["de-en/IWSLT14.TED.tst2012.de-en.en.xml"]
    write_tgz(root / "de-en.tgz", members)
    with pytest.raises(DataError, match="de-en.tgz has no de-en/IWSLT14.TED.tst2012.de-en.en.xml; delete it"):
        prepare("iwslt14", tmp_path, mirror=url)
    assert sorted(p.name for p in (tmp_path / "iwslt14-de-en").iterdir()) == ["downloads"]


def test_misaligned_sides_are_an_error_and_nothing_is_written(server, tmp_path):
    root, url, _ = server
    members = iwslt_members()
    members["de-en/train.tags.de-en.de"].append("Noch ein Satz.")
    write_tgz(root / "de-en.tgz", members)
    with pytest.raises(DataError, match="train.tags.de-en.en and .*train.tags.de-en.de have different line counts"):
        prepare("iwslt14", tmp_path, mirror=url)
    assert sorted(p.name for p in (tmp_path / "iwslt14-de-en").iterdir()) == ["downloads"]


def test_unreachable_source_is_one_line_naming_the_downloads_folder(tmp_path):
    with pytest.raises(DataError, match=r"could not download http://127.0.0.1:9/de-en.tgz: .*place de-en.tgz in "
                                        r".*iwslt14-de-en/downloads by hand"):
        prepare("iwslt14", tmp_path, mirror="http://127.0.0.1:9/")


def test_other_corpora_are_not_prepared(tmp_path):
    with pytest.raises(DataError, match="--download prepares iwslt14 and wmt17; multi30k and wmt_sample are read"):
        prepare("multi30k", tmp_path)
    assert not list(tmp_path.iterdir())


# --- WMT17 -----------------------------------------------------------------------------------------------------

WMT_SPECIAL = {  # 1-based number among the 220 raw pairs: (en, de, the tokenised pair kept or None if cleaned away)
    120: ("", "Leer.", None),
    130: ("x" * 1001 + " y", "x" * 1001 + " y", None),  # a token over 1000 characters
    140: ("a" * 1000 + " Wide.", "b" * 1000 + " Breit.", ("a" * 1000 + " Wide .", "b" * 1000 + " Breit .")),
    150: ("Yes, this is far too long for it.", "Ja.", None),
    200: ("Short.", "Viel zu lang, wirklich.", None),  # would be the 2nd valid pair if cleaning came first
}


def wmt_pairs() -> list[tuple[str, str, tuple | None]]:
    """The 220 training pairs in corpus order: (en, de, the tokenised pair kept or None)."""
    ordinary = {n: (f"This is Pair {n}.", f"Das ist Paar {n}.", (f"This is Pair {n} .", f"Das ist Paar {n} ."))
                for n in range(1, 221)}
    return [WMT_SPECIAL.get(n, pair) for n, pair in ordinary.items()]


def wmt_archives(root) -> None:
    """The four archives; commoncrawl's members carry a ./ prefix; unread languages and test sides are decoys."""
    pairs = wmt_pairs()
    corpora = (("training-parallel-europarl-v7.tgz", "training/europarl-v7.de-en", pairs[:90]),
               ("training-parallel-commoncrawl.tgz", "./commoncrawl.de-en", pairs[90:170]),
               ("training-parallel-nc-v12.tgz", "training/news-commentary-v12.de-en", pairs[170:]))
    for archive, member, part in corpora:
        write_tgz(root / archive, {f"{member}.fr": ["Ceci n'est pas lu."], f"{member}.en": [en for en, _, _ in part],
                                   f"{member}.de": [de for _, de, _ in part]})
    write_tgz(root / "test-full.tgz", {
        "test-full/newstest2014-deen-src.de.sgm": seg_file(["falsch", "falsch"]),
        "test-full/newstest2014-deen-src.en.sgm": seg_file(["Gutach: Safety for the U.S.", "It’s Second."]),
        "test-full/newstest2014-deen-ref.de.sgm": seg_file(["Gutach: Sicherheit für Fußgänger", "Zweiter."]),
        "test-full/newstest2014-deen-ref.en.sgm": seg_file(["wrong", "wrong"])})


def test_wmt17_splits_every_100th_raw_pair_to_valid_then_cleans_and_keeps_case(server, tmp_path):
    root, url, _ = server
    wmt_archives(root)
    folder = prepare("wmt17", tmp_path, mirror=url)
    assert folder == tmp_path / "wmt17-en-de"
    assert lines(folder / "valid.en") == ["This is Pair 100 ."] and lines(folder / "valid.de") == ["Das ist Paar 100 ."]
    train = [kept for n, (_, _, kept) in enumerate(wmt_pairs(), 1) if kept and n % 100]
    assert len(train) == 215
    assert lines(folder / "train.en") == [en for en, _ in train]
    assert lines(folder / "train.de") == [de for _, de in train]
    assert lines(folder / "test.en") == ["Gutach : Safety for the U . S .", "It's Second ."]
    assert lines(folder / "test.de") == ["Gutach : Sicherheit für Fußgänger", "Zweiter ."]
    source = (folder / "SOURCE.md").read_text()
    for archive in ("training-parallel-europarl-v7.tgz", "training-parallel-commoncrawl.tgz",
                    "training-parallel-nc-v12.tgz", "test-full.tgz"):
        assert f"| {archive} | http" in source
        assert hashlib.sha256((root / archive).read_bytes()).hexdigest() in source
    assert read_pairs("wmt17", "test", tmp_path)[0] == lines(folder / "test.en")


def test_gzip_of_a_non_tar_is_refused(server, tmp_path):
    root, url, _ = server
    (root / "de-en.tgz").write_bytes(gzip.compress(b"plain text, not a tar archive\n" * 40))
    with pytest.raises(DataError, match="did not give a gzip tar archive"):
        prepare("iwslt14", tmp_path, mirror=url)
    assert list((tmp_path / "iwslt14-de-en" / "downloads").iterdir()) == []

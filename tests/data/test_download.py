"""--download against a local http.server: verified files land in the cache; a corrupt one leaves nothing."""
import functools
import gzip
import http.server
import shutil
import threading
from pathlib import Path

import pytest

from sparsenet.data import DataError, load_vision
from sparsenet.data.vision import IDX_SETS

SHARED_MNIST = Path(__file__).resolve().parents[3] / "shared" / "data" / "mnist"


@pytest.fixture
def server(tmp_path):
    root = tmp_path / "served"
    root.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    handler.log_message = lambda *args: None
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield root, f"http://127.0.0.1:{httpd.server_address[1]}/"
    httpd.shutdown()


@pytest.mark.skipif(not SHARED_MNIST.exists(), reason="../shared/data/mnist not present")
def test_download_verifies_and_caches(server, tmp_path):
    root, url = server
    for name in IDX_SETS["mnist"].files:
        shutil.copy(SHARED_MNIST / name, root / name)
    cache = tmp_path / "cache"
    data = load_vision("mnist", cache, download=True, mirror=url)
    assert data.train_x.shape == (60000, 784) and data.test_y.shape == (10000,)
    assert sorted(p.name for p in (cache / "mnist").iterdir()) == sorted(IDX_SETS["mnist"].files)


def test_corrupt_download_is_refused_and_nothing_is_left(server, tmp_path):
    root, url = server
    for name in IDX_SETS["mnist"].files:
        with gzip.open(root / name, "wb") as f:
            f.write(b"\x00\x00\x08\x01" + (3).to_bytes(4, "big") + b"abc")  # a valid IDX, but not MNIST
    cache = tmp_path / "cache"
    with pytest.raises(DataError, match="checksum mismatch for http://127.0.0.1:.*train-images-idx3-ubyte.gz"):
        load_vision("mnist", cache, download=True, mirror=url)
    assert list((cache / "mnist").iterdir()) == []


def test_unreachable_source_is_one_line(tmp_path):
    with pytest.raises(DataError, match="could not download http://127.0.0.1:9/"):
        load_vision("mnist", tmp_path, download=True, mirror="http://127.0.0.1:9/")
    assert list((tmp_path / "mnist").iterdir()) == []


def test_emnist_zip_is_md5_checked_and_extracted(server, tmp_path, monkeypatch):
    import hashlib
    import zipfile

    import sparsenet.data.vision as vision
    root, url = server
    with zipfile.ZipFile(root / "gzip.zip", "w") as bundle:
        for file in IDX_SETS["emnist"].files:
            count = 6 if "train" in file else 3
            payload = (b"\x00\x00\x08\x03" + count.to_bytes(4, "big") + (28).to_bytes(4, "big") * 2 + bytes(784 * count)
                       if "images" in file else b"\x00\x00\x08\x01" + count.to_bytes(4, "big") + bytes(range(count)))
            bundle.writestr(f"gzip/{file}", gzip.compress(payload))
    monkeypatch.setattr(vision, "EMNIST_ZIP_MD5", hashlib.md5((root / "gzip.zip").read_bytes()).hexdigest())
    data = load_vision("emnist", tmp_path / "cache", download=True, mirror=url)
    assert data.train_x.shape == (6, 784) and data.test_y.tolist() == [0, 1, 2] and data.classes == 47
    assert sorted(p.name for p in (tmp_path / "cache" / "emnist").iterdir()) == sorted(IDX_SETS["emnist"].files)
    monkeypatch.setattr(vision, "EMNIST_ZIP_MD5", "0" * 32)
    with pytest.raises(DataError, match="checksum mismatch .*gzip.zip: expected md5"):
        load_vision("emnist", tmp_path / "other", download=True, mirror=url)
    assert list((tmp_path / "other" / "emnist").iterdir()) == []


@pytest.mark.parametrize("served,message", [
    (gzip.compress(bytes(range(200)) * 2)[:-12], "the download of {url}train-images-idx3-ubyte.gz is not a valid gzip "
                                                 "file \\(Compressed file ended"),
    (b"<html>503</html>", "the download of {url}train-images-idx3-ubyte.gz is not a valid gzip file \\(Not a gzipped"),
])
def test_a_download_that_does_not_decompress(server, tmp_path, served, message):
    root, url = server
    (root / "train-images-idx3-ubyte.gz").write_bytes(served)
    with pytest.raises(DataError, match="^" + message.format(url=url) + ".*; nothing was kept$"):
        load_vision("mnist", tmp_path / "cache", download=True, mirror=url)
    assert list((tmp_path / "cache" / "mnist").iterdir()) == []


def test_a_download_into_a_file(tmp_path):
    (tmp_path / "mnist").write_text("a file where the folder should be")
    with pytest.raises(DataError, match=f"^cannot write the download of http://127.0.0.1:9/train-images-idx3-ubyte.gz "
                                        f"to {tmp_path / 'mnist'}: {tmp_path / 'mnist'}: File exists$"):
        load_vision("mnist", tmp_path, download=True, mirror="http://127.0.0.1:9/")

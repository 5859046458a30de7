"""Finding data files, and downloading them with a sha256 check (write to a temp file, rename when good)."""
import gzip
import hashlib
import os
import shutil
import tempfile
import urllib.request
from pathlib import Path


class DataError(Exception):
    """Missing, corrupt or unreadable data; the message is one line meant for the user."""


def data_root(data_dir: str | os.PathLike | None = None) -> Path:
    """``data_dir``, else ``$SPARSENET_DATA``, else ``~/.cache/sparsenet``."""
    if data_dir:
        return Path(data_dir).expanduser()
    return Path(os.environ.get("SPARSENET_DATA") or Path.home() / ".cache" / "sparsenet").expanduser()


def content_hash(path: Path, algorithm: str = "sha256") -> str:
    """Hash of a file's content, of the *uncompressed* bytes for ``.gz`` (recompression-proof)."""
    digest = hashlib.new(algorithm)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def fetch(url: str, target: Path, digest: str, algorithm: str = "sha256") -> Path:
    """Download ``url`` to ``target`` if its content hash is ``digest``; nothing is left behind otherwise."""
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp_name = tempfile.mkstemp(prefix=target.name + ".", suffix=".part" + "".join(target.suffixes[-1:]),
                                        dir=target.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(handle, "wb") as out, urllib.request.urlopen(url, timeout=60) as response:
            shutil.copyfileobj(response, out)
        actual = content_hash(tmp, algorithm)
        if actual != digest:
            raise DataError(f"checksum mismatch for {url}: expected {algorithm} {digest}, got {actual}; "
                            f"nothing was kept")
        tmp.replace(target)
        return target
    except OSError as error:
        raise DataError(f"could not download {url}: {error}") from error
    finally:
        tmp.unlink(missing_ok=True)


def require(folder: Path, names: list[str], dataset: str, hint: str = "") -> list[Path]:
    """The paths of ``names`` in ``folder``; a ``DataError`` naming all missing ones otherwise."""
    missing = [name for name in names if not (folder / name).exists()]
    if missing:
        raise DataError(f"{dataset}: missing {', '.join(missing)} in {folder}; pass --download to fetch them, "
                        f"or --data_dir pointing to a folder that holds {folder.name}/{hint}")
    return [folder / name for name in names]

"""Finding data files, and downloading them with a sha256 check (write to a temp file, rename when good);
file-system errors on the way as one line naming the path."""
import contextlib
import gzip
import hashlib
import os
import shutil
import tempfile
import urllib.request
import zlib
from pathlib import Path


class DataError(Exception):
    """Missing, corrupt or unreadable data; the message is one line meant for the user."""


def data_root(data_dir: str | os.PathLike | None = None) -> Path:
    """``data_dir``, else ``$SPARSENET_DATA``, else ``~/.cache/sparsenet``."""
    if data_dir:
        return Path(data_dir).expanduser()
    return Path(os.environ.get("SPARSENET_DATA") or Path.home() / ".cache" / "sparsenet").expanduser()


def describe_os_error(error: OSError) -> str:
    """``PATH: REASON`` of an ``OSError`` (both paths of a rename), or its text where it names no path."""
    reason = error.strerror or str(error) or type(error).__name__
    if error.filename is None:
        return reason
    return f"{error.filename}{f' -> {error.filename2}' if error.filename2 else ''}: {reason}"


@contextlib.contextmanager
def os_errors_as_data_errors(what: str):
    """Inside: an ``OSError`` (permission denied, a folder where a file should be, ...) becomes a one-line
    ``DataError``: ``WHAT: PATH: REASON``."""
    try:
        yield
    except OSError as error:
        raise DataError(f"{what}: {describe_os_error(error)}") from None


def read_bytes(path: Path) -> bytes:
    """The bytes of ``path``; a ``DataError`` naming it if it cannot be read."""
    try:
        return path.read_bytes()
    except OSError as error:
        raise DataError(f"{path}: cannot read ({error.strerror or error})") from None


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
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        handle, tmp_name = tempfile.mkstemp(prefix=target.name + ".", suffix=".part" + "".join(target.suffixes[-1:]),
                                            dir=target.parent)
    except OSError as error:
        raise DataError(f"cannot write the download of {url} to {target.parent}: {describe_os_error(error)}") from None
    tmp = Path(tmp_name)
    try:
        with os.fdopen(handle, "wb") as out, urllib.request.urlopen(url, timeout=60) as response:
            shutil.copyfileobj(response, out)
        try:
            actual = content_hash(tmp, algorithm)
        except (OSError, EOFError, zlib.error) as error:  # a .gz that does not decompress
            raise DataError(f"the download of {url} is not a valid gzip file ({str(error) or type(error).__name__}); "
                            f"nothing was kept") from None
        if actual != digest:
            raise DataError(f"checksum mismatch for {url}: expected {algorithm} {digest}, got {actual}; "
                            f"nothing was kept")
        tmp.replace(target)
        return target
    except OSError as error:
        raise DataError(f"could not download {url}: {error}") from error
    finally:
        tmp.unlink(missing_ok=True)


def check_no_file_in_the_way(folder: Path, dataset: str) -> None:
    """A ``DataError`` naming the file found where ``folder`` or one of its parents should be a folder."""
    for parent in (folder, *folder.parents):
        if parent.exists():
            if not parent.is_dir():
                raise DataError(f"{dataset}: {parent} is a file, not a folder; --data_dir must name the folder that "
                                f"holds {folder.name}/")
            return


def require(folder: Path, names: list[str], dataset: str, hint: str = "") -> list[Path]:
    """The paths of ``names`` in ``folder``; a ``DataError`` naming all missing ones otherwise, or the file
    found where ``folder`` or one of its parents should be a folder."""
    check_no_file_in_the_way(folder, dataset)
    missing = [name for name in names if not (folder / name).exists()]
    if missing:
        raise DataError(f"{dataset}: missing {', '.join(missing)} in {folder}; pass --download to fetch them, "
                        f"or --data_dir pointing to a folder that holds {folder.name}/{hint}")
    return [folder / name for name in names]

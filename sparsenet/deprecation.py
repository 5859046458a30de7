"""Warnings for names that moved: each old path warns once per process, then works as before."""
import warnings

_warned: set[str] = set()


def moved(old: str, new: str, stacklevel: int = 3) -> None:
    """Emit one ``DeprecationWarning`` per process for the old import path ``old``, which now lives at ``new``."""
    if old in _warned:
        return
    _warned.add(old)
    warnings.warn(f"{old} moved to {new}; the old path will be removed in the next release", DeprecationWarning,
                  stacklevel=stacklevel)

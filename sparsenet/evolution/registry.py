"""What the registries of removal rules, regrowth rules and methods share: their name checks and errors."""


def unknown_name(what: str, name: str, names: list[str], register: str) -> str:
    """The one-line error for ``name`` missing from the registry of ``what`` whose names are ``names``."""
    return (f"unknown {what} {name!r}; choose from {names}, or register your own with "
            f"sparsenet.evolution.{register} before using it (on the command line: --plugin MODULE)")


def check_new_name(name: str, registry: dict, what: str, replace: bool) -> None:
    """``ValueError`` unless ``name`` may be registered as a ``what``: an identifier not ending in ``_soft``
    (the suffix that selects soft sampling), not registered yet unless ``replace``."""
    if not isinstance(name, str) or not name.isidentifier() or name.endswith("_soft"):
        raise ValueError(f"a {what}'s name must be an identifier not ending in _soft (that suffix selects soft "
                         f"sampling), got {name!r}")
    if name in registry and not replace:
        raise ValueError(f"{what} {name!r} is already registered; pass replace=True to replace it")

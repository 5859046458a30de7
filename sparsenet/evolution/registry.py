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


class Registry(dict):
    """Registered items by name (``what``: "removal", "regrowth" or "method"; ``how``: the call that registers
    one, for the error). An item may answer to several names (``item.names``: a rule and its ``_soft`` form)."""

    def __init__(self, what: str, how: str):
        super().__init__()
        self.what, self.how = what, how

    def add(self, name: str, item, replace: bool = False):
        """Register ``item`` as ``name`` (see ``check_new_name``) and return it."""
        check_new_name(name, self, f"{self.what} rule" if self.what != "method" else "method", replace)
        self[name] = item
        return item

    def lookup(self, name: str):
        """The item registered as ``name``; ``ValueError`` listing every registered name if none."""
        if name not in self:
            raise ValueError(unknown_name(self.what, name, self.names(sort=True), self.how))
        return self[name]

    def names(self, sort: bool = False) -> list[str]:
        """Every name the items answer to: their own names (in registration order, or sorted), then the others."""
        items = sorted(self.items()) if sort else list(self.items())
        every = [getattr(item, "names", [name]) for name, item in items]
        return [names[0] for names in every] + [name for names in every for name in names[1:]]

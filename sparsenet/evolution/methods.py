"""DST methods as short declarations composing registered removal and regrowth rules, percolation and schedules.

A method names its removal rule (``removal.py``'s registry: ``wm``, ``wm_signed``, ``ri``, ``mest``; ``_soft``
samples the survivors ∝ score^T, the exponent T linear from ``exponent_start`` to ``exponent_end`` over the
update window), its regrowth rule (``regrowth.py``'s: ``random``, ``gradient``, ``ch3_l3p``, ``ch3_l3n``,
``ch2_l3n``; ``_soft`` samples ∝ score), whether dead neurons percolate, CHT's early stop, the ζ decay and the
density schedule, plus the initialisation the paper pairs with it. The ``_soft`` suffix is parsed once, into
the fields ``removal_soft`` / ``regrowth_soft`` beside the rule names ``removal_score`` / ``regrowth_kind``.
Any field can be overridden by name (``make_method``); ``register_method`` adds a method::

    register_method(Method("snip_set", removal="snip", regrowth="random"))
"""
from dataclasses import dataclass, field, replace

from .registry import Registry, unknown_name
from .regrowth import REGROWTHS
from .removal import REMOVALS
from .schedule import DENSITY_SCHEDULES, ZETA_DECAYS


TURNOVERS = ("zeta", "excess")


@dataclass(frozen=True)
class Method:
    """One DST method: names of its pieces (see the module docstring) and its paper defaults."""
    name: str
    removal: str | None = None          # None: the topology never changes (static sparse training)
    regrowth: str | None = None
    percolation: bool = False
    early_stop: float | None = None     # stop all updates once every layer's removed∩regrown/regrown exceeds it
    zeta_decay: str = "constant"
    density_schedule: str = "constant"
    historical_weights: bool = False    # regrown links restart from their last value instead of 0
    prune_score: str | None = None      # density decay prunes by this score (default: the removal score)
    turnover: str = "zeta"              # zeta: remove ⌊ζ·n⌋ per update; excess: everything above the final
                                        # density (MEST's EM&S: prune to it, regrow to the elastic target)
    exponent_start: float = 1.0         # soft-removal exponent, linear from start (step 0) to end (t_end)
    exponent_end: float = 3.0
    mest_lambda: float = 0.01           # MEST score |w| + λ|g|
    init: str = "er"
    weights: str = "kaiming"

    removal_score: str | None = field(init=False)   # the removal rule: ``removal`` without ``_soft``
    removal_soft: bool = field(init=False)           # ``removal`` ends in ``_soft``: sample the survivors
    regrowth_kind: str | None = field(init=False)    # the regrowth rule: ``regrowth`` without ``_soft``
    regrowth_soft: bool = field(init=False)          # ``regrowth`` ends in ``_soft``: sample the new links

    def __post_init__(self):
        for name in ("removal", "regrowth"):
            given = getattr(self, name)
            soft = isinstance(given, str) and given.endswith("_soft")
            object.__setattr__(self, name + "_soft", soft)
            object.__setattr__(self, "removal_score" if name == "removal" else "regrowth_kind",
                               given.removesuffix("_soft") if soft else given)

    @property
    def removal_per_sign(self) -> bool:
        return REMOVALS[self.removal_score].per_sign

    def validate(self) -> "Method":
        for flag in ("percolation", "historical_weights"):
            if not isinstance(getattr(self, flag), bool):
                raise ValueError(f"method {self.name!r}: {flag} must be True or False, got {getattr(self, flag)!r}")
        if (self.removal is None) != (self.regrowth is None):
            raise ValueError(f"method {self.name!r}: removal and regrowth go together (got {self.removal!r}, "
                             f"{self.regrowth!r})")
        if self.removal is not None and self.removal not in REMOVALS.names():
            if self.removal_soft and self.removal_score in REMOVALS:
                raise ValueError(f"removal {self.removal!r}: the sign-split rule is hard only "
                                 f"(use {self.removal_score})")
            REMOVALS.lookup(self.removal)
        if self.regrowth is not None and self.regrowth not in REGROWTHS.names():
            REGROWTHS.lookup(self.regrowth)
        if self.prune_score is not None and self.prune_score not in REMOVALS:
            raise ValueError(unknown_name("prune_score", self.prune_score, sorted(REMOVALS), REMOVALS.how))
        if self.early_stop is not None and self.density_schedule != "constant":
            raise ValueError(f"method {self.name!r}: early_stop stops all updates, so it cannot go with the "
                             f"decaying density schedule {self.density_schedule!r}")
        if self.turnover not in TURNOVERS:
            raise ValueError(f"unknown turnover {self.turnover!r}; choose from {list(TURNOVERS)}")
        if not 0.0 <= self.mest_lambda or isinstance(self.mest_lambda, bool):
            raise ValueError(f"mest_lambda must be >= 0, got {self.mest_lambda!r}")
        if self.zeta_decay not in ZETA_DECAYS:
            raise ValueError(f"unknown zeta_decay {self.zeta_decay!r}; choose from {list(ZETA_DECAYS)}")
        if self.density_schedule not in DENSITY_SCHEDULES:
            raise ValueError(f"unknown density_schedule {self.density_schedule!r}; choose from "
                             f"{list(DENSITY_SCHEDULES)}")
        return self


METHODS = Registry("method", "register_method(Method(name, ...))")


def register_method(method: Method, replace: bool = False) -> Method:
    """Register ``method`` under ``method.name`` (for ``make_method``, ``DST(method=...)``, the CLI's ``--method``
    and every list of method names), after checking its rules are registered; ``replace``: allow replacing one."""
    return METHODS.add(method.name, method.validate(), replace)


def method_names() -> list[str]:
    """The registered methods' names, in registration order (the built-in ones first)."""
    return METHODS.names()


def make_method(name: str, **overrides) -> Method:
    """The registered method ``name`` with fields replaced by the non-None ``overrides``."""
    METHODS.lookup(name)
    fields = {f for f, spec in Method.__dataclass_fields__.items() if spec.init} - {"name"}
    unknown = set(overrides) - fields
    if unknown:
        raise ValueError(f"unknown method options {sorted(unknown)}; valid: {sorted(fields)}")
    return replace(METHODS[name], **{k: v for k, v in overrides.items() if v is not None}).validate()


for _method in (  # the variants the CHTs preprint compared against (docs/guide/methods.md's method table)
    Method("static"),
    Method("set", removal="wm_signed", regrowth="random"),
    Method("rigl", removal="wm", regrowth="gradient", zeta_decay="cosine"),
    Method("mest", removal="mest", regrowth="random", density_schedule="elastic", turnover="excess"),
    Method("cht", removal="wm_signed", regrowth="ch3_l3p", percolation=True, early_stop=0.9, init="csti",
           weights="swi"),
    Method("chts", removal="wm_soft", regrowth="ch3_l3p_soft", percolation=True, init="csti", weights="swi"),
    Method("chtss", removal="wm_soft", regrowth="ch2_l3n_soft", percolation=True, zeta_decay="cosine",
           density_schedule="sigmoid", prune_score="ri", exponent_end=9.0, init="brf", weights="swi"),
):
    register_method(_method)

"""DST methods as short declarations composing removal, regrowth, percolation and schedules.

A method names its removal score (``wm``, ``wm_signed``, ``ri``, ``mest``; ``_soft`` samples the survivors
∝ score^T, the exponent T linear from ``exponent_start`` to ``exponent_end`` over the update window),
its regrowth (``random``, ``gradient``, ``ch3_l3p``, ``ch3_l3n``, ``ch2_l3n``; ``_soft`` samples ∝ score),
whether dead neurons percolate, CHT's early stop, the ζ decay and the density schedule, plus the
initialisation the paper pairs with it. Any field can be overridden by name (``make_method``).
"""
from dataclasses import dataclass, replace

from .regrowth import REGROWTH_KINDS
from .removal import REMOVAL_SCORES, SIGN_SPLIT
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

    @property
    def removal_score(self) -> str:
        return self.removal.removesuffix("_soft")

    @property
    def removal_soft(self) -> bool:
        return self.removal.endswith("_soft")

    @property
    def removal_per_sign(self) -> bool:
        return self.removal_score in SIGN_SPLIT

    @property
    def regrowth_kind(self) -> str:
        return self.regrowth.removesuffix("_soft")

    @property
    def regrowth_soft(self) -> bool:
        return self.regrowth.endswith("_soft")

    def validate(self) -> "Method":
        for flag in ("percolation", "historical_weights"):
            if not isinstance(getattr(self, flag), bool):
                raise ValueError(f"method {self.name!r}: {flag} must be True or False, got {getattr(self, flag)!r}")
        if (self.removal is None) != (self.regrowth is None):
            raise ValueError(f"method {self.name!r}: removal and regrowth go together (got {self.removal!r}, "
                             f"{self.regrowth!r})")
        if self.removal is not None and self.removal_score not in REMOVAL_SCORES:
            raise ValueError(f"unknown removal {self.removal!r}; choose from "
                             f"{sorted(REMOVAL_SCORES) + [k + '_soft' for k in sorted(REMOVAL_SCORES)]}")
        if self.regrowth is not None and (self.regrowth_kind not in REGROWTH_KINDS or self.regrowth == "random_soft"):
            raise ValueError(f"unknown regrowth {self.regrowth!r}; choose from "
                             f"{list(REGROWTH_KINDS) + [k + '_soft' for k in REGROWTH_KINDS if k != 'random']}")
        if self.prune_score is not None and self.prune_score not in REMOVAL_SCORES:
            raise ValueError(f"unknown prune_score {self.prune_score!r}; choose from {sorted(REMOVAL_SCORES)}")
        if self.early_stop is not None and self.density_schedule != "constant":
            raise ValueError(f"method {self.name!r}: early_stop stops all updates, so it cannot go with the "
                             f"decaying density schedule {self.density_schedule!r}")
        if self.removal is not None and self.removal_per_sign and self.removal_soft:
            raise ValueError(f"removal {self.removal!r}: the sign-split rule is hard only (use wm_signed)")
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


METHODS = {  # the variants the CHTs preprint compared against (method.md §8; README's method table)
    "static": Method("static"),
    "set": Method("set", removal="wm_signed", regrowth="random"),
    "rigl": Method("rigl", removal="wm", regrowth="gradient", zeta_decay="cosine"),
    "mest": Method("mest", removal="mest", regrowth="random", density_schedule="elastic", turnover="excess"),
    "cht": Method("cht", removal="wm_signed", regrowth="ch3_l3p", percolation=True, early_stop=0.9,
                  init="csti", weights="swi"),
    "chts": Method("chts", removal="wm_soft", regrowth="ch3_l3p_soft", percolation=True, init="csti",
                   weights="swi"),
    "chtss": Method("chtss", removal="wm_soft", regrowth="ch2_l3n_soft", percolation=True, zeta_decay="cosine",
                    density_schedule="sigmoid", prune_score="ri", exponent_end=9.0, init="brf", weights="swi"),
}


def make_method(name: str, **overrides) -> Method:
    """The registered method ``name`` with fields replaced by the non-None ``overrides``."""
    if name not in METHODS:
        raise ValueError(f"unknown method {name!r}; choose from {sorted(METHODS)}")
    fields = set(Method.__dataclass_fields__) - {"name"}
    unknown = set(overrides) - fields
    if unknown:
        raise ValueError(f"unknown method options {sorted(unknown)}; valid: {sorted(fields)}")
    return replace(METHODS[name], **{k: v for k, v in overrides.items() if v is not None}).validate()

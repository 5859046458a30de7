"""When topology updates happen and how strong they are: intervals, ζ, soft exponent, density."""
import math
from dataclasses import dataclass

ZETA_DECAYS = ("constant", "cosine")
DENSITY_SCHEDULES = ("constant", "elastic", "sigmoid")


@dataclass(frozen=True)
class Schedule:
    """Update timing in optimizer steps.

    update_interval: steps between updates (> 0). total_steps: length of training.
    t_end: updates happen at multiples of the interval strictly before it; default 0.75·total_steps for
    cosine ζ (RigL/CHT), else total_steps (so never after the last step).
    zeta: removal fraction in [0, 1); zeta_decay: constant, or cosine ζ_t = ζ/2 (1 + cos(π t / t_end))
    (RigL, CHTss).
    exponent_start/end: soft-sampling exponent, linear in t over [0, t_end] (CHTs: 1 → 3).
    """
    update_interval: int
    total_steps: int
    zeta: float = 0.3
    zeta_decay: str = "constant"
    t_end: int | None = None
    exponent_start: float = 1.0
    exponent_end: float = 3.0

    def __post_init__(self):
        if isinstance(self.update_interval, bool) or not isinstance(self.update_interval, int) \
                or self.update_interval <= 0:
            raise ValueError(f"update_interval must be a positive int, got {self.update_interval!r}")
        if not isinstance(self.total_steps, int) or self.total_steps <= 0:
            raise ValueError(f"total_steps must be a positive int, got {self.total_steps!r}")
        if not 0.0 <= self.zeta < 1.0:
            raise ValueError(f"zeta must be in [0, 1), got {self.zeta!r}")
        if self.zeta_decay not in ZETA_DECAYS:
            raise ValueError(f"unknown zeta_decay {self.zeta_decay!r}; choose from {list(ZETA_DECAYS)}")

    @property
    def end(self) -> int:
        if self.t_end is not None:
            return self.t_end
        return int(0.75 * self.total_steps) if self.zeta_decay == "cosine" else self.total_steps

    @property
    def last_update(self) -> int:
        """The step of the last update (0 if none fits before ``end``)."""
        return max(0, (self.end - 1) // self.update_interval * self.update_interval)

    def is_update(self, step: int) -> bool:
        return 0 < step < self.end and step % self.update_interval == 0

    def progress(self, step: int) -> float:
        """``step`` as a share of the update window, 1.0 at the last update (density schedules end there)."""
        return min(1.0, step / max(1, self.last_update))

    def zeta_at(self, step: int) -> float:
        if self.zeta_decay == "cosine":
            return self.zeta / 2 * (1 + math.cos(math.pi * min(step, self.end) / self.end))
        return self.zeta

    def exponent_at(self, step: int) -> float:
        progress = min(step, self.end) / self.end
        return self.exponent_start + (self.exponent_end - self.exponent_start) * progress


def method_schedule(method, update_interval: int, total_steps: int, zeta: float = 0.3) -> Schedule:
    """The one timing rule of both recipes: a method whose ζ decays (cosine) or whose density decays
    (elastic, sigmoid) ends its updates and its density decay at ``t_end = 0.75 · total_steps``, as the
    authors' RigL/CHTss/MEST runs; the others update until the end of training. The soft-removal exponent
    is the method's."""
    decaying = method.zeta_decay == "cosine" or method.density_schedule != "constant"
    t_end = int(0.75 * total_steps) if decaying else total_steps
    return Schedule(update_interval, total_steps, zeta, method.zeta_decay, t_end, method.exponent_start,
                    method.exponent_end)


@dataclass(frozen=True)
class DensitySchedule:
    """Target density of the sparse layers over training (fraction of t_end elapsed → density).

    constant: the final density throughout. elastic (MEST's EM&S): final + 5% until 60% of t_end, then
    final + 2.5%, reaching final at t_end. sigmoid (the CHTss paper, arXiv 2501.19107, §3.3 eq. 4): from
    ``initial`` to final along a normalised logistic curve of curvature k over the updates.
    """
    final: float
    kind: str = "constant"
    initial: float = 0.5
    k: float = 6.0

    def __post_init__(self):
        if self.kind not in DENSITY_SCHEDULES:
            raise ValueError(f"unknown density schedule {self.kind!r}; choose from {list(DENSITY_SCHEDULES)}")

    def start(self) -> float:
        return {"constant": self.final, "elastic": min(1.0, self.final + 0.05),
                "sigmoid": max(self.final, self.initial)}[self.kind]

    def at(self, progress: float) -> float:
        """Density after an update at ``progress`` in [0, 1] (the engine passes step / last update step, so
        the last update reaches the final density)."""
        progress = min(max(progress, 0.0), 1.0)
        if self.kind == "constant" or progress >= 1.0:
            return self.final
        if self.kind == "elastic":
            return min(1.0, self.final + (0.05 if progress < 0.6 else 0.025))
        sigma = lambda x: 1.0 / (1.0 + math.exp(-x))
        shape = 0.5 + (sigma(self.k * (2 * progress - 1)) - 0.5) / (sigma(self.k) - sigma(-self.k))
        return self.start() + (self.final - self.start()) * shape

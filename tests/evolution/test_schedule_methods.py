"""Schedules and the method registry: formulas, endpoints and one-line errors."""
import math

import pytest
import torch

from sparsenet.evolution import METHODS, DensitySchedule, Schedule, TopologyEngine, make_method
from sparsenet.models import MLP


def test_cosine_zeta_and_t_end():
    s = Schedule(update_interval=10, total_steps=1000, zeta=0.3, zeta_decay="cosine")
    assert s.end == 750 and s.is_update(740) and not s.is_update(760) and not s.is_update(0) and not s.is_update(5)
    assert math.isclose(s.zeta_at(0), 0.3) and math.isclose(s.zeta_at(375), 0.15) and s.zeta_at(750) < 1e-12
    constant = Schedule(update_interval=1, total_steps=100)
    assert constant.end == 100 and constant.zeta_at(50) == 0.3
    assert constant.exponent_at(0) == 1.0 and constant.exponent_at(50) == 2.0 and constant.exponent_at(100) == 3.0


@pytest.mark.parametrize("kwargs,match", [
    ({"update_interval": 0}, "update_interval must be a positive int"),
    ({"update_interval": -3}, "update_interval must be a positive int"),
    ({"zeta": 1.0}, "zeta must be in \\[0, 1\\)"),
    ({"zeta": -0.1}, "zeta must be in \\[0, 1\\)"),
    ({"zeta_decay": "step"}, "unknown zeta_decay 'step'; choose from \\['constant', 'cosine'\\]"),
])
def test_schedule_rejects_bad_input(kwargs, match):
    with pytest.raises(ValueError, match=match):
        Schedule(**{"update_interval": 1, "total_steps": 10, **kwargs})


def test_density_schedules():
    sigmoid = DensitySchedule(0.01, "sigmoid", initial=0.5)
    assert sigmoid.start() == 0.5 and math.isclose(sigmoid.at(0.0), 0.5) and sigmoid.at(1.0) == 0.01
    assert math.isclose(sigmoid.at(0.5), (0.5 + 0.01) / 2)  # symmetric S-curve
    values = [sigmoid.at(p / 10) for p in range(11)]
    assert values == sorted(values, reverse=True)
    elastic = DensitySchedule(0.01, "elastic")
    assert elastic.start() == pytest.approx(0.06) and elastic.at(0.59) == pytest.approx(0.06)
    assert elastic.at(0.61) == pytest.approx(0.035) and elastic.at(1.0) == 0.01
    assert DensitySchedule(0.1).at(0.3) == 0.1
    with pytest.raises(ValueError, match="unknown density schedule 'cubic'"):
        DensitySchedule(0.1, "cubic")


def test_registry_and_overrides():
    assert set(METHODS) == {"static", "set", "rigl", "mest", "cht", "chts", "chtss"}
    chts = make_method("chts", removal="ri_soft", regrowth="ch2_l3n_soft")
    assert chts.removal_score == "ri" and chts.removal_soft and chts.regrowth_kind == "ch2_l3n" and chts.regrowth_soft
    assert make_method("cht").early_stop == 0.9 and make_method("rigl").zeta_decay == "cosine"
    with pytest.raises(ValueError, match="unknown method 'snip'; choose from \\['cht', 'chts', 'chtss', 'mest'"):
        make_method("snip")
    with pytest.raises(ValueError, match="unknown removal 'snip'; choose from \\['mest', 'ri', 'wm'"):
        make_method("set", removal="snip")
    with pytest.raises(ValueError, match="unknown regrowth 'ch4'"):
        make_method("set", regrowth="ch4")
    with pytest.raises(ValueError, match="unknown method options \\['temperature'\\]"):
        make_method("set", temperature=2)


def test_updates_stop_before_the_end_and_progress_reaches_one_at_the_last_update():
    s = Schedule(update_interval=10, total_steps=100)
    assert s.is_update(90) and not s.is_update(100) and s.last_update == 90
    assert s.progress(45) == 0.5 and s.progress(90) == 1.0
    cosine = Schedule(update_interval=7, total_steps=100, zeta_decay="cosine")
    assert cosine.end == 75 and cosine.last_update == 70 and cosine.progress(70) == 1.0 and not cosine.is_update(77)


def test_density_decay_prune_scores():
    assert make_method("chtss").prune_score == "ri" and make_method("mest").prune_score is None
    with pytest.raises(ValueError, match="unknown prune_score 'snip'"):
        make_method("mest", prune_score="snip")


def test_schedules_pinned_by_value():
    import math
    from sparsenet.evolution import DensitySchedule
    cosine = Schedule(update_interval=10, total_steps=1000, zeta=0.4, zeta_decay="cosine", t_end=800)
    assert cosine.zeta_at(0) == pytest.approx(0.4) and cosine.zeta_at(400) == pytest.approx(0.2)
    assert cosine.zeta_at(200) == pytest.approx(0.2 * (1 + math.cos(math.pi / 4)))
    assert cosine.zeta_at(800) == pytest.approx(0.0) and cosine.zeta_at(900) == pytest.approx(0.0)
    assert cosine.last_update == 790 and cosine.is_update(790) and not cosine.is_update(800)
    assert cosine.exponent_at(400) == pytest.approx(2.0) and cosine.exponent_at(1000) == pytest.approx(3.0)
    sigmoid = DensitySchedule(0.1, "sigmoid", initial=0.5, k=6.0)
    assert sigmoid.start() == 0.5 and sigmoid.at(0.0) == pytest.approx(0.5) and sigmoid.at(1.0) == 0.1
    assert sigmoid.at(0.5) == pytest.approx(0.3)  # the logistic's midpoint
    s = lambda x: 1 / (1 + math.exp(-x))
    assert sigmoid.at(0.25) == pytest.approx(0.5 - 0.4 * (0.5 + (s(-3.0) - 0.5) / (s(6.0) - s(-6.0))))
    elastic = DensitySchedule(0.01, "elastic")
    assert elastic.start() == pytest.approx(0.06) and elastic.at(0.59) == pytest.approx(0.06)
    assert elastic.at(0.6) == pytest.approx(0.035) and elastic.at(1.0) == 0.01


@pytest.mark.parametrize("total_steps, decay, last", [(1, "cosine", 0), (1, "constant", 0), (2, "constant", 1),
                                                       (4, "cosine", 2), (9, "constant", 8)])
def test_last_update_is_never_negative(total_steps, decay, last):
    """A window too short for any update (cosine ζ ends at 0.75·T, so T = 1 gives end 0) has its last update at
    step 0, not before it: the engine's "no update fits" check reads 0."""
    assert Schedule(update_interval=1, total_steps=total_steps, zeta_decay=decay).last_update == last


def test_a_decaying_density_with_no_update_in_the_window_is_refused():
    model = MLP(8, (6,), 4, density=0.5)
    method = make_method("chtss")
    with pytest.raises(ValueError, match="no topology update fits"):
        TopologyEngine(model, torch.optim.SGD(model.parameters(), lr=0.1), method,
                       Schedule(update_interval=1, total_steps=1, zeta_decay="cosine"))

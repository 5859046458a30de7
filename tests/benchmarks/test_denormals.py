"""The denormal benchmark really makes subnormal weights (and flushing really zeroes them)."""
import pytest
import torch

from benchmarks.denormals import SUBNORMAL, main, step_ms
from sparsenet import tune_cpu


def test_the_scaled_weights_are_subnormal_and_flushing_zeroes_them():
    tiny = torch.randn(1000, generator=torch.Generator().manual_seed(0)) * SUBNORMAL
    finfo = torch.finfo(torch.float32)
    assert (tiny != 0).all() and (tiny.abs() < finfo.tiny).all()  # subnormal, not zero
    try:
        assert tune_cpu()["flush_denormal"]
        assert ((tiny * 1.0) == 0).all()  # flushed on arithmetic
    finally:
        torch.set_flush_denormal(False)
    assert ((tiny * 1.0) != 0).all()


@pytest.mark.parametrize("dense", [False, True])
def test_cells_time_a_step(dense):
    assert step_ms(20, 30, 0.2, 4, SUBNORMAL, dense, repeats=2) > 0


def test_a_density_outside_the_unit_interval_is_refused(capsys):
    with pytest.raises(SystemExit) as error:
        main(["--density", "0"])
    assert error.value.code == 2 and "--density must be in (0, 1], got 0.0" in capsys.readouterr().err

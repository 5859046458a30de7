"""Every product form the benchmark times computes the same product (so the table compares like with like)."""
import pytest
import torch

from benchmarks.product_forms import forms, main


@pytest.mark.parametrize("rows", [5, 300])  # one batch block, and three (the last one short)
def test_the_forms_agree(rows):
    results = {name: fn() for name, fn in forms(12, 9, rows, 0.5).items()}
    torch.testing.assert_close(results["fwd A"], results["fwd B"])
    torch.testing.assert_close(results["fwd A"].t(), results["fwd C"])
    torch.testing.assert_close(results["dx A"], results["dx B"])
    torch.testing.assert_close(results["dx A"].t(), results["dx C"])
    torch.testing.assert_close(results["fwd A"], torch.cat(results["fwd D"], dim=1))
    torch.testing.assert_close(results["dx A"], torch.cat(results["dx D"], dim=1))
    # the sampled products as (nnz,) values in the layer's row-major order, the same links in all three
    torch.testing.assert_close(results["dW A"], results["dW B"].values())
    torch.testing.assert_close(results["dW A"], results["dW C"].values())


def test_a_sparsity_outside_the_range_is_refused(capsys):
    with pytest.raises(SystemExit) as error:
        main(["--sparsities", "1.0"])
    assert error.value.code == 2 and "--sparsities must be in [0, 1), got [1.0]" in capsys.readouterr().err

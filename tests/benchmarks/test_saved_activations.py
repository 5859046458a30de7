"""``benchmarks.saved_activations`` counts what autograd keeps for backward, parameters left out."""
import pytest
import torch

from benchmarks.saved_activations import main, saved_bytes


def test_counts_each_saved_storage_once_and_leaves_parameters_out():
    weight = torch.nn.Parameter(torch.randn(8, 8))
    x = torch.randn(100, 8, requires_grad=True)

    def forward():
        y = x.exp()          # saves its result: 100 x 8 float32
        return (y * y) @ weight  # mul saves y twice (one storage); mm saves y*y and the weight (a parameter)
    assert saved_bytes(forward, [weight]) == 2 * 100 * 8 * 4  # y and y*y


def test_a_sparsity_outside_the_range_is_refused(capsys):
    with pytest.raises(SystemExit) as error:
        main(["--sparsities", "1.0"])
    assert error.value.code == 2 and "--sparsities must be in [0, 1), got [1.0]" in capsys.readouterr().err

"""``sparsenet.models.dropout.Dropout``: nn.Dropout's distribution and gradient, a bool mask saved."""
import math

import pytest
import torch

from sparsenet.models.dropout import Dropout


@pytest.mark.parametrize("p", [0.1, 0.5])
def test_keeps_each_element_with_probability_one_minus_p_scaled_by_its_inverse(p):
    torch.manual_seed(0)
    x = torch.rand(1000, 1000) + 0.5  # no zeros: a zero output means dropped
    y = Dropout(p)(x)
    kept = y != 0
    n = x.numel()
    assert abs(kept.sum().item() - n * (1 - p)) < 5 * math.sqrt(n * p * (1 - p))  # binomial, 5 standard deviations
    torch.testing.assert_close(y[kept], x[kept] / (1 - p), rtol=1e-6, atol=0)
    rows, cols = kept.float().mean(1), kept.float().mean(0)  # no structure: every row and column near 1 - p
    assert (rows - (1 - p)).abs().max() < 6 * math.sqrt(p * (1 - p) / 1000)
    assert (cols - (1 - p)).abs().max() < 6 * math.sqrt(p * (1 - p) / 1000)


def test_gradient_is_the_upstream_gradient_through_the_same_mask_and_scale():
    torch.manual_seed(1)
    x = (torch.rand(64, 33, dtype=torch.float64) + 0.5).requires_grad_(True)
    y = Dropout(0.3)(x)
    upstream = torch.randn_like(y)
    y.backward(upstream)
    mask = (y != 0).to(x.dtype)
    torch.testing.assert_close(x.grad, upstream * mask / 0.7, rtol=1e-12, atol=1e-12)


def test_saves_a_bool_mask_for_backward_not_a_float_noise():
    saved = []
    x = torch.randn(100, 50, requires_grad=True)
    with torch.autograd.graph.saved_tensors_hooks(lambda t: saved.append(t) or t, lambda t: t):
        Dropout(0.2)(x).sum().backward()
    assert [(t.dtype, t.shape) for t in saved] == [(torch.bool, x.shape)]


def test_nn_dropout_keeps_a_float_noise_on_cpu_which_is_why_this_module_exists():
    """Fails when torch's CPU dropout starts saving a bool mask itself: then this module can go."""
    x, saved = torch.randn(100, 50, requires_grad=True), []
    with torch.autograd.graph.saved_tensors_hooks(lambda t: saved.append(t) or t, lambda t: t):
        torch.nn.Dropout(0.2)(x).sum()
    assert sum(t.element_size() * t.numel() for t in saved) >= 4 * x.numel()  # what nn.Dropout keeps here


def test_eval_mode_p_zero_and_p_one_and_the_seed():
    x = torch.randn(20, 30)
    layer = Dropout(0.4)
    assert Dropout(0.0)(x) is x and layer.eval()(x) is x
    assert torch.equal(Dropout(1.0)(x), torch.zeros_like(x))
    layer.train()
    torch.manual_seed(7)
    first = layer(x)
    torch.manual_seed(7)
    assert torch.equal(layer(x), first)
    assert isinstance(layer, torch.nn.Dropout) and layer.p == 0.4


def test_a_feature_major_input_keeps_its_layout_through_forward_and_backward():
    x = torch.randn(40, 30).t().requires_grad_(True)  # a sparse layer's output: (30, 40) seen as its transpose
    saved = []
    with torch.autograd.graph.saved_tensors_hooks(lambda t: saved.append(t) or t, lambda t: t):
        y = Dropout(0.3)(x)
    assert y.stride() == x.stride() and saved[0].stride() == x.stride()  # the mask too: no strided reads
    y.backward(torch.ones(40, 30).t())
    assert x.grad.stride() == x.stride()


def test_inplace_writes_into_the_input_with_and_without_autograd():
    torch.manual_seed(3)
    x = torch.rand(50, 40) + 0.5
    original = x.clone()
    with torch.no_grad():
        y = Dropout(0.5, inplace=True)(x)
    assert y.data_ptr() == x.data_ptr() and torch.equal(y, x)
    kept = original * 2 == y
    assert torch.equal(kept | (y == 0), torch.ones_like(kept)) and 0 < kept.sum() < kept.numel()
    leaf = (torch.rand(50, 40, dtype=torch.float64) + 0.5).requires_grad_(True)
    hidden = leaf * 1.0
    out = Dropout(0.5, inplace=True)(hidden)
    assert out.data_ptr() == hidden.data_ptr()
    out.backward(torch.ones_like(out))
    torch.testing.assert_close(leaf.grad, (out != 0).double() * 2)


def test_the_mask_product_is_twice_differentiable():
    from sparsenet.models.dropout import _KeepAndScale
    x = torch.randn(6, 5, dtype=torch.float64, requires_grad=True)
    keep = torch.rand(6, 5) >= 0.4
    assert torch.autograd.gradgradcheck(lambda t: _KeepAndScale.apply(t, keep, 2.5), (x,))

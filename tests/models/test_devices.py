"""The models on every device and training precision (``tests/devices.py``): MLP, Transformer and language model,
forward and backward against their densified float64 copy on the CPU, one SGD step against the float64 sparse
run, float32 master weights and gradients under autocast, ``shared_inputs`` changing no result, and no host sync
in a training step."""
import contextlib
import copy

import pytest
import torch
from torch.nn import functional as F

from sparsenet.models import MLP, Transformer, densify
from sparsenet.models.lm import LanguageModel
from sparsenet.sparse import SparseLinear
from tests.devices import DEVICE_PRECISIONS, PRECISIONS
from tests.syncs import SyncCounter

TRAINING_PRECISIONS = [p for p in DEVICE_PRECISIONS if p.values[1].dtype != torch.bfloat16]  # fp32/fp64 weights
PRECISION_FLOAT64 = next(p for p in PRECISIONS if p.name == "float64")


def _mlp():
    torch.manual_seed(0)  # the dense output layer's default initialisation draws from the global generator
    return MLP(20, (24, 24, 24), 5, density=0.3, generator=torch.Generator().manual_seed(0))


def _transformer():
    torch.manual_seed(0)  # the dense biases keep PyTorch's initialisation: the global generator
    return Transformer(16, d_model=32, heads=4, layers=2, d_ff=64, dropout=0.0, attention_dropout=0.0, density=0.5,
                       max_length=20, generator=torch.Generator().manual_seed(0))


def _lm():
    torch.manual_seed(0)
    model = LanguageModel(20, d_model=32, heads=4, layers=2, d_ff=48, context=16, density=0.5,
                          generator=torch.Generator().manual_seed(0))
    for module in model.modules():  # RMSNorm's default eps is its input dtype's: fix float32's for every run
        if isinstance(module, torch.nn.RMSNorm):
            module.eps = torch.finfo(torch.float32).eps
    return model


def _mlp_batch(g):
    return torch.randn(16, 20, generator=g, dtype=torch.float64), torch.randint(5, (16,), generator=g)


def _transformer_batch(g):
    src, tgt = torch.randint(3, 16, (4, 7), generator=g), torch.randint(3, 16, (4, 7), generator=g)
    src[0, 4:], tgt[1, 5:] = 0, 0  # padding
    return src, tgt[:, :-1], tgt[:, 1:]


def _lm_batch(g):
    return (torch.randint(20, (3, 13), generator=g),)


def _mlp_loss(model, x, labels):
    return F.cross_entropy(model(x.to(next(model.parameters()).dtype)), labels)


def _transformer_loss(model, src, tgt_in, tgt_out):
    return F.cross_entropy(model(src, tgt_in).flatten(0, 1), tgt_out.flatten(), ignore_index=0)


def _lm_loss(model, tokens):
    return F.cross_entropy(model(tokens[:, :-1]).flatten(0, 1), tokens[:, 1:].flatten())


MODELS = {  # name -> (build, batch from a generator, loss of (model, *batch))
    "mlp": (_mlp, _mlp_batch, _mlp_loss),
    "transformer": (_transformer, _transformer_batch, _transformer_loss),
    "lm": (_lm, _lm_batch, _lm_loss),
}
# Relative error ||a - b|| / ||b|| allowed for a small model's loss, gradients and parameters after one step against
# the float64 run. Measured on the CPU (products in float32, outputs rounded): at most 2.6e-7 in float32; under
# autocast 4e-3 (MLP, LM) and 1.8e-2 (Transformer: its first FFN's ReLU flips where rounding moves a pre-activation
# across zero, in bf16 and fp16 alike): about 3x headroom, for CUDA's products in the low precision.
MODEL_TOLERANCES = {"float64": 1e-10, "float32": 1e-5, "autocast-bfloat16": 5e-2, "autocast-float16": 5e-2}


def _relative_error(actual: torch.Tensor, expected: torch.Tensor, floor: float = 0.0) -> float:
    """``||actual - expected|| / max(||expected||, floor)`` in float64 on the CPU."""
    expected = expected.double().cpu()
    return float((actual.double().cpu() - expected).norm() / max(float(expected.norm()), floor, 1e-300))


FLOAT16_LOSS_SCALE = 2.0**12  # what a gradient scaler does under fp16: keep small gradients above its subnormals


def _run(model, batch, loss_fn, precision, device):
    """The loss of ``batch`` under ``precision``, backpropagated (scaled under fp16, the gradients unscaled);
    returns it as a float64 CPU scalar."""
    batch = [t.to(device) for t in batch]
    with precision.context(device):
        loss = loss_fn(model, *batch)
    scale = FLOAT16_LOSS_SCALE if precision.autocast == torch.float16 else 1.0
    (loss * scale).backward()
    if scale != 1.0:
        for parameter in model.parameters():
            parameter.grad /= scale
    return loss.detach().double().cpu()


def _gradients(model) -> dict[str, torch.Tensor]:
    """Every parameter's gradient by name; a sparse layer's as ``NAME.weight`` sampled on its links."""
    sparse = {name: module for name, module in model.named_modules() if isinstance(module, SparseLinear)}
    grads = {}
    for name, parameter in model.named_parameters():
        layer = sparse.get(name.removesuffix(".values"))
        grads[name.removesuffix(".values") + ".weight" if layer is not None else name] = parameter.grad
    return grads


@pytest.mark.parametrize("name", MODELS)
@pytest.mark.parametrize("device,precision", TRAINING_PRECISIONS)
def test_forward_and_backward_match_the_densified_float64_model(name, device, precision):
    build, make_batch, loss_fn = MODELS[name]
    model = build()
    reference = densify(copy.deepcopy(model).double())
    batch = make_batch(torch.Generator().manual_seed(1))
    expected_loss = _run(reference, batch, loss_fn, PRECISION_FLOAT64, "cpu")
    expected = dict(reference.named_parameters())
    model = model.to(device=device, dtype=precision.dtype)
    loss = _run(model, batch, loss_fn, precision, device)
    tolerance = MODEL_TOLERANCES[precision.name]
    assert torch.isfinite(loss) and _relative_error(loss, expected_loss) <= tolerance
    sparse = {name: module for name, module in model.named_modules() if isinstance(module, SparseLinear)}
    assert sparse
    floor = 1e-2 * max(float(p.grad.norm()) for p in reference.parameters())  # a K bias's gradient is 0 + noise
    for key, grad in _gradients(model).items():
        assert grad.dtype == precision.dtype, key  # master weights' gradients: never in the autocast dtype
        reference_grad = expected[key].grad
        layer = sparse.get(key.removesuffix(".weight"))
        if layer is not None:
            rows, cols = layer.indices.cpu()
            reference_grad = reference_grad[rows, cols]
        assert _relative_error(grad, reference_grad, floor) <= tolerance, key


@pytest.mark.parametrize("name", MODELS)
@pytest.mark.parametrize("device,precision", TRAINING_PRECISIONS)
def test_a_training_step_keeps_master_weights_and_tracks_the_float64_step(name, device, precision):
    build, make_batch, loss_fn = MODELS[name]
    steps = {}
    for key, run_device, run_precision in (("float64", "cpu", PRECISION_FLOAT64), ("run", device, precision)):
        model = build().to(device=run_device, dtype=run_precision.dtype)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
        batch = make_batch(torch.Generator().manual_seed(1))
        before = _run(model, batch, loss_fn, run_precision, run_device)
        optimizer.step()
        optimizer.zero_grad()
        after = _run(model, batch, loss_fn, run_precision, run_device)
        steps[key] = (before, after, {k: p.detach() for k, p in model.named_parameters()})
        assert all(p.dtype == run_precision.dtype for p in model.parameters())
        assert after < before  # a step down the gradient of this batch lowers its loss
    tolerance = MODEL_TOLERANCES[precision.name]
    (before64, after64, params64), (before, after, params) = steps["float64"], steps["run"]
    assert _relative_error(before, before64) <= tolerance and _relative_error(after, after64) <= tolerance
    for key, parameter in params.items():
        assert _relative_error(parameter, params64[key]) <= tolerance, key


@pytest.mark.parametrize("name", ["transformer", "lm"])
@pytest.mark.parametrize("device,precision", TRAINING_PRECISIONS)
def test_sharing_the_projections_inputs_changes_no_result(name, device, precision, monkeypatch):
    from sparsenet.models import lm, transformer
    build, make_batch, loss_fn = MODELS[name]
    batch = make_batch(torch.Generator().manual_seed(2))
    runs = []
    for share in (True, False):
        if not share:
            monkeypatch.setattr(transformer if name == "transformer" else lm, "shared_inputs",
                                contextlib.nullcontext)
        model = build().to(device=device, dtype=precision.dtype)
        runs.append((_run(model, batch, loss_fn, precision, device), _gradients(model)))
    (shared_loss, shared_grads), (loss, grads) = runs
    assert torch.equal(shared_loss, loss)  # the same products on the same copy
    floor = 1e-2 * max(float(grad.norm()) for grad in grads.values())
    for key, grad in grads.items():  # input gradients summed before or after the transpose back: rounding only
        assert _relative_error(shared_grads[key], grad, floor) <= MODEL_TOLERANCES[precision.name] / 10, key



@pytest.mark.parametrize("name", MODELS)
@pytest.mark.parametrize("device,precision", TRAINING_PRECISIONS)
def test_a_training_step_makes_no_host_sync(name, device, precision):
    """Forward, backward and optimizer step read nothing back to the host (but the loss, which ``_run`` copies as
    a logged step would) once the layers' CSR caches exist: they are built on a layer's first use after an edit,
    O(layers) syncs per topology update."""
    build, make_batch, loss_fn = MODELS[name]
    model = build().to(device=device, dtype=precision.dtype)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    batch = make_batch(torch.Generator().manual_seed(1))
    counts = []
    for _ in range(2):
        with SyncCounter() as syncs:
            _run(model, batch, loss_fn, precision, device)
            optimizer.step()
            optimizer.zero_grad()
        counts.append(syncs.count)
    assert counts[0] > 0 and counts[1] == 0, counts  # the first step builds the caches: the counter sees them

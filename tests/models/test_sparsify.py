"""sparsify / densify on users' models: which modules are replaced, what they keep, and one-line refusals."""
import sys

import pytest
import torch
from torch import nn

from sparsenet import SparseLinear, densify, sparsify
from sparsenet.sparse import link_count
from tests.devices import DEVICES


class Block(nn.Module):
    def __init__(self, d=12):
        super().__init__()
        self.attn = nn.ModuleDict({"q_proj": nn.Linear(d, d), "k_proj": nn.Linear(d, d, bias=False)})
        self.mlp = nn.ModuleDict({"fc1": nn.Linear(d, 3 * d), "fc2": nn.Linear(3 * d, d)})
        self.head = nn.Linear(d, 5)
        self.mha = nn.MultiheadAttention(d, 2)  # its out_proj subclasses nn.Linear: never a candidate

    def forward(self, x):
        x = x + self.attn["q_proj"](x) * self.attn["k_proj"](x)
        return self.head(x + self.mlp["fc2"](torch.relu(self.mlp["fc1"](x))))


def _model(dtype=torch.float32, seed=0):
    torch.manual_seed(seed)
    return Block().to(dtype)


def _kinds(model):
    return {name: type(m).__name__ for name, m in model.named_modules()
            if isinstance(m, (nn.Linear, SparseLinear)) and not name.startswith("mha")}


@pytest.mark.parametrize("include,exclude,sparse", [
    (("*",), (), {"attn.q_proj", "attn.k_proj", "mlp.fc1", "mlp.fc2", "head"}),
    (("mlp.*",), (), {"mlp.fc1", "mlp.fc2"}),
    ("*.fc*", ("mlp.fc2",), {"mlp.fc1"}),
    (("attn.*", "head"), ("attn.k_proj",), {"attn.q_proj", "head"}),
])
def test_exactly_the_selected_modules_are_replaced(include, exclude, sparse):
    model = _model()
    report = sparsify(model, 0.5, include=include, exclude=exclude, generator=torch.Generator().manual_seed(0))
    kinds = _kinds(model)
    assert {n for n, k in kinds.items() if k == "SparseLinear"} == sparse
    assert all(k == "Linear" for n, k in kinds.items() if n not in sparse)
    assert [m.name for m in report.modules] == [n for n in kinds if n in sparse]
    assert type(model.mha.out_proj) is not SparseLinear


def test_magnitude_keeps_the_largest_weights_and_their_values():
    model = _model(torch.float64)
    weight = model.mlp["fc1"].weight.detach().clone()
    sparsify(model, 0.75, include="mlp.fc1", keep="magnitude")
    layer = model.mlp["fc1"]
    k = link_count(36, 12, 0.25)
    expected = torch.zeros_like(weight, dtype=torch.bool).flatten()
    expected[weight.abs().flatten().argsort(descending=True)[:k]] = True
    assert torch.equal(layer.to_dense() != 0, expected.view_as(weight))
    assert torch.equal(layer.to_dense()[expected.view_as(weight)], weight[expected.view_as(weight)])


def test_magnitude_reads_the_weight_in_row_blocks_and_makes_no_tensor_of_its_size(monkeypatch):
    module = sys.modules["sparsenet.sparsify"]  # the module: the package attribute is the function
    from tests.sparse.test_no_dense_allocation import DenseAllocationGuard
    torch.manual_seed(0)
    whole, blocked = nn.Sequential(nn.Linear(400, 300)), nn.Sequential(nn.Linear(400, 300))
    blocked.load_state_dict(whole.state_dict())
    sparsify(whole, 0.9, keep="magnitude")  # one block
    monkeypatch.setattr(module, "MAGNITUDE_BLOCK_ELEMENTS", 3000)  # blocks of 7 rows, the last one shorter
    with DenseAllocationGuard(300 * 400) as guard:
        sparsify(blocked, 0.9, keep="magnitude")
    assert guard.hits == []
    assert torch.equal(whole[0].indices, blocked[0].indices) and torch.equal(whole[0].values, blocked[0].values)


def test_magnitude_breaks_ties_at_random_so_a_pruned_model_keeps_its_zeros_spread(monkeypatch):
    module = sys.modules["sparsenet.sparsify"]
    monkeypatch.setattr(module, "MAGNITUDE_BLOCK_ELEMENTS", 1000)  # ten rows a block
    generator = torch.Generator().manual_seed(0)
    model = nn.Sequential(nn.Linear(100, 100))
    with torch.no_grad():  # a pruned model: half its weights exactly zero
        model[0].weight.mul_(torch.rand(100, 100, generator=generator) < 0.5)
    nonzero = int((model[0].weight != 0).sum())
    sparsify(model, 0.3, keep="magnitude", generator=generator)  # 7,000 links: every non-zero and 2,000 zeros
    rows, cols = model[0].indices
    kept_zero = model[0].values.detach() == 0
    assert int((~kept_zero).sum()) == nonzero
    first_half = int((rows[kept_zero] < 50).sum())
    assert 800 < first_half < 1200 < int(kept_zero.sum()) - 800  # ~1,000 in each half, not all in the first


def test_magnitude_at_full_density_computes_what_the_dense_model_computes():
    dense, x = _model(torch.float64), torch.randn(7, 12, dtype=torch.float64)
    expected = dense(x)
    sparsify(dense, 1e-9, keep="magnitude")  # rounds to every link
    assert all(m.density == 1.0 for m in dense.modules() if isinstance(m, SparseLinear))
    torch.testing.assert_close(dense(x), expected, rtol=1e-12, atol=1e-12)


def test_dtype_device_bias_and_mode_are_kept_and_random_keep_takes_the_weights_values():
    model = _model(torch.float64).eval()
    weight, bias = model.head.weight.detach().clone(), model.head.bias.detach().clone()
    sparsify(model, 0.6, include="head", keep="random", generator=torch.Generator().manual_seed(1))
    head = model.head
    assert head.values.dtype == torch.float64 and head.bias.dtype == torch.float64 and not head.training
    assert head.values.device == weight.device and torch.equal(head.bias.detach(), bias)
    rows, cols = head.indices
    assert torch.equal(head.values.detach(), weight[rows, cols]) and head.nnz == link_count(5, 12, 0.4)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("keep", [None, "magnitude", "random"])
def test_every_keep_rule_builds_on_the_models_device_and_dtype(device, keep):
    model = _model(torch.float64).to(device)
    sparsify(model, 0.6, include="head", keep=keep, generator=torch.Generator().manual_seed(1))
    head = model.head
    assert all(t.device.type == device for t in [*head.parameters(), *head.buffers()])
    assert head.values.dtype == torch.float64 and head.bias.dtype == torch.float64
    out = model(torch.randn(3, 12, dtype=torch.float64, device=device))
    assert out.device.type == device and out.dtype == torch.float64


def test_fresh_topologies_come_from_the_initialiser_and_values_from_the_weight_rule():
    model = _model()
    sparsify(model, 0.5, include="mlp.fc1", init="bsw", weights="zeros", beta=0.0)
    layer = model.mlp["fc1"]
    assert float(layer.values.detach().abs().sum()) == 0.0
    out_degree = torch.bincount(layer.indices[0], minlength=36)
    assert int(out_degree.max() - out_degree.min()) <= 1  # the BSW lattice (beta 0) spreads links evenly


def test_densify_round_trips_values_and_outputs():
    model, x = _model(torch.float64), torch.randn(4, 12, dtype=torch.float64)
    sparsify(model, 0.8, generator=torch.Generator().manual_seed(2))
    weights = {n: m.to_dense() for n, m in model.named_modules() if isinstance(m, SparseLinear)}
    expected = model(x)
    densify(model)
    assert not any(isinstance(m, SparseLinear) for m in model.modules())
    assert all(torch.equal(model.get_submodule(n).weight, w) for n, w in weights.items())
    torch.testing.assert_close(model(x), expected, rtol=1e-12, atol=1e-12)


def test_report_counts_bytes_and_erk_keeps_the_link_budget():
    model = _model()
    report = sparsify(model, 0.9, include="mlp.*", distribution="erk")
    fc1, fc2 = report.modules
    assert fc1.bytes_before == 4 * (36 * 12 + 36)
    # values and int32 columns 4 B per link, int32 row pointers (out + 1), fp32 bias; no cache built yet
    assert fc1.bytes_after == model.mlp["fc1"].memory_bytes()["total"] == 8 * fc1.links + 4 * 37 + 4 * 36
    assert abs(fc1.links + fc2.links - 0.1 * 2 * 36 * 12) <= 2
    assert "mlp.fc1" in str(report) and "total" in str(report).splitlines()[-1]


@pytest.mark.parametrize("arguments,message", [
    (dict(sparsity=0.0), "sparsity must be a number in (0, 1), got 0.0"),
    (dict(sparsity=1.0), "sparsity must be a number in (0, 1), got 1.0"),
    (dict(sparsity=-0.5), "sparsity must be a number in (0, 1)"),
    (dict(sparsity=True), "sparsity must be a number in (0, 1), got True"),
    (dict(sparsity="0.9"), "sparsity must be a number in (0, 1), got '0.9'"),
    (dict(sparsity=0.9, include="decoder.*"), "include glob 'decoder.*' matches no nn.Linear or Conv1D of the model"),
    (dict(sparsity=0.9, exclude=["mlp.fc9"]), "exclude glob 'mlp.fc9' matches no nn.Linear"),
    (dict(sparsity=0.9, include=[3]), "include must be module-name globs"),
    (dict(sparsity=0.9, include="head", exclude="head"), "include and exclude leave no nn.Linear or Conv1D"),
    (dict(sparsity=0.9, keep="largest"), "unknown keep rule 'largest'"),
    (dict(sparsity=0.9, init="lattice"), "unknown init 'lattice'"),
    (dict(sparsity=0.9, weights="he"), "unknown weights 'he'"),
    (dict(sparsity=0.9, gamma=2), "unknown init options ['gamma']"),
    (dict(sparsity=0.9, distribution="normal"), "unknown density distribution 'normal'"),
])
def test_bad_arguments_are_one_line_errors_and_change_nothing(arguments, message):
    model = _model()
    before = _kinds(model)
    with pytest.raises(ValueError) as error:
        sparsify(model, **arguments)
    assert message in str(error.value) and "\n" not in str(error.value)
    assert _kinds(model) == before


def test_a_bare_linear_cannot_be_replaced_in_place():
    with pytest.raises(ValueError, match="the model itself is an nn.Linear"):
        sparsify(nn.Linear(3, 3), 0.5)

"""sparsify and DST check their wiring before any work: one-line refusals for bad arguments (tables), tied
weights, an optimizer that misses the sparse values, and a DST state of another model."""
import pytest
import torch
from torch import nn

from sparsenet import DST, SparseLinear, sparsify


class Tied(nn.Module):
    """An embedding and an output head sharing one weight (a language model's tied ``lm_head``)."""

    def __init__(self, vocab=10, d=6):
        super().__init__()
        self.embed = nn.Embedding(vocab, d)
        self.hidden = nn.Linear(d, d)
        self.lm_head = nn.Linear(d, vocab, bias=False)
        self.lm_head.weight = self.embed.weight

    def forward(self, tokens):
        return self.lm_head(torch.relu(self.hidden(self.embed(tokens))))


def _mlp(seed=0, width=16):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(8, width), nn.ReLU(), nn.Linear(width, width), nn.ReLU(), nn.Linear(width, 3))


def _sparse_mlp(width=16):
    model = _mlp(width=width)
    sparsify(model, 0.5, exclude="4", generator=torch.Generator().manual_seed(0))
    return model


def _kinds(model):
    return [type(m).__name__ for m in model.modules()]


def _one_line(error) -> str:
    text = str(error.value)
    assert "\n" not in text, text
    return text


def test_a_tied_head_is_refused_naming_both_modules_and_nothing_is_replaced():
    model = Tied()
    before = _kinds(model)
    with pytest.raises(ValueError) as error:
        sparsify(model, 0.5)
    text = _one_line(error)
    assert "lm_head.weight is shared with the module 'embed'" in text
    assert "exclude=['lm_head']" in text and "nn.Parameter(module.weight.detach().clone())" in text
    assert _kinds(model) == before and model.lm_head.weight is model.embed.weight


def test_a_tied_head_is_sparsified_once_excluded_or_untied():
    model = Tied()
    sparsify(model, 0.5, exclude=["lm_head"])
    assert isinstance(model.hidden, SparseLinear) and model.lm_head.weight is model.embed.weight  # still tied

    untied = Tied()
    untied.lm_head.weight = nn.Parameter(untied.lm_head.weight.detach().clone())
    sparsify(untied, 0.5)
    assert isinstance(untied.lm_head, SparseLinear) and isinstance(untied.embed, nn.Embedding)


def test_a_module_registered_twice_or_sharing_storage_is_refused():
    shared = nn.Linear(4, 4)
    twice = nn.ModuleDict({"a": shared, "b": nn.Sequential(shared)})
    with pytest.raises(ValueError) as error:
        sparsify(twice, 0.5)
    assert "a.weight is shared with the module 'b.0'" in _one_line(error)

    views = nn.ModuleDict({"a": nn.Linear(4, 4), "b": nn.Linear(4, 4)})
    views["b"].weight = nn.Parameter(views["a"].weight.data)  # another Parameter on the same storage
    with pytest.raises(ValueError) as error:
        sparsify(views, 0.5, include="b")
    assert "b.weight is shared with the module 'a'" in _one_line(error)


OPTIMIZER = object()  # stands for "an optimizer of the model's parameters" in the table

DST_BAD = [  # (DST arguments besides the model, the expected message fragment)
    (dict(total_steps=0), "total_steps must be an int >= 1"),
    (dict(total_steps=-5), "total_steps must be an int >= 1"),
    (dict(total_steps=10.5), "total_steps must be an int >= 1"),
    (dict(total_steps=True), "total_steps must be an int >= 1"),
    (dict(total_steps="100"), "total_steps must be an int >= 1"),
    (dict(total_steps=100, update_interval=0), "update_interval must be an int >= 1"),
    (dict(total_steps=100, update_interval=-1), "update_interval must be an int >= 1"),
    (dict(total_steps=100, update_interval=2.5), "update_interval must be an int >= 1"),
    (dict(total_steps=100, zeta=1.0), "zeta must be a number in [0, 1)"),
    (dict(total_steps=100, zeta=-0.1), "zeta must be a number in [0, 1)"),
    (dict(total_steps=100, zeta="0.3"), "zeta must be a number in [0, 1)"),
    (dict(total_steps=100, zeta=float("nan")), "zeta must be a number in [0, 1)"),
    (dict(total_steps=100, sparsity=1.5), "sparsity must be a number in (0, 1) or None"),
    (dict(total_steps=100, sparsity=0.0), "sparsity must be a number in (0, 1) or None"),
    (dict(total_steps=100, sparsity=1.0), "sparsity must be a number in (0, 1) or None"),
    (dict(total_steps=100, sparsity=-0.2), "sparsity must be a number in (0, 1) or None"),
    (dict(total_steps=100, sparsity=True), "sparsity must be a number in (0, 1) or None"),
    (dict(total_steps=100, seed=1.5), "seed must be an int"),
    (dict(total_steps=100, update_interval=100, method="set"), "update_interval 100 leaves no topology update"),
    (dict(total_steps=100, update_interval=80, method="rigl"), "choose update_interval < 75"),
    (dict(total_steps=1, method="rigl"), "leaves no topology update before step 0 (of total_steps 1) for the dynamic "
     "method 'rigl': choose a longer total_steps"),
    (dict(total_steps=100, optimizer=None), "optimizer must be a torch.optim.Optimizer or a list of them"),
    (dict(total_steps=100, optimizer=[]), "optimizer must be a torch.optim.Optimizer or a list of them"),
    (dict(total_steps=100, method="chtx"), "unknown method 'chtx'"),
    (dict(total_steps=100, init="brf"), "DST takes no init= or weights="),
]


@pytest.mark.parametrize("arguments,message", DST_BAD)
def test_bad_dst_arguments_are_one_line_errors_at_construction(arguments, message):
    model = _sparse_mlp()
    arguments = dict(arguments)
    optimizer = arguments.pop("optimizer", OPTIMIZER)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1) if optimizer is OPTIMIZER else optimizer
    with pytest.raises(ValueError) as error:
        DST(model, optimizer, **arguments)
    assert message in _one_line(error)


def test_good_boundary_values_are_accepted():
    model = _sparse_mlp()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    DST(model, optimizer, method="set", total_steps=2, update_interval=1, zeta=0.0, sparsity=0.5)
    DST(model, optimizer, method="static", total_steps=1, update_interval=1000)  # static never updates
    DST(model, [optimizer], method="set", total_steps=100, update_interval=10, zeta=0.99, sparsity=0.99)


def test_an_optimizer_built_before_sparsify_is_refused():
    model = _mlp()
    stale = torch.optim.Adam(model.parameters())  # holds the dense weights sparsify replaces
    sparsify(model, 0.5, exclude="4")
    with pytest.raises(ValueError) as error:
        DST(model, stale, method="set", total_steps=100, update_interval=10)
    text = _one_line(error)
    assert "holds none of the sparse layers' values (the first: '0')" in text
    assert "build the optimizer after sparsenet.sparsify" in text


def test_an_optimizer_missing_one_layers_values_is_refused_and_a_list_that_covers_them_is_taken():
    model = _sparse_mlp()
    first = torch.optim.SGD([model[0].values, model[0].bias], lr=0.1)
    with pytest.raises(ValueError) as error:
        DST(model, first, method="set", total_steps=100, update_interval=10)
    assert "does not hold the values of the sparse layer '2' (1 of 2 missing)" in _one_line(error)
    rest = torch.optim.Adam([model[2].values, model[2].bias, *model[4].parameters()])
    DST(model, [first, rest], method="set", total_steps=100, update_interval=10)


def _trained_state(width=16):
    model = _sparse_mlp(width)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    dst = DST(model, optimizer, method="set", total_steps=40, update_interval=5, seed=1)
    x = torch.randn(4, 8)
    for _ in range(12):
        model(x).square().mean().backward()
        optimizer.step()
        dst.step()
        optimizer.zero_grad()
    return dst.state_dict()


def _fresh_dst(model):
    return DST(model, torch.optim.SGD(model.parameters(), lr=0.1), method="set", total_steps=40, update_interval=5)


def test_a_state_loads_into_the_same_model_and_records_the_shapes():
    state = _trained_state()
    assert state["shapes"] == {"0": [16, 8], "2": [16, 16]}
    dst = _fresh_dst(_sparse_mlp())
    dst.load_state_dict(state)
    assert dst.steps == 12


def _other_names():
    model = nn.ModuleDict({"encoder": _mlp()})
    sparsify(model, 0.5, exclude="encoder.4")
    return model


def _with(state, **changes):
    return {**state, **changes}


FOREIGN = [  # (model to load into, how to change the state, expected message fragment)
    (lambda: _sparse_mlp(width=12), lambda s: s,
     "the DST state does not fit this model: sparse layer '0' is 16x8 in the state, 12x8 here"),
    (_other_names, lambda s: s,
     "the DST state does not fit this model: the state's sparse layer '0' is not in the model (state: 2 sparse "
     "layers, model: 2)"),
    (_sparse_mlp, lambda s: _with(s, shapes={"0": [16, 8]}),
     "this model's sparse layer '2' is not in the state (state: 1 sparse layers, model: 2)"),
    (_sparse_mlp, lambda s: {k: v for k, v in s.items() if k != "shapes"} | {"engine": {**s["engine"],
                                                                                        "layers": ["0", "9"]}},
     "the state's sparse layer '9' is not in the model"),
    (_sparse_mlp, lambda s: _with(s, steps=-1), "the DST state's steps must be an int >= 0, got -1"),
    (_sparse_mlp, lambda s: {"model": {}}, "not a DST state (DST.state_dict()'s output): got ['model']"),
    (_sparse_mlp, lambda s: [1, 2], "not a DST state (DST.state_dict()'s output): got list"),
]


@pytest.mark.parametrize("build,change,message", FOREIGN)
def test_a_foreign_state_is_refused_naming_the_first_mismatching_layer(build, change, message):
    dst = _fresh_dst(build())
    with pytest.raises(ValueError) as error:
        dst.load_state_dict(change(_trained_state()))
    assert message in _one_line(error)
    assert dst.steps == 0  # nothing loaded


def test_a_state_without_shapes_still_loads():
    state = {k: v for k, v in _trained_state().items() if k != "shapes"}
    dst = _fresh_dst(_sparse_mlp())
    dst.load_state_dict(state)
    assert dst.steps == 12

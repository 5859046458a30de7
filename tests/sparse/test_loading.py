"""Loading a layer's state: each defect of a saved CSR alone is refused with a message naming the nested key, the
values' length is checked against the links, and the ordinary strict rules (missing, unexpected, mis-sized keys)
still hold; ``from_dense`` by value, with its refusals."""
import re

import pytest
import torch
from torch import nn

from sparsenet.sparse import SparseLinear


def _model() -> nn.Sequential:
    return nn.Sequential(SparseLinear(20, 10, density=0.3, generator=torch.Generator().manual_seed(1)))


def _state() -> dict:
    return {k: v.clone() for k, v in _model().state_dict().items()}


def _swap_two_steps(crow: torch.Tensor) -> torch.Tensor:
    """Pointers that still start at 0 and end at nnz, with one step down in between."""
    crow = crow.clone()
    crow[1], crow[2] = crow[2].clone(), crow[1].clone()
    return crow


CSR = r"^0\.crow and 0\.col are not the CSR of a \(10, 20\) layer$"
DEFECTS = [  # (what is wrong, change of the state, message)
    ("one pointer too many", lambda s: s.update({"0.crow": torch.cat((s["0.crow"], s["0.crow"][-1:]))}), CSR),
    ("2-D columns", lambda s: s.update({"0.col": s["0.col"][None]}), CSR),
    ("a pointer step down", lambda s: s.update({"0.crow": _swap_two_steps(s["0.crow"])}), CSR),
    ("pointers not starting at 0", lambda s: s.update({"0.crow": s["0.crow"].clamp(min=1)}), CSR),
    ("pointers not ending at nnz", lambda s: s.update({"0.col": s["0.col"][:-1]}), CSR),
    ("values shorter than the links", lambda s: s.update({"0.values": s["0.values"][:-1]}),
     r"0.values has shape \((\d+),\), expected \((\d+),\)"),
]


@pytest.mark.parametrize("change,message", [d[1:] for d in DEFECTS], ids=[d[0] for d in DEFECTS])
def test_each_defect_of_a_saved_csr_alone_is_refused(change, message):
    state = _state()
    assert int(state["0.crow"][1]) >= 1 and int(state["0.crow"][2]) > int(state["0.crow"][1])  # the cases need it
    change(state)
    with pytest.raises(ValueError, match=message) as error:
        _model().load_state_dict(state)
    if "values" in message:
        saved, expected = re.search(message, str(error.value)).groups()
        assert int(saved) + 1 == int(expected) == int(state["0.crow"][-1])


def test_an_older_indices_state_is_checked_under_its_own_key():
    state = _state()
    rows = torch.repeat_interleave(torch.arange(10), state["0.crow"].long().diff())
    indices = torch.stack((rows, state.pop("0.col").long()))
    del state["0.crow"]
    state["0.indices"] = indices.flip(1)
    with pytest.raises(ValueError, match=r"^0\.indices is not sorted row-major"):
        _model().load_state_dict(state)
    state["0.indices"], state["0.values"] = indices, state["0.values"][:-2]
    with pytest.raises(ValueError, match=rf"^0\.values has shape \({indices.shape[1] - 2},\), "
                                         rf"expected \({indices.shape[1]},\)$"):
        _model().load_state_dict(state)


@pytest.mark.parametrize("change,error", [
    (lambda s: s.pop("0.crow"), "Missing key"),
    (lambda s: s.pop("0.bias"), "Missing key"),
    (lambda s: s.update({"0.extra": torch.zeros(1)}), "Unexpected key"),
    (lambda s: s.update({"0.bias": torch.zeros(11)}), "size mismatch for 0.bias"),
])
def test_the_strict_rules_still_hold(change, error):
    state = _state()
    change(state)
    with pytest.raises(RuntimeError, match=error):
        _model().load_state_dict(state)


def test_from_dense_takes_the_nonzero_entries_by_default_and_keeps_the_dtype():
    weight = torch.tensor([[0.0, 1.0, 2.0], [1.0, 0.0, 0.0]], dtype=torch.float64)
    layer = SparseLinear.from_dense(weight)
    assert layer.indices.tolist() == [[0, 0, 1], [1, 2, 0]] and layer.values.tolist() == [1.0, 2.0, 1.0]
    assert layer.values.dtype == torch.float64 and layer.bias is None
    assert (layer.in_features, layer.out_features) == (3, 2)
    masked = SparseLinear.from_dense(weight, mask=torch.tensor([[1, 0, 0], [1, 1, 0]]), bias=torch.ones(2))
    assert masked.indices.tolist() == [[0, 1, 1], [0, 0, 1]] and masked.values.tolist() == [0.0, 1.0, 0.0]
    assert masked.bias.dtype == torch.float64 and masked.bias.tolist() == [1.0, 1.0]


@pytest.mark.parametrize("weight,mask,message", [
    (torch.ones(4), None, r"^weight must be 2-D \(out, in\), got shape \(4,\)$"),
    (torch.ones(2, 3), torch.ones(3, 2), r"^mask shape \(3, 2\) differs from weight shape \(2, 3\)$"),
])
def test_from_dense_refuses(weight, mask, message):
    with pytest.raises(ValueError, match=message):
        SparseLinear.from_dense(weight, mask)

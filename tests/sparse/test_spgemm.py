"""Leak-free sparse products against a dense float64 reference, and the guard that link prediction uses them."""
import pytest
import torch

from sparsenet.evolution import linkpred
from sparsenet.sparse.spgemm import sparse_mm, sparse_sum


def _random(rows, cols, density, seed, layout):
    g = torch.Generator().manual_seed(seed)
    dense = torch.rand(rows, cols, generator=g, dtype=torch.float64) * (torch.rand(rows, cols, generator=g) < density)
    return dense, dense.to_sparse_csr() if layout == "csr" else dense.to_sparse()


@pytest.mark.parametrize("layouts", [("csr", "csr"), ("csr", "coo"), ("coo", "coo")])
@pytest.mark.parametrize("shape", [(7, 5, 9), (1, 1, 1), (30, 12, 4)])
def test_product_and_sum_match_dense(layouts, shape):
    m, k, n = shape
    a_dense, a = _random(m, k, 0.3, 1, layouts[0])
    b_dense, b = _random(k, n, 0.4, 2, layouts[1])
    c_dense, c = _random(m, n, 0.2, 3, layouts[1])
    product = sparse_mm(a, b)
    assert product.layout == torch.sparse_coo and product.is_coalesced()
    torch.testing.assert_close(product.to_dense(), a_dense @ b_dense, rtol=1e-12, atol=0)
    total = sparse_sum(product, c)
    assert total.is_coalesced()
    torch.testing.assert_close(total.to_dense(), a_dense @ b_dense + c_dense, rtol=1e-12, atol=0)


@pytest.mark.parametrize("variant", linkpred.VARIANTS)
@pytest.mark.parametrize("gemm_weights", [linkpred.GEMM_WEIGHTS, 0])
def test_link_prediction_never_multiplies_or_adds_csr_pairs(monkeypatch, variant, gemm_weights):
    # torch.sparse.mm(CSR, CSR) and CSR + CSR leak ~8 bytes per output entry per call on CPU (torch 2.13).
    mm, add = torch.sparse.mm, torch.Tensor.__add__

    def checked_mm(a, b):
        assert not (a.layout == torch.sparse_csr and b.layout == torch.sparse_csr), "CSR x CSR product"
        return mm(a, b)

    def checked_add(a, b):
        assert not (a.layout == torch.sparse_csr and getattr(b, "layout", None) == torch.sparse_csr), "CSR + CSR"
        return add(a, b)

    monkeypatch.setattr(torch.sparse, "mm", checked_mm)
    monkeypatch.setattr(torch.Tensor, "__add__", checked_add)
    monkeypatch.setattr(linkpred, "GEMM_WEIGHTS", gemm_weights)
    g = torch.Generator().manual_seed(0)
    keys = torch.randperm(60 * 40, generator=g)[:300].sort().values
    indices = torch.stack((keys // 40, keys % 40))
    blocks = list(linkpred.ch_score_blocks(indices, (60, 40), variant, memory_budget=2**16))
    assert sum((b.dense > 0).sum().item() if b.dense is not None else b.sparse[0].numel() for b in blocks) > 0

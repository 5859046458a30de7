"""Forward+backward time and training memory of one layer on a device: dense vs dense+mask vs ``SparseLinear``
(``cli.py bench``).

dense fp32:  ``nn.Linear`` in float32 (on CUDA with TF32 off: ``float32_matmul_precision("highest")``).
dense TF32:  the same layer with TF32 matrix products (``float32_matmul_precision("high")``); CUDA only.
dense bf16:  the same layer under ``torch.autocast(dtype=torch.bfloat16)``, the way mixed-precision training
             runs it (float32 master weights, bf16 products).
dense+mask:  ``nn.Linear`` whose weight is multiplied by a 0/1 mask in forward (what published DST code does),
             float32; its memory adds the mask.
sparse:      ``SparseLinear``, float32.
sparse bf16: the same layer under bf16 autocast (the kernel's own policy: bf16 products where the device has
             a kernel for them, float32 where it has none; float32 value gradients).
Memory = weights + gradients + Adam moments (+ mask / indices and CSR caches), counted tensor bytes (the same
on every device; bf16 autocast keeps float32 weights, so its bytes are dense fp32's).

Each cell is the median of ``repeats`` forward+backward steps after ``warmup`` untimed ones: wall clock on
the CPU, CUDA events on a GPU (``timing.median_ms``). The input ``(batch, in)`` is row-major with
``requires_grad`` (the costliest layout for the sparse layer: it transposes the input and the input
gradient; chained sparse layers skip both). Topologies and inputs are drawn on the CPU from one seed, then
moved, so every device measures the same layer.

With ``profile`` the sparse step's time is split, by timing, into products (the kernel's three products alone
on operands already laid out: ``forward_product``, ``input_grad_product``, ``values_grad_product``, including
the ``values[perm]`` gather that builds Wᵀ's CSR for the input gradient), copies (what the row-major layout
costs: the step's time minus the same step on a feature-major input and output gradient, the layout the kernel
reads) and bookkeeping (the rest of the feature-major step: autograd, tensor construction, the bias sum). A
feature-major input always takes the kernel's unblocked path, so where the row-major step goes in batch
blocks the split compares the blocked row-major step with an unblocked feature-major one: its copies
understate what the blocked step copies by the time blocking saves. Not ``torch.profiler``: under it this
build's transposing copies run ~5x slower than without it, which made copies look like 35-84% of the step.
"""
import contextlib

import torch
from torch import nn
from torch.nn import functional as F

from ..sparse import SparseLinear, total_memory
from ..sparse.functional import forward_product, input_grad_product, values_grad_product
from .timing import machine_line, median_ms

SHAPES = [  # (out_features, in_features, rows of input): the paper MLP's layers and two Transformer FFN ones
    (1568, 784, 32),
    (1568, 1568, 32),
    (2048, 512, 1024),
    (512, 2048, 1024),
]
GPU_SHAPE = (8192, 8192, 4096)  # large enough for unstructured sparsity to pay on a GPU; minutes a step on a CPU
SPARSITIES = [0.9, 0.95, 0.99, 0.999]
MIB = 2**20


def default_shapes(device: torch.device) -> list[tuple[int, int, int]]:
    """``SHAPES``, plus ``GPU_SHAPE`` on CUDA."""
    return SHAPES + ([GPU_SHAPE] if torch.device(device).type == "cuda" else [])


def parse_shapes(text: str | tuple | list) -> list[tuple[int, int, int]]:
    """``"OUTxINxBATCH,..."`` (or a sequence of such strings) as ``[(out, in, batch), ...]``; ``ValueError``
    (one line) for anything else."""
    items = [text] if isinstance(text, str) else [str(item) for item in text]
    shapes = []
    for item in (part.strip() for joined in items for part in joined.split(",")):
        sizes = item.lower().replace("×", "x").split("x")
        if len(sizes) != 3 or not all(size.isdigit() and int(size) > 0 for size in sizes):
            raise ValueError(f"shape {item!r} is not OUTxINxBATCH with three positive integers, e.g. 8192x8192x4096")
        shapes.append(tuple(int(size) for size in sizes))
    if not shapes:
        raise ValueError("no shape given; e.g. --shapes 8192x8192x4096")
    return shapes


def check_sparsities(sparsities) -> list[float]:
    """The sparsities as floats in (0, 1); ``ValueError`` (one line) otherwise."""
    values = [sparsities] if isinstance(sparsities, (int, float)) else list(sparsities)
    if not values:
        raise ValueError("no sparsity given")
    for value in values:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 < value < 1.0:
            raise ValueError(f"sparsity must be in (0, 1), got {value!r}")
    return [float(value) for value in values]


@contextlib.contextmanager
def float32_matmul(precision: str):
    """``torch.set_float32_matmul_precision(precision)`` inside the block (``highest``: IEEE float32;
    ``high``: TF32 on CUDA), the previous setting restored after it."""
    before = torch.get_float32_matmul_precision()
    torch.set_float32_matmul_precision(precision)
    try:
        yield
    finally:
        torch.set_float32_matmul_precision(before)


def _step(forward, x, params, grad, autocast_dtype=None):
    """One forward+backward of ``forward`` on ``x`` with output gradient ``grad``, the forward under autocast to
    ``autocast_dtype`` when given (gradients set to None first)."""
    if autocast_dtype is not None:
        grad = grad.to(autocast_dtype)  # the dtype of the autocast output

    def step():
        for p in params:
            p.grad = None
        x.grad = None
        with (torch.autocast(x.device.type, dtype=autocast_dtype) if autocast_dtype is not None
              else contextlib.nullcontext()):
            y = forward(x)
        y.backward(grad)
    return step


def _step_ms(forward, x, params, grad, repeats, warmup, autocast_dtype=None, precision="highest") -> float:
    with float32_matmul(precision):
        return median_ms(_step(forward, x, params, grad, autocast_dtype), repeats, warmup, x.device)


def time_shares(sparse: SparseLinear, x: torch.Tensor, repeats: int, warmup: int) -> dict:
    """Shares of the sparse layer's forward+backward step on the row-major ``x (rows, in)`` (on the layer's
    device) by timing: ``{"products", "copies", "bookkeeping"}``, summing to 1 (a part measured below 0 counts
    as 0). ``copies`` = step time minus the step on a feature-major input and output gradient (no layout
    change); ``products`` = the kernel's three products on operands laid out as it wants them;
    ``bookkeeping`` = the feature-major step minus the products."""
    params = list(sparse.parameters())
    device = x.device
    grad = torch.ones(x.shape[0], sparse.out_features, device=device)
    row_ms = _step_ms(sparse, x, params, grad, repeats, warmup)
    x_fm = x.detach().t().contiguous().t().requires_grad_()  # same values, feature-major strides
    grad_fm = torch.ones(sparse.out_features, x.shape[0], device=device).t()
    feature_major_ms = _step_ms(sparse, x_fm, params, grad_fm, repeats, warmup)
    values, x_t = sparse.values.detach(), x_fm.detach().t()
    grad_y_t, cache = grad_fm.t(), sparse.cache
    bias = None if sparse.bias is None else sparse.bias.detach()
    products_ms = median_ms(lambda: (forward_product(cache, values, x_t, bias),
                                     input_grad_product(cache, values, grad_y_t),
                                     values_grad_product(cache, values, grad_y_t, x_t)), repeats, warmup, device)
    parts = {"products": products_ms, "copies": max(row_ms - feature_major_ms, 0.0),
             "bookkeeping": max(feature_major_ms - products_ms, 0.0)}
    overall = sum(parts.values()) or 1.0
    return {kind: value / overall for kind, value in parts.items()}


def measure(out_f: int, in_f: int, rows: int, sparsities=SPARSITIES, repeats: int = 20, warmup: int = 5,
            seed: int = 0, profile: bool = False, device: torch.device | str = "cpu") -> list[dict]:
    """One row per sparsity on ``device``: times in ms (``dense_ms``, ``tf32_ms`` (None off CUDA), ``bf16_ms``,
    ``masked_ms``, ``sparse_ms``, ``sparse_bf16_ms``) and counted memory in bytes for the layers (and with
    ``profile`` the sparse layer's ``time_shares``)."""
    device = torch.device(device)
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(rows, in_f, generator=generator).to(device).requires_grad_()
    grad = torch.ones(rows, out_f, device=device)
    dense = nn.Linear(in_f, out_f).to(device)
    dense_params = list(dense.parameters())
    dense_ms = _step_ms(dense, x, dense_params, grad, repeats, warmup)
    tf32_ms = (_step_ms(dense, x, dense_params, grad, repeats, warmup, precision="high")
               if device.type == "cuda" else None)
    bf16_ms = _step_ms(dense, x, dense_params, grad, repeats, warmup, autocast_dtype=torch.bfloat16)
    dense_bytes = total_memory(dense, "adam")[1]
    result = []
    for sparsity in sparsities:
        sparse = SparseLinear(in_f, out_f, density=1 - sparsity, generator=generator).to(device)
        mask = sparse.to_dense() != 0
        masked_ms = _step_ms(lambda inp: F.linear(inp, dense.weight * mask, dense.bias), x, dense_params, grad,
                             repeats, warmup)
        sparse_ms = _step_ms(sparse, x, list(sparse.parameters()), grad, repeats, warmup)
        sparse_bf16_ms = _step_ms(sparse, x, list(sparse.parameters()), grad, repeats, warmup,
                                  autocast_dtype=torch.bfloat16)
        sparse_bytes = total_memory(sparse, "adam")[0]
        result.append(dict(shape=f"{out_f}x{in_f}", rows=rows, sparsity=sparsity, nnz=sparse.nnz,
                           dense_ms=dense_ms, tf32_ms=tf32_ms, bf16_ms=bf16_ms, masked_ms=masked_ms,
                           sparse_ms=sparse_ms, sparse_bf16_ms=sparse_bf16_ms, dense_bytes=dense_bytes,
                           masked_bytes=dense_bytes + mask.numel(), sparse_bytes=sparse_bytes,
                           **({"shares": time_shares(sparse, x, repeats, warmup)} if profile else {})))
        del sparse, mask
    return result


def _ms(value: float | None) -> str:
    return "—" if value is None else f"{value:.3f}"


def _ratio(numerator: float | None, sparse_ms: float) -> str:
    return "—" if numerator is None else f"{numerator / sparse_ms:.1f}×"


COLUMNS = ("| out×in | batch | sparsity | dense fp32 ms | dense TF32 ms | dense bf16 ms | dense+mask ms | sparse ms "
           "| sparse bf16 ms | fp32/sparse | TF32/sparse | mask/sparse | bf16/sparse bf16 | dense MiB "
           "| dense+mask MiB | sparse MiB | sparse/dense mem |")


def format_table(rows: list[dict]) -> str:
    """Markdown table with the ratio columns (each float32 dense form's time over the float32 sparse layer's,
    dense bf16's over sparse bf16's; the sparse layer's memory share) and, for profiled rows, the sparse step's
    shares."""
    profiled = bool(rows) and "shares" in rows[0]
    lines = [COLUMNS + (" sparse: products | copies | bookkeeping |" if profiled else ""),
             "|---|---:|---:" + "|---:" * 14 + "|" + ("---:|---:|---:|" if profiled else "")]
    for r in rows:
        shares = r.get("shares")
        sparse_ms = r["sparse_ms"]
        lines.append(f"| {r['shape']} | {r['rows']} | {r['sparsity']:.3f} | {_ms(r['dense_ms'])} | "
                     f"{_ms(r['tf32_ms'])} | {_ms(r['bf16_ms'])} | {_ms(r['masked_ms'])} | {_ms(sparse_ms)} | "
                     f"{_ms(r['sparse_bf16_ms'])} | {_ratio(r['dense_ms'], sparse_ms)} | "
                     f"{_ratio(r['tf32_ms'], sparse_ms)} | {_ratio(r['masked_ms'], sparse_ms)} | "
                     f"{_ratio(r['bf16_ms'], r['sparse_bf16_ms'])} | "
                     f"{r['dense_bytes'] / MIB:.2f} | {r['masked_bytes'] / MIB:.2f} | {r['sparse_bytes'] / MIB:.3f} | "
                     f"{r['sparse_bytes'] / r['dense_bytes']:.2%} |"
                     + (f" {shares['products']:.0%} | {shares['copies']:.0%} | {shares['bookkeeping']:.0%} |"
                        if shares else ""))
    return "\n".join(lines)


def bench(repeats: int = 20, warmup: int = 5, shapes=None, sparsities=SPARSITIES, device: torch.device | str = "cpu",
          progress=None, profile: bool = False) -> list[dict]:
    """``measure`` every shape (default ``default_shapes(device)``) at every sparsity; the rows in order."""
    device = torch.device(device)
    shapes = default_shapes(device) if shapes is None else shapes
    rows = []
    for out_f, in_f, n in (progress(shapes) if progress else shapes):
        rows.extend(measure(out_f, in_f, n, sparsities, repeats, warmup, profile=profile, device=device))
    return rows


def report(rows: list[dict], repeats: int, warmup: int, device: torch.device | str = "cpu") -> str:
    """The machine line, how the cells were timed, and ``format_table``."""
    device = torch.device(device)
    clock = "CUDA events" if device.type == "cuda" else "wall clock"
    return (f"Machine: {machine_line(device)}; median of {repeats} forward+backward steps after {warmup} warm-up "
            f"({clock}).\n\n" + format_table(rows))

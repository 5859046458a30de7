"""The devices and precisions the parity tests run on: the CPU, and CUDA when this machine has it (so a GPU
machine tests the CUDA kernels instead of skipping them), each in every precision it supports.

``DEVICES``: use as ``@pytest.mark.parametrize("device", DEVICES)``.

``PRECISIONS``: how a test runs its layers and inputs, each with the tolerance of a result against a dense
float64 reference computed from the same (rounded) parameters and inputs:

=====================  ==============================  ==================  =========
name                   parameters and inputs           autocast            tolerance
=====================  ==============================  ==================  =========
``float64``            float64                         off                 1e-12
``float32``            float32                         off                 1e-5
``bfloat16``           bfloat16 (a layer ``.to()``)    off                 2e-2
``autocast-bfloat16``  float32 (master weights)        bfloat16            2e-2
``autocast-float16``   float32 (master weights)        float16             5e-3
=====================  ==============================  ==================  =========

The tolerance bounds the error relative to the sum of the absolute terms of each entry (``assert_within``):
a dot product of n terms in a precision of unit roundoff u is off by at most about n·u of that sum, and a
result rounded to bf16 (u = 2⁻⁸) by 2⁻⁸ of itself; CUDA's bf16/fp16 products also round their inputs (about
3u in all). Bounding by the terms, not by the result, keeps the test honest where terms cancel.

``DEVICE_PRECISIONS``: the (device, precision) pairs this machine supports (bf16 on CUDA only where
``torch.cuda.is_bf16_supported()``): use as ``@pytest.mark.parametrize("device,precision", DEVICE_PRECISIONS)``.
"""
import contextlib
from dataclasses import dataclass

import pytest
import torch

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


@dataclass(frozen=True)
class Precision:
    """One way of running a test: ``dtype`` of the parameters and inputs, ``autocast`` dtype (None: off), and
    ``tolerance`` against a dense float64 reference (see ``assert_within``)."""
    name: str
    dtype: torch.dtype
    autocast: torch.dtype | None
    tolerance: float

    @property
    def compute_dtype(self) -> torch.dtype:
        """The dtype a layer's output comes in: the autocast dtype, else the parameters'."""
        return self.autocast or self.dtype

    def context(self, device: str):
        """The block a forward pass runs in: ``torch.autocast`` on ``device`` with ``autocast``, or nothing."""
        if self.autocast is None:
            return contextlib.nullcontext()
        return torch.autocast(torch.device(device).type, dtype=self.autocast)

    def __str__(self) -> str:
        return self.name


PRECISIONS = [
    Precision("float64", torch.float64, None, 1e-12),
    Precision("float32", torch.float32, None, 1e-5),
    Precision("bfloat16", torch.bfloat16, None, 2e-2),
    Precision("autocast-bfloat16", torch.float32, torch.bfloat16, 2e-2),
    Precision("autocast-float16", torch.float32, torch.float16, 5e-3),
]


def supports(device: str, precision: Precision) -> bool:
    """Whether ``device`` runs ``precision``: every precision on the CPU; bf16 on CUDA where the card has it."""
    if torch.device(device).type == "cuda" and torch.bfloat16 in (precision.dtype, precision.autocast):
        return torch.cuda.is_bf16_supported()
    return True


DEVICE_PRECISIONS = [pytest.param(device, precision, id=f"{device}-{precision}")
                     for device in DEVICES for precision in PRECISIONS if supports(device, precision)]


def assert_within(actual: torch.Tensor, expected: torch.Tensor, scale: torch.Tensor, tolerance: float) -> None:
    """``|actual - expected| <= tolerance · scale`` entrywise, compared in float64: ``expected`` the float64
    reference, ``scale`` the sum of the absolute values of the terms behind each entry (an entry of no terms
    must then be exact)."""
    assert actual.shape == expected.shape, f"shape {tuple(actual.shape)}, expected {tuple(expected.shape)}"
    error = (actual.double() - expected.double()).abs()
    bound = tolerance * scale.double()
    if bool((error <= bound).all()):
        return
    worst = (error - bound).argmax()
    raise AssertionError(f"off by {error.flatten()[worst].item():.3g} at entry {worst.item()}, allowed "
                         f"{bound.flatten()[worst].item():.3g} (largest error {error.max().item():.3g})")

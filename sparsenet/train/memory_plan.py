"""The memory a run will take, planned from its sizes before the model exists, and the check that it fits: the
MLP's (``plan_mlp``), the Transformer's (``plan_transformer``) and the language model's (``plan_lm``).

Counted exactly (the same tensors ``sparsenet.sparse.layer_memory`` counts once they exist): values, sparse
structure (CSR ``crow``/``col`` and the transposed cache ``crow_t``/``col_t``/``perm``, int32 while sizes fit),
gradients, optimizer state, the data set's tensors. Estimated: activations (the training batch's saved
tensors and gradients, an evaluation chunk's) and the topology update's workspace (the link-prediction score
blocks' budget, the layer-wide pair lists, wedges or path factors of CH link prediction, and per-link
temporaries, for the layer that needs most). The sequence plans count one worst-case batch and leave the corpus
out (it is read after the check)."""
import os
from dataclasses import dataclass, fields

from ..data.corpora import CORPORA
from ..evolution import REGROWTHS
from ..evolution.linkpred import DEFAULT_BUDGET, planned_structure_bytes
from ..sparse.csr import index_dtype
from ..sparse.keys import link_count
from .config import start_density

GIB = 2**30
FLOAT = 4  # float32 bytes
ACTIVATION_COPIES = 4  # per hidden neuron and training image: pre-activation, activation, their gradients
EVALUATION_COPIES = 3  # per neuron and evaluated image: a layer's input, output and transposed copy
UPDATE_BYTES_PER_LINK = 64  # engine temporaries per link of the updated layer: 56 measured (SET, 333k x 333k)
HALF = 2  # bf16/fp16 bytes: autocast keeps the products' outputs, which backward saves, in the low precision
ADAM_SLOTS = 2  # Adam's and AdamW's moments per value
# What backward keeps per token and layer, in activation elements, (× d_model, × d_ff): counted from the layers'
# forward (inputs, norms, projections' outputs, dropout masks, residual sums) and checked against the allocated
# peak of a training step on CPU (tests/train/test_memory_plans.py): the Transformer's layers hold 0.84 of
# their count (d_model 128, d_ff 512)
ENCODER_SAVED = (10, 3)
DECODER_SAVED = (18, 3)  # + cross-attention: its query side, and the keys and values of the memory
# SwiGLU blocks: (10, 5) counted (gate, up, silu(gate), their product, the down projection's input copy),
# measured 0.97 of that at d_model 128 and 1.03 at d_model 32; one more of each for backward's transients
LM_BLOCK_SAVED = (11, 6)
# per head and (query, key) pair of the Transformer's unfused attention, fp32 (autocast runs softmax in fp32):
# scores, softmax, dropout; measured 2.9. The language model's fused attention keeps no score matrix
ATTENTION_SAVED = 3
LOGIT_COPIES = 3  # per token and vocabulary entry, fp32: the logits, the loss's log-softmax, their gradient (2.9)


@dataclass(frozen=True)
class MemoryPlan:
    """Bytes by kind; ``total`` is their sum."""
    values: int
    structure: int
    gradients: int
    optimizer: int
    data: int
    activations: int
    update: int

    @property
    def total(self) -> int:
        return sum(getattr(self, f.name) for f in fields(self))

    def describe(self) -> str:
        """One line: each kind and the total."""
        parts = ", ".join(f"{f.name} {_size(getattr(self, f.name))}" for f in fields(self))
        return f"memory plan: {parts}; total {_size(self.total)}"


def _size(count: int) -> str:
    return f"{count / GIB:.2f} GiB" if count >= GIB else f"{count / 2**20:.1f} MiB"


def structure_bytes(out_features: int, in_features: int, nnz: int) -> int:
    """Bytes of one sparse layer's CSR storage and transposed cache."""
    size = 8 if index_dtype(nnz, out_features, in_features).itemsize == 8 else 4
    return size * (out_features + 1 + in_features + 1 + 3 * nnz)


def plan_mlp(sizes: tuple, densities: list[float], batch_size: int, evaluation_chunk: int, optimizer_slots: int,
             data_bytes: int, dense: bool = False, link_prediction: str | None = None) -> MemoryPlan:
    """Plan of the MLP ``sizes = (inputs, *hidden, classes)`` whose hidden layers have ``densities`` (the
    densest the run reaches; ignored when ``dense``), the output layer dense; ``optimizer_slots`` state
    tensors per parameter (SGD with momentum: 1); ``link_prediction``: the CH variant of the regrowth
    ("CH3-L3p", "CH3-L3n", "CH2-L3n"), ``None`` for random or gradient regrowth."""
    shapes = list(zip(sizes[:-2], sizes[1:-1]))
    links = [a * b if dense else link_count(b, a, d) for (a, b), d in zip(shapes, densities)]
    parameters = sum(links) + sum(sizes[1:-1]) + sizes[-2] * sizes[-1] + sizes[-1]
    structure = 0 if dense else sum(structure_bytes(b, a, n) for (a, b), n in zip(shapes, links))
    hidden = sum(sizes[1:-1])
    activations = max(ACTIVATION_COPIES * batch_size * hidden,
                      EVALUATION_COPIES * evaluation_chunk * max(sizes[1:-1])) * FLOAT
    update = 0 if dense else DEFAULT_BUDGET + max(
        UPDATE_BYTES_PER_LINK * n + (planned_structure_bytes((b, a), n, link_prediction) if link_prediction else 0)
        for (a, b), n in zip(shapes, links))
    return MemoryPlan(values=FLOAT * parameters, structure=structure, gradients=FLOAT * parameters,
                      optimizer=optimizer_slots * FLOAT * parameters, data=data_bytes, activations=activations,
                      update=update)


def _sparse_layers_plan(shapes: list[tuple[int, int]], density: float | None, bias: bool,
                        link_prediction: str | None) -> tuple[int, int, int]:
    """``(parameters, structure bytes, update bytes)`` of the layers of ``shapes = [(out, in), ...]`` at
    ``density`` (``None``: dense ``nn.Linear`` layers, no structure and no update)."""
    links = [out * inp if density is None else link_count(out, inp, density) for out, inp in shapes]
    parameters = sum(links) + (sum(out for out, _ in shapes) if bias else 0)
    if density is None:
        return parameters, 0, 0
    structure = sum(structure_bytes(out, inp, n) for (out, inp), n in zip(shapes, links))
    update = DEFAULT_BUDGET + max(
        UPDATE_BYTES_PER_LINK * n + (planned_structure_bytes(shape, n, link_prediction) if link_prediction else 0)
        for shape, n in zip(shapes, links))
    return parameters, int(structure), int(update)


def _sequence_plan(shapes, density, bias: bool, dense_parameters: int, optimizer_slots: int, link_prediction,
                   activations: float) -> MemoryPlan:
    parameters, structure, update = _sparse_layers_plan(shapes, density, bias, link_prediction)
    parameters += dense_parameters
    return MemoryPlan(values=FLOAT * parameters, structure=structure, gradients=FLOAT * parameters,
                      optimizer=optimizer_slots * FLOAT * parameters, data=0, activations=int(activations),
                      update=update)


def _activation_size(precision: str) -> int:
    return FLOAT if precision == "fp32" else HALF


def _logits_bytes(tokens: int, vocab: int, precision: str) -> int:
    """The output layer's logits and the loss's copies: fp32 (the loss upcasts), plus the low-precision logits."""
    return tokens * vocab * (LOGIT_COPIES * FLOAT + (0 if precision == "fp32" else HALF))


def plan_transformer(config) -> MemoryPlan:
    """Plan of a translation run's encoder-decoder Transformer (``config``: a ``TranslateConfig``; the joint
    vocabulary ``vocab_size``, else the corpus's). Parameters at the densest the run gets (its
    start), Adam's two moments, one padded batch: at most ``batch_tokens / 2`` tokens a side, or one sentence of
    ``max_length + 1``; attention over (query, key) pairs of sentences at most ``max_length + 1`` long.

    Without ``update`` (the topology update's workspace, between steps) an upper bound of a training step's
    allocated peak at that worst-case batch: 1.0–1.3 times the peak measured on CPU (fp32 and bf16;
    tests/train/test_memory_plans.py). Batches of short sentences hold less attention than planned."""
    d, f, layers, heads = config.d_model, config.d_ff, config.layers, config.heads
    vocab = config.vocab_size or CORPORA[config.dataset].vocab_size
    density = None if config.method == "fc" else start_density(config)
    shapes = layers * ([(d, d)] * 4 + [(f, d), (d, f)] + [(d, d)] * 8 + [(f, d), (d, f)])
    embeddings = {"all": 1, "source_target": 2, "none": 3}[config.tie_embeddings] * vocab * d
    norms = 2 * d * (5 * layers + 2)
    dense = embeddings + norms + (0 if config.tie_embeddings == "all" else vocab)
    longest = config.max_length + 1
    side = max(config.batch_tokens // 2, longest)  # tokens of the source side, and of the target side
    pairs = side * min(side, longest)  # (query, key) pairs per head of one attention
    saved = side * layers * (ENCODER_SAVED[0] * d + ENCODER_SAVED[1] * f + DECODER_SAVED[0] * d
                             + DECODER_SAVED[1] * f) * _activation_size(config.precision)
    attention = 3 * layers * heads * pairs * ATTENTION_SAVED * FLOAT  # encoder self, decoder self and cross
    return _sequence_plan(shapes, density, True, dense, ADAM_SLOTS, _link_prediction(config),
                          saved + attention + _logits_bytes(side, vocab, config.precision))


def plan_lm(config) -> MemoryPlan:
    """Plan of a language-model run (``config``: a ``LanguageConfig``). Bias-free projections at the densest the
    run gets (its start), the tied embedding, AdamW's two moments, a batch of ``batch_size`` windows of
    ``context`` tokens (``scaled_dot_product_attention`` fuses the attention: no score matrix).

    Without ``update`` (the topology update's workspace, between steps) an upper bound of a training step's
    allocated peak: 1.0–1.3 times the peak measured on CPU (fp32 and bf16; tests/train/test_memory_plans.py)."""
    d, f, layers, vocab = config.d_model, config.d_ff, config.layers, config.vocab_size
    density = None if config.method == "fc" else start_density(config)
    shapes = layers * ([(d, d)] * 4 + [(f, d), (f, d), (d, f)])
    dense = vocab * d + (2 * layers + 1) * d
    tokens = config.batch_size * config.context
    saved = tokens * layers * (LM_BLOCK_SAVED[0] * d + LM_BLOCK_SAVED[1] * f) * _activation_size(config.precision)
    return _sequence_plan(shapes, density, False, dense, ADAM_SLOTS, _link_prediction(config),
                          saved + _logits_bytes(tokens, vocab, config.precision))


def _link_prediction(config) -> str | None:
    """The CH variant a sequence run's regrowth scores with, ``None`` for the dense ``fc``, a static run (no
    regrowth), random or gradient regrowth."""
    regrowth = config.engine_method().regrowth_kind if config.method != "fc" else None
    return REGROWTHS[regrowth].link_prediction if regrowth else None


def available_memory() -> int:
    """Bytes the machine can give a new process now: ``MemAvailable`` of /proc/meminfo, else physical memory."""
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def check_plan(plan: MemoryPlan, limit_gib: float | None, processes: int = 1,
               lower: str = "fewer --hidden neurons, --links_per_neuron or --batch_size") -> None:
    """Raise a one-line ``ValueError`` when ``plan`` exceeds ``limit_gib`` (default: the available memory
    shared by the run's ``processes`` on this machine, torchrun's local ranks); ``lower`` names the options that
    shrink the run."""
    limit = available_memory() / processes if limit_gib is None else limit_gib * GIB
    if plan.total > limit:
        source = ("of --memory_limit" if limit_gib is not None else "available on this machine" if processes == 1
                  else f"available to each of its {processes} processes on this machine")
        raise ValueError(f"this run needs about {_size(plan.total)} ({plan.describe()}), more than the "
                         f"{_size(limit)} {source}; use {lower}")

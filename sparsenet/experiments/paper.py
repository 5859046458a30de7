"""The paper's published numbers as data, and the lookup that finds the cell matching one of our runs.

Sources (numbers quoted exactly from the papers' tables; "NIPS" is the CHTss paper, "Brain-inspired sparse
training enables Transformers and LLMs to perform as fully connected", NeurIPS 2025):

* ``PAPER`` — the CHTss NeurIPS paper ("NIPS"): Table 7 (MLP at 99% sparsity on MNIST / Fashion-MNIST / EMNIST,
  accuracy % and ANP %, mean ± s.e. over 3 seeds), Table 1 (MLP on CIFAR-10 at 99%) and Table 2 (Transformer
  BLEU at 95% and 90% sparsity on Multi30k / IWSLT14 / WMT17, mean ± s.e. over 3 seeds).
* ``VARIANTS`` — NIPS cells for a method run with one option changed, keyed with ``(option, value)`` appended:
  Table 7's CHTs-n row (``regrowth=ch2_l3n_soft``), Table 11's CHTss rows b and c (regrowth), Table 12
  (removal, Multi30k 90%) and Table 15 (ζ, CIFAR-10). A main-table cell stands for our method's defaults
  (``METHODS``, ζ 0.3), so a run with another regrowth / removal / ζ / init gets only a VARIANTS cell.
* ``LLAMA_REFERENCE`` — NIPS Table 3: LLaMA-60M validation perplexity on OpenWebText (GPU scale, bf16), the
  reference our small language-model runs cite beside theirs — another corpus and size, not a target.
* ``CHTS_PREPRINT`` — the CHTs preprint's Transformer BLEU table (90% sparsity). The NIPS paper re-ran these
  experiments (Table 2), so ``paper_value`` reports NIPS; the preprint's numbers are kept for reference.

Keys are ``(metric, model, dataset, method, sparsity)`` with our names (methods ``fc``, ``set``, ``rigl``,
``mest``, ``cht``, ``chts``, ``chtss``; data sets ``mnist``, ``fashion_mnist``, ``emnist``, ``cifar10``,
``multi30k``, ``iwslt14``, ``wmt17``) and metrics ``accuracy`` (%), ``anp`` (%) and ``bleu``. Values are
``(mean, s.e. or None, source)``. The dense FC baseline is stored at sparsity 0.0. Our ``chts`` is the paper's
CHTs-p (path-based CH3-L3p regrowth), our ``mest`` its MEST-EM&S; GraNet and GMP are kept as ``granet``/``gmp``.
"""
from ..evolution.methods import METHODS

Cell = tuple[float, float | None, str]

T7 = "NIPS Table 7"
T1 = "NIPS Table 1"
T2 = "NIPS Table 2"
T11 = "NIPS Table 11"
T12 = "NIPS Table 12"
T15 = "NIPS Table 15"
SEED = "CHTs preprint BLEU table"

DENSE = "fc"
MODEL_OF_DATASET = {"mnist": "mlp", "fashion_mnist": "mlp", "emnist": "mlp", "cifar10": "mlp",
                    "multi30k": "transformer", "iwslt14": "transformer", "wmt17": "transformer"}
OUR_METRICS = {"best_test_accuracy": "accuracy", "anp": "anp", "bleu": "bleu"}
ABLATION_OPTIONS = ("regrowth", "removal", "zeta", "init")
DEFAULT_ZETA = 0.3  # both recipes' default, the paper's ζ (NIPS Tables 4 and 5)


def _cells(metric: str, model: str, source: str, rows: dict) -> dict:
    """Flatten ``{(dataset, sparsity): {method: (mean, se)}}`` into PAPER-style entries."""
    return {(metric, model, dataset, method, sparsity): (mean, se, source)
            for (dataset, sparsity), methods in rows.items() for method, (mean, se) in methods.items()}


_TABLE7_ACCURACY = {
    ("mnist", 0.99): {"chts": (98.81, 0.04), "cht": (98.48, 0.04), "rigl": (98.61, 0.01), "set": (98.14, 0.02),
                      "chtss": (98.83, 0.02), "granet": (98.81, 0.00), "gmp": (98.62, 0.03)},
    ("fashion_mnist", 0.99): {"chts": (90.93, 0.03), "cht": (88.70, 0.07), "rigl": (89.91, 0.07),
                              "set": (89.00, 0.09), "chtss": (90.81, 0.11), "granet": (89.98, 0.06),
                              "gmp": (90.29, 0.19)},
    ("emnist", 0.99): {"chts": (87.61, 0.07), "cht": (86.35, 0.08), "rigl": (86.94, 0.08), "set": (86.31, 0.08),
                       "chtss": (87.52, 0.04), "granet": (86.94, 0.03), "gmp": (86.93, 0.09)},
    ("mnist", 0.0): {"fc": (98.78, 0.02)},
    ("fashion_mnist", 0.0): {"fc": (90.88, 0.02)},
    ("emnist", 0.0): {"fc": (87.13, 0.04)},
}
_TABLE7_ANP = {
    ("mnist", 0.99): {"chts": (20, None), "cht": (29, None), "rigl": (29, None), "set": (100, None),
                      "chtss": (32, None), "granet": (35, None), "gmp": (58, None)},
    ("fashion_mnist", 0.99): {"chts": (89, None), "cht": (30, None), "rigl": (55, None), "set": (100, None),
                              "chtss": (40, None), "granet": (53, None), "gmp": (69, None)},
    ("emnist", 0.99): {"chts": (24, None), "cht": (21, None), "rigl": (28, None), "set": (100, None),
                       "chtss": (35, None), "granet": (45, None), "gmp": (75, None)},
}
_TABLE1_ACCURACY = {
    ("cifar10", 0.0): {"fc": (62.85, 0.16)},
    ("cifar10", 0.99): {"chts": (69.97, 0.06), "cht": (59.10, 0.06), "rigl": (63.90, 0.19), "set": (62.70, 0.11),
                        "chtss": (71.29, 0.14), "granet": (69.31, 0.17), "gmp": (65.11, 0.11)},
}
_TABLE1_ANP = {
    ("cifar10", 0.99): {"chts": (54, None), "cht": (96, None), "rigl": (59, None), "set": (100, None),
                        "chtss": (63, None), "granet": (61, None), "gmp": (75, None)},
}
_TABLE2_BLEU = {
    ("multi30k", 0.0): {"fc": (31.38, 0.38)},
    ("iwslt14", 0.0): {"fc": (24.48, 0.30)},
    ("wmt17", 0.0): {"fc": (25.22, None)},
    ("multi30k", 0.95): {"set": (28.99, 0.28), "rigl": (29.94, 0.27), "cht": (27.79, None), "chts": (28.94, 0.57),
                         "mest": (28.89, 0.26), "gmp": (30.51, 0.82), "granet": (31.31, 0.31),
                         "chtss": (32.03, 0.29)},
    ("multi30k", 0.9): {"set": (29.73, 0.10), "rigl": (30.26, 0.34), "cht": (28.38, None), "chts": (29.81, 0.37),
                        "mest": (30.04, 0.52), "gmp": (30.49, 0.40), "granet": (31.62, 0.48),
                        "chtss": (32.86, 0.16)},
    ("iwslt14", 0.95): {"set": (18.53, 0.05), "rigl": (20.53, 0.21), "cht": (18.59, None), "chts": (21.15, 0.10),
                        "mest": (19.56, 0.10), "gmp": (22.76, 0.82), "granet": (22.53, 0.12),
                        "chtss": (24.51, 0.02)},
    ("iwslt14", 0.9): {"set": (20.13, 0.08), "rigl": (21.52, 0.15), "cht": (19.91, None), "chts": (21.92, 0.17),
                       "mest": (21.05, 0.21), "gmp": (22.82, 0.53), "granet": (22.43, 0.09),
                       "chtss": (24.31, 0.04)},
    ("wmt17", 0.95): {"set": (20.19, 0.12), "rigl": (20.71, 0.21), "cht": (19.03, None), "chts": (20.94, 0.63),
                      "mest": (20.70, 0.07), "gmp": (22.47, 0.10), "granet": (22.51, 0.21),
                      "chtss": (23.73, 0.43)},
    ("wmt17", 0.9): {"set": (21.52, 0.28), "rigl": (22.22, 0.10), "cht": (21.08, None), "chts": (22.40, 0.06),
                     "mest": (22.22, 0.10), "gmp": (23.37, 0.08), "granet": (23.46, 0.09),
                     "chtss": (24.61, 0.14)},
}
_SEED_BLEU = {
    ("multi30k", 0.0): {"fc": (31.51, None)},
    ("iwslt14", 0.0): {"fc": (24.11, None)},
    ("wmt17", 0.0): {"fc": (25.20, None)},
    ("multi30k", 0.9): {"chts": (29.97, None), "rigl": (28.52, None), "set": (28.98, None)},
    ("iwslt14", 0.9): {"chts": (21.98, None), "rigl": (20.73, None), "set": (20.09, None)},
    ("wmt17", 0.9): {"chts": (22.43, None), "rigl": (21.20, None), "set": (20.66, None)},
}

PAPER: dict[tuple, Cell] = {
    **_cells("accuracy", "mlp", T7, _TABLE7_ACCURACY),
    **_cells("anp", "mlp", T7, _TABLE7_ANP),
    **_cells("accuracy", "mlp", T1, _TABLE1_ACCURACY),
    **_cells("anp", "mlp", T1, _TABLE1_ANP),
    **_cells("bleu", "transformer", T2, _TABLE2_BLEU),
}

CHTS_PREPRINT: dict[tuple, Cell] = _cells("bleu", "transformer", SEED, _SEED_BLEU)

_TABLE3_LLAMA60M_PPL = {  # NIPS Table 3: validation perplexity of LLaMA-60M on OpenWebText (FC 26.56)
    ("openwebtext", 0.0): {"fc": (26.56, None)},
    **{("openwebtext", sparsity): {method: (row[i], None) for method, row in {
        "set": (31.77, 30.69, 35.26, 39.70), "rigl": (39.96, 41.33, 45.34, 51.49),
        "cht": (31.02, 32.99, 35.01, 41.87), "chts": (28.12, 29.84, 33.03, 36.47),
        "mest": (28.26, 29.94, 33.60, 37.87), "gmp": (29.22, 30.59, 33.68, 39.00),
        "granet": (30.55, 31.51, 33.76, 39.98), "chtss": (27.62, 29.00, 31.42, 35.10)}.items()}
       for i, sparsity in enumerate((0.7, 0.8, 0.9, 0.95))},
}
LLAMA_REFERENCE: dict[tuple, Cell] = _cells("valid_ppl", "llama60m", "NIPS Table 3", _TABLE3_LLAMA60M_PPL)

_TABLE7_CHTS_N = {  # CHTs-n (CH2-L3n) row at 99%: accuracy % ± s.e., ANP %
    "mnist": ((98.76, 0.05), 27), "fashion_mnist": ((90.67, 0.05), 73), "emnist": ((87.82, 0.04), 28),
}
_TABLE12_REMOVAL = {  # Multi30k 90%, BLEU (CHTs, CHTss)
    "set": (28.82, 25.76), "wm": (28.17, 31.15), "wm_soft": (30.35, 32.79), "ri": (28.91, 32.20),
    "ri_soft": (27.86, 31.86), "mest": (28.70, 32.07), "snip": (28.23, 31.66), "sensitivity": (29.02, 29.73),
    "rsensitivity": (28.18, 30.67),
}
_TABLE15_ZETA = {  # CHTs, CIFAR-10 MLP, accuracy % ± s.e. at 90% / 95% / 99% sparsity
    0.1: ((68.73, 0.27), (69.28, 0.08), (63.45, 0.04)), 0.2: ((68.63, 0.10), (69.78, 0.09), (67.30, 0.21)),
    0.3: ((68.47, 0.10), (69.37, 0.10), (68.08, 0.02)), 0.4: ((67.90, 0.10), (69.01, 0.08), (67.83, 0.19)),
    0.5: ((67.47, 0.14), (68.56, 0.15), (67.24, 0.14)),
}


def _variants() -> dict[tuple, Cell]:
    """Cells keyed by ``(metric, model, dataset, method, sparsity, option, value)``."""
    cells = {}
    for dataset, (accuracy, anp) in _TABLE7_CHTS_N.items():
        cells[("accuracy", "mlp", dataset, "chts", 0.99, "regrowth", "ch2_l3n_soft")] = (*accuracy, T7)
        cells[("anp", "mlp", dataset, "chts", 0.99, "regrowth", "ch2_l3n_soft")] = (anp, None, T7)
    for dataset, (path_based, hard) in (("multi30k", (32.68, 28.92)), ("iwslt14", (24.82, 21.88))):
        cells[("bleu", "transformer", dataset, "chtss", 0.9, "regrowth", "ch3_l3p_soft")] = (path_based, None, T11)
        cells[("bleu", "transformer", dataset, "chtss", 0.9, "regrowth", "ch2_l3n")] = (hard, None, T11)
    for removal, (chts, chtss) in _TABLE12_REMOVAL.items():
        cells[("bleu", "transformer", "multi30k", "chts", 0.9, "removal", removal)] = (chts, None, T12)
        cells[("bleu", "transformer", "multi30k", "chtss", 0.9, "removal", removal)] = (chtss, None, T12)
    for zeta, by_sparsity in _TABLE15_ZETA.items():
        for sparsity, (mean, se) in zip((0.9, 0.95, 0.99), by_sparsity):
            cells[("accuracy", "mlp", "cifar10", "chts", sparsity, "zeta", zeta)] = (mean, se, T15)
    return cells


VARIANTS: dict[tuple, Cell] = _variants()


def default_option(option: str, model: str | None, method: str):
    """Our default value of an ablation option for ``method`` (the setting a main-table cell compares with)."""
    if option == "zeta":
        return DEFAULT_ZETA
    if option == "init" and model == "transformer" and method in ("cht", "chts"):
        return "bsw"
    return getattr(METHODS[method], option)


def paper_value(metric: str, params: dict) -> Cell | None:
    """The paper's ``(mean, s.e. or None, source)`` for a run with ``params``, or None.

    ``metric`` is one of our summary keys (``best_test_accuracy``, ``anp``, ``bleu``) or a paper metric name;
    ``params`` needs ``dataset`` and ``method``, and ``sparsity`` unless the method is ``fc`` (dense: its
    sparsity is ignored); ``model`` defaults from the data set. When ``params`` set an ablation option
    (``ABLATION_OPTIONS``), a ``VARIANTS`` cell for that value is returned if the paper has one; a value other
    than our default for the method has no main-table cell, so the answer is then None.
    """
    name = OUR_METRICS.get(metric, metric)
    dataset, method = params.get("dataset"), params.get("method")
    model = params.get("model") or MODEL_OF_DATASET.get(dataset)
    if method == DENSE:
        return PAPER.get((name, model, dataset, method, 0.0))
    if params.get("sparsity") is None or method not in METHODS:
        return None
    key = (name, model, dataset, method, round(float(params["sparsity"]), 4))
    options = {option: params[option] for option in ABLATION_OPTIONS if params.get(option) is not None}
    for option, value in options.items():
        if key + (option, value) in VARIANTS:
            return VARIANTS[key + (option, value)]
    if any(value != default_option(option, model, method) for option, value in options.items()):
        return None
    return PAPER.get(key)

"""The Transformer's and the language model's memory plans: each term by value on a tiny config, the parameters
and structure equal to the built model's, the estimate an upper bound within 1.3 of a step's measured allocated
peak, and the check that refuses a run too large for the machine in one line before any data is read."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

from sparsenet.models import Transformer
from sparsenet.models.lm import LanguageModel
from sparsenet.sparse import SparseLinear
from sparsenet.train import language, translate
from sparsenet.train.language import LanguageConfig
from sparsenet.train.memory_plan import DEFAULT_BUDGET, plan_lm, plan_transformer
from sparsenet.train.translate import TranslateConfig

from .memory_peak import allocated_peak_fresh

ROOT = Path(__file__).resolve().parents[2]
TINY = dict(d_model=4, heads=2, layers=1, d_ff=8, vocab_size=10, sparsity=0.5, method="set")
BOUND = 1.3  # the plan (less the update's workspace) is at most this many times the measured peak


def test_transformer_plan_terms_by_value():
    # links at density 0.5: a 4x4 projection 8, a 4<->8 FFN layer 16; encoder 4 + 2, decoder 8 + 2 layers
    links = 12 * 8 + 4 * 16
    biases = (4 * 4 + 8 + 4) + (8 * 4 + 8 + 4)
    dense = 2 * 10 * 4 + 10 + 2 * 4 * (5 + 2)  # source/target embedding + generator, its bias, 7 layer norms
    plan = plan_transformer(TranslateConfig(**TINY, batch_tokens=16, max_length=3))
    assert plan.values == plan.gradients == 4 * (links + biases + dense) == 4 * 378
    assert plan.optimizer == 2 * plan.values  # Adam's two moments
    # int32 CSR + transposed cache: 4 bytes x (rows + 1 + columns + 1 + 3 nnz) per layer
    assert plan.structure == 12 * 4 * (5 + 5 + 24) + 4 * 4 * (9 + 5 + 48)
    side, longest = 8, 4  # 16 tokens: 8 a side (>= one sentence of max_length + 1)
    saved = side * (28 * 4 + 6 * 8) * 4  # encoder (10 d + 3 f) and decoder (18 d + 3 f), fp32
    attention = 3 * 2 * side * longest * 3 * 4  # 3 attentions x 2 heads x pairs x 3 copies, fp32
    logits = side * 10 * 3 * 4
    assert plan.activations == saved + attention + logits == 8384
    assert plan.update == DEFAULT_BUDGET + 64 * 16
    assert plan.data == 0


def test_lm_plan_terms_by_value():
    links = 4 * 8 + 3 * 16  # q, k, v, o; gate, up, down
    dense = 10 * 4 + 3 * 4  # the tied embedding, two RMSNorms and the final one
    plan = plan_lm(LanguageConfig(**TINY, batch_size=2, context=3))
    assert plan.values == plan.gradients == 4 * (links + dense) == 528
    assert plan.optimizer == 2 * plan.values
    assert plan.structure == 4 * 4 * (5 + 5 + 24) + 3 * 4 * (9 + 5 + 48)
    tokens = 2 * 3
    assert plan.activations == tokens * (11 * 4 + 6 * 8) * 4 + tokens * 10 * 3 * 4 == 2928
    assert plan.update == DEFAULT_BUDGET + 64 * 16


def test_half_precision_halves_the_layers_activations_only():
    fp32, bf16 = (plan_lm(LanguageConfig(**TINY, batch_size=2, context=3, precision=p)) for p in ("fp32", "bf16"))
    tokens = 6
    assert fp32.activations - bf16.activations == tokens * (11 * 4 + 6 * 8) * 2 - tokens * 10 * 2
    assert fp32.values == bf16.values  # fp32 master values either way


@pytest.mark.parametrize("config, plan, build", [
    (TranslateConfig(**{**TINY, "method": "chtss"}, max_length=3), plan_transformer,
     lambda c: Transformer(10, 4, 2, 1, 8, density=0.5, max_length=8)),
    (TranslateConfig(**{**TINY, "method": "fc"}, tie_embeddings="all", max_length=3), plan_transformer,
     lambda c: Transformer(10, 4, 2, 1, 8, density=None, max_length=8, tie_embeddings="all")),
    (TranslateConfig(**TINY, tie_embeddings="none", max_length=3), plan_transformer,
     lambda c: Transformer(10, 4, 2, 1, 8, density=0.5, max_length=8, tie_embeddings="none")),
    (LanguageConfig(**TINY, context=3), plan_lm, lambda c: LanguageModel(10, 4, 2, 1, 8, 3, density=0.5)),
    (LanguageConfig(**{**TINY, "method": "chtss"}, context=3), plan_lm,
     lambda c: LanguageModel(10, 4, 2, 1, 8, 3, density=0.5)),  # CHTss starts at half density (sparsity 0.5)
])
def test_plan_counts_the_built_models_parameters_and_structure(config, plan, build):
    model = build(config)
    sparse = [m for m in model.modules() if isinstance(m, SparseLinear)]
    planned = plan(config)
    assert planned.values == 4 * sum(p.numel() for p in model.parameters())
    assert planned.structure == sum(m.memory_bytes()["indices"] + m.cache.nbytes() for m in sparse)


def test_chtss_plans_its_denser_start():
    final = plan_lm(LanguageConfig(**{**TINY, "sparsity": 0.9}, context=3))
    start = plan_lm(LanguageConfig(**{**TINY, "sparsity": 0.9, "method": "chtss"}, context=3))
    assert start.values > final.values  # CHTss starts at 50% density, the others at 10%


MEASURED = [
    TranslateConfig(d_model=32, heads=4, layers=2, d_ff=64, vocab_size=200, batch_tokens=512, max_length=31),
    TranslateConfig(d_model=64, heads=4, layers=2, d_ff=256, vocab_size=1000, batch_tokens=2048, max_length=63,
                    precision="bf16"),
    LanguageConfig(d_model=32, heads=4, layers=2, d_ff=64, vocab_size=200, batch_size=8, context=32),
    LanguageConfig(d_model=64, heads=4, layers=2, d_ff=192, vocab_size=1000, batch_size=16, context=64,
                   method="chtss"),
]


@pytest.mark.parametrize("config", MEASURED, ids=["transformer-small", "transformer-bf16", "lm-small", "lm-chtss"])
def test_plan_bounds_the_measured_step_peak(config):
    plan = (plan_transformer if config.model == "transformer" else plan_lm)(config)
    planned, measured = plan.total - plan.update, allocated_peak_fresh(config)
    assert measured <= planned <= BOUND * measured, (planned, measured)


@pytest.mark.parametrize("recipe, options, lower", [
    (translate, dict(preset="cpu"), "--batch_tokens"),
    (language, dict(), "--batch_size"),
])
def test_memory_limit_refuses_in_one_line_and_the_cpu_sizes_fit_the_machine(recipe, options, lower, tmp_path):
    recipe.build_config(**options, out_dir=str(tmp_path))  # the machine's available memory: accepted
    with pytest.raises(ValueError) as error:
        recipe.build_config(**options, out_dir=str(tmp_path), memory_limit=0.1)
    message = str(error.value)
    assert "\n" not in message and "this run needs about" in message and "102.4 MiB of --memory_limit" in message
    assert lower in message


@pytest.mark.parametrize("model, option", [("transformer", "--batch_tokens"), ("lm", "--batch_size")])
def test_cli_refuses_a_batch_too_large_before_reading_data(model, option, tmp_path):
    empty = tmp_path / "no-data"
    empty.mkdir()
    result = subprocess.run([sys.executable, "cli.py", "train", "--model", model, option, "1000000000", "--data_dir",
                             str(empty), "--out_dir", str(tmp_path / "runs"), "--wandb", "off"],
                            cwd=ROOT, capture_output=True, text=True, timeout=120,
                            env={**os.environ, "OMP_NUM_THREADS": "1", "SPARSENET_DATA": str(empty)})
    lines = result.stderr.strip().splitlines()
    assert result.returncode != 0 and len(lines) == 1, result.stderr
    assert lines[0].startswith("error: this run needs about") and "available on this machine" in lines[0]
    assert option in lines[0]
    assert not list(empty.iterdir()) and not (tmp_path / "runs").exists()  # no data read, no run folder



@pytest.mark.parametrize("model", ["transformer", "lm"])
@pytest.mark.parametrize("method", ["fc", "static", "set", "rigl", "chts", "chtss"])
def test_every_method_has_a_plan(model, method):
    """A static run (no regrowth rule) and the dense fc plan too: the update workspace is counted only where a
    rule regrows by link prediction."""
    build = {"transformer": translate.build_config, "lm": language.build_config}[model]
    config = build(model=model, method=method)
    plan = {"transformer": plan_transformer, "lm": plan_lm}[model](config)
    assert plan.total > 0

"""The Transformer's and the language model's memory plans: each term by value on a tiny config, the parameters
and structure equal to the built model's, the estimate an upper bound within 1.3 of a step's measured allocated
peak."""
import pytest

from sparsenet.models import Transformer
from sparsenet.models.lm import LanguageModel
from sparsenet.sparse import SparseLinear
from sparsenet.train.language import LanguageConfig
from sparsenet.train.memory_plan import DEFAULT_BUDGET, plan_lm, plan_transformer
from sparsenet.train.translate import TranslateConfig

from .memory_peak import allocated_peak_fresh

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


"""Machine-translation recipe (the paper's Transformer protocol, the CHTss paper's Table 5): Adam β2 0.998, label
smoothing 0.1, the "inoam" schedule, token-bucket batches, best-validation checkpoint, beam search, BLEU."""
import math
import sys
from dataclasses import dataclass
from pathlib import Path

import torch
from torch.nn import functional as F

from ..data import EpochBatches, TranslationData, load_translation
from ..data.bpe import BOS, EOS, PAD
from ..data.corpora import CORPORA
from ..data.translation import token_batches
from ..models import Transformer, beam_search, greedy_decode
from ..models.transformer import TIE_MODES
from .config import (SequenceConfig, above_zero, count, fraction, one_of, option, positive_int, start_density,
                     with_presets)
from .device import autocast
from .distributed import all_sum, is_main, local_world_size, shard
from .loop import Clock, SequenceBuilt
from .memory_plan import check_plan, plan_transformer
from .run import init_topology, load_best, make_engine, run
from .tracking import default_run_name


@dataclass
class TranslateConfig(SequenceConfig):
    """Every knob of a translation run; defaults are the paper's Multi30k setting (CHTs preprint)."""
    model: str = "transformer"
    dataset: str = "multi30k"
    sparsity: float = 0.9
    update_interval: int = 200
    preset: str = option("paper", "sizes and schedule: paper (the CHTss paper's Table 5) or cpu (Multi30k on a laptop: "
                         "d_model 256, 4 heads, 3+3 layers, BPE 8000, 2048-token batches, 3200 steps, beam 4).")
    attention_dropout: float = option(0.1, "dropout of the attention weights, in [0, 1).", fraction)
    vocab_size: int | None = option(None, "joint BPE vocabulary (default per data set: 8000 Multi30k, 10000 "
                                    "IWSLT14, 40000 WMT17).", positive_int)
    warmup_steps: int = option(3000, "noam warm-up steps (paper: 3000 / 6000 / 8000).", positive_int)
    lr_factor: float = option(0.25, "noam factor (paper: 0.25 Multi30k, 2 IWSLT14/WMT17).")
    rewarm_steps: int = option(20, "inoam: linear re-warm-up steps after every topology update (0: none).", count)
    batch_tokens: int = option(1024, "tokens per batch (paper: 1024 / 10240 / 12000).", positive_int)
    label_smoothing: float = option(0.1, "label smoothing of the training loss, in [0, 1).", fraction)
    beam_size: int = option(2, "test decoding beam (1: greedy).", positive_int)
    length_penalty: float = option(1.0, "beam length penalty alpha (GNMT/Wu).")
    max_length: int = option(256, "longest sentence in subwords: longer training pairs are cut, decoding stops "
                             "there.", positive_int)
    tie_embeddings: str = option("source_target", "embedding sharing over the joint BPE: source_target (one "
                                 "embedding for both languages, a separate generator), all (one matrix for both "
                                 "embeddings and the generator, fairseq's share-all-embeddings) or none (three "
                                 "matrices, the authors' OpenNMT).", one_of(TIE_MODES, "tie_embeddings"))
    src_lang: str | None = option(None, "source language (default: the data set's, en).")
    tgt_lang: str | None = option(None, "target language (default: the data set's, de).")
    memory_limit: float | None = option(None, "GiB the run may take: the memory plan printed before training "
                                        "must fit (default: the machine's available memory).", above_zero(" GiB"))

    def check_relations(self) -> None:
        if self.dataset not in CORPORA:
            raise ValueError(f"unknown dataset {self.dataset!r} for translation; choose from {list(CORPORA)}")
        if self.d_model % self.heads:
            raise ValueError(f"heads ({self.heads}) must divide d_model ({self.d_model})")

    def check_preflight(self) -> None:
        """The run's memory plan (parameters, Adam's state, a batch's activations) fits the machine."""
        check_plan(plan_transformer(self), self.memory_limit, local_world_size(),
                   "a smaller --batch_tokens, --max_length, --vocab_size or --d_model")

    def parameter_counts(self) -> tuple[int, int]:
        """``(links at the start density, dense parameters)`` of the Transformer, about (biases and norms
        counted as 10·d_model + d_ff per layer)."""
        d, f, layers = self.d_model, self.d_ff, self.layers
        vocab = self.vocab_size or CORPORA[self.dataset].vocab_size
        projections = layers * ((4 * d * d + 2 * d * f) + (8 * d * d + 2 * d * f))
        embeddings = {"all": 1, "source_target": 2, "none": 3}.get(self.tie_embeddings, 3) * vocab * d + vocab
        small = 2 * layers * (10 * d + f)
        density = start_density(self)
        return ((0, projections + embeddings + small) if density is None else
                (round(density * projections), embeddings + small))

    @property
    def languages(self) -> tuple:
        source, target = CORPORA[self.dataset].languages
        return (self.src_lang or source, self.tgt_lang or target)

    @property
    def name(self) -> str:
        base = f"transformer-{self.dataset}-{self.method}-s{self.sparsity:g}-seed{self.seed}"
        return self.run_name or default_run_name(base)


PRESETS = {  # the CHTss paper's Table 5 and the CHTs preprint; "cpu": a model and schedule that train on a laptop CPU
    ("multi30k", "paper"): dict(d_ff=1024, batch_tokens=1024, train_steps=20000, warmup_steps=3000, lr_factor=0.25,
                                update_interval=200),
    ("iwslt14", "paper"): dict(d_ff=2048, batch_tokens=10240, train_steps=20000, warmup_steps=6000, lr_factor=2.0,
                               update_interval=100),
    ("wmt17", "paper"): dict(d_ff=2048, batch_tokens=12000, train_steps=80000, warmup_steps=8000, lr_factor=2.0,
                             update_interval=100),
    # "cpu": one dense run in <= 60 min of training on 2 cores (1.06 s/step measured, AVX-512 EPYC, 2 threads):
    # the paper's FFN/width ratio at d 256, a BPE of 8,000, 2,048-token batches, 3,200 steps; beam 4, α 0.6
    ("multi30k", "cpu"): dict(d_model=256, heads=4, layers=3, d_ff=1024, vocab_size=8000, batch_tokens=2048,
                              train_steps=3200, warmup_steps=800, lr_factor=1.0, update_interval=100, eval_every=200,
                              beam_size=4, length_penalty=0.6),
}


def build_config(**options) -> TranslateConfig:
    """Defaults, then the (dataset, preset) preset, then the given (non-None) options."""
    dataset = options.get("dataset") or TranslateConfig.dataset
    preset = options.get("preset") or TranslateConfig.preset
    if (dataset, preset) not in PRESETS and preset != "paper":
        raise ValueError(f"no preset {preset!r} for {dataset}; available: "
                         f"{sorted(p for d, p in PRESETS if d == dataset)}")
    return with_presets(TranslateConfig, options, PRESETS.get((dataset, preset), {})).validate()


def inoam(step: int, config: TranslateConfig, rewarm: bool) -> float:
    """Noam learning rate, times a linear re-warm-up over ``rewarm_steps`` after every topology update."""
    step = max(step, 1)
    rate = config.lr_factor * config.d_model ** -0.5 * min(step ** -0.5, step * config.warmup_steps ** -1.5)
    since = step % config.update_interval
    if rewarm and since < config.rewarm_steps:
        rate *= since / config.rewarm_steps
    return rate


def _summed_loss(model, batch, smoothing: float) -> torch.Tensor:
    """The summed token loss of ``batch = (src, tgt_in, tgt_out)`` (padding ignored)."""
    src, tgt_in, tgt_out = batch
    logits = model(src, tgt_in)
    return F.cross_entropy(logits.flatten(0, 1), tgt_out.flatten(), ignore_index=PAD, label_smoothing=smoothing,
                           reduction="sum")


def part_loss(model, batch, smoothing: float) -> torch.Tensor:
    """This rank's sentences of a global ``batch`` (on the model's device), their summed loss over the global
    batch's target tokens (summed over the ranks: the batch's mean per token)."""
    return _summed_loss(model, tuple(shard(t) for t in batch), smoothing) / (batch[2] != PAD).sum()


@torch.no_grad()
def validation_loss(model, batches) -> float:
    """Mean token loss over ``batches`` (CPU tensors, moved to the model's device one at a time)."""
    model.eval()
    device = next(model.parameters()).device
    total, tokens = 0.0, 0
    for batch in shard(batches):  # under torchrun: this rank's batches, the sums reduced
        batch = tuple(t.to(device) for t in batch)
        count = int((batch[2] != PAD).sum())
        total, tokens = total + float(_summed_loss(model, batch, 0.0) / count) * count, tokens + count
    model.train()
    total, tokens = all_sum(total, tokens)
    return total / max(tokens, 1)


def bleu(hypotheses: list[str], references: list[str] | list[list[str]]) -> dict:
    """sacreBLEU on detokenised text (with its signature) and a tokenised, lower-cased BLEU in the spirit of
    the paper's multi-bleu (13a tokenisation, lower case) — two different numbers, labelled.

    ``references``: one reference per hypothesis, or a list of such streams (several references each).
    """
    import sacrebleu
    streams = references if references and isinstance(references[0], list) else [references]
    detok = sacrebleu.metrics.BLEU()
    score = detok.corpus_score(hypotheses, streams)
    tokenised = sacrebleu.metrics.BLEU(tokenize="13a", lowercase=True).corpus_score(hypotheses, streams)
    return {"sacrebleu": score.score, "sacrebleu_signature": str(detok.get_signature()), "bleu": tokenised.score}


def decode(model, sources: list[list[int]], config: TranslateConfig, chunk: int = 64) -> list[list[int]]:
    """Token ids of each source's translation, ``chunk`` sentences at a time: batched beam search
    (``beam_size`` > 1) or, for beam 1, the identical greedy search, on the model's device."""
    device = next(model.parameters()).device
    hypotheses = []
    for start in range(0, len(sources), chunk):
        rows = [torch.tensor(ids + [EOS]) for ids in sources[start:start + chunk]]
        src = torch.nn.utils.rnn.pad_sequence(rows, batch_first=True, padding_value=PAD).to(device)
        if config.beam_size == 1:
            hypotheses += greedy_decode(model, src, BOS, EOS, config.max_length)
        else:
            hypotheses += beam_search(model, src, BOS, EOS, config.beam_size, config.max_length,
                                      config.length_penalty)
    return hypotheses


def load_data(config: TranslateConfig) -> TranslationData:
    return load_translation(config.dataset, config.data_dir, config.download, config.vocab_size, config.languages,
                            config.max_length)


def build(config: TranslateConfig, data: TranslationData, init_generator: torch.Generator,
          data_generator: torch.Generator, device: torch.device) -> "Translate":
    if not config.quiet and is_main():
        print(plan_transformer(config).describe(), file=sys.stderr)
    return Translate(config, data, init_generator, data_generator, device)


class Translate(SequenceBuilt):
    """A Transformer run: token-bucket batches, epoch after epoch, reshuffled from the data generator;
    validation loss every ``eval_every`` steps; selection by validation loss (best.pt)."""

    def __init__(self, config: TranslateConfig, data: TranslationData, init_generator: torch.Generator,
                 data_generator: torch.Generator, device: torch.device):
        self.config, self.device, self.data = config, device, data
        method = config.engine_method()
        start = start_density(config)  # CHTss: 50%
        self.model = Transformer(data.processor.get_piece_size(), config.d_model, config.heads, config.layers,
                                 config.d_ff, config.dropout, config.attention_dropout, start, config.max_length + 2,
                                 init_generator, config.tie_embeddings)
        init_topology(self.model, config, init_generator, method.init, start,
                      **({"beta": config.beta} if method.init == "bsw" else {}))
        self.model.to(device)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=0.0, betas=(0.9, 0.998))
        self.engine = make_engine(config, self.model, self.optimizer, config.update_interval, config.train_steps,
                                  None if config.method == "fc" else 1.0 - config.sparsity)
        self.steps, self.eval_every, self.best = config.train_steps, config.eval_every, {"valid_loss": math.inf}
        self.rewarm = method.removal is not None
        self.valid = token_batches(*data.valid, config.batch_tokens, shuffle=False)
        self.batches = EpochBatches(lambda g: token_batches(*data.train, config.batch_tokens, g), data_generator)

    def batch_loss(self, batch):
        batch = tuple(t.to(self.device, non_blocking=True) for t in batch)
        return part_loss(self.model, batch, self.config.label_smoothing), 1, {}

    def learning_rate(self, step: int) -> float:
        return inoam(step, self.config, self.rewarm)

    def valid_loss(self) -> float:
        return validation_loss(self.model, self.valid)


def summary(built: Translate, config: TranslateConfig, clock: Clock, run_dir: Path) -> dict:
    """The best-validation model's test BLEU (rank 0; the hypotheses in test.hyp)."""
    if not is_main():
        return {}
    load_best(built, run_dir, built.device)
    result = {"preset": config.preset, "train_steps": config.train_steps, "best_valid_loss": clock.best["valid_loss"],
              **clock.summary()}
    if built.data.test_sources:
        with autocast(built.device, config.precision):
            hypotheses = [built.data.processor.decode(ids) for ids in decode(built.model, built.data.test_sources,
                                                                             config)]
        result.update(bleu(hypotheses, built.data.test_references))
        (run_dir / "test.hyp").write_text("\n".join(hypotheses) + "\n")
    return result


def train(config: TranslateConfig, resume: str | Path | None = None, device: str | None = None) -> dict:
    """Train (or, with ``resume``, continue) a translation run; returns the summary with its test BLEU."""
    return run(sys.modules[__name__], config, resume, device)


CONFIG = TranslateConfig

"""Machine-translation recipe (the paper's Transformer protocol, method.md §8.2): Adam β2 0.998, label
smoothing 0.1, the "inoam" schedule, token-bucket batches, best-validation checkpoint, beam search, BLEU."""
import dataclasses
from dataclasses import dataclass
from pathlib import Path

import torch
from torch.nn import functional as F

from ..data import load_translation
from ..data.bpe import BOS, EOS, PAD
from ..data.translation import CORPORA, token_batches
from ..evolution import DensitySchedule, TopologyEngine, method_schedule
from ..models import Transformer, beam_search, greedy_decode
from ..models.transformer import TIE_MODES
from ..topology import copy_topology, init_sparse_model, sparse_layers
from .checkpoint import (load_checkpoint, load_topologies, remove_stale_temporaries, rng_state, save_checkpoint,
                         set_rng_state)
from .config import (RunConfig, check_fraction, check_free_space, check_positive_ints, check_run_options,
                     check_sparse_method, option, start_density, with_presets)
from .distributed import (all_sum, check_world_size, is_main, load_in_turn, restore_rank_rng, seed_rank_stream,
                          shard)
from .steps import StepClock, train_steps
from .tracking import Tracker, default_run_name


@dataclass
class TranslateConfig(RunConfig):
    """Every knob of a translation run; defaults are the paper's Multi30k setting (CHTs preprint)."""
    model: str = "transformer"
    dataset: str = "multi30k"
    sparsity: float = 0.9
    update_interval: int = 200
    preset: str = option("paper", "sizes and schedule: paper (method.md §8.2) or cpu (Multi30k on a laptop: "
                         "d_model 256, 4 heads, 3+3 layers, BPE 8000, 2048-token batches, 3200 steps, beam 4).")
    d_model: int = option(512, "model width.")
    heads: int = option(8, "attention heads (must divide d_model).")
    layers: int = option(6, "encoder and decoder layers.")
    d_ff: int = option(1024, "FFN width (paper: 1024 Multi30k, 2048 IWSLT14/WMT17).")
    dropout: float = option(0.1, "dropout of embeddings, sub-layer outputs and the FFN, in [0, 1).")
    attention_dropout: float = option(0.1, "dropout of the attention weights, in [0, 1).")
    vocab_size: int | None = option(None, "joint BPE vocabulary (default per data set: 8000 Multi30k, 10000 "
                                    "IWSLT14, 40000 WMT17).")
    train_steps: int = option(20000, "optimizer steps (paper: 20000 Multi30k/IWSLT14, 80000 WMT17).")
    warmup_steps: int = option(3000, "noam warm-up steps (paper: 3000 / 6000 / 8000).")
    lr_factor: float = option(0.25, "noam factor (paper: 0.25 Multi30k, 2 IWSLT14/WMT17).")
    rewarm_steps: int = option(20, "inoam: linear re-warm-up steps after every topology update (0: none).")
    batch_tokens: int = option(1024, "tokens per batch (paper: 1024 / 10240 / 12000).")
    label_smoothing: float = option(0.1, "label smoothing of the training loss, in [0, 1).")
    eval_every: int = option(1000, "steps between validations and checkpoints.")
    beam_size: int = option(2, "test decoding beam (1: greedy).")
    length_penalty: float = option(1.0, "beam length penalty alpha (GNMT/Wu).")
    max_length: int = option(256, "longest sentence in subwords: longer training pairs are cut, decoding stops "
                             "there.")
    tie_embeddings: str = option("source_target", "embedding sharing over the joint BPE: source_target (one "
                                 "embedding for both languages, a separate generator), all (one matrix for both "
                                 "embeddings and the generator, fairseq's share-all-embeddings) or none (three "
                                 "matrices, the authors' OpenNMT).")
    src_lang: str | None = option(None, "source language (default: the data set's, en).")
    tgt_lang: str | None = option(None, "target language (default: the data set's, de).")

    def validate(self) -> "TranslateConfig":
        if self.dataset not in CORPORA:
            raise ValueError(f"unknown dataset {self.dataset!r} for translation; choose from {list(CORPORA)}")
        check_run_options(self)
        if self.tie_embeddings not in TIE_MODES:
            raise ValueError(f"unknown tie_embeddings {self.tie_embeddings!r}; choose from {list(TIE_MODES)}")
        check_positive_ints(self, ("train_steps", "warmup_steps", "batch_tokens", "eval_every", "beam_size",
                                   "d_model", "heads", "layers", "d_ff", "max_length"))
        for name in ("dropout", "attention_dropout", "label_smoothing"):
            check_fraction(self, name)
        if isinstance(self.rewarm_steps, bool) or not isinstance(self.rewarm_steps, int) or self.rewarm_steps < 0:
            raise ValueError(f"rewarm_steps must be an integer >= 0, got {self.rewarm_steps!r}")
        if self.d_model % self.heads:
            raise ValueError(f"heads ({self.heads}) must divide d_model ({self.d_model})")
        if self.vocab_size is not None:
            check_positive_ints(self, ("vocab_size",))
        check_sparse_method(self)
        check_free_space(self)
        return self

    def layer_sizes(self) -> tuple:
        """d_model, d_ff and layers: the sizes a topology must have been made for."""
        return (self.d_model, self.d_ff, self.layers)

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


PRESETS = {  # method.md §8.2 (CHTs preprint); "cpu": a model and schedule that train on a laptop CPU
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


def _loss(model, batch, smoothing: float, tokens: int | None = None) -> tuple[torch.Tensor, int]:
    """``(summed loss / tokens, batch's target tokens)`` of ``batch = (src, tgt_in, tgt_out)``; ``tokens``
    defaults to the batch's own target tokens (a mean per token)."""
    src, tgt_in, tgt_out = batch
    logits = model(src, tgt_in)
    loss = F.cross_entropy(logits.flatten(0, 1), tgt_out.flatten(), ignore_index=PAD, label_smoothing=smoothing,
                           reduction="sum")
    count = int((tgt_out != PAD).sum())
    return loss / (tokens or count), count


def part_loss(model, batch, smoothing: float) -> torch.Tensor:
    """This rank's sentences of a global ``batch``, their summed loss over the global batch's target tokens
    (summed over the ranks: the batch's mean per token; one process: ``_loss``)."""
    return _loss(model, tuple(shard(t) for t in batch), smoothing, int((batch[2] != PAD).sum()))[0]


@torch.no_grad()
def validation_loss(model, batches) -> float:
    model.eval()
    total, count = 0.0, 0
    for batch in shard(batches):  # under torchrun: this rank's batches, the sums reduced
        loss, tokens = _loss(model, batch, 0.0)
        total, count = total + float(loss) * tokens, count + tokens
    model.train()
    total, count = all_sum(total, count)
    return total / max(count, 1)


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
    (``beam_size`` > 1) or, for beam 1, the identical greedy search."""
    hypotheses = []
    for start in range(0, len(sources), chunk):
        rows = [torch.tensor(ids + [EOS]) for ids in sources[start:start + chunk]]
        src = torch.nn.utils.rnn.pad_sequence(rows, batch_first=True, padding_value=PAD)
        if config.beam_size == 1:
            hypotheses += greedy_decode(model, src, BOS, EOS, config.max_length)
        else:
            hypotheses += beam_search(model, src, BOS, EOS, config.beam_size, config.max_length,
                                      config.length_penalty)
    return hypotheses


class EpochBatches:
    """Token-bucket training batches (``token_batches``), epoch after epoch, each epoch reshuffled from
    ``generator``. ``state()`` (epoch, position, the generator's state at the epoch's start) is what a
    checkpoint keeps: restoring that generator state and passing ``epoch, position`` redraws the same epoch
    and continues at the same batch."""

    def __init__(self, sources: list, targets: list, batch_tokens: int, generator: torch.Generator,
                 epoch: int = 0, position: int = 0):
        self.sources, self.targets, self.batch_tokens, self.generator = sources, targets, batch_tokens, generator
        self.epoch, self.position = epoch, position
        self._draw()

    def _draw(self) -> None:
        self.epoch_start = self.generator.get_state()
        self.batches = token_batches(self.sources, self.targets, self.batch_tokens, self.generator)

    def next(self):
        if self.position == len(self.batches):
            self.epoch, self.position = self.epoch + 1, 0
            self._draw()
        self.position += 1
        return self.batches[self.position - 1]

    def state(self) -> dict:
        return {"rng": {**rng_state({}), "data": self.epoch_start}, "epoch": self.epoch, "position": self.position}


def train(config: TranslateConfig, resume: str | Path | None = None) -> dict:
    """Train with validation every ``eval_every`` steps (before that step's topology update), keep the
    best-validation model among evaluations at the final density, report its test BLEU."""
    run_dir = Path(resume) if resume else Path(config.out_dir) / config.name
    checkpoint = load_checkpoint(run_dir / "checkpoint.pt") if resume else None
    if is_main():
        remove_stale_temporaries(run_dir)  # left by a kill during a checkpoint write
    if checkpoint:
        config = TranslateConfig(**checkpoint["config"])
        check_world_size(checkpoint)
    data = load_in_turn(lambda: load_translation(config.dataset, config.data_dir, config.download, config.vocab_size,
                                                 config.languages, config.max_length))
    torch.manual_seed(config.seed)
    init_generator = torch.Generator().manual_seed(config.seed)
    data_generator = torch.Generator().manual_seed(config.seed + 1)
    method = config.engine_method()
    final = None if config.method == "fc" else 1.0 - config.sparsity
    start = None if final is None else DensitySchedule(final, method.density_schedule).start()  # CHTss: 50%
    model = Transformer(data.processor.get_piece_size(), config.d_model, config.heads, config.layers, config.d_ff,
                        config.dropout, config.attention_dropout, start, config.max_length + 2, init_generator,
                        config.tie_embeddings)
    if config.init_topology:  # validate() ensured a sparse method
        copy_topology(model, load_topologies(config.init_topology), method.weights, init_generator)
    elif start is not None:
        init_sparse_model(model, method.init, start, method.weights, generator=init_generator,
                          **({"beta": config.beta} if method.init == "bsw" else {}))
    seed_rank_stream(config.seed)  # under torchrun: each rank its own dropout
    optimizer = torch.optim.Adam(model.parameters(), lr=0.0, betas=(0.9, 0.998))
    schedule = method_schedule(method, config.update_interval, config.train_steps, config.zeta)
    engine = TopologyEngine(model, optimizer, method, schedule, density=final, seed=config.seed,
                            check_ranks=config.check_ranks)
    valid = token_batches(*data.valid, config.batch_tokens, shuffle=False)
    if checkpoint:
        model.load_state_dict(checkpoint["model"])
        optimizer.load_state_dict(checkpoint["optimizer"])
        engine.load_state_dict(checkpoint["engine"])
        set_rng_state(checkpoint["rng"], {"data": data_generator})  # the epoch's start: its batches are redrawn
        restore_rank_rng(checkpoint)  # ranks > 0: their own dropout stream
    batches = EpochBatches(*data.train, config.batch_tokens, data_generator,
                           *((checkpoint["epoch"], checkpoint["position"]) if checkpoint else ()))
    clock = StepClock.from_checkpoint(checkpoint)
    tracker = Tracker(run_dir, dataclasses.asdict(config), config.wandb, resume=bool(checkpoint))
    tracker.truncate(-(-clock.step // config.eval_every))  # one record per evaluation (and at the last step)
    rewarm = method.removal is not None
    train_steps(model, optimizer, engine, tracker, run_dir, clock, train_steps=config.train_steps,
                eval_every=config.eval_every,
                batch_loss=lambda: part_loss(model, batches.next(), config.label_smoothing),
                learning_rate=lambda step: inoam(step, config, rewarm),
                validation_loss=lambda: validation_loss(model, valid), data_state=batches.state,
                config=dataclasses.asdict(config), quiet=config.quiet)
    if not is_main():  # rank 0 alone reports the best checkpoint and decodes the test set
        return {}
    if not (run_dir / "best.pt").exists():  # no finite validation loss at the final density: report the last
        save_checkpoint(run_dir / "best.pt", {"model": model.state_dict()})
    model.load_state_dict(load_checkpoint(run_dir / "best.pt")["model"])
    summary = {"model": "transformer", "dataset": config.dataset, "method": config.method,
               "sparsity": config.sparsity, "seed": config.seed, "preset": config.preset,
               "train_steps": config.train_steps, "best_valid_loss": clock.best, **clock.summary(),
               "links": sum(l.nnz for l in sparse_layers(model)), "nnz": sum(p.numel() for p in model.parameters()),
               "dense_params": sum(p.numel() for p in model.parameters())
               + sum(l.out_features * l.in_features - l.nnz for l in sparse_layers(model)), "run_dir": str(run_dir)}
    if data.test_sources:
        hypotheses = [data.processor.decode(ids) for ids in decode(model, data.test_sources, config)]
        summary.update(bleu(hypotheses, data.test_references))
        (run_dir / "test.hyp").write_text("\n".join(hypotheses) + "\n")
    tracker.finish(summary)
    return summary

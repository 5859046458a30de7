"""Language-model recipe: a decoder-only LLaMA-style model (sparsenet/models/lm.py) pre-trained on a text
corpus with AdamW, linear warm-up and a cosine decay, random context windows per batch, validation
perplexity every ``eval_every`` steps (before that step's topology update), the best checkpoint among
evaluations at the final density."""
import math
import sys
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

from ..data import DataError, RandomWindows, TextData
from ..data.text import TEXT_DATASETS, consecutive_windows, load_text
from ..models.lm import LanguageModel
from ..topology.weights import init_dense_values
from .config import (SequenceConfig, above_zero, count, non_negative_number, option, positive_int,
                     positive_number, start_density, with_presets)
from .device import autocast
from .distributed import all_sum, check_divides, is_main, local_world_size, shard
from .loop import Clock, SequenceBuilt
from .memory_plan import check_plan, plan_lm
from .run import init_topology, load_best, make_engine, run
from .tracking import default_run_name


@dataclass
class LanguageConfig(SequenceConfig):
    """Every knob of a language-model run; the defaults are a ~10M-parameter model that trains on 2 CPU cores."""
    model: str = "lm"
    dataset: str = "multi30k"
    sparsity: float = 0.9
    update_interval: int = 100
    d_model: int = 320
    heads: int = 5
    d_ff: int = 864
    dropout: float = 0.0
    train_steps: int = 1000
    eval_every: int = 100
    context: int = option(128, "tokens per training window and the model's longest sequence.", positive_int)
    vocab_size: int = option(8000, "BPE vocabulary trained on the corpus.", positive_int)
    batch_size: int = option(16, "windows per batch.", positive_int)
    warmup_steps: int = option(100, "linear learning-rate warm-up steps, then cosine decay to lr * lr_end_factor.",
                               count)
    lr: float = option(3e-3, "AdamW peak learning rate.", positive_number)
    lr_end_factor: float = option(0.1, "final learning rate as a share of --lr.", non_negative_number)
    weight_decay: float = option(0.1, "AdamW weight decay.", non_negative_number)
    text_file: str | None = option(None, "with --dataset text: a UTF-8 text file, one document per line (its last "
                                   "5% of lines validate).")
    memory_limit: float | None = option(None, "GiB the run may take: the memory plan printed before training "
                                        "must fit (default: the machine's available memory).", above_zero(" GiB"))

    def check_relations(self) -> None:
        if self.dataset not in TEXT_DATASETS:
            raise ValueError(f"unknown dataset {self.dataset!r} for language modelling; choose from "
                             f"{list(TEXT_DATASETS)}")
        if (self.text_file is not None) != (self.dataset == "text"):
            raise ValueError("--text_file goes with --dataset text (and --dataset text needs --text_file)")
        check_divides(self.batch_size, "batch_size")  # under torchrun: each rank takes batch_size / ranks
        if self.d_model % self.heads or (self.d_model // self.heads) % 2:
            raise ValueError(f"heads ({self.heads}) must split d_model ({self.d_model}) into heads of even width")

    def check_preflight(self) -> None:
        """The run's memory plan (parameters, Adam's state, a batch's activations) fits the machine."""
        check_plan(plan_lm(self), self.memory_limit, local_world_size(),
                   "a smaller --batch_size, --context, --vocab_size or --d_model")

    def parameter_counts(self) -> tuple[int, int]:
        """``(links at the start density, dense parameters)``: the projections are sparse; the tied embedding
        and the norms dense."""
        d, f, layers = self.d_model, self.d_ff, self.layers
        projections = layers * (4 * d * d + 3 * d * f)
        dense = self.vocab_size * d + (2 * layers + 1) * d
        density = start_density(self)
        return (0, projections + dense) if density is None else (round(density * projections), dense)

    @property
    def name(self) -> str:
        base = f"lm-{self.dataset}-{self.method}-s{self.sparsity:g}-seed{self.seed}"
        return self.run_name or default_run_name(base)


def build_config(**options) -> LanguageConfig:
    """Defaults, then the given (non-None) options; validated."""
    return with_presets(LanguageConfig, options, {}).validate()


def learning_rate(step: int, config: LanguageConfig) -> float:
    """Linear warm-up to ``lr`` over ``warmup_steps``, then cosine to ``lr * lr_end_factor`` at the last step."""
    if step <= config.warmup_steps:
        return config.lr * step / max(1, config.warmup_steps)
    progress = (step - config.warmup_steps) / max(1, config.train_steps - config.warmup_steps)
    end = config.lr * config.lr_end_factor
    return end + (config.lr - end) * 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))


def _loss(model, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy(model(inputs).flatten(0, 1), targets.flatten())


def part_loss(model, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """This rank's windows of a global batch ``(batch, context)``, their summed next-token loss over the
    global batch's tokens (summed over the ranks: the batch's mean; one process: ``_loss``)."""
    part_inputs, part_targets = shard(inputs), shard(targets)
    return F.cross_entropy(model(part_inputs).flatten(0, 1), part_targets.flatten(), reduction="sum") / targets.numel()


@torch.no_grad()
def validation_loss(model, tokens: torch.Tensor, config: LanguageConfig) -> float:
    """Mean next-token loss over the validation stream cut into consecutive context windows (moved to the model's
    device a batch at a time)."""
    model.eval()
    device = next(model.parameters()).device
    total, count = 0.0, 0
    for inputs, targets in shard(list(consecutive_windows(tokens, config.batch_size, config.context))):
        inputs, targets = inputs.to(device), targets.to(device)
        total, count = total + float(_loss(model, inputs, targets)) * targets.numel(), count + targets.numel()
    model.train()
    total, count = all_sum(total, count)  # under torchrun each rank validates its share of the windows
    return total / max(count, 1)


def load_data(config: LanguageConfig) -> TextData:
    """The corpus, its BPE and the token streams; ``DataError`` if a split is shorter than one window."""
    data = load_text(config.dataset, config.data_dir, config.download, config.vocab_size, config.text_file)
    for split, tokens in (("training", data.train), ("validation", data.valid)):
        if tokens.numel() <= config.context + 1:
            raise DataError(f"{config.dataset}: the {split} text has {tokens.numel()} tokens, fewer than one "
                            f"--context window of {config.context} + 1")
    return data


def build(config: LanguageConfig, data: TextData, init_generator: torch.Generator, data_generator: torch.Generator,
          device: torch.device) -> "Language":
    if not config.quiet and is_main():
        print(plan_lm(config).describe(), file=sys.stderr)
    return Language(config, data, init_generator, data_generator, device)


class Language(SequenceBuilt):
    """A language-model run: random context windows per batch from the data generator; validation perplexity
    every ``eval_every`` steps; selection by validation loss (best.pt)."""

    def __init__(self, config: LanguageConfig, data: TextData, init_generator: torch.Generator,
                 data_generator: torch.Generator, device: torch.device):
        self.config, self.device, self.data = config, device, data
        method = config.engine_method()
        start = start_density(config)
        self.model = LanguageModel(data.processor.get_piece_size(), config.d_model, config.heads, config.layers,
                                   config.d_ff, config.context, config.dropout, start, init_generator)
        if config.method == "fc" and config.weights is not None:  # the dense baseline at a sparse model's scale
            for module in self.model.modules():
                if isinstance(module, nn.Linear):
                    init_dense_values(module, config.weights, init_generator)
        init_topology(self.model, config, init_generator, method.init, start,
                      **({"beta": config.beta} if method.init == "bsw" else {}))
        self.model.to(device)
        self.optimizer = torch.optim.AdamW(self.model.parameters(), lr=0.0, betas=(0.9, 0.95),
                                           weight_decay=config.weight_decay)
        self.engine = make_engine(config, self.model, self.optimizer, config.update_interval, config.train_steps,
                                  None if config.method == "fc" else 1.0 - config.sparsity)
        self.steps, self.eval_every, self.best = config.train_steps, config.eval_every, {"valid_loss": math.inf}
        self.batches = RandomWindows(data.train, config.batch_size, config.context, data_generator)

    def batch_loss(self, batch):
        inputs, targets = (t.to(self.device, non_blocking=True) for t in batch)
        return part_loss(self.model, inputs, targets), 1, {}

    def learning_rate(self, step: int) -> float:
        return learning_rate(step, self.config)

    def valid_loss(self) -> float:
        return validation_loss(self.model, self.data.valid, self.config)


def summary(built: Language, config: LanguageConfig, clock: Clock, run_dir: Path) -> dict:
    """The best-validation model's perplexity (and the last model's), every rank validating its share."""
    with autocast(built.device, config.precision):
        final_loss = validation_loss(built.model, built.data.valid, config)
    if not is_main():
        return {}
    load_best(built, run_dir, built.device)
    return {"train_steps": config.train_steps, "best_valid_loss": clock.best["valid_loss"],
            "best_valid_ppl": math.exp(min(clock.best["valid_loss"], 50)),
            "final_valid_ppl": math.exp(min(final_loss, 50)), **clock.summary(),
            "train_tokens": built.data.train.numel()}


def train(config: LanguageConfig, resume: str | Path | None = None, device: str | None = None) -> dict:
    """Train (or, with ``resume``, continue) a language-model run; returns the summary with its perplexity."""
    return run(sys.modules[__name__], config, resume, device)


CONFIG = LanguageConfig

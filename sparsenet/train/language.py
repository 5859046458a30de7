"""Language-model recipe: a decoder-only LLaMA-style model (sparsenet/models/lm.py) pre-trained on a text
corpus with AdamW, linear warm-up and a cosine decay, random context windows per batch, validation
perplexity every ``eval_every`` steps (before that step's topology update), the best checkpoint among
evaluations at the final density."""
import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

from ..data import DataError
from ..data.text import TEXT_DATASETS, consecutive_windows, load_text, random_windows
from ..evolution import TopologyEngine, method_schedule
from ..models.lm import LanguageModel
from ..topology import copy_topology, init_sparse_model, sparse_layers
from ..topology.weights import init_dense_values
from .checkpoint import (load_checkpoint, load_topologies, remove_stale_temporaries, rng_state, save_checkpoint,
                         set_rng_state)
from .config import (RunConfig, check_fraction, check_free_space, check_positive_ints, check_run_options,
                     check_sparse_method, option, start_density, with_presets)
from .distributed import (all_sum, check_divides, check_world_size, is_main, load_in_turn, restore_rank_rng,
                          seed_rank_stream, shard)
from .steps import StepClock, train_steps
from .tracking import Tracker, default_run_name


@dataclass
class LanguageConfig(RunConfig):
    """Every knob of a language-model run; the defaults are a ~10M-parameter model that trains on 2 CPU cores."""
    model: str = "lm"
    dataset: str = "multi30k"
    sparsity: float = 0.9
    update_interval: int = 100
    d_model: int = option(320, "model width.")
    heads: int = option(5, "attention heads (must split d_model into heads of even width, for rotary positions).")
    layers: int = option(6, "decoder blocks.")
    d_ff: int = option(864, "SwiGLU hidden width (LLaMA's 8/3 · d_model, rounded).")
    context: int = option(128, "tokens per training window and the model's longest sequence.")
    vocab_size: int = option(8000, "BPE vocabulary trained on the corpus.")
    batch_size: int = option(16, "windows per batch.")
    train_steps: int = option(1000, "optimizer steps.")
    warmup_steps: int = option(100, "linear learning-rate warm-up steps, then cosine decay to lr * lr_end_factor.")
    lr: float = option(3e-3, "AdamW peak learning rate.")
    lr_end_factor: float = option(0.1, "final learning rate as a share of --lr.")
    weight_decay: float = option(0.1, "AdamW weight decay.")
    dropout: float = option(0.0, "dropout of the attention and MLP outputs, in [0, 1).")
    eval_every: int = option(100, "steps between validations and checkpoints.")
    text_file: str | None = option(None, "with --dataset text: a UTF-8 text file, one document per line (its last "
                                   "5% of lines validate).")

    def validate(self) -> "LanguageConfig":
        if self.dataset not in TEXT_DATASETS:
            raise ValueError(f"unknown dataset {self.dataset!r} for language modelling; choose from "
                             f"{list(TEXT_DATASETS)}")
        if (self.text_file is not None) != (self.dataset == "text"):
            raise ValueError("--text_file goes with --dataset text (and --dataset text needs --text_file)")
        check_run_options(self)
        check_positive_ints(self, ("d_model", "heads", "layers", "d_ff", "context", "vocab_size", "batch_size",
                                   "train_steps", "eval_every"))
        check_divides(self.batch_size, "batch_size")  # under torchrun: each rank takes batch_size / ranks
        if isinstance(self.warmup_steps, bool) or not isinstance(self.warmup_steps, int) or self.warmup_steps < 0:
            raise ValueError(f"warmup_steps must be an integer >= 0, got {self.warmup_steps!r}")
        if self.d_model % self.heads or (self.d_model // self.heads) % 2:
            raise ValueError(f"heads ({self.heads}) must split d_model ({self.d_model}) into heads of even width")
        for name in ("lr", "lr_end_factor", "weight_decay"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0 or (name == "lr" and
                                                                                             value == 0):
                raise ValueError(f"{name} must be a number {'> 0' if name == 'lr' else '>= 0'}, got {value!r}")
        check_fraction(self, "dropout")
        check_sparse_method(self)
        check_free_space(self)
        return self

    def layer_sizes(self) -> tuple:
        """d_model, d_ff and layers: the sizes a topology must have been made for."""
        return (self.d_model, self.d_ff, self.layers)

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
    """Mean next-token loss over the validation stream cut into consecutive context windows."""
    model.eval()
    total, count = 0.0, 0
    for inputs, targets in shard(list(consecutive_windows(tokens, config.batch_size, config.context))):
        total, count = total + float(_loss(model, inputs, targets)) * targets.numel(), count + targets.numel()
    model.train()
    total, count = all_sum(total, count)  # under torchrun each rank validates its share of the windows
    return total / max(count, 1)


def train(config: LanguageConfig, resume: str | Path | None = None) -> dict:
    """Train, validate every ``eval_every`` steps, keep the best-validation model among evaluations at the
    final density; the summary reports its validation perplexity."""
    run_dir = Path(resume) if resume else Path(config.out_dir) / config.name
    checkpoint = load_checkpoint(run_dir / "checkpoint.pt") if resume else None
    if is_main():
        remove_stale_temporaries(run_dir)
    if checkpoint:
        config = LanguageConfig(**checkpoint["config"])
        check_world_size(checkpoint)
    data = load_in_turn(lambda: load_text(config.dataset, config.data_dir, config.download, config.vocab_size,
                                          config.text_file))
    for split, tokens in (("training", data.train), ("validation", data.valid)):
        if tokens.numel() <= config.context + 1:
            raise DataError(f"{config.dataset}: the {split} text has {tokens.numel()} tokens, fewer than one "
                            f"--context window of {config.context} + 1")
    torch.manual_seed(config.seed)
    init_generator = torch.Generator().manual_seed(config.seed)
    data_generator = torch.Generator().manual_seed(config.seed + 1)
    method = config.engine_method()
    final = None if config.method == "fc" else 1.0 - config.sparsity
    start = start_density(config)
    model = LanguageModel(data.processor.get_piece_size(), config.d_model, config.heads, config.layers, config.d_ff,
                          config.context, config.dropout, start, init_generator)
    if config.method == "fc" and config.weights is not None:  # the dense baseline at a sparse model's value scale
        for module in model.modules():
            if isinstance(module, nn.Linear):
                init_dense_values(module, config.weights, init_generator)
    if config.init_topology:
        copy_topology(model, load_topologies(config.init_topology), method.weights, init_generator)
    elif start is not None:
        init_sparse_model(model, method.init, start, method.weights, generator=init_generator,
                          **({"beta": config.beta} if method.init == "bsw" else {}))
    seed_rank_stream(config.seed)  # under torchrun: each rank its own dropout
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.0, betas=(0.9, 0.95), weight_decay=config.weight_decay)
    engine = TopologyEngine(model, optimizer, method, method_schedule(method, config.update_interval,
                                                                      config.train_steps, config.zeta),
                            density=final, seed=config.seed, check_ranks=config.check_ranks)
    if checkpoint:
        model.load_state_dict(checkpoint["model"])
        optimizer.load_state_dict(checkpoint["optimizer"])
        engine.load_state_dict(checkpoint["engine"])
        set_rng_state(checkpoint["rng"], {"data": data_generator})
        restore_rank_rng(checkpoint)  # ranks > 0: their own dropout stream
    clock = StepClock.from_checkpoint(checkpoint)
    tracker = Tracker(run_dir, dataclasses.asdict(config), config.wandb, resume=bool(checkpoint))
    tracker.truncate(-(-clock.step // config.eval_every))  # one record per evaluation (and at the last step)
    train_steps(model, optimizer, engine, tracker, run_dir, clock, train_steps=config.train_steps,
                eval_every=config.eval_every,
                batch_loss=lambda: part_loss(model, *random_windows(data.train, config.batch_size, config.context,
                                                                    data_generator)),
                learning_rate=lambda step: learning_rate(step, config),
                validation_loss=lambda: validation_loss(model, data.valid, config),
                data_state=lambda: {"rng": rng_state({"data": data_generator})},
                config=dataclasses.asdict(config), quiet=config.quiet)
    final_loss = validation_loss(model, data.valid, config)
    if not is_main():  # rank 0 alone reports the best checkpoint
        return {}
    if not (run_dir / "best.pt").exists():
        save_checkpoint(run_dir / "best.pt", {"model": model.state_dict()})
    model.load_state_dict(load_checkpoint(run_dir / "best.pt")["model"])
    layers = sparse_layers(model)
    summary = {"model": "lm", "dataset": config.dataset, "method": config.method, "sparsity": config.sparsity,
               "seed": config.seed, "train_steps": config.train_steps, "best_valid_loss": clock.best,
               "best_valid_ppl": math.exp(min(clock.best, 50)), "final_valid_ppl": math.exp(min(final_loss, 50)),
               **clock.summary(),
               "train_tokens": data.train.numel(), "links": sum(l.nnz for l in layers),
               "nnz": sum(p.numel() for p in model.parameters()),
               "dense_params": sum(p.numel() for p in model.parameters())
               + sum(l.out_features * l.in_features - l.nnz for l in layers), "run_dir": str(run_dir)}
    tracker.finish(summary)
    return summary

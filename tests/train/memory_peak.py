"""A recipe model's allocated peak in one training step at the worst-case batch its memory plan assumes, measured
in a fresh process (``step_allocated_peak`` reads the CPU allocator through the profiler once per process)."""
import multiprocessing
from concurrent.futures import ProcessPoolExecutor

import torch
from torch.nn import functional as F

from sparsenet.experiments.training_memory import count_bytes, step_allocated_peak
from sparsenet.models import Transformer
from sparsenet.models.lm import LanguageModel
from sparsenet.topology import init_sparse_model
from sparsenet.train.config import start_density
from sparsenet.train.device import autocast


def _model_and_batch(config, generator):
    density = None if config.method == "fc" else start_density(config)
    if config.model == "transformer":
        model = Transformer(config.vocab_size, config.d_model, config.heads, config.layers, config.d_ff,
                            config.dropout, config.attention_dropout, density, config.max_length + 2, generator,
                            config.tie_embeddings)
        longest = config.max_length + 1
        sentences = max(config.batch_tokens // 2, longest) // longest
        src, tgt = (torch.randint(4, config.vocab_size, (sentences, longest + i), generator=generator) for i in (0, 1))
        batch = (src, tgt[:, :-1], tgt[:, 1:])
        loss = lambda: F.cross_entropy(model(*batch[:2]).flatten(0, 1), batch[2].flatten(),  # noqa: E731
                                       label_smoothing=config.label_smoothing)
    else:
        model = LanguageModel(config.vocab_size, config.d_model, config.heads, config.layers, config.d_ff,
                              config.context, config.dropout, density, generator)
        tokens = torch.randint(config.vocab_size, (config.batch_size, config.context + 1), generator=generator)
        loss = lambda: F.cross_entropy(model(tokens[:, :-1]).flatten(0, 1), tokens[:, 1:].flatten())  # noqa: E731
    if density is not None:
        init_sparse_model(model, "er", density, "xavier", generator=generator)
    return model.train(), loss


def allocated_peak(config) -> int:
    """Parameters, Adam's state and structure, plus the allocator's peak over one step (gradients set to None
    first): the bytes a step of ``config``'s model holds at most."""
    torch.manual_seed(0)
    model, loss = _model_and_batch(config, torch.Generator().manual_seed(0))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)

    def step():
        with autocast(torch.device("cpu"), config.precision):
            value = loss()
        value.backward()
        optimizer.step()

    step()  # Adam's moments exist from here on
    optimizer.zero_grad(set_to_none=True)
    transient = step_allocated_peak(step)
    held = count_bytes(model, optimizer)
    return held.params + held.optimizer + held.structure + transient


def allocated_peak_fresh(config) -> int:
    """``allocated_peak`` in a freshly spawned process."""
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        return pool.submit(allocated_peak, config).result()

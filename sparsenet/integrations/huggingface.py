"""Hugging Face integration (``pip install -e ".[hf]"``): DST inside ``transformers.Trainer`` and sparse
checkpoints of ``PreTrainedModel`` s.

    model = LlamaForCausalLM(config)
    sparsenet.sparsify(model, 0.9, include=("*_proj",))
    trainer = Trainer(model, args, train_dataset=..., callbacks=[DSTCallback(method="chts", update_interval=100)])
    trainer.train()                       # the DST step runs after every optimizer step, before zero_grad
    trainer.save_model("out")             # a sparse checkpoint: values, crow and col of every SparseLinear
    again = LlamaForCausalLM(config); sparsenet.sparsify(again, 0.9, include=("*_proj",))
    load_sparse(again, "out")             # exact values and topology
    sparsenet.densify(again).save_pretrained("export")   # a plain model for any Hugging Face tool

The callback builds its ``DST`` at ``on_train_begin`` (when the Trainer has created the optimizer), steps it
at ``on_optimizer_step`` (RigL and MEST read the gradient, which the Trainer clears before
``on_step_end``), saves its state as ``sparsenet_dst.pt`` in every checkpoint folder and reloads it when the
Trainer resumes from one (``output_dir/checkpoint-N``, or the folder given as ``resume_from``: the Trainer
does not tell its callbacks which folder it resumed from).
"""
from pathlib import Path

import torch
from transformers import TrainerCallback

from ..dst import DST, check_arguments, chosen_method

DST_STATE = "sparsenet_dst.pt"


class DSTCallback(TrainerCallback):
    """Dynamic sparse training of the Trainer's model (already ``sparsify``'d). ``method``,
    ``update_interval``, ``zeta``, ``sparsity``, ``relations``, ``seed`` and ``method_options`` are ``DST``'s;
    the run's length is the Trainer's ``max_steps``. ``resume_from``: the checkpoint folder the Trainer resumes
    from, when it is not ``output_dir/checkpoint-N``. ``dst`` is the live ``DST`` once training began.
    Arguments are range-checked here; at ``on_train_begin`` ``DST`` checks the rest (the Trainer's optimizer holds
    every sparse layer's values, an update fits in ``max_steps``, a resumed state fits the model)."""

    def __init__(self, method: str = "chts", update_interval: int = 100, zeta: float = 0.3,
                 sparsity: float | None = None, relations=None, seed: int = 0, resume_from: str | Path | None = None,
                 **method_options):
        check_arguments(update_interval, zeta, sparsity, seed)  # a bad value, name or option fails here,
        chosen_method(method, method_options)  # not when training begins
        self.settings = dict(method=method, update_interval=update_interval, zeta=zeta, sparsity=sparsity,
                             relations=relations, seed=seed, **method_options)
        self.resume_from = resume_from
        self.dst: DST | None = None
        self.updates: list[dict] = []

    def on_train_begin(self, args, state, control, model=None, optimizer=None, **kwargs):
        self.dst = DST(model, optimizer, total_steps=state.max_steps, **self.settings)
        if not state.global_step:
            if self.resume_from is not None:
                raise ValueError(f"DSTCallback: resume_from={str(self.resume_from)!r} but the Trainer starts at step 0 "
                                 f"(pass resume_from_checkpoint= to trainer.train)")
            return
        # the Trainer resumed from a checkpoint: DST must continue where it stopped
        saved = Path(self.resume_from or Path(args.output_dir) / f"checkpoint-{state.global_step}") / DST_STATE
        if not saved.is_file():
            raise ValueError(f"DSTCallback: the Trainer resumed at step {state.global_step} but {saved} does not "
                             f"exist, so the DST schedule would restart from step 0; pass "
                             f"DSTCallback(resume_from=<the checkpoint folder>)")
        self.dst.load_state_dict(torch.load(saved, weights_only=False))
        if self.dst.steps != state.global_step:
            raise ValueError(f"DSTCallback: {saved} holds DST's state at step {self.dst.steps}, but the Trainer "
                             f"resumed at step {state.global_step}; resume_from must be the folder it resumed from")

    def on_optimizer_step(self, args, state, control, **kwargs):
        stats = self.dst.step()
        if stats is not None:
            self.updates.append({k: v for k, v in stats.items() if k != "layers"})

    def on_save(self, args, state, control, **kwargs):
        folder = Path(args.output_dir) / f"checkpoint-{state.global_step}"
        if folder.is_dir() and args.should_save:
            temporary = folder / (DST_STATE + ".tmp")
            torch.save(self.dst.state_dict(), temporary)
            temporary.replace(folder / DST_STATE)


def load_sparse(model: torch.nn.Module, directory: str | Path) -> torch.nn.Module:
    """Load a checkpoint folder written by ``save_pretrained`` / ``Trainer.save_model`` of a sparsified model
    into ``model`` (built from the same config and ``sparsify``'d with the same include/exclude): every
    ``SparseLinear`` takes the saved links and values, whatever its topology before. Returns ``model``."""
    directory = Path(directory)
    files = sorted(directory.glob("model*.safetensors"))
    if files:
        from safetensors.torch import load_file
        state = {k: v for f in files for k, v in load_file(f).items()}
    elif (directory / "pytorch_model.bin").exists():
        state = torch.load(directory / "pytorch_model.bin", weights_only=True)
    else:
        raise ValueError(f"{directory}: no model*.safetensors or pytorch_model.bin (not a saved model folder)")
    missing, unexpected = model.load_state_dict(state, strict=False)
    tied = set(getattr(model, "_tied_weights_keys", None) or [])
    missing = [k for k in missing if k not in tied]
    if missing or unexpected:
        raise ValueError(f"{directory}: the checkpoint does not fit this model (missing {missing[:3]}, unexpected "
                         f"{unexpected[:3]}); sparsify the model with the same include/exclude first")
    return model

"""Run records: a run directory (config.json, metrics.jsonl, summary.json) and a W&B run.

W&B runs offline unless the user is logged in; ``WANDB_MODE`` is respected; ``wandb="off"`` disables it.
Nothing reaches the network unless the user is logged in or sets ``WANDB_MODE=online``.
"""
import json
import os
from pathlib import Path

from .checkpoint import write_json
from .distributed import is_main

WANDB_CHOICES = ("auto", "online", "offline", "off")


def _logged_in() -> bool:
    if os.environ.get("WANDB_API_KEY"):
        return True
    netrc = Path.home() / ".netrc"
    return netrc.exists() and "api.wandb.ai" in netrc.read_text(errors="ignore")


def wandb_mode(choice: str) -> str:
    """The W&B mode to use: 'disabled', 'offline' or 'online'."""
    if choice not in WANDB_CHOICES:
        raise ValueError(f"unknown --wandb {choice!r}; choose from {list(WANDB_CHOICES)}")
    if choice == "off":
        return "disabled"
    if choice != "auto":
        return choice
    return os.environ.get("WANDB_MODE") or ("online" if _logged_in() else "offline")


def default_run_name(base: str) -> str:
    """``base``, plus the W&B run id when a W&B sweep agent launched this run (its runs would otherwise
    share one directory whenever the swept option is not part of ``base``)."""
    if os.environ.get("WANDB_SWEEP_ID") and os.environ.get("WANDB_RUN_ID"):
        return f"{base}-{os.environ['WANDB_RUN_ID']}"
    return base


class Tracker:
    """Writes the run directory's files and mirrors metrics to W&B (project ``sparsenet``). Under torchrun
    only rank 0 writes or talks to W&B; on the other ranks every method does nothing."""

    def __init__(self, run_dir: Path, config: dict, wandb: str = "auto", resume: bool = False):
        self.run_dir = Path(run_dir)
        self.metrics_path = self.run_dir / "metrics.jsonl"
        self.run = None
        self.enabled = is_main()
        if not self.enabled:
            return
        self.run_dir.mkdir(parents=True, exist_ok=True)
        write_json(self.run_dir / "config.json", config)
        mode = wandb_mode(wandb)
        if mode != "disabled":
            import wandb as wandb_lib
            os.environ.setdefault("WANDB_SILENT", "true")
            self.run = wandb_lib.init(project="sparsenet", config=config, dir=str(self.run_dir), mode=mode,
                                      name=self.run_dir.name, id=_run_id(self.run_dir), resume="allow" if resume
                                      else None, reinit=True)

    def log(self, record: dict, step: int | None = None) -> None:
        """Append ``record`` to metrics.jsonl and to W&B at ``step`` (epoch or optimizer step)."""
        if not self.enabled:
            return
        with open(self.metrics_path, "a") as f:
            f.write(json.dumps(record) + "\n")
        if self.run is not None:
            self.run.log(record, step=step)

    def truncate(self, records: int) -> None:
        """Keep only the first ``records`` metric lines (resuming from the checkpoint written with the last)."""
        if self.enabled and self.metrics_path.exists():
            lines = self.metrics_path.read_text().splitlines()[:records]
            self.metrics_path.write_text("".join(line + "\n" for line in lines))

    def finish(self, summary: dict) -> None:
        if not self.enabled:
            return
        write_json(self.run_dir / "summary.json", summary)
        if self.run is not None:
            self.run.summary.update(summary)
            self.run.finish()


def _run_id(run_dir: Path) -> str:
    import hashlib
    return hashlib.sha1(str(run_dir.resolve()).encode()).hexdigest()[:16]

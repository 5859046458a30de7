"""Opening a run the same way for every recipe — a new run from options, checked before any work, or an
interrupted one to resume — and a finished run's summary as one readable line."""
import json
from pathlib import Path

from . import classify, language, translate
from .classify import ClassifyConfig
from .config import check_option_names
from .device import resolve_device
from .language import LanguageConfig
from .translate import TranslateConfig

RECIPES = {"mlp": classify, "transformer": translate, "lm": language}  # --model: its recipe (build_config, train)
CONFIGS = {"mlp": ClassifyConfig, "transformer": TranslateConfig, "lm": LanguageConfig}  # --model: its options


def open_run(model: str, options: dict, resume: str | None = None, restart: bool = False):
    """``(recipe, config, run_dir)`` of a new run of ``model`` with ``options`` (names, values and the run
    folder checked; a folder holding a checkpoint is refused unless ``restart``), or, with ``resume``, of the
    run in that folder (``config`` None: the recipe reads it from the checkpoint; of the options only
    ``device`` may be given, to resume on another device). ``ValueError`` otherwise."""
    if model not in RECIPES:
        raise ValueError(f"unknown model {model!r}; choose from {sorted(RECIPES)}")
    if resume:
        others = [name for name in options if name != "device"]
        if others:
            raise ValueError(f"--resume takes no other options than --device (the run's config is used); got "
                             f"{', '.join('--' + k for k in others)}")
        if "device" in options:
            resolve_device(options["device"])
        run_dir = Path(resume)
        if not (run_dir / "checkpoint.pt").exists():
            raise ValueError(f"--resume {resume}: no checkpoint.pt there")
        return RECIPES[_saved_model(run_dir)], None, run_dir
    check_option_names(CONFIGS, model, options)
    config = RECIPES[model].build_config(model=model, **options)
    run_dir = Path(config.out_dir) / config.name
    _check_fresh(run_dir, restart)
    return RECIPES[model], config, run_dir


def _saved_model(run_dir: Path) -> str:
    """The ``model`` of the run in ``run_dir``, from its config.json."""
    try:
        model = json.loads((run_dir / "config.json").read_text()).get("model", "mlp")
    except (OSError, ValueError, AttributeError):
        raise ValueError(f"--resume {run_dir}: config.json is missing or unreadable") from None
    if model not in RECIPES:
        raise ValueError(f"--resume {run_dir}: config.json names an unknown model {model!r}")
    return model


def _check_fresh(run_dir: Path, restart: bool) -> None:
    """Refuse to start over a run directory that holds a checkpoint, unless ``restart``: re-running a command
    would otherwise overwrite an interrupted (or finished) run."""
    if restart or not (run_dir / "checkpoint.pt").exists():
        return
    if (run_dir / "summary.json").exists():
        raise ValueError(f"{run_dir} holds a finished run; pass --restart to train it again from scratch, or "
                         f"--run_name to train beside it")
    raise ValueError(f"{run_dir} holds an unfinished run; continue it with --resume {run_dir}, or pass --restart to "
                     f"start it again from scratch")


def result_line(summary: dict) -> str:
    """One readable line of a run's summary: the data set, method, sparsity, result and sizes."""
    shape = "dense" if summary["method"] == "fc" else f"{100 * summary['sparsity']:.5g}% sparse"  # 99% or 99.996%
    if "best_test_accuracy" in summary:
        at_valid = summary["test_accuracy_at_best_valid"]
        result = (f"test accuracy {'n/a' if at_valid is None else f'{at_valid:.2%}'} at the best validation "
                  f"epoch (final {summary['final_test_accuracy']:.2%}, best over epochs "
                  f"{summary['best_test_accuracy']:.2%})")
    elif "best_valid_ppl" in summary:
        result = f"validation perplexity {summary['best_valid_ppl']:.2f} (final {summary['final_valid_ppl']:.2f})"
    else:
        bleu, sacrebleu = summary.get("bleu", float("nan")), summary.get("sacrebleu", float("nan"))
        result = f"BLEU {bleu:.2f} (sacreBLEU {sacrebleu:.2f})"
    return (f"{summary['dataset']} · {summary['method']} · {shape}: {result} with {summary['links']:,} links in "
            f"the sparse layers, {summary['nnz']:,} parameters in all (dense model: {summary['dense_params']:,}); "
            f"{summary['train_seconds']:.1f} s of training")

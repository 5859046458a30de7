"""Results tables of a folder of runs (a queue's records, e.g. results/records/mlp_99): one row per
(data set, method) and variant, mean ± standard error over the seeds that finished (the count shown), the
paper's cell beside it (``paper.paper_value``), and the command that trains each run, rebuilt from its
config.json. Runs of one method whose configs differ in more than the seed and where they ran (e.g. a
learning rate) are separate variants, each a row labelled with the settings that tell it apart; they are
never averaged together as seeds.

MLP accuracy columns: "at best valid" = test accuracy of the epoch with the best validation accuracy (the
honest number); "final" = after the last epoch; "best (paper's protocol)" = the maximum test accuracy over
the epochs at the final density. ANP = active-neuron rate after the last update.

Transformer: ``train s`` is the run's training time (validation included) and ``s/step`` its fastest
interval between validations, the least disturbed by other jobs. Bytes are counted tensor bytes of a model
of the run's sizes at its final density (``sparse.layer_memory``; tensor bytes follow the link count):
parameters (values; indices and CSR caches in their own column) and Adam's two moments.
"""
import json
import math
import statistics
from pathlib import Path

from ..evolution.methods import method_names
from .paper import LLAMA_REFERENCE, paper_value
from .table import mean_se

MLP_METHODS = ("fc", *(name for name in method_names() if name != "static"))  # the registered methods' rows
TRANSFORMER_METHODS = ("fc", "chts", "set", "rigl", "chtss", "mest")  # the paper's Transformer table, its order
LM_METHODS = ("fc", *method_names())
ALWAYS_SHOWN = ("model", "dataset", "text_file", "preset", "method", "sparsity", "seed")  # in every command
RUN_PLACE = ("data_dir", "out_dir", "wandb", "quiet")  # where the run read and wrote: shown as recorded
# config fields that do not make a run a variant: the seed and what pairs with it (--init_topology, a per-run
# path), and how a run was carried out rather than what it trains (downloads, checkpoints, memory, rank checks)
NOT_A_VARIANT = ("seed", "init_topology", "run_name", "resume", "download", "checkpoint_every", "memory_limit",
                 "check_ranks", *RUN_PLACE)
DATASET_ORDER = ("mnist", "fashion_mnist", "emnist", "multi30k", "iwslt14", "wmt17")
MIB = 2**20


def read_runs(runs_dir: str | Path) -> tuple[list[dict], list[str]]:
    """``(runs, unfinished)``: each finished run as ``{"config", "summary", "metrics"}`` (run folders sorted by
    name), and a line per unfinished run with its progress. ``ValueError`` if the folder holds no run."""
    runs_dir = Path(runs_dir)
    if not runs_dir.is_dir():
        raise ValueError(f"{runs_dir}: no such folder of runs")
    runs, unfinished = [], []
    for folder in sorted(d for d in runs_dir.iterdir() if (d / "config.json").is_file()):
        config = _json(folder / "config.json")
        metrics = ([json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines()]
                   if (folder / "metrics.jsonl").exists() else [])
        if (folder / "summary.json").exists():
            runs.append({"config": config, "summary": _json(folder / "summary.json"), "metrics": metrics})
        else:
            unfinished.append(f"{config.get('dataset')} {config.get('method')} seed {config.get('seed')}: "
                              f"{len(metrics)} evaluations")
    if not runs and not unfinished:
        raise ValueError(f"{runs_dir}: no run folder (with a config.json) in it")
    return runs, unfinished


def _json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise ValueError(f"{path}: unreadable ({error})") from None


def variants(group: list[dict]) -> list[tuple[str, list[dict]]]:
    """Split ``group`` (runs of one method, and sparsity) by their effective settings (``effective_config``)
    other than ``NOT_A_VARIANT``: ``[(label, runs)]`` in order of first appearance, the label listing the
    settings that differ within the group as `` (key=value, ...)`` (empty when the group is one variant;
    ``default`` for a setting left to the recipe)."""
    settings = [effective_config(run["config"]) for run in group]
    keys = sorted({key for config in settings for key in config} - set(NOT_A_VARIANT))
    differing = [key for key in keys if len({json.dumps(config.get(key), sort_keys=True) for config in settings}) > 1]
    split: dict[tuple, list[int]] = {}
    for index, config in enumerate(settings):
        split.setdefault(tuple(json.dumps(config.get(key), sort_keys=True) for key in differing), []).append(index)
    def shown(value):
        return "default" if value is None else value  # a setting left to the recipe (the LM's fc: LLaMA's 0.02)

    return [(" (" + ", ".join(f"{key}={shown(settings[indices[0]].get(key))}" for key in differing) + ")"
             if differing else "", [group[i] for i in indices]) for indices in split.values()]


def _recipe_defaults(config: dict) -> tuple[str, dict, dict]:
    """``(model, identity, default)`` of a recorded config: its model, its ``ALWAYS_SHOWN`` options (the dense
    ``fc`` without a sparsity), and the config today's recipe builds from those alone."""
    from ..train import RECIPES
    model = config.get("model", "mlp")
    identity = {k: config[k] for k in ALWAYS_SHOWN if k in config and k != "model"}
    if config.get("method") == "fc":
        identity.pop("sparsity", None)
    return model, identity, vars(RECIPES[model].build_config(model=model, **identity))


def effective_config(config: dict) -> dict:
    """A recorded config with what it left to defaults filled in: fields it lacks (recorded before they
    existed) from today's defaults for its model, data set and method, and method fields left ``None`` (the
    method's own choice) from the recipe's ``METHOD_DEFAULTS`` and the method's declaration. Both are today's
    defaults: should a default change, a run recorded under the old one compares as if it had today's."""
    from ..evolution.methods import METHODS
    from ..train.config import METHOD_OPTIONS, method_defaults
    model, _, default = _recipe_defaults(config)
    filled = {**default, **config}
    declared = METHODS.get(config.get("method"))
    chosen = method_defaults(model, config.get("dataset"), config.get("method"))
    for key in METHOD_OPTIONS:
        if filled.get(key) is None:
            filled[key] = chosen.get(key, getattr(declared, key, None))
    return filled


def train_command(config: dict) -> str:
    """The ``python cli.py train`` command of a run: its identity options, where it read and wrote, and every
    option whose value differs from what those identity options give by default."""
    model, identity, default = _recipe_defaults(config)
    shown = {"model": model} if model != "mlp" else {}
    shown.update(identity)
    shown.update({k: v for k, v in config.items() if k in default and k not in shown and k not in RUN_PLACE
                  and v != default[k] and not (isinstance(v, list) and tuple(v) == default[k])})
    shown.update({k: config[k] for k in RUN_PLACE if k in config and config[k] != default[k]})
    parts = []
    for key, value in shown.items():
        if value is True:
            parts.append(f"--{key}")
        elif value is not None and value is not False:
            parts.append(f"--{key} {','.join(map(str, value)) if isinstance(value, list) else value}")
    return "python cli.py train " + " ".join(parts)


def _paper(metric: str, params: dict) -> str:
    cell = paper_value(metric, params)
    if cell is None:
        return "–"
    return f"{cell[0]:g}" if cell[1] is None else f"{cell[0]:.2f} ± {cell[1]:.2f}"


def _datasets(runs: list[dict]) -> list[str]:
    names = {r["summary"]["dataset"] for r in runs}
    return sorted(names, key=lambda name: (DATASET_ORDER.index(name) if name in DATASET_ORDER else len(DATASET_ORDER),
                                           name))


def mlp_table(runs: list[dict]) -> list[str]:
    """The MLP tables, one per data set: accuracies at best validation / final / best, paper, ANP."""
    lines = []
    for dataset in _datasets(runs):
        lines += [f"### {dataset}", "", "| method | seeds | at best valid % | final % | best (paper's protocol) % | "
                  "paper % | ANP % (ours / paper) | s/epoch | links |", "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
        here = [r for r in runs if r["summary"]["dataset"] == dataset]
        sparsity = next((r["summary"]["sparsity"] for r in here if r["summary"]["method"] != "fc"), 0.99)
        for method in MLP_METHODS:
            params = {"dataset": dataset, "method": method, "sparsity": 0.0 if method == "fc" else sparsity}
            paper = _paper("best_test_accuracy", params)
            runs_of_method = [r for r in here if r["summary"]["method"] == method]
            if not runs_of_method:
                lines.append(f"| {method} | 0 | not run | | | {paper} | | | |")
                continue
            for label, variant in variants(runs_of_method):
                group = [r["summary"] for r in variant]
                g = lambda key: [s.get(key) for s in group]  # noqa: E731
                anp = "–" if method == "fc" else f"{mean_se(g('anp'), 100)} / {_paper('anp', params)}"
                lines.append(f"| {method}{label} | {len(group)} | {mean_se(g('test_accuracy_at_best_valid'), 100)} | "
                             f"{mean_se(g('final_test_accuracy'), 100)} | {mean_se(g('best_test_accuracy'), 100)} | "
                             f"{paper} | {anp} | {statistics.mean(g('seconds_per_epoch')):.1f} | {group[0]['links']:,} |")
        lines.append("")
    return lines


def model_bytes(config: dict) -> tuple[int, int, int]:
    """``(parameter bytes, structure bytes, Adam bytes)`` of a Transformer of the run's sizes at its final
    density."""
    from ..models import Transformer
    from ..sparse import layer_memory
    density = None if config["method"] == "fc" else 1.0 - config["sparsity"]
    model = Transformer(config["vocab_size"], config["d_model"], config["heads"], config["layers"], config["d_ff"],
                        density=density, max_length=config["max_length"] + 2, tie_embeddings=config["tie_embeddings"])
    rows = [sparse for sparse, _ in layer_memory(model, "adam")]
    return sum(r.weights for r in rows), sum(r.structure for r in rows), sum(r.optimizer for r in rows)


def transformer_table(runs: list[dict]) -> list[str]:
    """The Transformer table, one per data set: BLEU two ways, the paper's, validation perplexity, sizes."""
    lines = []
    for dataset in _datasets(runs):
        lines += [f"### {dataset}", "", "| method | seeds | sacreBLEU | BLEU (tok., lc) | paper 90% (FC: 95%) | "
                  "best valid ppl | links (reported) | train s | s/step | params MiB | indices+CSR MiB | Adam MiB |",
                  "|---|" + "---:|" * 11]
        for method in TRANSFORMER_METHODS:
            runs_of_method = [r for r in runs if r["summary"]["dataset"] == dataset and r["summary"]["method"] == method]
            paper = _paper("bleu", {"dataset": dataset, "method": method, "sparsity": 0.9})
            if paper == "–":
                paper = _paper("bleu", {"dataset": dataset, "method": method, "sparsity": 0.95})
            if not runs_of_method:
                lines.append(f"| {method} | 0 | not run | | {paper} | | | | | | | |")
                continue
            for label, group in variants(runs_of_method):
                s = lambda key: [r["summary"][key] for r in group]  # noqa: E731
                steps = [min((b["seconds"] - a["seconds"]) / (b["step"] - a["step"])
                             for a, b in zip([{"step": 0, "seconds": 0.0}] + r["metrics"], r["metrics"])) for r in group]
                params, structure, adam = model_bytes(group[0]["config"])
                lines.append(f"| {method}{label} | {len(group)} | {mean_se(s('sacrebleu'))} | {mean_se(s('bleu'))} | "
                             f"{paper} | {mean_se([math.exp(v) for v in s('best_valid_loss')])} | "
                             f"{group[0]['summary']['links']:,} | {statistics.mean(s('train_seconds')):.0f} | "
                             f"{statistics.mean(steps):.3f} | {params / MIB:.2f} | {structure / MIB:.2f} | "
                             f"{adam / MIB:.2f} |")
        lines.append("")
    signature = next((r["summary"]["sacrebleu_signature"] for r in runs if "sacrebleu_signature" in r["summary"]), None)
    return lines + [f"sacreBLEU signature: `{signature}`", ""]


def projection_bytes(config: dict) -> tuple[int, int]:
    """``(bytes, dense bytes)`` of a language model's projections at the run's final density: weights,
    gradients, AdamW's two moments and (sparse) the CSR structure with its transposed cache."""
    from ..models.lm import LanguageModel
    from ..sparse import layer_memory
    density = None if config["method"] == "fc" else 1.0 - config["sparsity"]
    model = LanguageModel(config["vocab_size"], config["d_model"], config["heads"], config["layers"], config["d_ff"],
                          config["context"], density=density)
    rows = [(sparse, dense) for sparse, dense in layer_memory(model, "adam") if "proj" in sparse.name]
    return sum(s.total for s, _ in rows), sum(d.total for _, d in rows)


def lm_table(runs: list[dict]) -> list[str]:
    """The language-model table, one per data set: perplexities against the best dense variant, links, time,
    bytes of the projections, and NIPS Table 3's LLaMA-60M (OpenWebText) perplexity as the GPU-scale reference."""
    lines = []
    for dataset in _datasets(runs):
        here = [r for r in runs if r["summary"]["dataset"] == dataset]
        dense = [statistics.mean(r["summary"]["best_valid_ppl"] for r in variant)
                 for _, variant in variants([r for r in here if r["summary"]["method"] == "fc"])]
        dense_ppl = min(dense) if dense else None  # the best dense variant: the strongest baseline
        lines += [f"### {dataset}", "", "| method | sparsity | seeds | best valid ppl | final valid ppl | of dense ppl | "
                  "links | train s | s/step | updates / steps time | projections MiB (w+g+Adam+structure) | of dense | "
                  "LLaMA-60M ppl (NIPS Table 3) |", "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for sparsity in sorted({r["summary"]["sparsity"] for r in here}):
            for method in LM_METHODS:
                runs_here = [r for r in here if r["summary"]["method"] == method and r["summary"]["sparsity"] == sparsity]
                for label, group in variants(runs_here):
                    s = lambda key: [r["summary"][key] for r in group]  # noqa: E731
                    ratio = f"{statistics.mean(s('best_valid_ppl')) / dense_ppl:.3f}" if dense_ppl else "–"
                    used, full = projection_bytes(group[0]["config"])
                    overhead = [r["summary"].get("update_overhead") for r in group]
                    overhead = "–" if method == "fc" or None in overhead else f"{statistics.mean(overhead):.1%}"
                    reference = LLAMA_REFERENCE.get(("valid_ppl", "llama60m", "openwebtext", method, round(sparsity, 4)))
                    lines.append(f"| {method}{label} | {sparsity:g} | {len(group)} | {mean_se(s('best_valid_ppl'))} | "
                                 f"{mean_se(s('final_valid_ppl'))} | {ratio} | {group[0]['summary']['links']:,} | "
                                 f"{statistics.mean(s('train_seconds')):.0f} | "
                                 f"{statistics.mean(s('seconds_per_step')):.3f} | {overhead} | {used / MIB:.2f} | "
                                 f"{used / full:.1%} | {'–' if reference is None else reference[0]} |")
        lines.append("")
    return lines


def records_table(runs_dir: str | Path) -> str:
    """The markdown results table of the finished runs in ``runs_dir`` (MLP, Transformer and language-model runs
    each in their layout), the unfinished ones listed, and every finished run's command."""
    runs, unfinished = read_runs(runs_dir)
    lines = []
    mlp = [r for r in runs if r["summary"].get("model", "mlp") == "mlp"]
    transformer = [r for r in runs if r["summary"].get("model") == "transformer"]
    lm = [r for r in runs if r["summary"].get("model") == "lm"]
    lines += mlp_table(mlp) if mlp else []
    lines += transformer_table(transformer) if transformer else []
    lines += lm_table(lm) if lm else []
    if unfinished:
        lines += ["Unfinished: " + "; ".join(unfinished), ""]
    runs = sorted(runs, key=lambda r: tuple(r["summary"][k] for k in ("model", "dataset", "method", "seed")))
    lines += ["Commands (one per finished run):", ""] + [f"    {train_command(r['config'])}" for r in runs]
    return "\n".join(lines)

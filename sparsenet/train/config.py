"""The one list of train options: ``RunConfig`` (what every recipe takes) and the recipes' configs that
extend it. Each field carries its help text; the CLI's ``train`` parses, checks and documents its options
from these fields, and sweeps check their parameters against them."""
import dataclasses
import difflib
import json
import os
import shutil
import textwrap
import typing
from dataclasses import dataclass
from pathlib import Path

from ..evolution import REGROWTHS, DensitySchedule, Method, make_method, method_names
from ..evolution.registry import unknown_name
from ..sparse import check_density
from ..topology import INITIALIZERS
from ..topology.weights import WEIGHT_INITS
from .device import PRECISIONS, resolve_device
from .tracking import WANDB_CHOICES

def method_choices() -> tuple:
    """``--method``'s values: the dense ``fc`` and every registered method (plugins' included)."""
    return ("fc", *method_names())


METHOD_NAMES = method_choices()  # at import (the built-in methods); checks call method_choices()

# The paper's per-model choices over the registered methods (sparsenet/evolution/methods.py):
# (model, data set, method) -> Method fields, "*" for any; the more specific entry wins, options given win over all.
METHOD_DEFAULTS = {
    ("transformer", "*", "*"): {"weights": "xavier"},  # the authors' OpenNMT -param_init_glorot (their Transformer scripts)
    ("transformer", "*", "cht"): {"init": "bsw"},      # CHT/CHTs start the Transformer from BSW (the CHTs preprint's setting)
    ("transformer", "*", "chts"): {"init": "bsw"},
    ("mlp", "fashion_mnist", "chts"): {"removal": "ri_soft"},  # "RI significantly improves results" (the CHTss paper, §3.1)
    # a fit to the paper's CHT active-neuron rate, not an authors' command (theirs update every epoch): every 3
    # epochs gives 29.0% against the paper's 29%, every epoch 46.3-49.7% with the early stop firing at epoch 23-24
    # instead of 45 (results/mlp_99.md, where the authors' command has a row of its own)
    ("mlp", "*", "cht"): {"update_interval": 3},
    ("lm", "*", "cht"): {"init": "brf"},               # the CHTss paper's LLaMA runs start from BRF (the CHTss paper, §3.2 and Table 6)
    # ... and regrow by CH2-L3n-soft (the CHTss paper, §3.1 eq. 3); the path-based CH3-L3p takes 55 s on one 1280x320 layer at
    # 70% sparsity, where CH2-L3n takes 0.1 s
    ("lm", "*", "chts"): {"init": "brf", "regrowth": "ch2_l3n_soft"},
}
METHOD_OPTIONS = tuple(name for name, spec in Method.__dataclass_fields__.items() if name != "name" and spec.init)


def method_defaults(model: str, dataset: str, method: str) -> dict:
    """The ``METHOD_DEFAULTS`` fields that apply to a run, the most specific last: ``Method`` fields (applied by
    ``RunConfig.engine_method``) and recipe fields such as ``update_interval`` (applied as presets by the
    recipe's ``build_config``)."""
    matching = [(key.count("*"), fields) for key, fields in METHOD_DEFAULTS.items()
                if all(want in ("*", have) for want, have in zip(key, (model, dataset, method)))]
    return {k: v for _, fields in sorted(matching, key=lambda item: -item[0]) for k, v in fields.items()}


def option(default, help: str, check=None):
    """A config field with its ``--help`` text and its valid range: ``check(name, value)`` returns the one-line
    error for a value out of range, else ``None`` (the range helpers below); ``check_fields`` applies it to
    every value but ``None``."""
    return dataclasses.field(default=default, metadata={"help": help, **({"check": check} if check else {})})


# ---------------------------------------------------------------------------- value ranges, with the field

def positive_int(name: str, value) -> str | None:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        return f"{name} must be a positive integer, got {value!r}"


def count(name: str, value) -> str | None:
    """An integer >= 0."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        return f"{name} must be an integer >= 0, got {value!r}"


def fraction(name: str, value) -> str | None:
    """In [0, 1)."""
    if not 0.0 <= value < 1.0:
        return f"{name} must be in [0, 1), got {value!r}"


def positive_number(name: str, value) -> str | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        return f"{name} must be a number > 0, got {value!r}"


def non_negative_number(name: str, value) -> str | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
        return f"{name} must be a number >= 0, got {value!r}"


def above_zero(unit: str = ""):
    """A number > 0 (``unit`` follows the 0 in the message)."""
    def check(name: str, value) -> str | None:
        if not value > 0:
            return f"--{name} must be > 0{unit}, got {value!r}"
    return check


def one_of(choices, what: str | None = None):
    """One of ``choices``; the message calls the option ``what`` (default its name)."""
    def check(name: str, value) -> str | None:
        if value not in choices:
            return f"unknown {what or name} {value!r}; choose from {list(choices)}"
    return check


def device_check(name: str, value) -> str | None:
    """A device this machine has (``resolve_device``)."""
    try:
        resolve_device(value)
    except ValueError as error:
        return str(error)


def check_fields(config) -> None:
    """``ValueError`` with the message of the first field (in declaration order) whose value is out of its
    declared range (a field that only changes its default in a subclass keeps its ancestor's range); ``None``
    values (an option's "not given") are not checked."""
    for field in dataclasses.fields(config):
        value = getattr(config, field.name)
        check = field_metadata(type(config), field.name).get("check")
        if check is not None and value is not None:
            message = check(field.name, value)
            if message:
                raise ValueError(message)


@dataclass
class RunConfig:
    """The options of every recipe: what to train, the sparse method's settings, where the run goes."""
    model: str = option("mlp", "mlp (image classification), transformer (translation) or lm (a LLaMA-style "
                        "language model).")
    dataset: str = option("digits", "mlp: digits (bundled, offline; the default), mnist, fashion_mnist, emnist "
                          "(official balanced IDX files), emnist_bymerge_test_split (the staged substitute, split "
                          "80/20 stratified); transformer: multi30k (the default), iwslt14, wmt17 (fairseq-prepared "
                          "train/valid/test.{en,de}), wmt_sample; lm: multi30k (both languages, the default), "
                          "openwebtext, c4 (online, --download), text (--text_file).")
    method: str = option("chts", f"fc (dense), {', '.join(method_names()[:-1])} or {method_names()[-1]}.")
    sparsity: float = option(0.99, "share of absent links in the sparse layers (mlp 0.99, 0.9 on digits; "
                             "transformer 0.9).")
    seed: int = option(0, "random seed; the same seed gives the same topology and loss curve on CPU.")
    init: str | None = option(None, "topology initialiser er, bsw, bsf, brf or csti (default: the method's; MLP "
                              "CHT/CHTs use CSTI, Transformer CHT/CHTs BSW).")
    weights: str | None = option(None, "value initialiser swi, kaiming, xavier or zeros (default: the method's; "
                                 "Xavier for the Transformer). With --model lm --method fc it initialises the "
                                 "dense projections at density 1 instead of LLaMA's N(0, 0.02²).")
    beta: float = option(0.25, "BSW rewiring probability.")
    removal: str | None = option(None, "removal rule wm, wm_signed (per sign, SET's), ri, mest, or wm/ri/mest "
                                 "with _soft (default: the method's; SET and CHT wm_signed; CHTs on fashion_mnist "
                                 "ri_soft, as the paper found RI better there).")
    regrowth: str | None = option(None, f"regrowth rule {', '.join(REGROWTHS)}, or *_soft (default: the method's).")
    zeta: float = option(0.3, "removal fraction per topology update, in [0, 1).", fraction)
    update_interval: int = option(1, "between topology updates: epochs for the MLP (1; CHT 3, a fit to the paper's CHT "
                                  "active-neuron rate: the authors' CHT commands update every epoch), optimizer steps for the Transformer "
                                  "(200 Multi30k, 100 IWSLT14/WMT17 and the cpu preset).", positive_int)
    exponent_start: float | None = option(None, "soft-removal exponent at step 0, linear to exponent_end at the "
                                          "end of the update window (default: the method's, 1).")
    exponent_end: float | None = option(None, "soft-removal exponent at the end of the update window (default: "
                                        "the method's, 3; CHTss 9).")
    mest_lambda: float | None = option(None, "MEST's removal score |w| + lambda*|gradient| (default 0.01, the "
                                       "authors'). MEST's elastic turnover removes everything above the final "
                                       "density, so --zeta does not apply to it.")
    init_topology: str | None = option(None, "a run directory (or its checkpoint.pt / best.pt) whose final "
                                       "topology every sparse layer starts from instead of --init (the paper's "
                                       "Appendix C); layer shapes must match; values start afresh by --weights.")
    data_dir: str | None = option(None, "data folder (default $SPARSENET_DATA, else ~/.cache/sparsenet).")
    download: bool = option(False, "fetch missing data from the official source (mlp: the IDX files, checksum-"
                            "checked; transformer: the iwslt14 / wmt17 archives, prepared as fairseq's scripts "
                            "do). Nothing else reaches the network.")
    out_dir: str = option("runs", "parent of the run directory.")
    run_name: str | None = option(None, "run directory name, a plain folder name (default "
                                  "MODEL-DATASET-METHOD-sSPARSITY-seedSEED).")
    wandb: str = option("auto", "auto (offline unless logged in; WANDB_MODE respected), online, offline or off.",
                        one_of(WANDB_CHOICES, "wandb mode"))
    device: str = option("auto", "where the model, batches, evaluation and decoding run: auto (CUDA when present, "
                         "else the CPU), cpu, cuda or cuda:N. A checkpoint resumes on any device (--resume DIR "
                         "--device ...); the topology's random draws stay on the CPU, so a seed gives the same "
                         "topology on every device.", device_check)
    precision: str = option("fp32", "fp32, bf16 or fp16: bf16/fp16 run the forward and the loss under autocast "
                            "(values and optimizer state stay fp32; fp16 scales the loss against underflow).",
                            one_of(PRECISIONS, "precision"))
    quiet: bool = option(False, "no progress bars or progress lines.")
    check_ranks: bool = option(True, "under torchrun: compare a digest of every sparse layer's links across the "
                               "ranks before and after each topology update and stop on a difference (the "
                               "digest of the links is also in metrics.jsonl as topology_hash: the MLP's records "
                               "of epochs with an update, every evaluation's record of the step recipes).")

    def validate(self):
        """``self``, every option checked before any work (``ValueError``, one line): each field's declared
        range, the recipe's relations between fields (``check_relations``), the run's folder, sparsity and
        method, the recipe's preflight (``check_preflight``), and the room for the run's checkpoints."""
        check_fields(self)
        self.check_relations()
        check_run_options(self)
        check_sparse_method(self)
        self.check_preflight()
        check_free_space(self)
        return self

    def check_relations(self) -> None:
        """The recipe's checks between fields (data set, sizes that must divide), before the method's."""

    def check_preflight(self) -> None:
        """The recipe's checks that need the method's settings (after they are checked)."""

    def engine_method(self) -> Method:
        """The method this run trains with: the registered one, this model's ``METHOD_DEFAULTS``, then the
        method options given (the non-None fields named like ``Method``'s); ``ValueError`` if unknown or
        contradictory."""
        given = {name: getattr(self, name) for name in METHOD_OPTIONS if getattr(self, name, None) is not None}
        defaults = {k: v for k, v in method_defaults(self.model, self.dataset, self.method).items()
                    if k in METHOD_OPTIONS}
        return make_method("static" if self.method == "fc" else self.method, **{**defaults, **given})


@dataclass
class SequenceConfig(RunConfig):
    """The options the sequence recipes (translation, language model) share: the model's sizes, dropout and
    the step schedule. Defaults are the Transformer's; the language model's config changes them."""
    d_model: int = option(512, "model width.", positive_int)
    heads: int = option(8, "attention heads (must divide d_model; --model lm: into heads of even width, for rotary "
                        "positions).", positive_int)
    layers: int = option(6, "layers: the Transformer's encoder and decoder each, the language model's decoder "
                         "blocks.", positive_int)
    d_ff: int = option(1024, "feed-forward hidden width (Transformer paper: 1024 Multi30k, 2048 IWSLT14/WMT17; "
                       "language model: SwiGLU's, LLaMA's 8/3 · d_model, rounded).", positive_int)
    dropout: float = option(0.1, "dropout of the sub-layer outputs (Transformer: also of the embeddings and the "
                            "FFN), in [0, 1).", fraction)
    train_steps: int = option(20000, "optimizer steps (Transformer paper: 20000 Multi30k/IWSLT14, 80000 WMT17).",
                              positive_int)
    eval_every: int = option(1000, "steps between validations and checkpoints.", positive_int)

    def layer_sizes(self) -> tuple:
        """d_model, d_ff and layers: the sizes a topology must have been made for."""
        return (self.d_model, self.d_ff, self.layers)


# ------------------------------------------------------------------------------------- parsing the options

def option_fields(config_class) -> dict[str, dataclasses.Field]:
    """``{name: field}`` of a config class, in declaration order."""
    return {field.name: field for field in dataclasses.fields(config_class)}


def field_metadata(config_class, name: str) -> dict:
    """The metadata (help, range) of option ``name``: its own, else that of the class whose field it overrides
    (a subclass that only changes a default, ``d_model: int = 320``, declares no metadata)."""
    for cls in config_class.__mro__:
        fields = getattr(cls, "__dataclass_fields__", {})
        if name in fields and "help" in fields[name].metadata:
            return fields[name].metadata
    return {}


def field_help(config_class, name: str) -> str:
    """The help text of option ``name``: its own, else that of the class it overrides."""
    return field_metadata(config_class, name).get("help", "")


def check_option_names(config_classes: dict, model: str, names) -> None:
    """``ValueError`` for the first of ``names`` that is not an option of ``model`` (``config_classes``:
    ``{model: class}``): another model's option says so, an unknown one names the closest option."""
    own = option_fields(config_classes[model])
    for name in names:
        if name in own:
            continue
        owners = [m for m, cls in config_classes.items() if name in option_fields(cls)]
        if owners:
            raise ValueError(f"--{name} applies only to --model {' or '.join(owners)}, not to --model {model}")
        close = difflib.get_close_matches(name, list(own), n=1)
        hint = f"did you mean --{close[0]}?" if close else "see python cli.py train --help"
        raise ValueError(f"unknown option --{name} for --model {model}; {hint}")


def parse_options(config_class, options: dict) -> dict:
    """``options`` checked against the fields of ``config_class``: an unknown name raises ``ValueError`` with
    the closest option; each value is converted to its field's type (``None`` keeps the default, where the
    field allows it). Ranges are checked by ``RunConfig.validate``."""
    fields = option_fields(config_class)
    parsed = {}
    for name, value in options.items():
        if name not in fields:
            close = difflib.get_close_matches(name, list(fields), n=1)
            hint = f"did you mean --{close[0]}?" if close else "see python cli.py train --help"
            raise ValueError(f"unknown option --{name} for --model {config_class.model}; {hint}")
        parsed[name] = convert(name, fields[name].type, value)
    return parsed


def convert(name: str, kind, value):
    """``value`` (as Fire or a sweep YAML gives it) as a field of type ``kind``, or ``ValueError`` naming the
    option: bools take true/false in any case, numbers must be numbers (ints integers), a tuple is positive
    integers (``128,128`` or one integer), a string field also takes a number (``--run_name 2024``)."""
    kinds = set(typing.get_args(kind)) or {kind}
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    if value is None:
        if type(None) in kinds:
            return None
        raise ValueError(f"--{name} needs a value")
    if bool in kinds:
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        if not isinstance(value, bool):
            raise ValueError(f"--{name} must be true or false, got {value!r}")
        return value
    if float in kinds:
        if not number:
            raise ValueError(f"--{name} must be a number, got {value!r}")
        return float(value)
    if int in kinds:
        if not (number and isinstance(value, int)):
            raise ValueError(f"--{name} must be an integer, got {value!r}")
        return value
    if tuple in kinds:
        items = tuple(value) if isinstance(value, (tuple, list)) else (value,)
        if not items or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in items):
            raise ValueError(f"--{name} must be positive integers separated by commas, e.g. 128,128; got {value!r}")
        return items
    if number:
        return str(value)
    if not isinstance(value, str):
        raise ValueError(f"--{name} must be a single value, got {value!r}")
    return value


def with_presets(config_class, options: dict, presets: dict):
    """``config_class`` from its defaults, then ``presets``, then the parsed non-``None`` ``options``."""
    given = {k: v for k, v in parse_options(config_class, options).items() if v is not None}
    return config_class(**{**presets, **given})


# -------------------------------------------------------------------------------------- the shared checks

def check_output_folder(out_dir, run_name: str | None) -> Path:
    """Before any work: ``run_name`` is a plain folder name (it cannot leave ``out_dir``), and the run folder
    can be made, i.e. its nearest existing ancestor is a writable folder and nothing on the way is a file;
    returns that ancestor."""
    if run_name is not None and (not isinstance(run_name, str) or run_name in ("", ".", "..")
                                 or "/" in run_name or "\\" in run_name):
        raise ValueError(f"--run_name must be a plain folder name inside --out_dir, got {run_name!r}")
    path = Path(out_dir) / run_name if run_name else Path(out_dir)
    while not path.exists():
        path = path.parent
    if not path.is_dir():
        raise ValueError(f"--out_dir {out_dir}: {path} is a file, not a folder")
    if not os.access(path, os.W_OK | os.X_OK):
        raise ValueError(f"--out_dir {out_dir}: {path} is not writable")
    return path


BYTES_PER_LINK = 24   # in a checkpoint: a float32 value, two int64 indices, one float32 of optimizer state (SGD)
BYTES_PER_WEIGHT = 12  # a dense float32 parameter and Adam's two moments (the larger optimizer state)


def check_free_space(config) -> None:
    """``ValueError`` unless the file system of ``path`` has room for three checkpoints of the run (the atomic
    write holds the old and the new one at once; the Transformer keeps a best.pt too), estimated from
    ``config.parameter_counts()``: links at the start density and dense parameters."""
    path = check_output_folder(config.out_dir, config.run_name)
    links, dense = config.parameter_counts()
    need = 3 * (BYTES_PER_LINK * links + BYTES_PER_WEIGHT * dense)
    free = shutil.disk_usage(path).free
    if free < need:
        raise ValueError(f"--out_dir {config.out_dir}: {free / 2**20:.0f} MiB free on its file system, a run of "
                         f"this size needs about {need / 2**20:.0f} MiB for its checkpoints")


def start_density(config) -> float | None:
    """The density the sparse layers start at (the method's density schedule), ``None`` for the dense ``fc``."""
    if config.method == "fc":
        return None
    return DensitySchedule(1.0 - config.sparsity, config.engine_method().density_schedule).start()


def check_run_options(config) -> None:
    """The checks every recipe's config shares beyond the fields' ranges: the output folder, the sparsity (set to
    0 for the dense ``fc``, in (0, 1) for a sparse method), ``--weights`` with ``fc``, and ``--init_topology`` (a
    sparse method and an existing run directory or checkpoint file)."""
    check_output_folder(config.out_dir, config.run_name)
    if config.method not in method_choices():
        raise ValueError(unknown_name("method", config.method, list(method_choices()),
                                      "register_method(Method(name, ...))"))
    if config.method == "fc":
        config.sparsity = 0.0
    elif not 0.0 < config.sparsity < 1.0:
        raise ValueError(f"sparsity must be in (0, 1) for a sparse method, got {config.sparsity!r}")
    if config.method == "fc" and config.weights is not None:
        if config.model != "lm":
            raise ValueError(f"--weights with --method fc: the {config.model} recipe's dense model keeps its own "
                             f"initialisation (only --model lm applies --weights to its dense projections)")
        if config.weights not in WEIGHT_INITS:
            raise ValueError(f"unknown weight init {config.weights!r}; choose from {sorted(WEIGHT_INITS)}")
        if config.weights == "zeros":
            raise ValueError("--weights zeros with --method fc: dense projections all at zero get zero gradients "
                             "and never train")
    if config.init_topology is None:
        return
    if config.method == "fc":
        raise ValueError("--init_topology needs a sparse method (the dense model has no topology)")
    if not Path(config.init_topology).exists():
        raise ValueError(f"--init_topology {config.init_topology}: no such run directory or checkpoint")
    check_topology_source(config)


def check_topology_source(config) -> None:
    """``--init_topology``'s run is of the same model with the same layer sizes (``config.layer_sizes()``), read
    from the config.json beside its checkpoint; without one, loading checks the links' bounds."""
    source = Path(config.init_topology)
    try:
        saved = json.loads(((source if source.is_dir() else source.parent) / "config.json").read_text())
    except (OSError, ValueError):
        return
    if saved.get("model", "mlp") != config.model:
        raise ValueError(f"--init_topology {source}: the topology of a {saved.get('model', 'mlp')} run cannot start "
                         f"a {config.model} run")
    fields = option_fields(type(config))
    theirs = type(config)(**{k: v for k, v in saved.items() if k in fields}).layer_sizes()
    if theirs != config.layer_sizes():
        raise ValueError(f"--init_topology {source}: its layers have the sizes {theirs}, this run's are "
                         f"{config.layer_sizes()}")


def check_sparse_method(config) -> None:
    """For a sparse method (after the recipe's own sparsity-range check): its density and its settings
    (``config.engine_method()`` raises on an unknown or contradictory rule)."""
    if config.method != "fc":
        check_density(1.0 - config.sparsity)
        method = config.engine_method()
        if method.init not in INITIALIZERS:
            raise ValueError(f"unknown init {method.init!r}; choose from {sorted(INITIALIZERS)}")
        if config.init_topology is not None and method.density_schedule != "constant":
            raise ValueError(f"--init_topology gives the final topology, but {config.method} starts denser "
                             f"(density schedule {method.density_schedule!r})")


# ------------------------------------------------------------------------------------------ documentation

def _kind(field: dataclasses.Field) -> str:
    kinds = [k for k in (typing.get_args(field.type) or (field.type,)) if k is not type(None)]
    return {bool: "flag", int: "int", float: "number", str: "text", tuple: "ints"}.get(kinds[0], "value")


def options_table(config_classes: dict) -> list[tuple]:
    """Rows ``(name, models, kind, defaults, help)`` for every option of the recipes' config classes
    (``{model: class}``), shared options first; ``defaults`` lists a default and ``help`` a text per model
    where they differ."""
    rows = {}
    for model, cls in config_classes.items():
        for name, field in option_fields(cls).items():
            if name == "model":  # chooses the config itself
                continue
            row = rows.setdefault(name, {"models": [], "kind": _kind(field), "defaults": {}, "help": {}})
            row["models"].append(model)
            row["defaults"][model] = field.default
            row["help"][model] = field_help(cls, name)
    out = []
    for name, row in rows.items():
        defaults = set(map(repr, row["defaults"].values()))
        default = (_show(next(iter(row["defaults"].values()))) if len(defaults) == 1 else
                   ", ".join(f"{_show(v)} [{m}]" for m, v in row["defaults"].items()))
        models = "all" if len(row["models"]) == len(config_classes) else ", ".join(row["models"])
        helps = row["help"]
        text = (next(iter(helps.values())) if len(set(helps.values())) == 1 else
                " ".join(f"[{m}] {h}" for m, h in helps.items()))
        out.append((name, models, row["kind"], default, text))
    return sorted(out, key=lambda r: r[1] != "all")  # stable: declaration order within each group


def _show(value) -> str:
    if value is None:
        return "–"
    if isinstance(value, tuple):
        return ",".join(map(str, value))
    return str(value).lower() if isinstance(value, bool) else str(value)


def options_help(config_classes: dict, width: int = 100) -> str:
    """The ``--help`` text of every option: name, kind, default, then the wrapped help."""
    lines = []
    for name, models, kind, default, text in options_table(config_classes):
        where = "" if models == "all" else f" [{models}]"
        lines.append(f"  --{name} ({kind}, default {default}){where}")
        lines += textwrap.wrap(text, width, initial_indent=" " * 6, subsequent_indent=" " * 6,
                               break_on_hyphens=False)
    return "\n".join(lines)


README_START, README_END = "<!-- train options: generated by python -m sparsenet.train -->", "<!-- end -->"


def options_markdown(config_classes: dict) -> str:
    """The options as a markdown table: README's options section, between ``README_START`` and ``README_END``."""
    rows = ["| option | models | default | meaning |", "|---|---|---|---|"]
    rows += [f"| `--{name}` | {models} | {default} | {text.replace('|', chr(92) + '|')} |"
             for name, models, kind, default, text in options_table(config_classes)]
    return "\n".join(rows)


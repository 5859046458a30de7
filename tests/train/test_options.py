"""The one option list: the config fields carry every option's help, type and default; the CLI, the docs and
sweeps read them; values convert to the field's type or fail naming the option."""
import dataclasses
from pathlib import Path

import pytest

from sparsenet.experiments import sweeps
from sparsenet.train import CONFIGS, RECIPES, check_option_names, classify, language, translate
from sparsenet.train.config import README_END, README_START, RunConfig, convert, field_help, options_markdown

ROOT = Path(__file__).resolve().parents[2]


def test_docs_options_page_is_the_config_fields():
    text = (ROOT / "docs" / "options.md").read_text()
    section = text.split(README_START)[1].split(README_END)[0].strip()
    assert section == options_markdown(CONFIGS), "docs/options.md is stale: run python -m sparsenet.train"


@pytest.mark.parametrize("model", CONFIGS)
def test_every_option_has_help_and_a_default_the_recipe_accepts(model, tmp_path):
    for field in dataclasses.fields(CONFIGS[model]):
        assert len(field_help(CONFIGS[model], field.name)) > 10, field.name
    config = RECIPES[model].build_config(model=model, out_dir=str(tmp_path))
    assert type(config) is CONFIGS[model] and isinstance(config, RunConfig)


def test_the_knobs_once_hidden_from_the_cli_are_options_and_reach_the_config(tmp_path):
    config = translate.build_config(dropout=0.2, attention_dropout=0.05, label_smoothing=0.2, max_length=128,
                                    rewarm_steps=0, mest_lambda=0.5, out_dir=str(tmp_path))
    assert (config.dropout, config.attention_dropout, config.label_smoothing, config.max_length,
            config.rewarm_steps, config.mest_lambda) == (0.2, 0.05, 0.2, 128, 0, 0.5)
    assert classify.build_config(mest_lambda=0.0, method="mest", out_dir=str(tmp_path)).engine_method().mest_lambda == 0


@pytest.mark.parametrize("model,dataset,method,options,expected", [
    ("transformer", "multi30k", "chts", {}, dict(init="bsw", weights="xavier", removal="wm_soft")),
    ("transformer", "multi30k", "cht", {}, dict(init="bsw", weights="xavier", removal="wm_signed")),
    ("transformer", "multi30k", "set", {}, dict(init="er", weights="xavier")),
    ("transformer", "multi30k", "chtss", {}, dict(init="brf", weights="xavier", density_schedule="sigmoid")),
    ("transformer", "multi30k", "chts", dict(init="er", weights="swi"), dict(init="er", weights="swi")),
    ("mlp", "mnist", "chts", {}, dict(init="csti", weights="swi", removal="wm_soft")),
    ("lm", "multi30k", "chts", {}, dict(init="brf", regrowth="ch2_l3n_soft", removal="wm_soft")),
    ("lm", "multi30k", "chts", dict(regrowth="ch3_l3p_soft"), dict(regrowth="ch3_l3p_soft")),
    ("mlp", "fashion_mnist", "chts", {}, dict(removal="ri_soft", regrowth="ch3_l3p_soft")),
    ("mlp", "fashion_mnist", "chts", dict(removal="wm_soft"), dict(removal="wm_soft")),
    ("mlp", "fashion_mnist", "set", {}, dict(init="er", weights="kaiming", removal="wm_signed")),
])
def test_per_model_method_defaults_come_from_one_table_and_yield_to_options(model, dataset, method, options,
                                                                             expected, tmp_path):
    recipe = {"mlp": classify, "transformer": translate, "lm": language}[model]
    config = recipe.build_config(model=model, dataset=dataset, method=method, out_dir=str(tmp_path), **options)
    engine_method = config.engine_method()
    assert {name: getattr(engine_method, name) for name in expected} == expected
    assert all(getattr(config, name) == options.get(name) for name in ("init", "weights", "removal"))


def test_presets_give_defaults_and_options_override_them(tmp_path):
    digits = classify.build_config(out_dir=str(tmp_path))
    assert (digits.hidden, digits.epochs, digits.sparsity) == ((128, 128, 128), 30, 0.9)
    assert classify.build_config(epochs=3, out_dir=str(tmp_path)).epochs == 3
    cpu = translate.build_config(preset="cpu", beam_size=1, out_dir=str(tmp_path))
    assert (cpu.d_model, cpu.train_steps, cpu.beam_size) == (256, 3200, 1)


@pytest.mark.parametrize("kind, given, expected", [
    (float, 1, 1.0), (float, 0.5, 0.5), (float | None, None, None), (int, 3, 3), (int | None, None, None),
    (bool, True, True), (bool, "False", False), (bool, "true", True), (bool | None, "TRUE", True),
    (str, "chts", "chts"), (str | None, 2024, "2024"), (tuple, 64, (64,)), (tuple, (32, 16), (32, 16)),
    (tuple, [8], (8,)),
])
def test_convert_gives_the_field_type(kind, given, expected):
    converted = convert("x", kind, given)
    assert converted == expected and type(converted) is type(expected)


@pytest.mark.parametrize("kind, given, message", [
    (float, "abc", "--x must be a number, got 'abc'"), (float, True, "--x must be a number, got True"),
    (int, 1.5, "--x must be an integer, got 1.5"), (int, "3", "--x must be an integer, got '3'"),
    (int, False, "--x must be an integer, got False"), (bool, "yes", "--x must be true or false, got 'yes'"),
    (bool, 1, "--x must be true or false, got 1"), (tuple, "abc", "--x must be positive integers"),
    (tuple, (4, 0), "--x must be positive integers"), (tuple, (), "--x must be positive integers"),
    (str, None, "--x needs a value"), (str, ("a", "b"), "--x must be a single value"),
])
def test_convert_refuses_other_values_naming_the_option(kind, given, message):
    with pytest.raises(ValueError) as error:
        convert("x", kind, given)
    assert str(error.value).startswith(message)


def test_option_names_are_checked_per_model():
    check_option_names(CONFIGS, "transformer", ["dropout", "preset", "seed"])
    check_option_names(CONFIGS, "mlp", ["epochs", "hidden", "seed"])
    with pytest.raises(ValueError, match="--dropout applies only to --model transformer or lm, not to --model mlp"):
        check_option_names(CONFIGS, "mlp", ["seed", "dropout"])
    with pytest.raises(ValueError, match="--preset applies only to --model transformer, not to --model lm"):
        check_option_names(CONFIGS, "lm", ["preset"])
    with pytest.raises(ValueError, match="unknown option --lrr for --model mlp; did you mean --lr"):
        check_option_names(CONFIGS, "mlp", ["lrr"])


def test_sweep_values_are_checked_as_the_run_receives_them():
    options = sweeps.train_options()
    good = {"program": "cli.py", "method": "grid", "parameters": {"hidden": {"value": "32,32"},
                                                                   "quiet": {"value": True},
                                                                   "sparsity": {"values": [0.9, 0.99]}}}
    sweeps.check_sweep(good, options)
    for name, value, message in [("sparsity", "dense", "--sparsity must be a number, got 'dense'"),
                                 ("epochs", 2.5, "--epochs must be an integer, got 2.5"),
                                 ("hidden", "a,b", "--hidden must be positive integers")]:
        bad = {**good, "parameters": {name: {"values": [value]}}}
        with pytest.raises(ValueError, match=f"parameter '{name}': " + message.replace("(", r"\(")):
            sweeps.check_sweep(bad, options)


def test_a_run_without_room_for_its_checkpoints_stops_before_any_work(tmp_path, monkeypatch):
    from sparsenet.train import config as config_module
    usage = config_module.shutil.disk_usage(tmp_path)
    monkeypatch.setattr(config_module.shutil, "disk_usage", lambda path: usage._replace(free=100 * 2**20))
    classify.build_config(dataset="mnist", out_dir=str(tmp_path))  # 61k links: a few MiB
    with pytest.raises(ValueError, match=r"100 MiB free on its file system, a run of this size needs about 212 MiB"):
        classify.build_config(dataset="mnist", method="fc", out_dir=str(tmp_path))  # 6.2M dense parameters
    with pytest.raises(ValueError, match="MiB free on its file system"):
        translate.build_config(preset="cpu", method="fc", out_dir=str(tmp_path))
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("options", [dict(dataset="mnist"), dict(dataset="mnist", method="fc"),
                                     dict(dataset="mnist", method="chtss", sparsity=0.9)])
def test_the_size_estimate_is_the_models_count(options, tmp_path):
    from sparsenet.data.vision import image_shape
    from sparsenet.evolution import DensitySchedule
    from sparsenet.models import MLP
    from sparsenet.topology import sparse_layers
    config = classify.build_config(out_dir=str(tmp_path), **options)
    features, classes = image_shape(config.dataset)
    density = None if config.method == "fc" else DensitySchedule(1 - config.sparsity,
                                                                  config.engine_method().density_schedule).start()
    model = MLP(features, config.hidden, classes, density=density, dense=config.method == "fc")
    links = sum(layer.nnz for layer in sparse_layers(model))
    dense = sum(p.numel() for p in model.parameters()) - links
    estimate = config.parameter_counts()
    assert estimate[1] == dense and abs(estimate[0] - links) <= len(config.hidden) + 1  # per-layer rounding


def test_cht_on_the_mlp_updates_every_three_epochs_unless_told(tmp_path):
    """METHOD_DEFAULTS' recipe fields: updates every 3 epochs (a fit to the paper's CHT active-neuron rate) is
    CHT's MLP default; an explicit --update_interval wins and other methods keep 1."""
    build = lambda **o: classify.build_config(dataset="mnist", out_dir=str(tmp_path), **o)  # noqa: E731
    assert build(method="cht").update_interval == 3
    assert build(method="cht", update_interval=1).update_interval == 1
    assert build(method="chts").update_interval == build(method="set").update_interval == 1
    assert build(method="cht").engine_method().removal == "wm_signed"  # Method fields still reach the method

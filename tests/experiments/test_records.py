"""``cli.py table RUNS_DIR``: the results table of a folder of runs — means ± s.e. over seeds, the paper's
cell, unfinished runs listed, and each run's command rebuilt from its config (which trains that config)."""
import json
import re
import shlex
import statistics
from pathlib import Path

import pytest
from fire.parser import DefaultParseValue

from sparsenet.experiments.records import records_table, train_command
from sparsenet.train import RECIPES
from tests.conftest import run_cli


def _mlp_run(folder, dataset, method, seed, accuracy, finished=True, **changes):
    config = vars(RECIPES["mlp"].build_config(dataset=dataset, method=method, seed=seed, sparsity=0.99,
                                              data_dir="../shared/data", out_dir="runs/q", wandb="off", quiet=True,
                                              **changes))
    config["hidden"] = list(config["hidden"])  # as JSON stores it
    run = folder / f"{dataset}-{method}-{seed}{''.join('-' + key for key in changes)}"
    run.mkdir(parents=True)
    (run / "config.json").write_text(json.dumps(config))
    (run / "metrics.jsonl").write_text(json.dumps({"epoch": 1}) + "\n")
    if finished:
        (run / "summary.json").write_text(json.dumps({
            "model": "mlp", "dataset": dataset, "method": method, "sparsity": config["sparsity"], "seed": seed,
            "test_accuracy_at_best_valid": accuracy, "final_test_accuracy": accuracy - 0.001,
            "best_test_accuracy": accuracy + 0.001, "seconds_per_epoch": 2.0, "links": 123, "anp": 0.5}))
    return config


def test_rows_are_means_and_standard_errors_over_seeds_beside_the_paper(tmp_path):
    for seed, accuracy in enumerate((0.981, 0.983, 0.988)):
        _mlp_run(tmp_path, "mnist", "chts", seed, accuracy)
    _mlp_run(tmp_path, "mnist", "set", 0, 0.97)
    _mlp_run(tmp_path, "mnist", "rigl", 0, 0.5, finished=False)
    text = records_table(tmp_path)
    values = [98.1, 98.3, 98.8]
    mean, se = statistics.mean(values), statistics.stdev(values) / 3 ** 0.5
    chts = next(line for line in text.splitlines() if line.startswith("| chts |"))
    assert chts.startswith(f"| chts | 3 | {mean:.2f} ± {se:.2f} | ") and "98.81 ± 0.04" in chts  # paper's MNIST cell
    assert "| set | 1 | 97.00 |" in text and "| rigl | 0 | not run |" in text
    assert "Unfinished: mnist rigl seed 0: 1 evaluations" in text


@pytest.mark.parametrize("changes", [{}, {"zeta": 0.5, "hidden": (64, 32), "removal": "wm"}])
def test_each_command_trains_the_recorded_config(tmp_path, changes):
    config = _mlp_run(tmp_path, "fashion_mnist", "chts", 2, 0.9, **changes)
    command = train_command(config)
    words = shlex.split(command)
    assert words[:3] == ["python", "cli.py", "train"]
    options, i = {}, 3
    while i < len(words):
        name = words[i][2:]
        if i + 1 < len(words) and not words[i + 1].startswith("--"):
            options[name], i = words[i + 1], i + 2
        else:
            options[name], i = True, i + 1
    parsed = {k: v if v is True else DefaultParseValue(v) for k, v in options.items()}  # as Fire reads them
    rebuilt = vars(RECIPES["mlp"].build_config(**parsed))
    assert {**rebuilt, "hidden": list(rebuilt["hidden"])} == config
    assert "--removal" not in command or changes  # fashion_mnist CHTs' ri_soft is its preset: not repeated


def test_table_command_prints_a_folder_and_refuses_an_empty_one(tmp_path):
    _mlp_run(tmp_path / "runs", "mnist", "set", 0, 0.97)
    result = run_cli("table", tmp_path / "runs")
    assert result.returncode == 0 and "| set | 1 | 97.00 |" in result.stdout
    (tmp_path / "empty").mkdir()
    result = run_cli("table", tmp_path / "empty")
    assert result.returncode == 1 and result.stderr.strip() == f"error: {tmp_path / 'empty'}: no run folder (with a " \
                                                               f"config.json) in it"


def _lm_run(folder, method, sparsity, seed, ppl, **changes):
    config = vars(RECIPES["lm"].build_config(model="lm", method=method, sparsity=sparsity, seed=seed, d_model=32,
                                             heads=4, layers=2, d_ff=64, vocab_size=100, out_dir="runs/lm", **changes))
    run = folder / (f"lm-{method}-{sparsity}-{seed}" + "".join(f"-{k}{v}" for k, v in changes.items()))
    run.mkdir(parents=True)
    (run / "config.json").write_text(json.dumps(config))
    (run / "summary.json").write_text(json.dumps({
        "model": "lm", "dataset": "multi30k", "method": method, "sparsity": config["sparsity"], "seed": seed,
        "best_valid_ppl": ppl, "final_valid_ppl": ppl + 1, "links": 0 if method == "fc" else 1000,
        "train_seconds": 100.0, "seconds_per_step": 0.5}))


def test_language_model_rows_compare_with_dense_and_count_projection_bytes(tmp_path):
    _lm_run(tmp_path, "fc", 0.0, 0, 40.0)
    _lm_run(tmp_path, "chts", 0.9, 0, 44.0)
    _lm_run(tmp_path, "chts", 0.9, 1, 48.0)
    lines = records_table(tmp_path).splitlines()
    fc = next(line for line in lines if line.startswith("| fc |"))
    chts = next(line for line in lines if line.startswith("| chts |"))
    assert fc.startswith("| fc | 0 | 1 | 40.00 | 41.00 | 1.000 | 0 |") and fc.endswith("| 100.0% | 26.56 |")
    assert chts.startswith("| chts | 0.9 | 2 | 46.00 ± 2.00 | 47.00 ± 2.00 | 1.150 | 1,000 |")
    assert chts.endswith("| 33.03 |")  # NIPS Table 3, LLaMA-60M at 90%
    # projections: 2 blocks x (4 x 32x32 + 3 x 32x64) = 20,480 weights; dense 16 B each (w, g, 2 Adam moments)
    dense_mib = 20480 * 16 / 2**20
    sparse = [round(0.1 * n) for n in (1024,) * 8 + (2048,) * 6]
    sparse_bytes = sum(16 * k + 4 * k + 8 * k for k in sparse) + sum(4 * (rows + 1) for rows in
                                                                      (32,) * 8 + (64,) * 4 + (32,) * 2)
    assert f"| {dense_mib:.2f} | 100.0% |" in fc and f"| {sparse_bytes / 2**20:.2f} | " in chts


def test_runs_that_differ_in_more_than_the_seed_are_variants_not_seeds(tmp_path):
    _lm_run(tmp_path, "fc", 0.0, 0, 40.0)
    _lm_run(tmp_path, "fc", 0.0, 0, 50.0, lr=0.001)
    _lm_run(tmp_path, "chts", 0.9, 0, 44.0)
    _lm_run(tmp_path, "chts", 0.9, 1, 48.0)
    lines = records_table(tmp_path).splitlines()
    assert any(line.startswith("| fc (lr=0.001) | 0 | 1 | 50.00 | 51.00 | 1.250 |") for line in lines)
    assert any(line.startswith("| fc (lr=0.003) | 0 | 1 | 40.00 | 41.00 | 1.000 |") for line in lines)
    assert any(line.startswith("| chts | 0.9 | 2 | 46.00 ± 2.00 | 47.00 ± 2.00 | 1.150 |") for line in lines)
    _lm_run(tmp_path, "fc", 0.0, 0, 30.0, weights="kaiming")  # a setting others leave to the recipe
    text = records_table(tmp_path)
    assert "| fc (lr=0.003, weights=kaiming) |" in text and "| fc (lr=0.003, weights=default) |" in text
    for seed, accuracy in ((0, 0.98), (1, 0.99)):
        _mlp_run(tmp_path / "mlp", "mnist", "set", seed, accuracy)
    _mlp_run(tmp_path / "mlp", "mnist", "set", 0, 0.5, zeta=0.5)
    text = records_table(tmp_path / "mlp")
    assert "| set (zeta=0.3) | 2 | 98.50 ± 0.50 |" in text and "| set (zeta=0.5) | 1 | 50.00 |" in text


def test_a_config_recorded_before_a_field_existed_or_with_its_default_spelled_out_is_the_same_variant(tmp_path):
    old = _mlp_run(tmp_path, "fashion_mnist", "chts", 0, 0.90)
    _mlp_run(tmp_path, "fashion_mnist", "chts", 1, 0.92)
    del old["check_ranks"]  # a field added since, at its default
    old["removal"] = "ri_soft"  # the preset fashion_mnist CHTs resolves None to
    (tmp_path / "fashion_mnist-chts-0" / "config.json").write_text(json.dumps(old))
    assert "| chts | 2 | 91.00 ± 1.00 |" in records_table(tmp_path)
    _mlp_run(tmp_path, "fashion_mnist", "chts", 2, 0.5, removal="wm_soft")  # a real change of method
    assert "| chts (removal=wm_soft) | 1 | 50.00 |" in records_table(tmp_path)


def test_how_a_run_was_carried_out_does_not_make_it_a_variant(tmp_path):
    _mlp_run(tmp_path, "mnist", "set", 0, 0.98)
    _mlp_run(tmp_path, "mnist", "set", 1, 0.99, checkpoint_every=200)
    _mlp_run(tmp_path, "mnist", "set", 2, 0.97, download=True)
    assert "| set | 3 | 98.00 ± 0.58 |" in records_table(tmp_path)


def test_a_language_model_on_a_text_file_gets_its_row_and_command(tmp_path):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("a b c\n" * 50)
    config = vars(RECIPES["lm"].build_config(model="lm", dataset="text", text_file=str(corpus), method="fc", seed=0,
                                             d_model=32, heads=4, layers=2, d_ff=64, vocab_size=100,
                                             out_dir=str(tmp_path / "runs")))
    run = tmp_path / "records" / "lm-text"
    run.mkdir(parents=True)
    (run / "config.json").write_text(json.dumps(config))
    (run / "summary.json").write_text(json.dumps({
        "model": "lm", "dataset": "text", "method": "fc", "sparsity": 0.0, "seed": 0, "best_valid_ppl": 9.0,
        "final_valid_ppl": 9.5, "links": 0, "train_seconds": 10.0, "seconds_per_step": 0.1}))
    text = records_table(tmp_path / "records")
    assert "| fc | 0 | 1 | 9.00 | 9.50 | 1.000 |" in text and f"--text_file {corpus}" in text


# ------------------------------------------------------------------------------------------ results/*.md pages

ROOT = Path(__file__).resolve().parents[2]
PAGES = sorted((ROOT / "results").glob("*.md"))
TABLE_COMMAND = re.compile(r"python cli\.py table (results/records/[\w/]+)")


def _table_blocks(text: str) -> list[str]:
    """The markdown tables of ``text``: runs of consecutive lines that start with ``|``."""
    blocks, current = [], []
    for line in text.splitlines() + [""]:
        if line.startswith("|"):
            current.append(line)
        elif current:
            blocks.append("\n".join(current))
            current = []
    return blocks


@pytest.mark.parametrize("page", PAGES, ids=lambda path: path.stem)
def test_a_results_page_opens_with_the_commands_that_regenerate_it(page):
    opening = page.read_text().split("\n## ")[0]
    sweeps = re.findall(r"python cli\.py sweep (sweeps/\S+\.yaml)", opening)
    assert sweeps and TABLE_COMMAND.search(opening), f"{page.name} does not open with its sweeps and table commands"
    assert all((ROOT / sweep).is_file() for sweep in sweeps)


@pytest.mark.parametrize("page", PAGES, ids=lambda path: path.stem)
def test_the_tables_of_a_results_page_regenerate_byte_identically_from_its_records(page):
    """Every records folder a page names with ``cli.py table`` prints tables that stand in the page verbatim."""
    text = page.read_text()
    folders = sorted(set(TABLE_COMMAND.findall(text)))
    assert folders
    for folder in folders:
        generated = _table_blocks(records_table(ROOT / folder))
        assert generated, folder
        for table in generated:
            assert table in text, f"{page.name}: a table of `cli.py table {folder}` is not in the page as printed"


@pytest.mark.parametrize("page", PAGES, ids=lambda path: path.stem)
def test_a_results_page_speaks_of_the_results_not_of_how_the_work_was_organised(page):
    text = page.read_text()
    for word in ("session", "issue", "this workplace", "run_mlp", "run_lm", "run_scale", "run_transformer", "run_cht"):
        assert word not in text.lower(), f"{page.name} mentions {word!r}"

"""The language-model recipe end to end on a small text file: it learns, resumes exactly, decays CHTss from
half density to a final-density checkpoint, and refuses bad input in one line."""
import json
import math
from pathlib import Path

import pytest
import torch

from sparsenet.data import DataError
from sparsenet.data.text import consecutive_windows, load_text, random_windows
from sparsenet.models.lm import LanguageModel, rotary_tables, rotate
from sparsenet.train import language
from sparsenet.train.language import build_config, learning_rate

WORDS = "the a cat dog sees runs to from small big red house garden tree bird sings".split()


def _text_file(folder: Path, lines: int = 400) -> Path:
    generator = torch.Generator().manual_seed(0)
    rows = []
    for _ in range(lines):  # a tiny grammar: learnable structure, so the loss must fall
        pick = lambda: WORDS[int(torch.randint(len(WORDS), (1,), generator=generator))]  # noqa: E731
        rows.append(f"the {pick()} {pick()} sees the {pick()} .")
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "corpus.txt").write_text("\n".join(rows) + "\n")
    return folder / "corpus.txt"


def _options(tmp_path, **changes):
    return {**dict(dataset="text", text_file=str(_text_file(tmp_path / "data")), out_dir=str(tmp_path / "runs"),
                   d_model=32, heads=4, layers=2, d_ff=64, context=16, vocab_size=60, batch_size=8, train_steps=60,
                   warmup_steps=10, eval_every=20, update_interval=10, sparsity=0.5, lr=0.01, wandb="off",
                   quiet=True), **changes}


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("SPARSENET_DATA", str(tmp_path / "cache"))


def _records(run_dir) -> list[dict]:
    lines = (Path(run_dir) / "metrics.jsonl").read_text().splitlines()
    return [{k: v for k, v in json.loads(line).items() if not k.endswith("seconds")} for line in lines]  # timings


@pytest.mark.parametrize("method", ["fc", "chts"])
def test_tiny_run_learns_and_reports_perplexity(tmp_path, method):
    summary = language.train(build_config(**_options(tmp_path, method=method)))
    records = _records(summary["run_dir"])
    assert [r["step"] for r in records] == [20, 40, 60]
    assert records[-1]["valid_loss"] < records[0]["valid_loss"] - 0.3  # it learns the grammar
    assert summary["best_valid_ppl"] == pytest.approx(math.exp(min(r["valid_loss"] for r in records)))
    assert summary["best_valid_ppl"] < 60  # far below the uniform model's vocabulary-sized perplexity
    projections = 2 * (4 * 32 * 32 + 3 * 32 * 64)
    assert summary["links"] == (0 if method == "fc" else projections // 2)
    timed = [json.loads(line)["update_seconds"] for line in (Path(summary["run_dir"]) / "metrics.jsonl").open()]
    assert timed == sorted(timed) and timed[-1] == summary["update_seconds"]  # cumulative topology-update time
    assert (summary["update_seconds"] == 0) == (method == "fc") and 0 <= summary["update_overhead"] < 10


def test_the_dense_model_takes_weights_for_its_projections_at_density_one(tmp_path, monkeypatch):
    from sparsenet.topology.weights import init_dense_values
    layer = torch.nn.Linear(400, 300)
    init_dense_values(layer, "kaiming", torch.Generator().manual_seed(0))
    assert layer.weight.std().item() == pytest.approx(math.sqrt(2 / 400), rel=0.01) and abs(layer.weight.mean()) < 0.002
    init_dense_values(layer, "xavier", torch.Generator().manual_seed(0))
    bound = math.sqrt(6 / 700)
    assert layer.weight.abs().max() <= bound and layer.weight.abs().max() > 0.99 * bound
    applied = []
    monkeypatch.setattr(language, "init_dense_values", lambda module, method, generator: applied.append(
        (tuple(module.weight.shape), method)))
    language.train(build_config(**_options(tmp_path, method="fc", weights="swi", train_steps=20)))
    assert sorted(applied) == sorted([((32, 32), "swi")] * 8 + [((64, 32), "swi")] * 4 + [((32, 64), "swi")] * 2)


def test_interrupted_run_resumes_to_the_uninterrupted_result(tmp_path, monkeypatch):
    whole = language.train(build_config(**_options(tmp_path, run_name="whole")))
    rate = language.learning_rate

    def interrupt_at_step_30(step, config):
        if step == 30:
            raise KeyboardInterrupt
        return rate(step, config)

    monkeypatch.setattr(language, "learning_rate", interrupt_at_step_30)
    with pytest.raises(KeyboardInterrupt):
        language.train(build_config(**_options(tmp_path, run_name="cut")))
    cut = tmp_path / "runs" / "cut"
    assert len(_records(cut)) == 1 and not (cut / "summary.json").exists()
    monkeypatch.setattr(language, "learning_rate", rate)
    resumed = language.train(None, resume=cut)
    assert _records(cut) == _records(whole["run_dir"])
    for key in ("best_valid_loss", "final_valid_ppl", "links"):
        assert resumed[key] == whole[key]


def test_chtss_starts_at_half_density_and_reports_a_final_density_checkpoint(tmp_path):
    summary = language.train(build_config(**_options(tmp_path, method="chtss", sparsity=0.8, train_steps=100,
                                                     eval_every=10)))
    records = _records(summary["run_dir"])
    projections = 2 * (4 * 32 * 32 + 3 * 32 * 64)
    assert abs(records[0]["links"] / projections - 0.5) < 0.01  # CHTss starts at 50% density
    assert abs(summary["links"] / projections - 0.2) < 0.001  # the reported checkpoint is at the final 20%
    by_step = {r["step"]: r["links"] for r in records}
    assert by_step[70] > summary["links"] and all(by_step[s] == summary["links"] for s in (80, 90, 100))
    # updates end before t_end = 75: only evaluations after the last one (at 70) may be selected
    assert summary["best_valid_loss"] == min(r["valid_loss"] for r in records if r["step"] > 70)


def test_model_is_causal_and_rotary_positions_are_relative():
    torch.manual_seed(0)
    model = LanguageModel(50, d_model=16, heads=2, layers=1, d_ff=32, context=12, density=0.5).eval()
    tokens = torch.randint(0, 50, (2, 12))
    changed = tokens.clone()
    changed[:, 8:] = (changed[:, 8:] + 1) % 50
    with torch.no_grad():
        assert torch.allclose(model(tokens)[:, :8], model(changed)[:, :8], atol=1e-6)  # no look-ahead
        assert not torch.allclose(model(tokens)[:, 8:], model(changed)[:, 8:])
    cos, sin = rotary_tables(12, 8)
    q, k = torch.randn(1, 1, 1, 8), torch.randn(1, 1, 1, 8)
    def score(i, j):  # noqa: E306
        return float((rotate(q, cos[i:i + 1], sin[i:i + 1]) * rotate(k, cos[j:j + 1], sin[j:j + 1])).sum())
    assert score(5, 2) == pytest.approx(score(9, 6), abs=1e-5)  # depends on i - j only
    assert len(model.percolation_relations()) == 5


def test_windows_and_schedule():
    tokens = torch.arange(50)
    inputs, targets = random_windows(tokens, 6, 10, torch.Generator().manual_seed(0))
    assert inputs.shape == (6, 10) and torch.equal(targets, inputs + 1) and int(targets.max()) <= 49
    windows = list(consecutive_windows(tokens, 2, 10))
    assert [w[0][:, 0].tolist() for w in windows] == [[0, 10], [20, 30]] and torch.equal(windows[0][1], windows[0][0] + 1)
    config = build_config(lr=1.0, lr_end_factor=0.1, warmup_steps=10, train_steps=110, out_dir="/tmp")
    assert learning_rate(5, config) == pytest.approx(0.5) and learning_rate(10, config) == pytest.approx(1.0)
    assert learning_rate(60, config) == pytest.approx(0.55) and learning_rate(110, config) == pytest.approx(0.1)


@pytest.mark.parametrize("changes,message", [
    (dict(dataset="wikitext", text_file=None), "unknown dataset 'wikitext' for language modelling"),
    (dict(dataset="multi30k"), "--text_file goes with --dataset text"),
    (dict(heads=3), "heads (3) must split d_model (32) into heads of even width"),
    (dict(heads=32), "heads (32) must split d_model (32) into heads of even width"),
    (dict(lr=0.0), "lr must be a number > 0"),
    (dict(warmup_steps=-1), "warmup_steps must be an integer >= 0"),
    (dict(context=0), "context must be a positive integer"),
    (dict(dropout=1.0), "dropout"),
    (dict(method="fc", weights="normal"), "unknown weight init 'normal'; choose from"),
    (dict(method="fc", weights="zeros"), "--weights zeros with --method fc: dense projections all at zero"),
])
def test_bad_options_are_one_line(tmp_path, changes, message):
    with pytest.raises(ValueError) as error:
        build_config(**_options(tmp_path, **changes))
    assert message in str(error.value) and "\n" not in str(error.value)


def test_bad_data_is_one_line(tmp_path):
    with pytest.raises(DataError, match="not staged in .*pass --download"):
        load_text("openwebtext", tmp_path)
    with pytest.raises(DataError, match="no such file"):
        load_text("text", tmp_path, text_file=str(tmp_path / "missing.txt"))
    (tmp_path / "one.txt").write_text("just one line\n")
    with pytest.raises(DataError, match="at least 2 non-empty lines"):
        load_text("text", tmp_path, text_file=str(tmp_path / "one.txt"))
    with pytest.raises(DataError, match="fewer than one --context window"):
        language.train(build_config(**_options(tmp_path, context=4000)))


def test_the_bpe_cache_is_keyed_by_the_training_text_not_the_file_name(tmp_path):
    corpus = _text_file(tmp_path / "data")
    first = load_text("text", tmp_path, text_file=str(corpus), vocab_size=60)
    again = load_text("text", tmp_path, text_file=str(corpus), vocab_size=60)
    cache = tmp_path / "cache" / "bpe" / "lm-text"
    assert len(list(cache.glob("*.model"))) == 1 and torch.equal(first.train, again.train)  # trained once
    text = corpus.read_text()
    corpus.write_text(text.replace(" cat ", " dog ", 1))
    assert corpus.read_text() != text and corpus.stat().st_size == len(text)  # same path and size, other text
    load_text("text", tmp_path, text_file=str(corpus), vocab_size=60)
    assert len(list(cache.glob("*.model"))) == 2 and not list(cache.glob("*.part*"))

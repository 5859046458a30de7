"""The Transformer recipe end to end on a tiny corpus, its schedule, and its one-line data errors."""
import gzip
import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from sparsenet.evolution import TopologyEngine
from sparsenet.topology import sparse_layers
from sparsenet.train import loop, translate
from sparsenet.train.checkpoint import load_checkpoint
from sparsenet.train.translate import bleu, build_config, inoam
from tests.data.test_translation_data import _corpus

ROOT = Path(__file__).resolve().parents[2]
SHARED = ROOT.parent / "shared" / "data"
TINY = ["--model", "transformer", "--d_model", "32", "--heads", "4", "--layers", "1", "--d_ff", "64",
        "--vocab_size", "60", "--train_steps", "40", "--warmup_steps", "10", "--batch_tokens", "400",
        "--update_interval", "20", "--eval_every", "20", "--lr_factor", "1", "--sparsity", "0.5", "--wandb", "off",
        "--quiet"]


def test_tiny_run_trains_decodes_and_reports_bleu(tmp_path):
    root = _corpus(tmp_path / "data", lines=80)
    env = {"SPARSENET_DATA": str(tmp_path / "cache"), "PATH": "/usr/bin:/bin"}
    result = subprocess.run([sys.executable, "cli.py", "train", *TINY, "--data_dir", str(root), "--out_dir",
                             str(tmp_path / "runs")], cwd=ROOT, capture_output=True, text=True, timeout=600,
                            env={**env, "HOME": str(tmp_path)})
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    for key in ("bleu", "sacrebleu", "sacrebleu_signature", "best_valid_loss", "train_steps", "train_seconds", "nnz",
                "dense_params"):
        assert key in summary
    assert summary["links"] < summary["dense_params"] and "tok:13a" in summary["sacrebleu_signature"]
    run_dir = Path(summary["run_dir"])
    assert len((run_dir / "metrics.jsonl").read_text().splitlines()) == 2
    assert len((run_dir / "test.hyp").read_text().splitlines()) == 80


def _records(run_dir: Path) -> list[dict]:
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    return [{k: v for k, v in json.loads(line).items() if not k.endswith("seconds")} for line in lines]  # no timings


def test_interrupted_run_resumes_to_the_uninterrupted_result(tmp_path, monkeypatch):
    root = _corpus(tmp_path / "data", lines=80)
    monkeypatch.setenv("SPARSENET_DATA", str(tmp_path / "cache"))
    options = dict(dataset="multi30k", data_dir=str(root), out_dir=str(tmp_path / "runs"), d_model=32, heads=4,
                   layers=1, d_ff=64, vocab_size=60, train_steps=60, warmup_steps=10, batch_tokens=400,
                   update_interval=10, eval_every=20, lr_factor=1.0, sparsity=0.5, wandb="off", quiet=True)
    whole = translate.train(build_config(**options, run_name="whole"))
    schedule = translate.inoam

    def interrupt_at_step_30(step, config, rewarm):
        if step == 30:
            raise KeyboardInterrupt
        return schedule(step, config, rewarm)

    monkeypatch.setattr(translate, "inoam", interrupt_at_step_30)
    with pytest.raises(KeyboardInterrupt):
        translate.train(build_config(**options, run_name="cut"))
    cut = tmp_path / "runs" / "cut"
    assert len(_records(cut)) == 1 and not (cut / "summary.json").exists()
    monkeypatch.setattr(translate, "inoam", schedule)
    resumed = translate.train(None, resume=cut)
    assert _records(cut) == _records(Path(whole["run_dir"])) and len(_records(cut)) == 3
    for key in ("best_valid_loss", "links", "bleu", "sacrebleu"):
        assert resumed[key] == whole[key]
    assert (cut / "test.hyp").read_text() == (Path(whole["run_dir"]) / "test.hyp").read_text()


def test_bleu_reproduces_sacrebleus_own_example_and_labels_the_lowercased_variant():
    refs = [["The dog bit the man.", "It was not unexpected.", "The man bit him first."],
            ["The dog had bit the man.", "No one was surprised.", "The man had bitten the dog."]]
    hyps = ["The dog bit the man.", "It wasn't surprising.", "The man had just bitten him."]
    scores = bleu(hyps, refs)
    assert round(scores["sacrebleu"], 2) == 48.53  # sacreBLEU's README: BLEU = 48.53 82.4/50.0/45.5/37.5
    assert scores["sacrebleu_signature"].startswith("nrefs:2|case:mixed|eff:no|tok:13a|smooth:exp|version:")
    assert round(scores["bleu"], 2) == 48.53  # already lower-case-insensitive here: nothing differs by case
    shouted = bleu([h.upper() for h in hyps], refs)
    assert shouted["bleu"] == scores["bleu"] and shouted["sacrebleu"] < 5.0
    assert bleu(hyps, refs[0])["sacrebleu"] == bleu(hyps, [refs[0]])["sacrebleu"]


def test_inoam_rewarms_after_every_update():
    config = build_config(dataset="multi30k", warmup_steps=100, update_interval=50, lr_factor=1.0, d_model=64)
    assert inoam(150, config, rewarm=True) == 0.0
    assert abs(inoam(160, config, rewarm=True) - inoam(160, config, rewarm=False) * 10 / 20) < 1e-12
    assert inoam(175, config, rewarm=True) == inoam(175, config, rewarm=False)
    assert inoam(100, config, rewarm=False) > inoam(50, config, rewarm=False)  # warm-up then decay
    assert inoam(400, config, rewarm=False) < inoam(100, config, rewarm=False)


@pytest.mark.skipif(not (SHARED / "iwslt14-de-en").exists(), reason="../shared/data not present")
def test_iwslt14_without_training_data_is_one_line(tmp_path):
    result = subprocess.run([sys.executable, "cli.py", "train", "--model", "transformer", "--dataset", "iwslt14",
                             "--data_dir", str(SHARED), "--out_dir", str(tmp_path / "runs")], cwd=ROOT,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "iwslt14: train split missing" in lines[0] and "train.en" in lines[0]
    assert "--download" in lines[0]
    assert not (tmp_path / "runs").exists()


def test_iwslt14_trains_from_a_prepared_folder(tmp_path, monkeypatch):
    folder = tmp_path / "data" / "iwslt14-de-en"
    folder.mkdir(parents=True)
    multi30k = _corpus(tmp_path / "source", lines=60) / "multi30k"
    for split, staged in (("train", "train"), ("valid", "val"), ("test", "test_2016_flickr")):
        for lang in ("en", "de"):
            (folder / f"{split}.{lang}").write_text(gzip.decompress((multi30k / f"{staged}.{lang}.gz").read_bytes())
                                                   .decode())
    monkeypatch.setenv("SPARSENET_DATA", str(tmp_path / "cache"))
    options = dict(dataset="iwslt14", data_dir=str(tmp_path / "data"), out_dir=str(tmp_path / "runs"), d_model=32,
                   heads=4, layers=1, d_ff=64, vocab_size=60, train_steps=20, warmup_steps=10, batch_tokens=400,
                   update_interval=10, eval_every=20, lr_factor=1.0, beam_size=1, wandb="off", quiet=True)
    summary = translate.train(build_config(**options, download=True))  # prepared already: no network is touched
    assert summary["dataset"] == "iwslt14" and summary["sparsity"] == 0.9 and summary["train_steps"] == 20
    assert len((Path(summary["run_dir"]) / "test.hyp").read_text().splitlines()) == 60


def test_presets():
    cpu = build_config(dataset="multi30k", preset="cpu")
    assert cpu.d_model == 256 and cpu.train_steps == 3200 and cpu.beam_size == 4
    assert build_config(dataset="iwslt14").batch_tokens == 10240
    with pytest.raises(ValueError, match="no preset 'cpu' for wmt17"):
        build_config(dataset="wmt17", preset="cpu")


@pytest.mark.skipif(not (SHARED / "multi30k").exists(), reason="../shared/data/multi30k not present")
def test_fifty_multi30k_steps_train_and_decode_the_test_set(tmp_path):
    result = subprocess.run([sys.executable, "cli.py", "train", "--model", "transformer", "--dataset", "multi30k",
                             "--preset", "cpu", "--train_steps", "50", "--eval_every", "25", "--warmup_steps", "25",
                             "--beam_size", "1",
                             "--data_dir", str(SHARED), "--out_dir", str(tmp_path / "runs"), "--wandb", "off",
                             "--quiet"], cwd=ROOT, capture_output=True, text=True, timeout=900,
                            env={"SPARSENET_DATA": str(tmp_path / "cache"), "PATH": "/usr/bin:/bin",
                                 "HOME": str(tmp_path)})
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    records = _records(Path(summary["run_dir"]))
    assert [r["step"] for r in records] == [25, 50] and records[1]["valid_loss"] < records[0]["valid_loss"]
    square, ffn = round(0.1 * 256 * 256), round(0.1 * 256 * 1024)  # links per layer, rounded per layer
    assert summary["links"] == 3 * (4 * square + 2 * ffn) + 3 * (8 * square + 2 * ffn)  # 3 encoder + 3 decoder
    hypotheses = (Path(summary["run_dir"]) / "test.hyp").read_text().splitlines()
    assert len(hypotheses) == 1000
    import sacrebleu  # the reported scores are sacreBLEU's own on the written hypotheses and the raw references
    references = gzip.decompress((SHARED / "multi30k" / "test_2016_flickr.de.gz").read_bytes()).decode().splitlines()
    assert summary["sacrebleu"] == sacrebleu.corpus_bleu(hypotheses, [references]).score
    assert summary["bleu"] == sacrebleu.corpus_bleu(hypotheses, [references], lowercase=True).score


def _tiny_options(tmp_path, **changes) -> dict:
    root = _corpus(tmp_path / "data", lines=80)
    return {**dict(dataset="multi30k", data_dir=str(root), out_dir=str(tmp_path / "runs"), d_model=32, heads=4,
                   layers=1, d_ff=64, vocab_size=60, train_steps=200, warmup_steps=10, batch_tokens=400,
                   update_interval=10, eval_every=20, lr_factor=1.0, sparsity=0.8, beam_size=1, wandb="off",
                   quiet=True), **changes}


def test_chtss_transformer_decays_from_half_density_and_reports_a_final_density_checkpoint(tmp_path, monkeypatch):
    monkeypatch.setenv("SPARSENET_DATA", str(tmp_path / "cache"))
    summary = translate.train(build_config(**_tiny_options(tmp_path), method="chtss"))
    records = [json.loads(line) for line in (Path(summary["run_dir"]) / "metrics.jsonl").read_text().splitlines()]
    dense = 4 * 32 * 32 + 2 * 32 * 64 + 8 * 32 * 32 + 2 * 32 * 64  # encoder + decoder projections
    final = summary["links"]
    assert abs(final / dense - 0.2) < 0.01  # the reported checkpoint is at the final density
    assert records[0]["step"] == 20 and abs(records[0]["links"] / dense - 0.5) < 0.01  # starts at 50%
    by_step = {r["step"]: r["links"] for r in records}
    assert by_step[140] > final and all(by_step[s] == final for s in (160, 180, 200))  # last update at 140 < 150
    best = min((r for r in records if r["step"] > 140), key=lambda r: r["valid_loss"])
    assert summary["best_valid_loss"] == best["valid_loss"]


def test_validation_sees_the_weights_before_that_steps_topology_update(tmp_path, monkeypatch):
    """At an evaluation step that is also an update step, validation runs first: its loss equals the loss of
    the model saved just before the engine's step (captured by wrapping the engine)."""
    monkeypatch.setenv("SPARSENET_DATA", str(tmp_path / "cache"))
    order = []
    real_step, real_loss = TopologyEngine.step, translate.validation_loss

    def step(engine, global_step):
        stats = real_step(engine, global_step)
        if stats is not None:
            order.append(("update", global_step))
        return stats

    def loss(model, batches):
        order.append(("valid", sum(l.nnz for l in sparse_layers(model))))
        return real_loss(model, batches)

    monkeypatch.setattr(TopologyEngine, "step", step)
    monkeypatch.setattr(translate, "validation_loss", loss)
    translate.train(build_config(**_tiny_options(tmp_path, train_steps=40), method="chtss"))
    # updates at 10 and 20 (t_end 30); the evaluation at 20 sees the density before the update at 20
    assert [o[0] for o in order] == ["update", "valid", "update", "valid"]
    assert order[1][1] > order[3][1]  # evaluated at step 20 before the update, then at step 40 after it


@pytest.mark.parametrize("lr_factor, d_model", [(1.0, 256), (2.0, 512)])
def test_inoam_pinned_by_value(lr_factor, d_model):
    config = build_config(dataset="multi30k", warmup_steps=400, update_interval=100, lr_factor=lr_factor,
                          d_model=d_model, rewarm_steps=20)
    scale = lr_factor / math.sqrt(d_model)
    assert inoam(100, config, rewarm=False) == pytest.approx(scale * 100 / 400 ** 1.5, rel=1e-12)   # warm-up
    assert inoam(400, config, rewarm=False) == pytest.approx(scale / 20.0, rel=1e-12)             # the peak
    assert inoam(1600, config, rewarm=False) == pytest.approx(scale / 40.0, rel=1e-12)            # t^-1/2
    assert inoam(1605, config, rewarm=True) == pytest.approx(scale / math.sqrt(1605) * 5 / 20, rel=1e-12)
    assert inoam(1600, config, rewarm=True) == 0.0 and inoam(1620, config, rewarm=True) == inoam(1620, config, False)


def test_resume_after_a_crash_between_metrics_and_checkpoint_keeps_one_line_per_evaluation(tmp_path, monkeypatch):
    """The second evaluation's metrics line is written, then the run dies before its checkpoint: the resumed
    run redoes those steps from the first checkpoint and its metrics equal an uninterrupted run's."""
    monkeypatch.setenv("SPARSENET_DATA", str(tmp_path / "cache"))
    options = _tiny_options(tmp_path, train_steps=60, sparsity=0.5)
    whole = translate.train(build_config(**options, run_name="whole"))
    real_save, saves = loop.save_checkpoint, []

    def die_at_second_checkpoint(path, state):
        saves.append(Path(path).name)
        if saves.count("checkpoint.pt") == 2:
            raise KeyboardInterrupt
        real_save(path, state)

    monkeypatch.setattr(loop, "save_checkpoint", die_at_second_checkpoint)
    with pytest.raises(KeyboardInterrupt):
        translate.train(build_config(**options, run_name="cut"))
    cut = tmp_path / "runs" / "cut"
    assert len(_records(cut)) == 2  # the second evaluation's line is there, its checkpoint is not
    monkeypatch.setattr(loop, "save_checkpoint", real_save)
    translate.train(None, resume=cut)
    assert _records(cut) == _records(Path(whole["run_dir"])) and len(_records(cut)) == 3


def test_best_checkpoint_is_written_only_when_validation_improves(tmp_path, monkeypatch):
    """Scripted validation losses 3, 1, 2, 0.5, 4 at the five evaluations: best.pt is written at the first,
    second and fourth only, and the reported model is the fourth's."""
    monkeypatch.setenv("SPARSENET_DATA", str(tmp_path / "cache"))
    scripted, real_save = [3.0, 1.0, 2.0, 0.5, 4.0], loop.save_checkpoint
    evaluations, written = [], []  # written: (evaluation number, the saved model)

    def scripted_loss(model, batches):
        evaluations.append(scripted[len(evaluations)])
        return evaluations[-1]

    def save(path, state):
        if Path(path).name == "best.pt":
            written.append((len(evaluations), {k: v.clone() for k, v in state["model"].items()}))
        real_save(path, state)

    monkeypatch.setattr(loop, "save_checkpoint", save)
    monkeypatch.setattr(translate, "validation_loss", scripted_loss)
    summary = translate.train(build_config(**_tiny_options(tmp_path, train_steps=100, method="set", sparsity=0.5)))
    assert [evaluation for evaluation, _ in written] == [1, 2, 4]
    assert summary["best_valid_loss"] == 0.5
    reported = load_checkpoint(Path(summary["run_dir"]) / "best.pt")["model"]
    assert all(torch.equal(reported[k], v) for k, v in written[-1][1].items())

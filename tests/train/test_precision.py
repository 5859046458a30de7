"""``--precision``: bf16 and fp16 train every recipe under autocast with fp32 values and optimizer state; fp16's
gradient scaler is in the checkpoint, so an fp16 run resumes exactly; the Transformer in bf16 trains and reports
BLEU."""
import json
from pathlib import Path

import pytest
import torch

from sparsenet.train import classify, language, loop, translate
from sparsenet.train.checkpoint import load_checkpoint


def _records(run_dir) -> list[dict]:
    lines = (Path(run_dir) / "metrics.jsonl").read_text().splitlines()
    return [{k: v for k, v in json.loads(line).items() if "seconds" not in k and k != "peak_rss_bytes"}
            for line in lines]


def _digits(tmp_path, **changes):
    return classify.build_config(**{**dict(dataset="digits", hidden=(32, 32), method="set", epochs=3,
                                           out_dir=str(tmp_path), wandb="off", quiet=True), **changes})


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_low_precision_keeps_fp32_values_and_optimizer_state(tmp_path, precision):
    summary = classify.train(_digits(tmp_path, precision=precision))
    checkpoint = load_checkpoint(Path(summary["run_dir"]) / "checkpoint.pt")
    assert {v.dtype for k, v in checkpoint["model"].items() if v.is_floating_point()} == {torch.float32}
    assert {s["momentum_buffer"].dtype for s in checkpoint["optimizer"]["state"].values()} == {torch.float32}
    assert ("scaler" in checkpoint) == (precision == "fp16")
    records = _records(summary["run_dir"])
    assert summary["precision"] == precision and records[-1]["train_loss"] < records[0]["train_loss"]  # it learns


def test_low_precision_changes_the_numbers(tmp_path):
    """Autocast is on: a bf16 run's losses differ from the fp32 run's (same seed), its first epoch's by little."""
    fp32 = _records(classify.train(_digits(tmp_path, run_name="fp32"))["run_dir"])
    bf16 = _records(classify.train(_digits(tmp_path, run_name="bf16", precision="bf16"))["run_dir"])
    assert fp32[0]["train_loss"] != bf16[0]["train_loss"]
    assert bf16[0]["train_loss"] == pytest.approx(fp32[0]["train_loss"], rel=0.05)


def test_an_fp16_run_resumes_exactly_with_its_scaler(tmp_path, monkeypatch):
    whole = classify.train(_digits(tmp_path, run_name="whole", precision="fp16"))
    real_save, saves = loop.save_checkpoint, []

    def stop_after_first_checkpoint(path, state):
        real_save(path, state)
        saves.append((Path(path).name, state.get("scaler")))
        if [name for name, _ in saves].count("checkpoint.pt") == 1:
            raise KeyboardInterrupt

    monkeypatch.setattr(loop, "save_checkpoint", stop_after_first_checkpoint)
    with pytest.raises(KeyboardInterrupt):
        classify.train(_digits(tmp_path, run_name="cut", precision="fp16"))
    monkeypatch.setattr(loop, "save_checkpoint", real_save)
    assert saves[-1][1]["scale"] > 0
    classify.train(None, resume=tmp_path / "cut")
    assert _records(tmp_path / "cut") == _records(whole["run_dir"])


def test_the_language_model_trains_in_bf16(tmp_path, monkeypatch):
    from tests.train.test_language import _options
    monkeypatch.setenv("SPARSENET_DATA", str(tmp_path / "cache"))
    summary = language.train(language.build_config(**_options(tmp_path, precision="bf16", train_steps=40)))
    records = _records(summary["run_dir"])
    assert records[-1]["valid_loss"] < records[0]["valid_loss"] and summary["best_valid_ppl"] < 60


def test_the_transformer_trains_in_bf16_and_reports_bleu(tmp_path, monkeypatch):
    """The small form of ``cli.py train --model transformer --dataset multi30k --preset cpu --device cpu
    --precision bf16``: a tiny corpus, 60 steps, greedy decoding of the test split under bf16 autocast."""
    from tests.train.test_translate import _tiny_options
    monkeypatch.setenv("SPARSENET_DATA", str(tmp_path / "cache"))
    summary = translate.train(translate.build_config(**_tiny_options(tmp_path, train_steps=60, device="cpu",
                                                                     precision="bf16")))
    records = _records(summary["run_dir"])
    assert records[-1]["valid_loss"] < records[0]["valid_loss"]
    assert summary["precision"] == "bf16" and 0.0 <= summary["bleu"] <= 100.0 and "sacrebleu" in summary
    assert (Path(summary["run_dir"]) / "test.hyp").read_text().strip()

"""Every command's bad input: a non-zero exit with one line naming the problem, no traceback, nothing
written. In process through ``cli.main`` (the code ``python cli.py`` runs: an uncaught exception fails the
test as a traceback would); tests/train/test_cli_train.py checks real processes' stderr and timing."""
from pathlib import Path

import pytest
import torch

import cli
from tests.data.test_translation_data import _corpus

ROOT = Path(__file__).resolve().parents[2]
MLP_99 = str(ROOT / "sweeps" / "mlp_99.yaml")
T = ["train", "--model", "transformer"]
L = ["train", "--model", "lm"]

CASES = [  # (argv, what the one line must say); {tmp}: the test's folder, {corpus}: a tiny Multi30k there
    (["frobnicate"], "unknown command 'frobnicate'; choose from train, sweep"),
    (["trian"], "unknown command 'trian'; did you mean train?"),
    # train: names
    (["train", "--epoch", "1"], "unknown option --epoch for --model mlp; did you mean --epochs?"),
    (["train", "--sparsty=0.5"], "did you mean --sparsity?"),
    (T + ["--epochs", "2"], "--epochs applies only to --model mlp, not to --model transformer"),
    (["train", "--preset", "cpu"], "--preset applies only to --model transformer, not to --model mlp"),
    (["train", "--model", "resnet"], "unknown model 'resnet'"),
    (["train", "--dataset", "cifar"], "unknown dataset 'cifar'"),
    (T + ["--dataset", "cifar"], "unknown dataset 'cifar' for translation"),
    (["train", "--method", "snip"], "unknown method 'snip'"),
    (["train", "--regrowth", "ch4"], "unknown regrowth 'ch4'"),
    (["train", "--removal", "biggest"], "unknown removal 'biggest'"),
    (["train", "--init", "lattice"], "unknown init 'lattice'"),
    (["train", "--wandb", "bogus"], "unknown wandb mode 'bogus'"),
    (T + ["--tie_embeddings", "both"], "unknown tie_embeddings 'both'"),
    (T + ["--preset", "gpu"], "no preset 'gpu' for multi30k"),
    # train: types
    (["train", "--sparsity", "abc"], "--sparsity must be a number, got 'abc'"),
    (["train", "--seed", "abc"], "--seed must be an integer, got 'abc'"),
    (["train", "--epochs", "1.5"], "--epochs must be an integer, got 1.5"),
    (["train", "--exponent_start", "abc"], "--exponent_start must be a number, got 'abc'"),
    (["train", "--mest_lambda", "x"], "--mest_lambda must be a number, got 'x'"),
    (["train", "--hidden", "abc"], "--hidden must be positive integers separated by commas"),
    (["train", "--hidden", "64,0"], "--hidden must be positive integers separated by commas"),
    (["train", "--quiet", "maybe"], "--quiet must be true or false, got 'maybe'"),
    (T + ["--lr_factor", "fast"], "--lr_factor must be a number, got 'fast'"),
    # train: ranges
    (["train", "--sparsity", "1.0"], "sparsity must be in (0, 1) for a sparse method, got 1.0"),
    (["train", "--sparsity", "-0.1"], "sparsity must be in (0, 1) for a sparse method, got -0.1"),
    (["train", "--sparsity", "0"], "sparsity must be in (0, 1) for a sparse method, got 0.0"),
    (["train", "--epochs", "0"], "epochs must be a positive integer, got 0"),
    (["train", "--update_interval", "0"], "update_interval must be a positive integer, got 0"),
    (["train", "--zeta", "1.5"], "zeta must be in [0, 1), got 1.5"),
    (["train", "--valid_fraction", "1"], "valid_fraction must be in [0, 1), got 1.0"),
    (["train", "--links_per_neuron", "5", "--sparsity", "0.9"], "give --sparsity or --links_per_neuron, not both"),
    (["train", "--links_per_neuron", "0"], "--links_per_neuron must be > 0, got 0.0"),
    (["train", "--hidden_init", "ws"], "unknown hidden_init 'ws'; choose from"),
    (["train", "--method", "fc", "--hidden_init", "bsw"], "--hidden_init sets a sparse topology"),
    (["train", "--method", "fc", "--links_per_neuron", "5"], "--links_per_neuron sets a sparse topology"),
    (["train", "--links_per_neuron", "1000"], "--links_per_neuron 1000 makes every hidden layer dense"),
    (["train", "--hidden", "100000,10,10", "--links_per_neuron", "10", "--method", "chts"], "regrowth on the 64->100000 layer needs"),
    (["train", "--checkpoint_every", "0"], "checkpoint_every must be a positive integer, got 0"),
    (["train", "--memory_limit", "-1"], "--memory_limit must be > 0 GiB, got -1.0"),
    (["train", "--memory_limit", "0.0001"], "MiB), more than the 0.1 MiB of --memory_limit; use fewer --hidden"),
    (T + ["--layers", "0"], "layers must be a positive integer, got 0"),
    (T + ["--heads", "3"], "heads (3) must divide d_model (512)"),
    (T + ["--dropout", "1"], "dropout must be in [0, 1), got 1.0"),
    (T + ["--label_smoothing", "-0.1"], "label_smoothing must be in [0, 1), got -0.1"),
    (T + ["--rewarm_steps", "-1"], "rewarm_steps must be an integer >= 0, got -1"),
    (T + ["--beam_size", "0"], "beam_size must be a positive integer, got 0"),
    (T + ["--vocab_size", "0"], "vocab_size must be a positive integer, got 0"),
    # train: files and folders
    (["train", "--dataset", "mnist", "--data_dir", "{tmp}/nowhere"], "mnist: missing train-images-idx3-ubyte.gz"),
    (T + ["--data_dir", "{tmp}/nowhere"], "multi30k: train split missing in {tmp}/nowhere/multi30k"),
    (T + ["--data_dir", "{corpus}", "--vocab_size", "5"], "sentencepiece cannot train a BPE of 5 pieces"),
    (L + ["--dataset", "openwebtext", "--data_dir", "{tmp}/nowhere"],
     "openwebtext: not staged in {tmp}/nowhere/openwebtext (expected train.txt and valid.txt); pass --download"),
    (L + ["--dataset", "text", "--text_file", "{tmp}/missing.txt"], "--text_file {tmp}/missing.txt: no such file"),
    (L + ["--dataset", "text"], "--text_file goes with --dataset text"),
    (L + ["--heads", "3"], "heads (3) must split d_model (320) into heads of even width"),
    (L + ["--dataset", "wikitext"], "unknown dataset 'wikitext' for language modelling"),
    (["train", "--context", "64"], "--context applies only to --model lm, not to --model mlp"),
    (["train", "--device", "tpu"], "unknown device 'tpu'; choose from auto, cpu, cuda or cuda:N"),
    (["train", "--device", "cuda:x"], "unknown device 'cuda:x'"),
    (L + ["--device", "cuda:99"], "--device cuda:99: this machine has " + (
        f"{torch.cuda.device_count()} CUDA device(s)" if torch.cuda.is_available() else "no CUDA device")),
    *([(T + ["--device", "cuda"], "--device cuda: this machine has no CUDA device")]
      if not torch.cuda.is_available() else []),
    (["train", "--precision", "fp8"], "unknown precision 'fp8'; choose from ['fp32', 'bf16', 'fp16']"),
    (["train", "--resume", "{tmp}/no_config", "--device", "tpu"], "unknown device 'tpu'"),
    (["train", "--resume", "{tmp}/no_config", "--seed", "1"], "--resume takes no other options than --device"),
    (["train", "--resume", "{tmp}/nowhere"], "no checkpoint.pt there"),
    (["train", "--resume", "{tmp}/no_config"], "--resume {tmp}/no_config: config.json is missing or unreadable"),
    (["train", "--restart", "maybe"], "--restart must be true or false, got 'maybe'"),
    (["train", "--init_topology", "{tmp}/nowhere"], "--init_topology {tmp}/nowhere: no such run directory"),
    (["train", "--method", "fc", "--init_topology", "{tmp}"], "--init_topology needs a sparse method"),
    (["train", "--method", "fc", "--weights", "kaiming"], "--weights with --method fc: the mlp recipe's dense model "
                                                          "keeps its own initialisation"),
    (["train", "--hidden", "64,64,64", "--init_topology", "{tmp}/source"],
     "--init_topology {tmp}/source: its layers have the sizes (64, 128, 128, 128, 10), this run's are "
     "(64, 64, 64, 64, 10)"),
    (T + ["--init_topology", "{tmp}/source"], "the topology of a mlp run cannot start a transformer run"),
    (["train", "--run_name", "../outside"], "--run_name must be a plain folder name inside --out_dir"),
    (["train", "--run_name", "a/b"], "--run_name must be a plain folder name inside --out_dir, got 'a/b'"),
    (["train", "--out_dir", "{tmp}/taken"], "--out_dir {tmp}/taken: {tmp}/taken is a file, not a folder"),
    (["train", "--out_dir", "{tmp}/taken/deeper"], "--out_dir {tmp}/taken/deeper: {tmp}/taken is a file"),
    # the other commands
    (["sweep", "{tmp}/missing.yaml"], "no sweep file {tmp}/missing.yaml"),
    (["sweep", MLP_99, "--workers", "0"], "workers must be >= 1, got 0"),
    (["sweep", MLP_99, "--device", "cuda:99"], "--device cuda:99: this machine has"),
    (["sweep", MLP_99, "--nproc_per_node", "0"], "--nproc_per_node must be an integer >= 1, got 0"),
    (["sweep", MLP_99, "--count", "-1"], "count must be a positive integer, got -1"),
    (["sweep", MLP_99, "--dry_run", "maybe"], "--dry_run must be true or false, got 'maybe'"),
    (["sweep", "{tmp}/bad_value.yaml"], "parameter 'sparsity': --sparsity must be a number, got 'dense'"),
    (["sweep", "{tmp}/bad_name.yaml"], "unknown parameter 'sparsty': not a train option (did you mean 'sparsity'?)"),
    (["table", "{tmp}/missing.yaml"], "no sweep file {tmp}/missing.yaml"),
    (["table", MLP_99, "--runs", "{tmp}/nowhere"], "no finished run of sweep 'mlp_99'"),
    (["memory", "--model", "resnet"], "unknown model 'resnet'"),
    (["memory", "--steps", "0"], "steps must be a positive integer, got 0"),
    (["memory", "--sparsity", "1.5"], "sparsity must be in [0, 1), got 1.5"),
    (["memory", "--batch", "0"], "batch must be a positive integer, got 0"),
    (["bench", "--repeats", "0"], "--repeats and --threads must be >= 1"),
    (["bench", "--threads", "0"], "--repeats and --threads must be >= 1"),
    (["bench", "--repeats", "abc"], "--repeats must be an integer, got 'abc'"),
    (["inspect", "--shape", "8"], "--shape must be two positive integers out,in"),
    (["inspect", "--shapes", "8,8"], "unknown option --shapes for inspect; did you mean --shape?"),
    (["inspect", "--init", "bogus"], "unknown init 'bogus'"),
    (["inspect", "--density", "2"], "density must be a number in (0, 1], got 2"),
    (["inspect", "--beta", "2"], "beta must be in [0, 1], got 2"),
    (["inspect", "--seed", "abc"], "--seed must be an integer, got 'abc'"),
]


def _files(folder: Path) -> set:
    return {str(p.relative_to(folder)) for p in folder.rglob("*")}


@pytest.mark.parametrize("argv, message", CASES, ids=[" ".join(a)[:60] for a, _ in CASES])
def test_bad_input_is_one_line_and_writes_nothing(argv, message, tmp_path, monkeypatch, capsys):
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)  # relative defaults (runs/, runs/memory/) land here
    monkeypatch.setenv("SPARSENET_DATA", str(tmp_path / "cache"))  # the BPE cache: outside the checked folder
    monkeypatch.setenv("WANDB_MODE", "disabled")
    (work / "taken").write_text("a file where the runs would go")
    (work / "source").mkdir()  # a finished digits run's folder: what --init_topology reads before any work
    (work / "source" / "config.json").write_text('{"model": "mlp", "dataset": "digits", "hidden": [128, 128, 128]}')
    (work / "source" / "checkpoint.pt").write_bytes(b"")
    (work / "no_config").mkdir()
    (work / "no_config" / "checkpoint.pt").write_bytes(b"")
    (work / "bad_value.yaml").write_text("program: cli.py\nmethod: grid\nparameters: {sparsity: {value: dense}}\n")
    (work / "bad_name.yaml").write_text("program: cli.py\nmethod: grid\nparameters: {sparsty: {value: 0.9}}\n")
    corpus = str(_corpus(work / "corpus", lines=20)) if "{corpus}" in " ".join(argv) else ""
    argv = [a.format(tmp=work, corpus=corpus) for a in argv]
    before = _files(work)
    with pytest.raises(SystemExit) as stop:
        cli.main(argv)
    code, err = stop.value.code, capsys.readouterr().err
    assert code not in (0, None)
    line = code if isinstance(code, str) else err.strip()  # a string code is what Python prints on stderr
    assert isinstance(code, str) and err == "", (code, err)  # nothing else on stderr: no traceback, no usage
    assert len(line.splitlines()) == 1 and line.startswith("error: ")
    assert message.format(tmp=work) in line
    assert _files(work) == before  # nothing written
    assert not (tmp_path / "outside").exists()

"""Mutation check: the one-line bugs of issue #18 and later ones, each put into a scratch copy of the repository,
must make at least one test fail. Prints one line per bug: caught (with the first failing test) or SURVIVED.

    python tests/mutation_check.py [--only NAME ...] [--scratch DIR]

Each mutant replaces one exact snippet of one file (it must occur exactly once, so a refactor that moves the
code makes the check say so instead of silently testing nothing) and runs ``pytest -x`` with its arguments.
The copy is ``git archive HEAD`` plus the working tree's ``tests/`` and ``sparsenet/``, with ``../shared``
linked beside it. Not part of the default test run: it takes about half an hour on 2 cores.
"""
import argparse
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

TRANSLATE_TESTS = ["tests/train/test_translate.py",  # without the 50-step Multi30k run, which catches none of them
                   "--deselect", "tests/train/test_translate.py::test_fifty_multi30k_steps_train_and_decode_the_test_set"]
# name: (file, original snippet, mutated snippet, pytest arguments)
MUTANTS = {
    "cht regrows with CH3-L3n": (
        "sparsenet/evolution/methods.py", 'regrowth="ch3_l3p", percolation=True, early_stop=0.9',
        'regrowth="ch3_l3n", percolation=True, early_stop=0.9', ["tests/evolution"]),
    "chts regrows with CH3-L3n": (
        "sparsenet/evolution/methods.py", 'regrowth="ch3_l3p_soft"', 'regrowth="ch3_l3n_soft"', ["tests/evolution"]),
    "sparse score blocks lose their row offset": (
        "sparsenet/evolution/regrowth.py", "yield (local + block.start) * n + cols, values",
        "yield local * n + cols, values", ["tests/evolution"]),
    "soft regrowth silently hard top-k": (
        "sparsenet/evolution/engine.py", "count, self.method.regrowth_soft, present", "count, False, present",
        ["tests/evolution"]),
    "soft-removal exponent schedule ignored": (
        "sparsenet/evolution/engine.py", "self.schedule.exponent_at(step)", "1.0", ["tests/evolution"]),
    "init csti silently returns ER": (
        "sparsenet/topology/registry.py", "csti(_required(features), out_f, density, in_f, generator)",
        "er(out_f, in_f, density, generator)", ["tests/topology", "tests/evolution"]),
    "CHT early stop freezes after the first update": (
        "sparsenet/evolution/engine.py", "self.stopped = len(self.flagged) == len(self.layers)",
        "self.stopped = True", ["tests/evolution"]),
    "random order among zero scores lost": (
        "sparsenet/evolution/selection.py", "_FLOOR * (1.0 + u)", "_FLOOR + 0.0 * u", ["tests/evolution"]),
    "remap_positions returns a position for an absent key": (
        "sparsenet/evolution/optimizer_state.py",
        "torch.where(new_keys[position] == old_keys, position, torch.full_like(position, -1))", "position",
        ["tests/evolution", "tests/sparse"]),
    "ranks with equal topology keep their own values": (
        "sparsenet/evolution/engine.py", "layer.values.data.copy_(values)", "pass",
        ["tests/evolution/test_distributed.py"]),
    "BSW rewiring barred from vacated lattice positions": (
        "sparsenet/topology/bsw.py", "sample_absent_keys(kept_keys, out_features * in_features",
        "sample_absent_keys(indices[0] * in_features + indices[1], out_features * in_features",
        ["tests/topology"]),
    "MLP resume skips the engine state": (
        "sparsenet/train/classify.py", '        engine.load_state_dict(checkpoint["engine"])\n', "",
        ["tests/train/test_recipe.py"]),
    "MLP resume skips the metrics truncation": (
        "sparsenet/train/classify.py", "    tracker.truncate(start_epoch)\n", "", ["tests/train/test_recipe.py"]),
    "Transformer resume skips the metrics truncation": (
        "sparsenet/train/translate.py", "    tracker.truncate(-(-step // config.eval_every))", "    pass",
        TRANSLATE_TESTS),
    "best.pt written at every evaluation": (
        "sparsenet/train/translate.py", "if engine.at_final_density(step) and valid_loss < best:",
        "if engine.at_final_density(step):", TRANSLATE_TESTS),
    "inoam drops lr_factor": (
        "sparsenet/train/translate.py", "rate = config.lr_factor * config.d_model ** -0.5",
        "rate = config.d_model ** -0.5", TRANSLATE_TESTS),
    "inoam uses d_model ** +0.5": (
        "sparsenet/train/translate.py", "rate = config.lr_factor * config.d_model ** -0.5",
        "rate = config.lr_factor * config.d_model ** 0.5", TRANSLATE_TESTS),
    "beam cache not reordered by origin": (
        "sparsenet/models/search.py", "        _reorder(cache, origin)\n", "", ["tests/models"]),
    "length penalty sign flipped": (
        "sparsenet/models/search.py", "return log_prob / (((5 + length) / 6) ** alpha)",
        "return log_prob / (((5 + length) / 6) ** -alpha)", ["tests/models"]),
    "finished beams not retired": (
        "sparsenet/models/search.py", 'scores = best.masked_fill(ended, float("-inf"))', "scores = best",
        ["tests/models"]),
    "length margin removed": (
        "sparsenet/models/search.py", "int(ratio * n) + EXTRA_TOKENS", "int(ratio * n)", ["tests/models"]),
    "HF resume without the DST state goes on silently": (
        "sparsenet/integrations/huggingface.py", "if not saved.is_file():", "if False:",
        ["tests/models/test_huggingface.py"]),
    "HF callback drops the kept links' optimizer state": (
        "sparsenet/evolution/engine.py",
        "old_values[regained]\n            remap_optimizer_state(self.optimizers, layer.values, old_to_new, layer.nnz)",
        "old_values[regained]\n            remap_optimizer_state(self.optimizers, layer.values, "
        "torch.full_like(old_to_new, -1), layer.nnz)",
        ["tests/models/test_huggingface.py"]),
    "magnitude keep reads the whole weight at once": (
        "sparsenet/sparsify.py", "rows = max(1, MAGNITUDE_BLOCK_ELEMENTS // in_features)",
        "rows = out_features", ["tests/models/test_sparsify.py"]),
    "LM BPE cache keyed by the file name": (
        "sparsenet/data/text.py", 'stem = f"bpe{vocab_size}-{_content_key(train)}"',
        'stem = f"bpe{vocab_size}-{_content_key([str(text_file), str(data_dir)])}"', ["tests/train/test_language.py"]),
}


def make_scratch(scratch: Path) -> None:
    if scratch.exists():
        shutil.rmtree(scratch)
    scratch.mkdir(parents=True)
    archive = subprocess.run(["git", "archive", "HEAD"], cwd=ROOT, check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(scratch)], input=archive, check=True)
    for folder in ("sparsenet", "tests"):  # uncommitted work under test counts too
        shutil.copytree(ROOT / folder, scratch / folder, dirs_exist_ok=True,
                        ignore=shutil.ignore_patterns("__pycache__"))
    shared = scratch.parent / "shared"
    if not shared.exists():
        shared.symlink_to(ROOT.parent / "shared")


def run_mutant(scratch: Path, name: str) -> str:
    path, original, mutated, tests = MUTANTS[name]
    target = scratch / path
    text = target.read_text()
    if text.count(original) != 1:
        return f"NOT APPLIED  {name}: the snippet occurs {text.count(original)} times in {path}"
    target.write_text(text.replace(original, mutated))
    try:
        env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(scratch)}
        result = subprocess.run([sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", *tests],
                                cwd=scratch, env=env, capture_output=True, text=True)
    finally:
        target.write_text(text)
    failed = [line.split()[1] for line in result.stdout.splitlines() if line.startswith(("FAILED", "ERROR"))]
    if result.returncode == 0:
        return f"SURVIVED     {name}"
    return f"caught       {name}: {failed[0] if failed else result.stdout.strip().splitlines()[-1]}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", default=None, help="names (substrings) of the mutants to run")
    parser.add_argument("--scratch", default="/tmp/sparsenet-mutants/main", help="where the copy is made")
    args = parser.parse_args()
    names = [n for n in MUTANTS if args.only is None or any(o in n for o in args.only)]
    scratch = Path(args.scratch)
    make_scratch(scratch)
    results = []
    for name in names:
        results.append(run_mutant(scratch, name))
        print(results[-1], flush=True)
    sys.exit(any(not line.startswith("caught") for line in results))


if __name__ == "__main__":
    main()

"""The mutation pass: mutmut over one module of ``sparsenet/`` with only that module's tests.

    OMP_NUM_THREADS=1 nice -n 10 python tests/mutation/run.py sparse              # mutate and test
    python tests/mutation/run.py sparse --results                                 # the survivors so far
    python tests/mutation/run.py sparse --summary                                 # counts per file, as in REPORT.md
    python tests/mutation/run.py sparse --show sparsenet.sparse.keys.x_linear_keys__mutmut_3   # one diff

The run works in a scratch directory per module (``--workdir``, default ``$TMPDIR/sparsenet-mutmut/MODULE``)
holding links to this checkout's ``sparsenet/``, ``tests/`` and config, so runs over different modules keep
their own ``mutants/`` tree and results, and nothing is written into the checkout. The settings common to every
module (the pytest arguments, timeouts, the fork isolation) are the ``[mutmut]`` section of setup.cfg; this
script adds which files to mutate (``sparsenet/MODULE/*``, or ``--files``) and which tests select them
(``MODULE_TESTS``: the module's test folder less its slowest cases, which only repeat at larger sizes what
smaller cases pin).
mutmut then runs, for each mutant, only the selected tests that call the mutated function. One worker by
default (``--max-children``): the pass is meant to share a small machine.
"""
import argparse
import collections
import contextlib
import dataclasses
import io
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BLOCKED = "tests/sparse/test_kernels.py::test_the_batch_blocked_path_matches_dense_and_keeps_the_row_major_layout"
MODULE_TESTS = {  # left out for the pass: the slowest tests, whose values smaller cases of the same test pin
    "sparse": ["tests/sparse",  # gradcheck of the two largest blocked-path cases (3/4 of the folder's time)
               *(f"--deselect={BLOCKED}[{case}]" for case in
                 ("False-30-20-50-lead4", "True-30-20-50-lead4", "True-64-128-300-lead5", "False-64-128-300-lead5")),
               "--deselect=tests/sparse/test_one_law.py::test_huge_layer_memory_follows_links"],  # sizes, not values
    "topology": ["tests/topology"],
    "evolution": ["tests/evolution"],
    "train": ["tests/train"],
    "models": ["tests/models"],
}
LINKED = ["sparsenet", "tests", "setup.cfg", "pyproject.toml"]


def prepare_workdir(workdir: Path) -> None:
    """Make ``workdir`` hold links to the checkout's package, tests and config (mutmut copies them itself)."""
    workdir.mkdir(parents=True, exist_ok=True)
    for name in LINKED:
        link = workdir / name
        if not link.is_symlink():
            link.symlink_to(ROOT / name)


def configure(module: str, files: list[str]) -> None:
    """Load setup.cfg's ``[mutmut]`` and narrow it to ``sparsenet/MODULE`` (or ``files`` of it) and its tests."""
    from mutmut import configuration

    loaded = configuration._load_config()
    configuration._config = dataclasses.replace(
        loaded, only_mutate=[f"sparsenet/{module}/{name}" for name in files or ["*"]],
        pytest_add_cli_args_test_selection=loaded.pytest_add_cli_args_test_selection + MODULE_TESTS[module])


def summary(cli) -> str:
    """A markdown table of the last run's verdicts per mutated file (from ``mutmut results --all true``)."""
    output = io.StringIO()
    with contextlib.redirect_stdout(output):
        cli(["results", "--all", "true"], standalone_mode=False)
    counts = collections.defaultdict(collections.Counter)
    for line in output.getvalue().splitlines():
        name, _, status = line.strip().rpartition(": ")
        if name:
            counts[name.split(".x")[0]][status] += 1
    statuses = ["killed", "survived", "no tests", "timeout", "suspicious", "not checked"]
    lines = ["| file | mutants | " + " | ".join(statuses) + " |", "|---|" + "---:|" * (len(statuses) + 1)]
    for name in sorted(counts) + ["total"]:
        row = counts[name] if name != "total" else sum(counts.values(), collections.Counter())
        lines.append(f"| {name} | {sum(row.values())} | " + " | ".join(str(row[s]) for s in statuses) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("module", choices=sorted(MODULE_TESTS))
    parser.add_argument("--workdir", type=Path, help="scratch directory (default $TMPDIR/sparsenet-mutmut/MODULE)")
    parser.add_argument("--max-children", type=int, default=1)
    parser.add_argument("--files", nargs="+", metavar="NAME", help="mutate only these files of the module (keys.py)")
    action = parser.add_mutually_exclusive_group()
    action.add_argument("--results", action="store_true", help="list the mutants that are not killed")
    action.add_argument("--show", metavar="MUTANT", help="print one mutant's diff")
    action.add_argument("--summary", action="store_true", help="mutants, killed, survived, ... per file")
    parser.add_argument("mutants", nargs="*", help="run only these mutants (names as --results prints them)")
    args = parser.parse_intermixed_args()
    workdir = args.workdir or Path(tempfile.gettempdir()) / "sparsenet-mutmut" / args.module
    prepare_workdir(workdir)
    os.chdir(workdir)
    configure(args.module, args.files)
    from mutmut.__main__ import cli

    if args.summary:
        print(summary(cli))
        return
    if args.results:
        command = ["results"]
    elif args.show:
        command = ["show", args.show]
    else:
        command = ["run", "--max-children", str(args.max_children), *args.mutants]
    sys.exit(cli(command, standalone_mode=True))


if __name__ == "__main__":
    main()

"""The mutation pass: mutmut over one module of ``sparsenet/`` with only that module's tests.

    OMP_NUM_THREADS=1 nice -n 10 python tests/mutation/run.py sparse              # mutate and test
    python tests/mutation/run.py sparse --results                                 # the survivors so far
    python tests/mutation/run.py sparse --show sparsenet.sparse.keys.x_linear_keys__mutmut_3   # one diff

The run works in a scratch directory per module (``--workdir``, default ``$TMPDIR/sparsenet-mutmut/MODULE``)
holding links to this checkout's ``sparsenet/``, ``tests/`` and config, so runs over different modules keep
their own ``mutants/`` tree and results, and nothing is written into the checkout. The settings common to every
module (the pytest arguments, timeouts, the fork isolation) are the ``[mutmut]`` section of setup.cfg; this
script adds which files to mutate (``sparsenet/MODULE/*``) and which tests select them (``MODULE_TESTS``).
mutmut then runs, for each mutant, only the selected tests that call the mutated function. One worker by
default (``--max-children``): the pass is meant to share a small machine.
"""
import argparse
import dataclasses
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MODULE_TESTS = {
    "sparse": ["tests/sparse"],
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


def configure(module: str) -> None:
    """Load setup.cfg's ``[mutmut]`` and narrow it to ``sparsenet/MODULE`` and its tests."""
    from mutmut import configuration

    loaded = configuration._load_config()
    configuration._config = dataclasses.replace(
        loaded, only_mutate=[f"sparsenet/{module}/*"],
        pytest_add_cli_args_test_selection=loaded.pytest_add_cli_args_test_selection + MODULE_TESTS[module])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("module", choices=sorted(MODULE_TESTS))
    parser.add_argument("--workdir", type=Path, help="scratch directory (default $TMPDIR/sparsenet-mutmut/MODULE)")
    parser.add_argument("--max-children", type=int, default=1)
    action = parser.add_mutually_exclusive_group()
    action.add_argument("--results", action="store_true", help="list the mutants that are not killed")
    action.add_argument("--show", metavar="MUTANT", help="print one mutant's diff")
    parser.add_argument("mutants", nargs="*", help="run only these mutants (names as --results prints them)")
    args = parser.parse_args()
    workdir = args.workdir or Path(tempfile.gettempdir()) / "sparsenet-mutmut" / args.module
    prepare_workdir(workdir)
    os.chdir(workdir)
    configure(args.module)
    from mutmut.__main__ import cli

    if args.results:
        command = ["results"]
    elif args.show:
        command = ["show", args.show]
    else:
        command = ["run", "--max-children", str(args.max_children), *args.mutants]
    sys.exit(cli(command, standalone_mode=True))


if __name__ == "__main__":
    main()

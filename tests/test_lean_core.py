"""The library core imports without the experiment tooling: each import runs in a fresh interpreter whose
meta-path blocks the optional packages (the recipes' and tooling's: CLI, tracking, progress bars, plots,
metrics, tokenisers, images, YAML, Hugging Face), so an import chain that reaches one of them fails here."""
import subprocess
import sys
import textwrap

import pytest

from tests.conftest import ROOT

OPTIONAL = ("fire", "wandb", "tqdm", "matplotlib", "sklearn", "sacrebleu", "sentencepiece", "PIL", "yaml",
            "transformers")

BLOCKER = textwrap.dedent(f"""
    import sys

    class Blocker:
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in {OPTIONAL!r}:
                raise ImportError(f"blocked optional package: {{name}}")
            return None

    sys.meta_path.insert(0, Blocker())
""")


def run_blocked(code: str) -> subprocess.CompletedProcess:
    """Run ``code`` after installing the blocker, in a fresh interpreter with the repository first on the path."""
    return subprocess.run([sys.executable, "-c", BLOCKER + code], cwd=ROOT, capture_output=True, text=True,
                          timeout=300)


def test_the_blocker_blocks():
    """The blocker itself works: importing an optional package fails, a core dependency does not."""
    result = run_blocked("import numpy, scipy, torch\nimport yaml")
    assert result.returncode != 0 and "blocked optional package: yaml" in result.stderr


@pytest.mark.parametrize("module", ["sparsenet", "sparsenet.sparse", "sparsenet.evolution", "sparsenet.topology"])
def test_core_imports_without_tooling(module):
    result = run_blocked(f"import {module}")
    assert result.returncode == 0, result.stderr.strip().splitlines()[-1]


def test_user_api_without_tooling():
    result = run_blocked("from sparsenet import sparsify, DST\nprint(sparsify, DST)")
    assert result.returncode == 0, result.stderr.strip().splitlines()[-1]

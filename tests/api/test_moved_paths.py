"""The user-facing API lives on its own floor (sparsenet.sparsify, sparsenet.dst, sparsenet.relations,
sparsenet.integrations.huggingface); the old sparsenet.models paths work for one release and warn once each."""
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

OLD_PATHS = [  # (statement, the old path the warning names, what the name must be)
    ("from sparsenet.models import DST", "sparsenet.models.DST", "sparsenet.dst.DST"),
    ("from sparsenet.models import sparsify", "sparsenet.models.sparsify", "sparsenet.sparsify.sparsify"),
    ("from sparsenet.models import find_relations", "sparsenet.models.find_relations",
     "sparsenet.relations.find_relations"),
    ("from sparsenet.models.dst import DST", "sparsenet.models.dst", "sparsenet.dst.DST"),
    ("from sparsenet.models.sparsify import densify", "sparsenet.models.sparsify", "sparsenet.sparsify.densify"),
    ("from sparsenet.models.relations import find_relations", "sparsenet.models.relations",
     "sparsenet.relations.find_relations"),
]

PROBE = """
import importlib, warnings
warnings.simplefilter("always")
with warnings.catch_warnings(record=True) as caught:
    exec({statement!r})
    exec({statement!r})  # twice: the second must not warn again
name = {statement!r}.split()[-1]
module, attribute = {expected!r}.rsplit(".", 1)
assert eval(name) is getattr(importlib.import_module(module), attribute), eval(name)
moved = [str(w.message) for w in caught if issubclass(w.category, DeprecationWarning) and "moved" in str(w.message)]
print(len(moved), moved[0] if moved else "")
"""


def _probe(statement: str, expected: str) -> tuple[int, str]:
    code = PROBE.format(statement=statement, expected=expected)
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    count, message = result.stdout.strip().split(" ", 1)
    return int(count), message


@pytest.mark.parametrize("statement, old, expected", OLD_PATHS)
def test_old_paths_work_and_warn_once(statement, old, expected):
    count, message = _probe(statement, expected)
    assert count == 1
    assert message.startswith(f"{old} moved to ") and "next release" in message


def test_old_huggingface_path_works_and_warns_once():
    pytest.importorskip("transformers")
    count, message = _probe("from sparsenet.models.huggingface import DSTCallback",
                            "sparsenet.integrations.huggingface.DSTCallback")
    assert count == 1 and message.startswith("sparsenet.models.huggingface moved to sparsenet.integrations")


def test_the_api_imports_without_the_models_or_optional_packages():
    code = ("import sys, sparsenet, sparsenet.sparse, sparsenet.evolution\n"
            "from sparsenet import sparsify, DST\n"
            "import sparsenet.integrations\n"
            "optional = ['fire', 'wandb', 'matplotlib', 'sklearn', 'transformers', 'yaml', 'sparsenet.models',"
            " 'sparsenet.train']\n"
            "print([name for name in optional if name in sys.modules])")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"

"""Every ```python block of README.md and docs/ runs as printed, each in a fresh namespace and an empty working
folder, so no example rots. A block that cannot run in the test suite (it needs data, the network or a GPU)
is marked by an HTML comment on the line before it, ``<!-- skip-test: reason -->``, and is reported as
skipped with that reason; blocks importing an optional package that is not installed are skipped too."""
import importlib.util
import re

import pytest

from sparsenet.evolution.methods import METHODS
from sparsenet.evolution.regrowth import REGROWTHS
from sparsenet.evolution.removal import REMOVALS
from tests.conftest import ROOT

BLOCK = re.compile(r"^```python\n(.*?)^```", re.M | re.S)
SKIP = re.compile(r"<!-- skip-test: (.+?) -->")
OPTIONAL = ("transformers",)  # the [hf] extra


def pages() -> list:
    return [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]


def blocks(files: list | None = None) -> list[tuple[str, str, str | None]]:
    """``(id, code, skip reason or None)`` of every Python block of ``files`` (default: the pages), the id
    ``file:line``."""
    found = []
    for page in files or pages():
        text = page.read_text()
        for match in BLOCK.finditer(text):
            line = text.count("\n", 0, match.start()) + 1
            before = text[:match.start()].rstrip().rsplit("\n", 1)[-1]
            skip = SKIP.fullmatch(before.strip())
            found.append((f"{page.relative_to(page.parent if files else ROOT)}:{line}", match.group(1), skip.group(1) if skip else None))
    return found


BLOCKS = blocks()


@pytest.mark.parametrize("code, skip", [(code, skip) for _, code, skip in BLOCKS], ids=[name for name, _, _ in BLOCKS])
def test_example_runs_as_printed(code, skip, tmp_path, monkeypatch):
    if skip:
        pytest.skip(f"marked skip-test: {skip}")
    for package in OPTIONAL:
        if re.search(rf"^\s*(from|import) {package}\b", code, re.M) and importlib.util.find_spec(package) is None:
            pytest.skip(f"needs the optional package {package}")
    monkeypatch.chdir(tmp_path)
    # an example that registers its own rule leaves no trace in the registries the later tests read
    saved = [(registry, dict(registry)) for registry in (REMOVALS, REGROWTHS, METHODS)]
    try:
        exec(compile(code, "example", "exec"), {"__name__": "__main__"})
    finally:
        for registry, items in saved:
            registry.clear()
            registry.update(items)


def test_the_examples_are_found_and_skip_markers_sit_on_blocks():
    """The parser finds the README's and the guides' examples, and every skip marker precedes a Python block
    (a marker elsewhere would silently skip nothing)."""
    names = [name for name, _, _ in BLOCKS]
    assert any(name.startswith("README.md:") for name in names)
    assert any(name.startswith("docs/guide/own-model.md:") for name in names)
    markers = sum(len(SKIP.findall(page.read_text())) for page in pages())
    skipped = [name for name, _, skip in BLOCKS if skip]
    assert markers == len(skipped), f"{markers} skip-test markers, {len(skipped)} on Python blocks"
    print(f"{len(BLOCKS)} Python examples, {len(skipped)} marked skip-test: {', '.join(skipped) or 'none'}")


def test_parser_reads_blocks_and_markers(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("# t\n\n```python\nx = 1\n```\n\n<!-- skip-test: needs a GPU -->\n```python\ny = 2\n```\n\n"
                    "```bash\nls\n```\n")
    assert blocks([page]) == [("page.md:3", "x = 1\n", None), ("page.md:8", "y = 2\n", "needs a GPU")]


def test_readme_links_point_to_files():
    """README's relative links (to the docs pages, results and the licence) name files that exist."""
    targets = re.findall(r"\]\(([^)#:]+)(?:#[^)]*)?\)", (ROOT / "README.md").read_text())
    assert len(targets) > 10
    assert [t for t in targets if not (ROOT / t).exists()] == []

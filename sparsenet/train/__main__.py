"""``python -m sparsenet.train``: rewrite the docs' train-options table (docs/options.md) from the config fields."""
from pathlib import Path

from . import CONFIGS
from .config import README_END, README_START, options_markdown

page = Path(__file__).resolve().parents[2] / "docs" / "options.md"
head, rest = page.read_text().split(README_START)
page.write_text(f"{head}{README_START}\n{options_markdown(CONFIGS)}\n{README_END}{rest.split(README_END, 1)[1]}")
print(f"wrote the train options of {', '.join(CONFIGS)} to {page}")

"""``python -m sparsenet.train``: rewrite README's train-options section from the config fields."""
from pathlib import Path

from . import CONFIGS
from .config import README_END, README_START, options_markdown

readme = Path(__file__).resolve().parents[2] / "README.md"
head, rest = readme.read_text().split(README_START)
readme.write_text(f"{head}{README_START}\n{options_markdown(CONFIGS)}\n{README_END}{rest.split(README_END, 1)[1]}")
print(f"wrote the train options of {', '.join(CONFIGS)} to {readme}")

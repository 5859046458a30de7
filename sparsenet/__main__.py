"""``python -m sparsenet COMMAND ...``: the command line (sparsenet/cli.py), as the ``sparsenet`` command."""
from .cli import main

main()

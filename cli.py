"""The sparsenet command line from a checkout: ``python cli.py COMMAND ...`` runs what the ``sparsenet COMMAND
...`` console command runs (sparsenet/cli.py)."""
from sparsenet.cli import CLI, TRAIN_HELP, main  # noqa: F401  (scripts and tests use them from here)

if __name__ == "__main__":
    main()

"""Speed and memory tables (not tests): run as scripts or through ``python cli.py bench``."""

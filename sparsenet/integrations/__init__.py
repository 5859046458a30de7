"""Integrations with other libraries, each imported on its own (``sparsenet.integrations.huggingface`` needs
``transformers``), so ``import sparsenet`` needs neither."""

"""The devices the parity tests run on: the CPU, and CUDA when this machine has it (so a GPU machine tests
the CUDA kernels instead of skipping them). Use as ``@pytest.mark.parametrize("device", DEVICES)``."""
import torch

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])

"""A regrowth rule of your own: preferential attachment, deg(u)·deg(v) over a layer's absent links.

Importing this file registers the rule and a method ``pa`` (magnitude removal, preferential-attachment
regrowth), so the method works with ``sparsenet.DST``, ``TopologyEngine`` and the command line:

    python examples/preferential_attachment.py                       # sparsify + DST on scikit-learn's digits
    python cli.py train --plugin examples/preferential_attachment.py --method pa --epochs 5
"""
import torch

from sparsenet.evolution import Method, absent_items, register_method, register_regrowth, row_blocks


def preferential_attachment(layer, memory_budget, **_):
    """deg(u)·deg(v) for every absent link (u an output neuron, v an input), one block of output rows at a time."""
    rows, cols = layer.indices
    out_degree = torch.bincount(rows, minlength=layer.out_features).to(layer.values.dtype)
    in_degree = torch.bincount(cols, minlength=layer.in_features).to(layer.values.dtype)
    for start, stop in row_blocks(layer, memory_budget):
        yield absent_items(layer, start, out_degree[start:stop, None] * in_degree[None, :])


register_regrowth("preferential_attachment", preferential_attachment)
register_method(Method("pa", removal="wm", regrowth="preferential_attachment"))


def train_digits(epochs: int = 5, sparsity: float = 0.9, seed: int = 0) -> float:
    """An MLP on the 8x8 digits made sparse with ``sparsify`` and trained with ``DST(method="pa")``; returns
    the test accuracy."""
    from sklearn.datasets import load_digits
    from torch import nn
    from torch.nn import functional as F

    import sparsenet

    torch.manual_seed(seed)
    digits = load_digits()
    x, y = torch.tensor(digits.data, dtype=torch.float32) / 16, torch.tensor(digits.target)
    order = torch.randperm(len(y))
    train, test = order[:1400], order[1400:]
    model = nn.Sequential(nn.Linear(64, 256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU(), nn.Linear(256, 10))
    sparsenet.sparsify(model, sparsity, exclude=("4",))  # the output layer stays dense
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    steps_per_epoch = len(train) // 50
    dst = sparsenet.DST(model, optimizer, method="pa", total_steps=epochs * steps_per_epoch,
                        update_interval=steps_per_epoch)
    for _ in range(epochs):
        for batch in train[torch.randperm(len(train))].split(50)[:steps_per_epoch]:
            F.cross_entropy(model(x[batch]), y[batch]).backward()
            optimizer.step()
            dst.step()  # after optimizer.step(), before zero_grad()
            optimizer.zero_grad()
    with torch.no_grad():
        return float((model(x[test]).argmax(1) == y[test]).float().mean())


if __name__ == "__main__":
    print(f"test accuracy {train_digits():.3f}")

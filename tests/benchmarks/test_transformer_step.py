"""The Transformer step benchmark's profile lists real ops with shares of the step's CPU time."""
from benchmarks.transformer_step import top_ops

TINY = dict(vocab=40, d_model=16, heads=2, layers=1, d_ff=32)


def test_top_ops_are_named_ops_with_shares_of_the_step():
    ops = top_ops(0.5, steps=1, top=5, batch=2, length=4, **TINY)
    assert len(ops) == 5 and all(isinstance(name, str) and name for name, _ in ops)
    every_op = [name for name, _ in top_ops(0.5, steps=1, top=10_000, batch=2, length=4, **TINY)]
    assert any("mm" in name for name in every_op)  # the step's matrix products are profiled (which ops rank
    # highest is a timing, and a machine under load reorders them)
    shares = [share for _, share in ops]
    assert shares == sorted(shares, reverse=True) and 0 < sum(shares) <= 1.0 + 1e-9

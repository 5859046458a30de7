"""The Hugging Face DST-overhead benchmark times real updates of a sparsified tiny Llama."""
import pytest

pytest.importorskip("transformers")

from benchmarks.hf_dst_overhead import OverheadRow, measure, parse_method, table  # noqa: E402

TINY = dict(vocab_size=64, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
            num_key_value_heads=4, max_position_embeddings=16)


@pytest.mark.parametrize("method", ["chts:regrowth=ch2_l3n_soft", "rigl", "chtss"])
def test_every_timed_call_is_an_update_at_the_density_it_times(method):
    row = measure(method, 0.9, batch=2, context=8, repeats=2, sizes=TINY)
    projections = 2 * (4 * 32 * 32 + 3 * 32 * 64)
    assert row.method == method and row.step_ms > 0 and row.update_ms > 0
    density = 0.5 if method == "chtss" else 0.1  # CHTss's decay over a million steps has not begun
    assert abs(row.links - density * projections) <= 14  # one rounding per projection


def test_the_overhead_is_one_update_over_the_interval():
    row = OverheadRow("chts", 10, step_ms=2.0, update_ms=10.0)
    assert row.overhead(100) == pytest.approx(0.05)
    assert "| chts | 10 | 2 | 10 | 5.00% |" in table([row], 100)


def test_method_specs_take_dst_options():
    assert parse_method("chts") == ("chts", {})
    assert parse_method("chts:regrowth=ch2_l3n_soft,removal=wm") == ("chts", {"regrowth": "ch2_l3n_soft",
                                                                             "removal": "wm"})
    with pytest.raises(ValueError, match="name=value pairs"):
        parse_method("chts:ch2_l3n_soft")

"""The scale benchmark's growth exponent and table, on rows whose exponents are known."""
import math

import pytest

from benchmarks.scale import growth_exponent, table


@pytest.mark.parametrize("power", [0.5, 1.0, 1.1, 2.0])
def test_growth_exponent_recovers_a_power_law(power):
    sizes = [1e4, 3e4, 1e5, 3e5, 1e6]
    assert growth_exponent(sizes, [7.0 * s ** power for s in sizes]) == pytest.approx(power, abs=1e-12)


def test_growth_exponent_is_the_least_squares_slope():
    sizes, costs = [1.0, math.e, math.e ** 2], [1.0, math.e ** 2, math.e ** 3]  # logs (0,0), (1,2), (2,3)
    assert growth_exponent(sizes, costs) == pytest.approx(1.5)
    with pytest.raises(ValueError, match="at least two rows"):
        growth_exponent([1.0], [1.0])


def test_table_shows_refusals_and_failures_and_fits_only_measured_rows():
    rows = [dict(method="chts", width=w, links=10 * w, seconds_per_step=1e-6 * w, seconds_per_epoch=1.0,
                 update_seconds=1e-5 * w, peak_rss_gib=1e-4 * w, plan_gib=1.0) for w in (1000, 4000)]
    rows.append(dict(method="chts", width=9000, links=90000, seconds_per_step=1.0, seconds_per_epoch=1.0,
                     update_seconds=None, refused="path factors", peak_rss_gib=1.0, plan_gib=1.0))
    rows.append(dict(method="chts", width=16000, failed="MemoryError"))
    text = table(rows)
    assert "refused: path factors" in text and "failed: MemoryError" in text
    assert "update time 1.00" in text  # the refused row has no update time

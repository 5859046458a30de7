"""The link-cost benchmark divides by the layer's true link count and refuses widths it cannot fill."""
import pytest

from benchmarks.link_cost import main, ns_per_link


@pytest.mark.parametrize("width, k", [(500, 10), (2000, 3)])
def test_cost_is_per_link_of_a_layer_with_k_links_per_neuron(width, k):
    links, cost = ns_per_link(width, k, batch=4, repeats=2)
    assert links == k * width
    assert cost > 0


def test_widths_not_above_the_links_per_neuron_are_refused(capsys):
    with pytest.raises(SystemExit) as error:
        main(["--widths", "10", "100", "--links_per_neuron", "10"])
    assert error.value.code == 2
    assert "--widths must exceed --links_per_neuron (10), got 10" in capsys.readouterr().err

"""open_run: one way to open a run for both recipes; a resumed run takes its own recipe from its folder."""
import json

import pytest

from sparsenet.train import RECIPES, open_run


@pytest.mark.parametrize("model", ["mlp", "transformer"])
def test_resume_opens_the_run_with_its_own_recipe_whatever_model_is_given(tmp_path, model):
    (tmp_path / "config.json").write_text(json.dumps({"model": model}))
    (tmp_path / "checkpoint.pt").write_bytes(b"checked by the recipe when it loads")
    recipe, config, run_dir = open_run("mlp", {}, resume=str(tmp_path))  # --model's default is mlp
    assert recipe is RECIPES[model] and config is None and run_dir == tmp_path


def test_a_new_run_is_built_checked_and_placed(tmp_path):
    recipe, config, run_dir = open_run("transformer", {"preset": "cpu", "out_dir": str(tmp_path), "seed": 3})
    assert recipe is RECIPES["transformer"] and config.d_model == 256 and config.seed == 3
    assert run_dir == tmp_path / "transformer-multi30k-chts-s0.9-seed3" and not run_dir.exists()
    run_dir.mkdir()
    (run_dir / "checkpoint.pt").write_bytes(b"")
    with pytest.raises(ValueError, match="holds an unfinished run; continue it with --resume"):
        open_run("transformer", {"preset": "cpu", "out_dir": str(tmp_path), "seed": 3})
    assert open_run("transformer", {"preset": "cpu", "out_dir": str(tmp_path), "seed": 3}, restart=True)[2] == run_dir

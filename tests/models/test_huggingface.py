"""DST in the Hugging Face Trainer on a tiny LlamaForCausalLM built from a config (no download): the docs' example
runs as printed, the topology changes, the optimizer state follows the links through accelerate's wrapper, the
sparse checkpoint reloads bit-exactly, a resumed run equals the uninterrupted one (and one without the DST state
is refused), densify exports a plain model, and relations are found for LLaMA, BERT and GPT-NeoX names; GPT-2's
tied lm_head is refused and its Conv1D projections are sparsified as linear layers; the callback checks its
arguments and the Trainer's optimizer."""
import shutil
from pathlib import Path

import pytest
import torch

transformers = pytest.importorskip("transformers")
pytest.importorskip("accelerate")

import sparsenet  # noqa: E402
from sparsenet.relations import find_relations  # noqa: E402
from sparsenet.integrations.huggingface import DST_STATE, DSTCallback, load_sparse  # noqa: E402
from sparsenet.sparse import linear_keys  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]

CONFIG = dict(vocab_size=64, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
              num_key_value_heads=4, max_position_embeddings=64)


def _model():
    torch.manual_seed(0)
    model = transformers.LlamaForCausalLM(transformers.LlamaConfig(**CONFIG))
    sparsenet.sparsify(model, 0.8, include=("*_proj",), generator=torch.Generator().manual_seed(0))
    return model


def _data():
    tokens = torch.randint(0, 64, (120, 16), generator=torch.Generator().manual_seed(1))
    return [{"input_ids": x, "labels": x} for x in tokens]


def _train(output_dir, model, resume=None, method="chts", resume_from=None, around=None):
    """30 Trainer steps with a DST update every 10; ``around``: a callback called before and after DST's."""
    args = transformers.TrainingArguments(output_dir=str(output_dir), max_steps=30, per_device_train_batch_size=4,
                                          learning_rate=3e-3, save_steps=15, report_to=[], use_cpu=True, seed=0,
                                          disable_tqdm=True, logging_strategy="no")
    callback = DSTCallback(method=method, update_interval=10, seed=7, resume_from=resume_from)
    callbacks = [callback] if around is None else [around, callback, around]
    trainer = transformers.Trainer(model=model, args=args, train_dataset=_data(), callbacks=callbacks)
    trainer.train(resume_from_checkpoint=resume)
    return trainer, callback


def readme_example() -> str:
    """The Python block of the own-model guide's "Hugging Face" section (docs/guide/own-model.md)."""
    section = (ROOT / "docs" / "guide" / "own-model.md").read_text().split("## Hugging Face")[1].split("\n## ")[0]
    return section.split("```python\n")[1].split("```")[0]


def test_readme_hugging_face_example_runs_as_printed(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    torch.manual_seed(0)
    namespace = {}
    exec(compile(readme_example(), "docs/guide/own-model.md", "exec"), namespace)
    model, again, callback = namespace["model"], namespace["again"], namespace["callback"]
    assert [u["step"] for u in callback.updates] == [10, 20]
    assert all(u["regrown"] > 0 and u["overlap"] < 1 for u in callback.updates)  # links really moved
    assert len({u["topology_hash"] for u in callback.updates}) == 2
    sparse = {n: m for n, m in model.named_modules() if isinstance(m, sparsenet.SparseLinear)}
    assert len(sparse) == 14 and not any(isinstance(m, sparsenet.SparseLinear) for m in again.modules())
    for name, parameter in again.named_parameters():  # `again` was loaded, then densified in place
        module, _, kind = name.rpartition(".")
        trained = sparse[module].to_dense() if module in sparse and kind == "weight" else model.get_parameter(name)
        assert torch.equal(parameter, trained), name
    plain = transformers.LlamaForCausalLM.from_pretrained(str(tmp_path / "out" / "export")).eval()
    assert not any(isinstance(m, sparsenet.SparseLinear) for m in plain.modules())
    tokens = torch.randint(0, 64, (2, 10))
    with torch.no_grad():
        torch.testing.assert_close(plain(tokens).logits, model.eval()(tokens).logits, rtol=1e-5, atol=1e-5)
    assert "total" in capsys.readouterr().out  # sparsify's report table was printed


class _AdamProbe(transformers.TrainerCallback):
    """Registered before and after DSTCallback: at each optimizer step, the links of one projection and Adam's
    first moment, read through the Trainer's (accelerate-wrapped) optimizer."""

    def __init__(self, layer):
        self.layer, self.seen = layer, []

    def on_optimizer_step(self, args, state, control, optimizer=None, **kwargs):
        values = self.layer.values
        self.seen.append((linear_keys(self.layer.indices, self.layer.in_features),
                          optimizer.state[values]["exp_avg"].clone()))


@pytest.mark.parametrize("method", ["chts", "rigl"])
def test_the_optimizer_state_follows_the_links_through_accelerates_wrapper(method, tmp_path):
    model = _model()
    probe = _AdamProbe(model.model.layers[0].mlp.down_proj)
    _train(tmp_path / "run", model, method=method, around=probe)
    pairs = list(zip(probe.seen[0::2], probe.seen[1::2]))  # (before DST, after DST) at every optimizer step
    updates = [(b, a) for b, a in pairs if not torch.equal(b[0], a[0])]
    assert len(pairs) == 30 and len(updates) == 2
    for (keys_before, moment_before), (keys_after, moment_after) in updates:
        assert moment_after.shape == keys_after.shape
        kept = torch.isin(keys_after, keys_before)
        assert (~kept).any()
        where_before = torch.searchsorted(keys_before, keys_after[kept])
        assert torch.equal(moment_after[kept], moment_before[where_before])  # surviving links keep their state
        assert (moment_after[~kept] == 0).all()  # new links start from zero state


def _topologies(model):
    return {n: m.indices for n, m in model.named_modules() if isinstance(m, sparsenet.SparseLinear)}


@pytest.mark.parametrize("method", ["chts", "rigl"])
def test_trainer_evolves_the_topology_and_the_sparse_checkpoint_reloads_exactly(method, tmp_path):
    model = _model()
    before = _topologies(model)
    trainer, callback = _train(tmp_path / "run", model, method=method)
    assert [u["step"] for u in callback.updates] == [10, 20]
    after = _topologies(model)
    assert all(not torch.equal(before[n], after[n]) for n in before)  # every projection evolved
    assert all(m.nnz == round(0.2 * m.out_features * m.in_features) for m in model.modules()
               if isinstance(m, sparsenet.SparseLinear))
    assert (tmp_path / "run" / "checkpoint-15" / DST_STATE).exists()
    trainer.save_model(str(tmp_path / "final"))
    again = load_sparse(_model(), tmp_path / "final")
    saved, loaded = model.state_dict(), again.state_dict()
    assert saved.keys() == loaded.keys() and all(torch.equal(saved[k], loaded[k]) for k in saved)


def test_a_resumed_trainer_run_equals_the_uninterrupted_one(tmp_path):
    straight = _model()
    _train(tmp_path / "straight", straight)
    shutil.copytree(tmp_path / "straight" / "checkpoint-15", tmp_path / "resumed" / "checkpoint-15")
    resumed = _model()
    _, callback = _train(tmp_path / "resumed", resumed, resume=str(tmp_path / "resumed" / "checkpoint-15"))
    assert [u["step"] for u in callback.updates] == [20]
    a, b = straight.state_dict(), resumed.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_a_resume_without_the_dst_state_is_refused_and_resume_from_finds_it(tmp_path):
    _train(tmp_path / "straight", _model())
    elsewhere = tmp_path / "kept" / "checkpoint-15"
    shutil.copytree(tmp_path / "straight" / "checkpoint-15", elsewhere)
    with pytest.raises(ValueError, match="resumed at step 15 .* would restart from step 0"):
        _train(tmp_path / "resumed", _model(), resume=str(elsewhere))
    _, callback = _train(tmp_path / "resumed", _model(), resume=str(elsewhere), resume_from=elsewhere)
    assert [u["step"] for u in callback.updates] == [20]
    stale = tmp_path / "stale" / "checkpoint-15"  # DST's state of another step than the one resumed
    shutil.copytree(elsewhere, stale)
    shutil.copy(tmp_path / "straight" / "checkpoint-30" / DST_STATE, stale / DST_STATE)
    with pytest.raises(ValueError, match="holds DST's state at step 30, but the Trainer resumed at step 15"):
        _train(tmp_path / "again", _model(), resume=str(stale), resume_from=stale)
    with pytest.raises(ValueError, match="but the Trainer starts at step 0"):
        _train(tmp_path / "fresh", _model(), resume_from=elsewhere)


def test_bad_method_options_are_refused_when_the_callback_is_built():
    with pytest.raises(ValueError, match="unknown method options"):
        DSTCallback(method="chts", regrowths="ch2_l3n_soft")
    with pytest.raises(ValueError, match="DST takes no init= or weights="):
        DSTCallback(method="chts", init="brf")
    with pytest.raises(ValueError, match="unknown method 'chtx'"):
        DSTCallback(method="chtx")


def test_densify_exports_a_plain_model_that_computes_the_same(tmp_path):
    model = _model().eval()
    tokens = torch.randint(0, 64, (2, 10), generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        expected = model(tokens).logits
    sparsenet.densify(model).save_pretrained(str(tmp_path / "export"))
    plain = transformers.LlamaForCausalLM.from_pretrained(str(tmp_path / "export")).eval()
    assert not any(isinstance(m, sparsenet.SparseLinear) for m in plain.modules())
    with torch.no_grad():
        torch.testing.assert_close(plain(tokens).logits, expected, rtol=1e-5, atol=1e-5)


def test_load_sparse_refuses_a_model_sparsified_differently(tmp_path):
    model = _model()
    model.save_pretrained(str(tmp_path / "saved"))
    dense = transformers.LlamaForCausalLM(transformers.LlamaConfig(**CONFIG))
    with pytest.raises(ValueError, match="does not fit this model"):
        load_sparse(dense, tmp_path / "saved")
    with pytest.raises(ValueError, match="not a saved model folder"):
        load_sparse(model, tmp_path)


def _relations(model, include):
    sparsenet.sparsify(model, 0.5, include=include, generator=torch.Generator().manual_seed(0))
    names = {m: n for n, m in model.named_modules()}
    return sorted((type(r).__name__,) + tuple(names[m] for m in (r.layers if hasattr(r, "layers") else
                                                                   (r.first, r.second)))
                  for r in find_relations(model))


def test_llama_relations_are_found():
    found = _relations(transformers.LlamaForCausalLM(transformers.LlamaConfig(**CONFIG)), ("*_proj",))
    for i in range(2):
        a, m = f"model.layers.{i}.self_attn.", f"model.layers.{i}.mlp."
        assert ("SamePosition", a + "q_proj", a + "k_proj") in found and ("Chain", a + "v_proj", a + "o_proj") in found
        assert ("SamePosition", m + "gate_proj", m + "up_proj") in found
        assert ("Chain", m + "gate_proj", m + "down_proj") in found
        assert ("Chain", m + "up_proj", m + "down_proj") in found
    assert len(found) == 2 * 5


def test_bert_relations_are_found():
    config = transformers.BertConfig(vocab_size=64, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                                     intermediate_size=64, max_position_embeddings=64)
    found = _relations(transformers.BertModel(config), ("encoder.*",))
    expected = []
    for i in range(2):
        p = f"encoder.layer.{i}."
        expected += [("SamePosition", p + "attention.self.query", p + "attention.self.key"),
                     ("Chain", p + "attention.self.value", p + "attention.output.dense"),
                     ("Chain", p + "intermediate.dense", p + "output.dense")]
    assert found == sorted(expected)


def test_gpt_neox_relations_are_the_mlp_chains_only():
    """GPT-NeoX fuses q, k and v in one query_key_value projection (3·d outputs, heads interleaved), so no
    name rule relates it to the output projection: only the MLP chain per block is found (README says so)."""
    config = transformers.GPTNeoXConfig(vocab_size=64, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                                        intermediate_size=64, max_position_embeddings=64)
    found = _relations(transformers.GPTNeoXForCausalLM(config), ("gpt_neox.*",))
    assert found == [("Chain", f"gpt_neox.layers.{i}.mlp.dense_h_to_4h", f"gpt_neox.layers.{i}.mlp.dense_4h_to_h")
                     for i in range(2)]


GPT2 = dict(vocab_size=64, n_positions=32, n_embd=16, n_layer=2, n_head=2, bos_token_id=0, eos_token_id=0)


def _gpt2():
    torch.manual_seed(0)
    return transformers.GPT2LMHeadModel(transformers.GPT2Config(**GPT2)).eval()


def _tokens():
    return torch.randint(0, 64, (2, 10), generator=torch.Generator().manual_seed(3))


def test_gpt2s_tied_lm_head_is_refused_in_one_line_until_excluded():
    model = _gpt2()
    with pytest.raises(ValueError) as error:
        sparsenet.sparsify(model, 0.5)
    text = str(error.value)
    assert "\n" not in text and "lm_head.weight is shared with the module 'transformer.wte'" in text
    assert "exclude=['lm_head']" in text and "config.tie_word_embeddings = False" in text
    assert not any(isinstance(m, sparsenet.SparseLinear) for m in model.modules())
    report = sparsenet.sparsify(model, 0.5, exclude=["lm_head"])
    assert model.lm_head.weight is model.transformer.wte.weight  # still tied
    assert [m.name for m in report.modules] == [f"transformer.h.{i}.{n}" for i in range(2)
                                                for n in ("attn.c_attn", "attn.c_proj", "mlp.c_fc", "mlp.c_proj")]


def test_gpt2s_conv1d_is_sparsified_as_the_linear_layer_of_its_transposed_weight():
    dense = _gpt2()
    with torch.no_grad():
        expected = dense(_tokens()).logits
    full = _gpt2()  # every link kept: the dense model's output
    report = sparsenet.sparsify(full, 1e-6, exclude=["lm_head"], keep="magnitude")
    c_attn = full.transformer.h[0].attn.c_attn
    assert report.modules[0].shape == (48, 16) and c_attn.nnz == 48 * 16
    torch.testing.assert_close(c_attn.to_dense(), dense.transformer.h[0].attn.c_attn.weight.t(), rtol=0, atol=0)
    with torch.no_grad():
        torch.testing.assert_close(full(_tokens()).logits, expected, rtol=1e-5, atol=1e-5)

    half = _gpt2()
    sparsenet.sparsify(half, 0.5, exclude=["lm_head"], keep="magnitude")
    masked = _gpt2()  # the masked dense form: Conv1D weights zeroed where sparsify dropped a link
    with torch.no_grad():
        for name, module in half.named_modules():
            if isinstance(module, sparsenet.SparseLinear):
                conv = masked.get_submodule(name)
                assert type(conv).__name__ == "Conv1D"
                mask = torch.zeros(module.out_features, module.in_features, dtype=torch.bool)
                mask[module.indices[0], module.indices[1]] = True
                kept = conv.weight.t()[mask]
                assert kept.abs().min() >= conv.weight.t()[~mask].abs().max()  # the largest were kept
                conv.weight.mul_(mask.t())
        torch.testing.assert_close(half(_tokens()).logits, masked(_tokens()).logits, rtol=1e-5, atol=1e-5)


def test_gpt2_densifies_back_to_conv1d_and_reloads_with_transformers(tmp_path):
    model = _gpt2()
    sparsenet.sparsify(model, 0.7, exclude=["lm_head"], generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        expected = model(_tokens()).logits
    sparsenet.densify(model).save_pretrained(str(tmp_path / "export"))
    assert type(model.transformer.h[0].mlp.c_fc).__name__ == "Conv1D"
    plain = transformers.GPT2LMHeadModel.from_pretrained(str(tmp_path / "export")).eval()
    with torch.no_grad():
        torch.testing.assert_close(plain(_tokens()).logits, expected, rtol=1e-5, atol=1e-5)


def test_gpt2_trains_under_dst_and_its_mlp_chains_are_the_relations():
    model = _gpt2().train()
    sparsenet.sparsify(model, 0.7, exclude=["lm_head"], generator=torch.Generator().manual_seed(0))
    names = {m: n for n, m in model.named_modules()}
    assert [tuple(names[m] for m in r.layers) for r in find_relations(model)] == [
        (f"transformer.h.{i}.mlp.c_fc", f"transformer.h.{i}.mlp.c_proj") for i in range(2)]
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    dst = sparsenet.DST(model, optimizer, method="chts", total_steps=6, update_interval=3, seed=0)
    before = model.transformer.h[0].attn.c_attn.indices.clone()
    for _ in range(6):
        model(_tokens(), labels=_tokens()).loss.backward()
        optimizer.step()
        dst.step()
        optimizer.zero_grad()
    after = model.transformer.h[0].attn.c_attn.indices
    assert after.shape == before.shape and not torch.equal(after, before)


@pytest.mark.parametrize("arguments,message", [
    (dict(update_interval=0), "update_interval must be an int >= 1"),
    (dict(update_interval=1.5), "update_interval must be an int >= 1"),
    (dict(zeta=1.0), "zeta must be a number in [0, 1)"),
    (dict(zeta=-0.3), "zeta must be a number in [0, 1)"),
    (dict(sparsity=1.5), "sparsity must be a number in (0, 1) or None"),
    (dict(sparsity=0), "sparsity must be a number in (0, 1) or None"),
    (dict(seed="7"), "seed must be an int"),
])
def test_bad_callback_arguments_are_refused_when_it_is_built(arguments, message):
    with pytest.raises(ValueError) as error:
        DSTCallback(method="chts", **arguments)
    assert message in str(error.value) and "\n" not in str(error.value)


def test_a_trainer_optimizer_built_before_sparsify_is_refused_at_train_begin(tmp_path):
    torch.manual_seed(0)
    model = transformers.LlamaForCausalLM(transformers.LlamaConfig(**CONFIG))
    stale = torch.optim.AdamW(model.parameters(), lr=1e-3)
    sparsenet.sparsify(model, 0.8, include=("*_proj",))
    args = transformers.TrainingArguments(output_dir=str(tmp_path), max_steps=5, per_device_train_batch_size=4,
                                          report_to=[], use_cpu=True, disable_tqdm=True, logging_strategy="no")
    trainer = transformers.Trainer(model=model, args=args, train_dataset=_data(), optimizers=(stale, None),
                                   callbacks=[DSTCallback(method="set", update_interval=2)])
    with pytest.raises(ValueError, match="holds none of the sparse layers' values .* build the optimizer after"):
        trainer.train()

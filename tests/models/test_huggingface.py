"""DST in the Hugging Face Trainer on a tiny LlamaForCausalLM built from a config (no download): the topology
changes, the sparse checkpoint reloads bit-exactly, a resumed run equals the uninterrupted one, and densify
exports a plain model."""
import shutil

import pytest
import torch

transformers = pytest.importorskip("transformers")
pytest.importorskip("accelerate")

import sparsenet  # noqa: E402
from sparsenet.models.huggingface import DST_STATE, DSTCallback, load_sparse  # noqa: E402

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


def _train(output_dir, model, resume=None, method="chts"):
    args = transformers.TrainingArguments(output_dir=str(output_dir), max_steps=30, per_device_train_batch_size=4,
                                          learning_rate=3e-3, save_steps=15, report_to=[], use_cpu=True, seed=0,
                                          disable_tqdm=True, logging_strategy="no")
    callback = DSTCallback(method=method, update_interval=10, seed=7)
    trainer = transformers.Trainer(model=model, args=args, train_dataset=_data(), callbacks=[callback])
    trainer.train(resume_from_checkpoint=resume)
    return trainer, callback


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


def test_llama_relations_are_found():
    from sparsenet.models import find_relations
    assert len(find_relations(_model())) == 2 * 5  # per layer: q/k, v/o, gate/up, gate/down, up/down

"""Fine-tuning attacks: protected weights stay bit-identical, the rest of the model trains."""

from __future__ import annotations

import pandas as pd
import pytest
import torch

from safety_brittleness.attacks import attack
from safety_brittleness.steps.attacks import read_attack_file
from safety_brittleness.models import block_linear_layers
from test_scoring import make_examples

SETTINGS = {
    "learning_rate": 1e-2, "epochs": 2, "batch_size": 2, "max_length": 64, "warmup_fraction": 0.1,
    "weight_decay": 0.1, "max_grad_norm": 1.0,
}


def half_masks(model) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    return {name: torch.rand(layer.weight.shape, generator=generator) < 0.5 for name, layer in block_linear_layers(model).items()}


@pytest.mark.parametrize("precision", [None, "bf16"])
@pytest.mark.parametrize("protection", ["freeze", "rewind"])
def test_protected_weights_stay_bit_identical(tiny_llama, character_tokenizer, protection, precision):
    masks = half_masks(tiny_llama)
    before = {name: layer.weight.detach().clone() for name, layer in block_linear_layers(tiny_llama).items()}
    settings = {**SETTINGS, "mixed_precision": precision}
    losses = attack(tiny_llama, character_tokenizer, make_examples(), masks, protection, settings, seed=0)
    assert len(losses) == 2 * 2   # 2 epochs of 2 batches
    for name, layer in block_linear_layers(tiny_llama).items():
        after = layer.weight.detach()
        assert torch.equal(after[masks[name]], before[name][masks[name]]), name
        assert not torch.equal(after[~masks[name]], before[name][~masks[name]]), name


def test_unprotected_attack_changes_every_layer(tiny_llama, character_tokenizer):
    before = {name: layer.weight.detach().clone() for name, layer in block_linear_layers(tiny_llama).items()}
    attack(tiny_llama, character_tokenizer, make_examples(), None, "none", SETTINGS, seed=0)
    for name, layer in block_linear_layers(tiny_llama).items():
        assert not torch.equal(layer.weight.detach(), before[name]), name


def test_bf16_autocast_trains_float32_weights(tiny_llama, character_tokenizer):
    initial = {name: tensor.clone() for name, tensor in tiny_llama.state_dict().items()}
    plain = attack(tiny_llama, character_tokenizer, make_examples(), None, "none", SETTINGS, seed=0)
    tiny_llama.load_state_dict(initial)
    mixed = attack(tiny_llama, character_tokenizer, make_examples(), None, "none", {**SETTINGS, "mixed_precision": "bf16"}, seed=0)
    assert all(parameter.dtype == torch.float32 for parameter in tiny_llama.parameters())
    # bfloat16 matrix products round the loss differently but train towards the same point
    assert plain[0] != mixed[0]
    assert mixed[0] == pytest.approx(plain[0], rel=0.05)
    assert mixed[-1] < mixed[0]
    with pytest.raises(ValueError, match="unknown mixed_precision 'fp8'"):
        attack(tiny_llama, character_tokenizer, make_examples(), None, "none", {**SETTINGS, "mixed_precision": "fp8"}, seed=0)


def test_freeze_leaves_no_hook_behind(tiny_llama, character_tokenizer):
    masks = half_masks(tiny_llama)
    attack(tiny_llama, character_tokenizer, make_examples(), masks, "freeze", SETTINGS, seed=0)
    before = {name: layer.weight.detach().clone() for name, layer in block_linear_layers(tiny_llama).items()}
    attack(tiny_llama, character_tokenizer, make_examples(), None, "none", SETTINGS, seed=1)
    changed = [torch.equal(layer.weight.detach()[masks[name]], before[name][masks[name]]) for name, layer in block_linear_layers(tiny_llama).items()]
    assert not any(changed)


def test_protection_needs_masks(tiny_llama, character_tokenizer):
    with pytest.raises(ValueError, match="needs the masks"):
        attack(tiny_llama, character_tokenizer, make_examples(), None, "freeze", SETTINGS, seed=0)
    with pytest.raises(ValueError, match="unknown protection 'lock'"):
        attack(tiny_llama, character_tokenizer, make_examples(), None, "lock", SETTINGS, seed=0)


def test_attack_file_formats(tmp_path):
    records = pd.DataFrame({"prompt": ["a", "b"], "response": ["x", "y"], "extra": [1, 2]})
    records.to_json(tmp_path / "attack.jsonl", orient="records", lines=True)
    records.to_parquet(tmp_path / "attack.parquet")
    for name in ("attack.jsonl", "attack.parquet"):
        frame = read_attack_file(str(tmp_path / name))
        assert frame.columns.tolist() == ["id", "split", "prompt", "response", "ends_turn"]
        assert frame["response"].tolist() == ["x", "y"]
    records.drop(columns="response").to_json(tmp_path / "bad.jsonl", orient="records", lines=True)
    with pytest.raises(ValueError, match="lacks the column"):
        read_attack_file(str(tmp_path / "bad.jsonl"))

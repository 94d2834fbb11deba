"""Sequential scoring: block i is scored on the model whose earlier blocks are already pruned."""

from __future__ import annotations

import copy

import torch

from safety_brittleness.models import block_linear_layers
from safety_brittleness.regions import fraction_mask, region_selector
from safety_brittleness.scoring import sequential_masks, snip_scores, wanda_scores
from test_scoring import make_examples


def recording_selector(fraction: float, seen: dict):
    """Select the top `fraction` of each row, and remember every score tensor it was given."""
    def select(scores):
        layer_scores = scores["safety-full"]
        seen.update({name: value.clone() for name, value in layer_scores.items()})
        return {name: fraction_mask(value, fraction, "row") for name, value in layer_scores.items()}
    return select


def _split_by_block(names):
    return [n for n in names if ".layers.0." in n], [n for n in names if ".layers.1." in n]


def test_sequential_wanda_without_pruning_equals_one_shot(tiny_llama, character_tokenizer):
    examples = make_examples()
    one_shot = wanda_scores(tiny_llama, character_tokenizer, examples, 64)
    seen: dict = {}
    masks = sequential_masks(tiny_llama, character_tokenizer, {"safety-full": examples}, "wanda", 64, recording_selector(0.0, seen))
    assert not any(mask.any() for mask in masks.values())
    for name in one_shot:
        torch.testing.assert_close(seen[name], one_shot[name], rtol=1e-5, atol=1e-6)


def test_sequential_wanda_changes_only_later_blocks(tiny_llama, character_tokenizer):
    examples = make_examples()
    original = copy.deepcopy(tiny_llama)
    one_shot = wanda_scores(original, character_tokenizer, examples, 64)
    seen: dict = {}
    masks = sequential_masks(tiny_llama, character_tokenizer, {"safety-full": examples}, "wanda", 64, recording_selector(0.5, seen))
    first, second = _split_by_block(one_shot)
    # Block 0 is scored on the unedited inputs, and block 1 on the outputs of the pruned block 0.
    for name in first:
        torch.testing.assert_close(seen[name], one_shot[name], rtol=1e-5, atol=1e-6)
    assert any(not torch.allclose(seen[name], one_shot[name], rtol=1e-3) for name in second)
    # The model is left pruned by exactly the returned masks.
    for name, layer in block_linear_layers(tiny_llama).items():
        assert torch.equal(layer.weight == 0, masks[name] | (block_linear_layers(original)[name].weight == 0))


def test_one_shot_scoring_leaves_the_model_unedited(tiny_llama, character_tokenizer):
    before = {name: layer.weight.clone() for name, layer in block_linear_layers(tiny_llama).items()}
    scores = snip_scores(tiny_llama, character_tokenizer, make_examples(), 64)
    spec = {"region": "top", "selection": "row", "safety_dataset": "safety-full", "score_method": "snip", "sparsity": 0.5}
    sources, select = region_selector(spec)
    masks = select({sources[0]: scores})
    assert any(mask.any() for mask in masks.values())
    for name, layer in block_linear_layers(tiny_llama).items():
        assert torch.equal(layer.weight, before[name])


def test_sequential_snip_changes_only_later_blocks(tiny_llama, character_tokenizer):
    examples = make_examples()
    one_shot = snip_scores(copy.deepcopy(tiny_llama), character_tokenizer, examples, 64)
    seen: dict = {}
    sequential_masks(tiny_llama, character_tokenizer, {"safety-full": examples}, "snip", 64, recording_selector(0.5, seen))
    first, second = _split_by_block(one_shot)
    # SNIP gradients of block 0 flow through block 1, which is still unpruned when block 0 is scored.
    for name in first:
        torch.testing.assert_close(seen[name], one_shot[name], rtol=1e-5, atol=1e-9)
    assert any(not torch.allclose(seen[name], one_shot[name], rtol=1e-3) for name in second)

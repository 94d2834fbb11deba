"""Scoring, regions and ranks on tiny random Llama, Qwen2 and Mistral models.

Layers are found by module type, so the same code serves every decoder-only architecture of
transformers; Qwen2's q, k and v projections also carry biases, which the study leaves alone.
"""

from __future__ import annotations

import pytest
import torch

from conftest import tiny_config
from safety_brittleness.actsvd import input_grams, sequential_bases
from safety_brittleness.models import block_linear_layers, decoder_blocks
from safety_brittleness.ranks import apply_rank_edit, layer_rank, output_bases, remove_top_ranks
from safety_brittleness.regions import actual_sparsity, apply_masks, set_difference_mask, top_fraction_mask
from safety_brittleness.scoring import sequential_masks, snip_scores, wanda_scores
from test_scoring import make_examples, naive_snip, naive_wanda

ARCHITECTURES = ["llama", "qwen2", "mistral"]


def tiny_model(model_type: str):
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(tiny_config(model_type)).float()
    model.eval()
    return model


@pytest.mark.parametrize("model_type", ARCHITECTURES)
def test_block_linear_layers_found_by_type(model_type):
    model = tiny_model(model_type)
    prefix, blocks = decoder_blocks(model)
    layers = block_linear_layers(model)
    assert prefix == "model.layers"
    assert len(blocks) == 2
    # 2 blocks x (q, k, v, o, gate, up, down); the output head is not a block layer.
    assert len(layers) == 14
    assert {name.rsplit(".", 1)[1] for name in layers} == {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"}


@pytest.mark.parametrize("model_type", ARCHITECTURES)
def test_scores_match_reference_loops(model_type, character_tokenizer):
    model = tiny_model(model_type)
    examples = make_examples()
    snip = snip_scores(model, character_tokenizer, examples, max_length=64)
    reference = naive_snip(model, character_tokenizer, examples, max_length=64)
    for name in reference:
        torch.testing.assert_close(snip[name], reference[name], rtol=1e-5, atol=1e-9)
    wanda = wanda_scores(model, character_tokenizer, examples, max_length=64)
    reference = naive_wanda(model, character_tokenizer, examples, max_length=64)
    for name in reference:
        torch.testing.assert_close(wanda[name], reference[name], rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("model_type", ARCHITECTURES)
def test_regions_prune_every_architecture(model_type, character_tokenizer):
    model = tiny_model(model_type)
    examples = make_examples()
    safety = snip_scores(model, character_tokenizer, examples[2:], max_length=64)
    utility = snip_scores(model, character_tokenizer, examples[:2], max_length=64)
    masks = {name: set_difference_mask(safety[name], utility[name], 0.1, 0.3, "row") for name in safety}
    assert any(mask.any() for mask in masks.values())
    apply_masks(model, masks)
    assert actual_sparsity(model) > 0
    for name, layer in block_linear_layers(model).items():
        assert (layer.weight[masks[name]] == 0).all()

    pruned = sequential_masks(
        tiny_model(model_type), character_tokenizer, {"safety-full": examples}, "wanda", 64,
        lambda scores: {name: top_fraction_mask(value, 0.1, "row") for name, value in scores["safety-full"].items()},
    )
    assert len(pruned) == 14


@pytest.mark.parametrize("model_type", ARCHITECTURES)
def test_rank_edits_on_every_architecture(model_type, character_tokenizer):
    model = tiny_model(model_type)
    examples = make_examples()
    bases = output_bases(model, input_grams(model, character_tokenizer, examples, 64))
    original = {name: layer.weight.detach().clone() for name, layer in block_linear_layers(model).items()}
    spec = {"region": "actsvd_top", "rank": 2, "reference_rank": 32}
    apply_rank_edit(model, spec, {name: basis.float() for name, (_, basis) in bases.items()})
    for name, layer in block_linear_layers(model).items():
        expected = remove_top_ranks(original[name].double(), bases[name][1], layer_rank(2, min(layer.weight.shape), 32))
        torch.testing.assert_close(layer.weight.detach().double(), expected, rtol=1e-5, atol=1e-6)
    sequential = sequential_bases(
        tiny_model(model_type), character_tokenizer, {"safety": examples}, 64,
        {"region": "actsvd_top", "rank": 2, "reference_rank": 32},
    )
    assert set(sequential["safety"]) == set(original)

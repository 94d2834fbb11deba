"""ActSVD from Gram matrices: equal to the SVD of stacked activations, and the rank edits."""

from __future__ import annotations

import pytest
import torch

from safety_brittleness.alignment import tokenize_example
from safety_brittleness.actsvd import input_grams, load_grams, save_grams, sequential_bases
from safety_brittleness.models import block_linear_layers
from safety_brittleness.ranks import (
    apply_rank_edit, edit_weight, keep_top_ranks, layer_rank, load_bases, orthogonal_projection_delta, output_bases,
    output_basis, remove_top_ranks, save_bases, scaled_rank, subspace_similarity, subspace_table,
)
from test_scoring import make_examples


def stacked_inputs(model, tokenizer, examples, max_length):
    """Reference: store every response-token input of every layer, then stack them."""
    layers = block_linear_layers(model)
    stored = {name: [] for name in layers}
    current = {}

    def record(name):
        def hook(module, inputs, output):
            stored[name].append(inputs[0][0][current["positions"]].double())
        return hook

    handles = [layer.register_forward_hook(record(name)) for name, layer in layers.items()]
    with torch.no_grad():
        for example in examples:
            input_ids, labels = tokenize_example(tokenizer, example, max_length)
            current["positions"] = torch.tensor([label != -100 for label in labels])
            model(input_ids=torch.tensor([input_ids]))
    for handle in handles:
        handle.remove()
    return {name: torch.cat(parts) for name, parts in stored.items()}


def principal_angle_cosines(first, second):
    return torch.linalg.svdvals(first.T @ second)


def test_gram_basis_equals_svd_of_activations(tiny_llama, character_tokenizer):
    examples = make_examples()
    grams = input_grams(tiny_llama, character_tokenizer, examples, 64)
    inputs = stacked_inputs(tiny_llama, character_tokenizer, examples, 64)
    for name, layer in block_linear_layers(tiny_llama).items():
        weight = layer.weight.detach().double()
        values, basis = output_basis(weight, grams[name])
        left, singular, _ = torch.linalg.svd(weight @ inputs[name].T, full_matrices=False)
        torch.testing.assert_close(values[:5], singular[:5], rtol=1e-6, atol=1e-9)
        # Top-4 subspaces coincide: every principal angle is 0, its cosine 1.
        cosines = principal_angle_cosines(basis[:, :4], left[:, :4])
        torch.testing.assert_close(cosines, torch.ones(4, dtype=torch.float64), rtol=0, atol=1e-8)


def test_rank_edits_match_a_direct_implementation():
    generator = torch.Generator().manual_seed(0)
    weight = torch.randn(6, 4, generator=generator, dtype=torch.float64)
    activations = torch.randn(50, 4, generator=generator, dtype=torch.float64)
    _, basis = output_basis(weight, activations.T @ activations)
    left = torch.linalg.svd(weight @ activations.T, full_matrices=False)[0][:, :4]   # W X^T has rank 4
    signs = torch.sign((basis * left).sum(dim=0))
    torch.testing.assert_close(basis * signs, left, rtol=0, atol=1e-8)

    top = left[:, :1]
    torch.testing.assert_close(remove_top_ranks(weight, basis, 1), weight - top @ top.T @ weight)
    top_three = left[:, :3]
    torch.testing.assert_close(keep_top_ranks(weight, basis, 3), top_three @ top_three.T @ weight)

    other = torch.randn(50, 4, generator=generator, dtype=torch.float64) * torch.tensor([5.0, 1.0, 0.2, 0.1], dtype=torch.float64)
    _, utility_basis = output_basis(weight, other.T @ other)
    p_u = utility_basis[:, :3] @ utility_basis[:, :3].T   # R = 4, r_u = 1
    p_s = basis[:, :2] @ basis[:, :2].T                   # r_s = 2
    expected = (torch.eye(6, dtype=torch.float64) - p_u) @ p_s @ weight
    delta = orthogonal_projection_delta(weight, utility_basis, basis, r_u=1, r_s=2)
    torch.testing.assert_close(delta, expected)
    # rank(dW) <= min(d_out - R + r_u, R - r_s): min(3, 2) here, and min(r_u, R - r_s) when d_out = R.
    assert torch.linalg.matrix_rank(delta) <= 2


def test_subspace_similarity_bounds():
    basis = torch.linalg.qr(torch.randn(8, 8, generator=torch.Generator().manual_seed(1)))[0]
    assert abs(subspace_similarity(basis, basis, 3) - 1.0) < 1e-6
    assert abs(subspace_similarity(basis[:, :3], basis[:, 3:6], 3)) < 1e-6


def test_layers_reading_one_input_share_a_gram(tiny_llama, character_tokenizer, tmp_path):
    examples = make_examples()
    grams = input_grams(tiny_llama, character_tokenizer, examples, 64)
    prefix = "model.layers.0."
    assert grams.owners[prefix + "self_attn.v_proj"] == prefix + "self_attn.q_proj"
    assert grams.owners[prefix + "mlp.up_proj"] == prefix + "mlp.gate_proj"
    assert grams.owners[prefix + "self_attn.o_proj"] == prefix + "self_attn.o_proj"
    inputs = stacked_inputs(tiny_llama, character_tokenizer, examples, 64)
    for name, gram in grams.items():
        # Batched calibration passes change float32 activations by rounding only.
        torch.testing.assert_close(gram, inputs[name].T @ inputs[name], rtol=1e-5, atol=1e-6)
        assert torch.equal(gram, gram.T)

    path = tmp_path / "grams.safetensors"
    save_grams(grams, path, {"rule": "test"})
    loaded = load_grams(path)
    assert loaded.keys() == grams.keys()
    for name in grams:
        assert torch.equal(loaded[name], grams[name])
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as handle:
        assert len(list(handle.keys())) == 2 * 4   # per block: attention input, o_proj input, MLP input, down_proj input


def test_subspace_table_scales_the_rank(tiny_llama, character_tokenizer):
    examples = make_examples()
    bases = {name: basis for name, (_, basis) in output_bases(tiny_llama, input_grams(tiny_llama, character_tokenizer, examples, 64)).items()}
    rows = {row["layer"]: row for row in subspace_table(bases, bases, rank_fraction=0.25)}
    up = rows["model.layers.1.mlp.up_proj"]
    assert (up["block"], up["module"], up["full_rank"], up["rank"]) == (1, "up_proj", 32, 8)
    assert rows["model.layers.0.self_attn.k_proj"]["rank"] == 4   # R = 16 for 2 key-value heads of 8
    # The same data on both sides gives the same subspace.
    assert all(abs(row["similarity"] - 1.0) < 1e-6 for row in rows.values())
    assert scaled_rank(4096, 0.0244) == 100
    assert scaled_rank(576, 0.0244) == 14


def test_layer_rank_scales_to_the_layer_width():
    assert layer_rank(0, 192, 576) == 0
    assert layer_rank(1, 192, 576) == 1  # a positive rank never rounds down to nothing
    assert layer_rank(300, 192, 576) == 100
    assert layer_rank(300, 576, 576) == 300
    assert layer_rank(575, 192, 576) == 192
    assert layer_rank(5000, 576, 576) == 576


def test_edit_weight_matches_the_direct_edits():
    generator = torch.Generator().manual_seed(1)
    weight = torch.randn(12, 8, generator=generator, dtype=torch.float64)
    safety_inputs = torch.randn(40, 8, generator=generator, dtype=torch.float64)
    utility_inputs = torch.randn(40, 8, generator=generator, dtype=torch.float64)
    _, safety = output_basis(weight, safety_inputs.T @ safety_inputs)
    _, utility = output_basis(weight, utility_inputs.T @ utility_inputs)
    common = {"reference_rank": 8}

    edited, removed = edit_weight(weight, {**common, "region": "actsvd_top", "rank": 2}, safety)
    torch.testing.assert_close(edited, remove_top_ranks(weight, safety, 2))
    assert removed == 2
    edited, removed = edit_weight(weight, {**common, "region": "actsvd_bottom", "rank": 3}, safety)
    torch.testing.assert_close(edited, keep_top_ranks(weight, safety, 5))
    assert removed == 3
    spec = {**common, "region": "orthogonal_projection", "r_u": 3, "r_s": 6}
    edited, removed = edit_weight(weight, spec, safety, utility)
    delta = orthogonal_projection_delta(weight, utility, safety, 3, 6)
    torch.testing.assert_close(edited, weight - delta)
    assert removed == int(torch.linalg.matrix_rank(delta)) == 2
    # All utility directions kept: nothing is safety-critical but not utility-critical.
    edited, removed = edit_weight(weight, {**spec, "r_u": 0}, safety, utility)
    assert removed == 0
    torch.testing.assert_close(edited, weight)


def test_rank_edit_rebuilt_from_stored_bases(tiny_llama, character_tokenizer, tmp_path):
    examples = make_examples()
    grams = input_grams(tiny_llama, character_tokenizer, examples, 64)
    bases = output_bases(tiny_llama, grams)
    save_bases(bases, tmp_path / "bases.safetensors", {"rule": "test"})
    loaded = load_bases(tmp_path / "bases.safetensors")
    assert set(loaded) == set(block_linear_layers(tiny_llama))
    original = {name: layer.weight.detach().clone() for name, layer in block_linear_layers(tiny_llama).items()}
    spec = {"region": "actsvd_top", "rank": 2, "reference_rank": 32}
    largest = apply_rank_edit(tiny_llama, spec, loaded)
    for name, layer in block_linear_layers(tiny_llama).items():
        full = min(layer.weight.shape)
        expected = remove_top_ranks(original[name].double(), bases[name][1], layer_rank(2, full, 32))
        torch.testing.assert_close(layer.weight.detach().double(), expected, rtol=1e-5, atol=1e-6)
    assert largest == max(layer_rank(2, min(w.shape), 32) for w in original.values())


def test_sequential_bases_without_edit(tiny_llama, character_tokenizer):
    examples = make_examples()
    one_shot = output_bases(tiny_llama, input_grams(tiny_llama, character_tokenizer, examples, 64))
    # r_u = 0 keeps every utility direction, so dW = 0 and no block changes.
    spec = {"region": "orthogonal_projection", "r_u": 0, "r_s": 16, "reference_rank": 32}
    sequential = sequential_bases(tiny_llama, character_tokenizer, {"safety": examples, "utility": examples}, 64, spec)
    for name, (values, _) in one_shot.items():
        torch.testing.assert_close(sequential["safety"][name][0], values, rtol=1e-5, atol=1e-6)


def test_sequential_bases_follow_edits(tiny_llama, character_tokenizer):
    examples = make_examples()
    original = {name: layer.weight.detach().clone() for name, layer in block_linear_layers(tiny_llama).items()}
    one_shot = output_bases(tiny_llama, input_grams(tiny_llama, character_tokenizer, examples, 64))
    spec = {"region": "actsvd_top", "rank": 4, "reference_rank": 32}
    sequential = sequential_bases(tiny_llama, character_tokenizer, {"safety": examples}, 64, spec)["safety"]
    block0 = "model.layers.0.mlp.up_proj"
    block1 = "model.layers.1.mlp.up_proj"
    torch.testing.assert_close(sequential[block0][0], one_shot[block0][0], rtol=1e-5, atol=1e-6)
    assert not torch.allclose(sequential[block1][0], one_shot[block1][0], rtol=1e-3)
    # The evaluation rebuilds the same edit from the stored bases and the unedited weights.
    edited = {name: layer.weight.detach().clone() for name, layer in block_linear_layers(tiny_llama).items()}
    for name, layer in block_linear_layers(tiny_llama).items():
        layer.weight.data.copy_(original[name])
    apply_rank_edit(tiny_llama, spec, {name: basis.float() for name, (_, basis) in sequential.items()})
    for name, layer in block_linear_layers(tiny_llama).items():
        torch.testing.assert_close(layer.weight.detach(), edited[name], rtol=1e-5, atol=1e-6)


def test_gram_file_without_packing_rejected(tmp_path):
    from safetensors.torch import save_file

    path = tmp_path / "grams.safetensors"
    save_file({"layer": torch.eye(3, dtype=torch.float64)}, str(path), metadata={"layers": '{"layer": "layer"}'})
    with pytest.raises(ValueError, match="rerun compute_grams"):
        load_grams(path)

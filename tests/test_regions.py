"""Region selection on hand-made tensors, mask storage and removal."""

from __future__ import annotations

import pytest
import torch

from safety_brittleness.models import block_linear_layers
from safety_brittleness.regions import (
    actual_sparsity, apply_masks, fraction_mask, head_column_mask, load_masks, overlap_table, random_like_mask,
    save_masks, set_difference_mask, top_fraction_mask,
)


def test_top_fraction_per_row():
    scores = torch.tensor([[1.0, 9.0, 3.0, 7.0], [8.0, 2.0, 6.0, 4.0]])
    mask = top_fraction_mask(scores, 0.5, "row")
    expected = torch.tensor([[False, True, False, True], [True, False, True, False]])
    assert torch.equal(mask, expected)


def test_top_fraction_per_matrix():
    scores = torch.tensor([[1.0, 9.0, 3.0, 7.0], [8.0, 2.0, 6.0, 4.0]])
    mask = top_fraction_mask(scores, 0.25, "matrix")
    expected = torch.tensor([[False, True, False, False], [True, False, False, False]])
    assert torch.equal(mask, expected)


def test_row_and_matrix_rules_differ():
    # Row 0 contains all the large scores, so per matrix it takes both slots; per row, each row gets one.
    scores = torch.tensor([[10.0, 9.0, 0.0, 0.0], [1.0, 2.0, 0.5, 0.1]])
    assert torch.equal(top_fraction_mask(scores, 0.25, "matrix"), torch.tensor([[True, True, False, False], [False] * 4]))
    assert torch.equal(top_fraction_mask(scores, 0.25, "row"), torch.tensor([[True, False, False, False], [False, True, False, False]]))


def test_fraction_rounds_down_to_zero():
    assert not top_fraction_mask(torch.rand(3, 4), 0.2, "row").any()


def test_set_difference_excludes_utility_weights():
    safety = torch.tensor([[5.0, 4.0, 3.0, 2.0, 1.0, 0.0]])
    utility = torch.tensor([[6.0, 0.0, 0.0, 0.0, 0.0, 5.0]])
    # top-q (q=0.5) safety: columns 0, 1, 2; top-p (p=1/3) utility: columns 0, 5
    mask = set_difference_mask(safety, utility, p=1 / 3, q=0.5, selection="row")
    assert mask.tolist() == [[False, True, True, False, False, False]]


def test_unknown_selection_rejected():
    with pytest.raises(ValueError, match="allowed: row, matrix"):
        top_fraction_mask(torch.rand(2, 2), 0.5, "column")


def test_masks_round_trip(tmp_path):
    generator = torch.Generator().manual_seed(0)
    masks = {"a": torch.rand(5, 7, generator=generator) > 0.5, "b": torch.rand(3, 1, generator=generator) > 0.5}
    path = tmp_path / "region.safetensors"
    save_masks(masks, path, {"rule": "test"})
    loaded = load_masks(path)
    assert loaded.keys() == masks.keys()
    for name in masks:
        assert torch.equal(loaded[name], masks[name])


def test_apply_masks_zeroes_exactly_the_mask(tiny_llama):
    layers = block_linear_layers(tiny_llama)
    name, layer = next(iter(layers.items()))
    mask = torch.zeros_like(layer.weight, dtype=torch.bool)
    mask[0, :3] = True
    before = layer.weight.detach().clone()
    apply_masks(tiny_llama, {name: mask})
    assert torch.all(layer.weight[mask] == 0)
    assert torch.equal(layer.weight[~mask], before[~mask])
    total = sum(module.weight.numel() for module in layers.values())
    assert actual_sparsity(tiny_llama) == pytest.approx(3 / total)


def test_apply_masks_rejects_foreign_names(tiny_llama):
    with pytest.raises(ValueError, match="not in the model"):
        apply_masks(tiny_llama, {"model.layers.9.mlp.up_proj": torch.zeros(1, 1, dtype=torch.bool)})


def test_jaccard_on_known_sets():
    from safety_brittleness.regions import jaccard_index

    first = torch.tensor([True, True, False, False])
    second = torch.tensor([True, False, True, False])
    assert jaccard_index(first, second) == pytest.approx(1 / 3)
    assert jaccard_index(first, first) == 1.0
    assert jaccard_index(torch.zeros(3, dtype=torch.bool), torch.zeros(3, dtype=torch.bool)) == 0.0


def test_bottom_fraction_per_row_and_per_matrix():
    scores = torch.tensor([[10.0, 9.0, 8.0, 7.0], [1.0, 2.0, 3.0, 4.0]])
    per_row = fraction_mask(scores, 0.25, "row", largest=False)
    assert per_row.tolist() == [[False, False, False, True], [True, False, False, False]]
    # Over the whole matrix both lowest scores sit in row 1.
    per_matrix = fraction_mask(scores, 0.25, "matrix", largest=False)
    assert per_matrix.tolist() == [[False, False, False, False], [True, True, False, False]]


def test_set_difference_per_row_and_per_matrix_differ():
    # All the high safety scores are in row 0, and the top utility score of each row is in column 0.
    safety = torch.tensor([[9.0, 8.0, 7.0, 6.0], [1.0, 2.0, 0.0, 0.5]])
    utility = torch.tensor([[9.0, 0.0, 0.0, 0.0], [9.0, 0.0, 0.0, 0.0]])
    per_row = set_difference_mask(safety, utility, p=0.25, q=0.5, selection="row")
    per_matrix = set_difference_mask(safety, utility, p=0.25, q=0.5, selection="matrix")
    assert per_row.tolist() == [[False, True, False, False], [False, True, False, False]]
    # Per matrix, top-q takes (0,0)..(0,3); top-p utility takes the two 9s in column 0.
    assert per_matrix.tolist() == [[False, True, True, True], [False, False, False, False]]


def test_random_mask_row_counts():
    generator = torch.Generator().manual_seed(0)
    mask = torch.tensor([[True, True, False, False, False], [False, False, False, False, True], [False] * 5])
    first = random_like_mask(mask, "row", torch.Generator().manual_seed(1))
    second = random_like_mask(mask, "row", torch.Generator().manual_seed(2))
    assert first.sum(dim=1).tolist() == [2, 1, 0]
    assert second.sum(dim=1).tolist() == [2, 1, 0]
    big = torch.rand(40, 50, generator=generator) > 0.7
    other = random_like_mask(big, "row", torch.Generator().manual_seed(3))
    assert torch.equal(other.sum(dim=1), big.sum(dim=1))
    assert not torch.equal(other, big)
    per_matrix = random_like_mask(big, "matrix", torch.Generator().manual_seed(3))
    assert int(per_matrix.sum()) == int(big.sum())


def test_head_column_mask_marks_one_slice():
    mask = head_column_mask((6, 8), [2], head_dim=2)
    assert mask[:, 4:6].all()
    assert int(mask.sum()) == 12
    with pytest.raises(ValueError, match="outside a weight"):
        head_column_mask((6, 8), [4], head_dim=2)


def test_overlap_table_per_block_and_module():
    safety = {"model.layers.0.mlp.up_proj": torch.tensor([[4.0, 3.0, 2.0, 1.0]]),
              "model.layers.1.self_attn.q_proj": torch.tensor([[4.0, 3.0, 2.0, 1.0]])}
    utility = {"model.layers.0.mlp.up_proj": torch.tensor([[4.0, 3.0, 2.0, 1.0]]),
               "model.layers.1.self_attn.q_proj": torch.tensor([[1.0, 4.0, 3.0, 2.0]])}
    rows = {row["layer"]: row for row in overlap_table(safety, utility, fraction=0.5, selection="row")}
    assert rows["model.layers.0.mlp.up_proj"]["block"] == 0
    assert rows["model.layers.0.mlp.up_proj"]["module"] == "up_proj"
    assert rows["model.layers.0.mlp.up_proj"]["jaccard"] == 1.0
    # safety top-2 {0, 1}, utility top-2 {1, 2}: intersection 1, union 3
    assert rows["model.layers.1.self_attn.q_proj"]["jaccard"] == pytest.approx(1 / 3)
    assert rows["model.layers.1.self_attn.q_proj"]["block"] == 1

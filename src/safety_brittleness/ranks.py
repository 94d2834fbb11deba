"""Rank-level regions (ActSVD): output bases of block linear layers from input Gram matrices.

For a layer with weight W (d_out x d_in) and calibration inputs X (tokens x d_in), ActSVD takes the
top left singular vectors U of the output activations W X^T. They are the eigenvectors of
W (X^T X) W^T, so the d_in x d_in Gram matrix X^T X, summed over the response tokens of the
calibration set, replaces the stored activations: memory no longer grows with the number of tokens.

This module contains the arithmetic on bases and weights. safety_brittleness.actsvd collects the
Gram matrices from a model's activations.
"""

from __future__ import annotations

import json
import logging

import torch
from safety_brittleness.experiments import RANK_REGIONS
from safety_brittleness.models import block_linear_layers

log = logging.getLogger(__name__)


def output_basis(weight: torch.Tensor, gram: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Return the singular values and left singular vectors of W X^T, from W and X^T X.

    The columns of U (d_out x R, R = min(d_out, d_in)) are sorted by decreasing singular value.
    """
    weight = weight.double()
    product = weight @ gram.to(weight.device) @ weight.T
    eigenvalues, eigenvectors = torch.linalg.eigh((product + product.T) / 2)
    order = torch.argsort(eigenvalues, descending=True)[: min(weight.shape)]
    return eigenvalues[order].clamp_min(0).sqrt(), eigenvectors[:, order]


def remove_top_ranks(weight: torch.Tensor, basis: torch.Tensor, rank: int) -> torch.Tensor:
    """Return W - U_r U_r^T W: the weight without its top-r output directions."""
    top = basis[:, :rank].to(weight.dtype)
    return weight - top @ (top.T @ weight)


def keep_top_ranks(weight: torch.Tensor, basis: torch.Tensor, rank: int) -> torch.Tensor:
    """Return U_k U_k^T W: the weight restricted to its top-k output directions."""
    top = basis[:, :rank].to(weight.dtype)
    return top @ (top.T @ weight)


def orthogonal_projection_delta(
    weight: torch.Tensor, utility_basis: torch.Tensor, safety_basis: torch.Tensor, r_u: int, r_s: int,
) -> torch.Tensor:
    """Return dW = (I - P_u) P_s W, the part of W that is safety-critical but not utility-critical.

    P_u projects on the top R - r_u utility directions and P_s on the top R - r_s safety
    directions, with R = min(d_out, d_in). The edited weight is W - dW, and
    rank(dW) <= min(d_out - R + r_u, R - r_s), which is min(r_u, R - r_s) when d_out <= d_in.
    """
    full = min(weight.shape)
    utility = utility_basis[:, : full - r_u].to(weight.dtype)
    safety = safety_basis[:, : full - r_s].to(weight.dtype)
    projected = safety @ (safety.T @ weight)
    return projected - utility @ (utility.T @ projected)


def subspace_similarity(first: torch.Tensor, second: torch.Tensor, rank: int) -> float:
    """Return ||U_1^T U_2||_F^2 / rank for the top-`rank` columns of two orthonormal bases (1: same subspace)."""
    overlap = first[:, :rank].T @ second[:, :rank]
    return float(overlap.pow(2).sum() / rank)


def layer_rank(rank: int, full_rank: int, reference_rank: int) -> int:
    """Return a rank given at width `reference_rank`, scaled to a layer of full rank R.

    The result is round(rank * R / reference_rank), clipped to [0, R], and at least 1 when rank > 0.
    With reference_rank = R the rank is used as given.
    """
    if rank <= 0:
        return 0
    return min(full_rank, max(1, round(rank * full_rank / reference_rank)))


def output_bases(model, grams: dict[str, torch.Tensor]) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """Return {layer: (singular values, left singular vectors of W X^T)} for every block linear layer."""
    from tqdm.auto import tqdm

    layers = block_linear_layers(model)
    bases = {}
    for name, layer in tqdm(layers.items(), desc="output bases", unit="layer", total=len(layers)):
        bases[name] = output_basis(layer.weight.detach(), grams[name])
    return bases


def save_bases(bases: dict[str, tuple[torch.Tensor, torch.Tensor]], path, metadata: dict) -> None:
    """Store each layer's basis (float32, d_out x R) and singular values (float64)."""
    from safety_brittleness.provenance import write_safetensors

    tensors = {}
    for name, (values, basis) in bases.items():
        tensors[f"{name}.basis"] = basis.float().contiguous()
        tensors[f"{name}.singular_values"] = values.double().contiguous()
    header = {"kind": "output_bases", "provenance": json.dumps(metadata, default=str)}
    write_safetensors(tensors, path, header)


def load_bases(path) -> dict[str, torch.Tensor]:
    """Return {layer name: basis} from a file written by save_bases."""
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as handle:
        if (handle.metadata() or {}).get("kind") != "output_bases":
            raise ValueError(f"'{path}' is not a basis file written by save_bases; rerun its rule")
        return {key[: -len(".basis")]: handle.get_tensor(key) for key in handle.keys() if key.endswith(".basis")}


def _numerical_rank(left: torch.Tensor, right: torch.Tensor, threshold: float) -> int:
    """Return the number of singular values of left @ right above `threshold`, without forming the product.

    left is d_out x k with k <= d_out, right is k x d_in.
    """
    if left.shape[1] == 0:
        return 0
    _, triangular = torch.linalg.qr(left)
    return int(torch.linalg.matrix_rank(triangular @ right, atol=threshold, rtol=0.0))


# Singular values of dW below this share of ||W||_F count as zero: bases are stored in float32.
RANK_TOLERANCE = 1e-6


def edit_weight(
    weight: torch.Tensor, spec: dict, safety_basis: torch.Tensor, utility_basis: torch.Tensor | None = None,
) -> tuple[torch.Tensor, int]:
    """Return one layer's edited weight (float64) and rank(dW) for the rank edit that `spec` describes.

    spec["region"] is one of
    - actsvd_top: W <- W - U_r U_r^T W, the top r = spec["rank"] safety directions removed;
    - actsvd_bottom: W <- U_k U_k^T W with k = R - r, the r least safety-critical directions removed;
    - orthogonal_projection: W <- W - (I - P_u) P_s W with spec["r_u"] and spec["r_s"].
    Ranks are scaled to the layer with layer_rank and spec["reference_rank"].
    """
    region = spec["region"]
    if region not in RANK_REGIONS:
        raise ValueError(f"region '{region}' is not a rank edit; expected one of {', '.join(RANK_REGIONS)}")
    weight = weight.double()
    full = min(weight.shape)
    reference = int(spec["reference_rank"])
    basis = safety_basis.to(weight.device).double()
    if region == "orthogonal_projection":
        if utility_basis is None:
            raise ValueError("orthogonal_projection needs the utility bases")
        r_u = layer_rank(int(spec["r_u"]), full, reference)
        r_s = layer_rank(int(spec["r_s"]), full, reference)
        safety_top = basis[:, : full - r_s]
        utility_top = utility_basis.to(weight.device).double()[:, : full - r_u]
        left = safety_top - utility_top @ (utility_top.T @ safety_top)
        right = safety_top.T @ weight
        threshold = RANK_TOLERANCE * float(torch.linalg.matrix_norm(weight))
        return weight - left @ right, _numerical_rank(left, right, threshold)
    rank = layer_rank(int(spec["rank"]), full, reference)
    if region == "actsvd_top":
        return remove_top_ranks(weight, basis, rank), rank
    return keep_top_ranks(weight, basis, full - rank), rank


@torch.no_grad()
def apply_rank_edit(model, spec: dict, safety: dict[str, torch.Tensor], utility: dict[str, torch.Tensor] | None = None) -> int:
    """Edit every block linear layer of `model` in place (see edit_weight); return the largest rank(dW)."""
    largest = 0
    for name, layer in block_linear_layers(model).items():
        edited, removed = edit_weight(layer.weight.data, spec, safety[name], None if utility is None else utility[name])
        layer.weight.data.copy_(edited.to(layer.weight.dtype))
        largest = max(largest, removed)
    return largest


def scaled_rank(full_rank: int, fraction: float) -> int:
    """Return round(fraction * R), at least 1: a rank given as a share of the layer's full rank R."""
    return max(1, round(fraction * full_rank))


def subspace_table(safety: dict[str, torch.Tensor], utility: dict[str, torch.Tensor], rank_fraction: float) -> list[dict]:
    """Return the subspace similarity of the top safety and top utility output directions, one row per layer.

    `safety` and `utility` map each layer to its output basis (d_out x R). The rank compared in a
    layer is scaled_rank(R, rank_fraction): 100 of Llama-2-7B's 4096 is a fraction of 0.0244, which
    gives 14 of 576 on the embedded model.
    """
    rows = []
    for name, safety_basis in safety.items():
        full = safety_basis.shape[1]
        rank = scaled_rank(full, rank_fraction)
        parts = name.split(".")
        position = next(i for i, part in enumerate(parts) if part.isdigit())
        rows.append({
            "layer": name, "block": int(parts[position]), "module": parts[-1], "rank": rank,
            "full_rank": full, "similarity": subspace_similarity(utility[name].double(), safety_basis.double(), rank),
        })
    return rows

"""The registry of evaluated experiments: one id per model or region, with its parameters and paths.

Each experiment is the aligned (or base) model, optionally with one region removed. Neuron regions
come from the `regions` parameters: top and bottom removal, set differences with their random
baselines, and the top-k probed attention heads. Rank edits come from the `ranks` parameters:
removal of the top or of the least safety-critical ActSVD ranks, and orthogonal projection.
Fine-tuning attacks come from the `attacks` parameters: the aligned model fine-tuned on harmful
(or benign) examples, with its top safety-critical weights frozen or rewound.
"""

from __future__ import annotations

import copy
from typing import Any

RESULTS = "results"

# Parameter columns carried by every metric row; experiments that do not use one leave it empty.
PARAMETER_COLUMNS = (
    "model", "region", "score_method", "selection", "mode", "safety_dataset", "utility_dataset",
    "p", "q", "sparsity", "region_seed", "top_k", "baseline_of", "rank", "r_u", "r_s", "reference_rank",
    "attack_data", "attack_examples", "protection", "protected_fraction",
)
RANK_REGIONS = ("actsvd_top", "actsvd_bottom", "orthogonal_projection")
# Scores computed from a calibration set (files under results/scores), and data-free scores.
DATA_SCORES = ("snip", "wanda")
WEIGHT_SCORES = ("magnitude", "random")


def format_fraction(value: float) -> str:
    """Render a fraction for paths and ids without float noise: 0.1 -> '0.1', 0.025 -> '0.025'."""
    return f"{float(value):.6g}"


def model_path(name: str) -> str:
    return f"{RESULTS}/models/{name}"


def score_path(method: str, dataset: str) -> str:
    return f"{RESULTS}/scores/{method}/{dataset}.safetensors"


def calibration_path(dataset: str) -> str:
    return f"{RESULTS}/calibration/{dataset}.parquet"


def region_path(experiment_id: str) -> str:
    return f"{RESULTS}/regions/{experiment_id}.safetensors"


def grams_path(dataset: str) -> str:
    return f"{RESULTS}/ranks/grams/{dataset}.safetensors"


def bases_path(dataset: str) -> str:
    return f"{RESULTS}/ranks/bases/{dataset}.safetensors"


def sequential_bases_path(experiment_id: str, role: str) -> str:
    return f"{RESULTS}/ranks/sequential/{experiment_id}/{role}.safetensors"


ATTACK_DATA = f"{RESULTS}/attacks/harmful_answers.parquet"
PROBES = f"{RESULTS}/probes/heads.parquet"
SUBSPACES = f"{RESULTS}/overlaps/subspace.parquet"
OVERLAPS = f"{RESULTS}/overlaps/jaccard.parquet"


class RegistryError(ValueError):
    """Two parameter entries describe the same experiment, or an entry is inconsistent."""


def _score_source(entry: dict[str, Any]) -> str:
    method = entry["score_method"]
    return entry.get("safety_dataset", "safety-full") if method in DATA_SCORES else "weights"


def _pruning_experiments(region: str, entry: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    method = entry["score_method"]
    selection = entry.get("selection", "row")
    mode = entry.get("mode", "one-shot")
    source = _score_source(entry)
    seeds = entry.get("seeds", [0]) if method == "random" else [None]
    found = []
    for sparsity in entry["sparsities"]:
        for seed in seeds:
            suffix = f"-seed{seed}" if seed is not None else ""
            experiment_id = f"{region}-{method}-{selection}-{source}-{mode}-s{format_fraction(sparsity)}{suffix}"
            found.append((experiment_id, {
                "region": region, "score_method": method, "selection": selection, "mode": mode,
                "safety_dataset": source if method in DATA_SCORES else None,
                "sparsity": float(sparsity), "region_seed": seed, "variants": entry.get("variants"),
            }))
    return found


def set_difference_id(entry: dict[str, Any], p: float, q: float) -> str:
    return (
        f"set_difference-{entry.get('score_method', 'snip')}-{entry.get('selection', 'row')}"
        f"-{entry.get('safety_dataset', 'safety-full')}-{entry.get('mode', 'one-shot')}"
        f"-p{format_fraction(p)}-q{format_fraction(q)}"
    )


def _set_difference_experiments(entry: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    found = []
    baseline = entry.get("random_baseline") or {}
    baseline_points = [tuple(point) for point in baseline.get("points", entry["points"])]
    for p, q in entry["points"]:
        experiment_id = set_difference_id(entry, p, q)
        spec = {
            "region": "set_difference", "score_method": entry.get("score_method", "snip"),
            "selection": entry.get("selection", "row"), "mode": entry.get("mode", "one-shot"),
            "safety_dataset": entry.get("safety_dataset", "safety-full"),
            "utility_dataset": entry.get("utility_dataset", "utility"),
            "p": float(p), "q": float(q), "variants": entry.get("variants"),
        }
        found.append((experiment_id, spec))
        if (p, q) not in baseline_points:
            continue
        for seed in baseline.get("seeds", []):
            found.append((f"random_baseline-seed{seed}-{experiment_id}", {
                "region": "random_baseline", "score_method": "random", "selection": spec["selection"],
                "mode": "one-shot", "p": float(p), "q": float(q), "region_seed": seed,
                "baseline_of": experiment_id, "variants": baseline.get("variants"),
            }))
    return found


def _rank_experiments(region: str, entry: dict[str, Any], reference_rank: int) -> list[tuple[str, dict[str, Any]]]:
    mode = entry.get("mode", "one-shot")
    safety = entry.get("safety_dataset", "safety-short" if region == "actsvd_bottom" else "safety-full")
    common = {
        "region": region, "score_method": "actsvd", "mode": mode, "safety_dataset": safety,
        "reference_rank": int(reference_rank), "variants": entry.get("variants"),
    }
    found = []
    if region == "orthogonal_projection":
        common["utility_dataset"] = entry.get("utility_dataset", "utility")
        for r_u, r_s in entry["points"]:
            experiment_id = f"{region}-{safety}-{mode}-ru{int(r_u)}-rs{int(r_s)}"
            found.append((experiment_id, {**common, "r_u": int(r_u), "r_s": int(r_s)}))
        return found
    for rank in entry["ranks"]:
        found.append((f"{region}-{safety}-{mode}-r{int(rank)}", {**common, "rank": int(rank)}))
    return found


def rank_bases(experiment_id: str, spec: dict[str, Any]) -> dict[str, str]:
    """Return the basis files a rank edit reads: {'safety': path} plus 'utility' for orthogonal projection.

    One-shot edits share the bases of their calibration sets; a sequential edit has its own, computed
    on the model edited block by block.
    """
    roles = {"safety": spec["safety_dataset"]}
    if spec["region"] == "orthogonal_projection":
        roles["utility"] = spec["utility_dataset"]
    if spec["mode"] == "sequential":
        return {role: sequential_bases_path(experiment_id, role) for role in roles}
    return {role: bases_path(dataset) for role, dataset in roles.items()}


def _attack_experiments(entry: dict[str, Any], region: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    data = entry.get("data", "harmful")
    found = []
    for count in entry["examples"]:
        for fraction in entry.get("protected_fractions", [0.0]):
            protection = entry.get("protection", "freeze") if fraction > 0 else "none"
            experiment_id = f"finetune_attack-{data}-n{int(count)}-{protection}-q{format_fraction(fraction)}"
            found.append((experiment_id, {
                "region": "finetune_attack", "attack_data": data, "attack_examples": int(count),
                "protection": protection, "protected_fraction": float(fraction),
                "score_method": region["score_method"] if fraction > 0 else None,
                "selection": region["selection"] if fraction > 0 else None,
                "safety_dataset": region["safety_dataset"] if fraction > 0 else None,
                "variants": entry.get("variants"),
            }))
    return found


def attack_inputs(spec: dict[str, Any]) -> dict[str, str]:
    """Return what a fine-tuning attack reads besides the aligned model: its examples and the protected region's scores."""
    inputs = {"examples": ATTACK_DATA if spec["attack_data"] == "harmful" else calibration_path("utility")}
    if spec["protected_fraction"] > 0:
        inputs["scores"] = score_path(spec["score_method"], spec["safety_dataset"])
    return inputs


def build_registry(config: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Map each experiment id to its parameters, the evaluation variants it runs and its region file."""
    candidates: list[tuple[str, dict[str, Any]]] = [("aligned", {"model": "aligned", "region": "none"})]
    if config.get("alignment", {}).get("enabled", True):
        # An already aligned model (alignment disabled) has no separate base model to evaluate.
        candidates.insert(0, ("base", {"model": "base", "region": "none"}))
    settings = config.get("regions", {})
    for region in ("top", "bottom"):
        for entry in settings.get(region, []):
            candidates.extend(_pruning_experiments(region, entry))
    for entry in settings.get("set_difference", []):
        candidates.extend(_set_difference_experiments(entry))
    probing = settings.get("head_probing") or {}
    for k in probing.get("top_k", []):
        candidates.append((f"head_probing-k{k}", {"region": "head_probing", "top_k": int(k), "variants": probing.get("variants")}))
    rank_settings = config.get("ranks", {})
    for key, region in (("top", "actsvd_top"), ("bottom", "actsvd_bottom"), ("orthogonal_projection", "orthogonal_projection")):
        for entry in rank_settings.get(key, []):
            candidates.extend(_rank_experiments(region, entry, rank_settings.get("reference_rank", 576)))
    attack_settings = config.get("attacks", {})
    protected = attack_settings.get("protected_region", {"score_method": "snip", "selection": "row", "safety_dataset": "safety-full"})
    for entry in attack_settings.get("sweeps", []):
        candidates.extend(_attack_experiments(entry, protected))

    all_variants = list(config.get("evaluation", {}).get("variants", ["vanilla", "adv_suffix", "adv_decoding"]))
    registry: dict[str, dict[str, Any]] = {}
    for experiment_id, spec in candidates:
        if experiment_id in registry:
            raise RegistryError(
                f"experiment '{experiment_id}' appears twice under regions, ranks or attacks; remove the repeated grid value"
            )
        spec = copy.deepcopy(spec)
        spec.setdefault("model", "aligned")
        for column in PARAMETER_COLUMNS:
            spec.setdefault(column, None)
        spec["variants"] = [v for v in all_variants if v in (spec.get("variants") or all_variants)]
        is_rank = spec["region"] in RANK_REGIONS
        has_mask = spec["region"] not in ("none", "finetune_attack") and not is_rank
        spec["region_path"] = region_path(experiment_id) if has_mask else None
        spec["bases"] = rank_bases(experiment_id, spec) if is_rank else None
        registry[experiment_id] = spec
    return registry


def region_inputs(spec: dict[str, Any], registry: dict[str, dict[str, Any]]) -> dict[str, str]:
    """Return the artifacts an experiment's region is computed from, keyed by input name."""
    region = spec["region"]
    if region == "random_baseline":
        return {"matched_region": registry[spec["baseline_of"]]["region_path"]}
    if region == "head_probing":
        return {"model": model_path("aligned"), "probes": PROBES}
    datasets = [spec["safety_dataset"]] + ([spec["utility_dataset"]] if region == "set_difference" else [])
    if spec["score_method"] in WEIGHT_SCORES:
        return {"model": model_path("aligned")}
    if spec["mode"] == "sequential":
        inputs = {"model": model_path("aligned")}
        inputs.update({f"calibration_{name}": calibration_path(name) for name in datasets})
        return inputs
    return {f"scores_{name}": score_path(spec["score_method"], name) for name in datasets}


def evaluation_settings(config: dict[str, Any], spec: dict[str, Any]) -> dict[str, Any]:
    """Return the evaluation parameters of one experiment: the shared ones, restricted to its attack variants."""
    settings = copy.deepcopy(config["evaluation"])
    settings["variants"] = list(spec["variants"])
    return settings

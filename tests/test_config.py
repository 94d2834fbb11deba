"""Parameter validation: every bad value is named with its key and the allowed values."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from safety_brittleness.codedeps import module_files
from safety_brittleness.config import ParameterError, check_sources, load_schema, validate_params

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = load_schema(ROOT / "workflow/schemas/params.schema.yaml")
PARAMS = yaml.safe_load((ROOT / "params.yaml").read_text())


def with_value(path: list, value):
    config = copy.deepcopy(PARAMS)
    target = config
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return config


def test_default_params_are_valid():
    validate_params(PARAMS, SCHEMA)
    check_sources(PARAMS)


def scalar_defaults(schema: dict, path: tuple = ()):
    """Yield (key path, default) for every scalar default the schema declares."""
    if "default" in schema and not isinstance(schema["default"], (dict, list)):
        yield path, schema["default"]
    for key, sub in (schema.get("properties") or {}).items():
        yield from scalar_defaults(sub, path + (key,))


def test_schema_defaults_match_params_yaml():
    """A key left out of a configuration file takes the value that params.yaml documents."""
    differing = []
    for path, default in scalar_defaults(SCHEMA):
        value = PARAMS
        for key in path:
            value = value.get(key) if isinstance(value, dict) else None
        if value is not None and value != default:
            differing.append(f"{'.'.join(path)}: schema {default!r}, params.yaml {value!r}")
    assert differing == []


@pytest.mark.parametrize(
    ("path", "value", "expected"),
    [
        (["regions", "set_difference", 0, "points"], [[0.1, 1.5]], "regions.set_difference[0].points[0][1] = 1.5; allowed: number > 0 and <= 1"),
        (["regions", "set_difference", 0, "points"], [[0, 0.1]], "regions.set_difference[0].points[0][0] = 0; allowed: number > 0"),
        (["regions", "set_difference", 0, "points"], [], "regions.set_difference[0].points = []"),
        (["regions", "set_difference", 0, "selection"], "column", 'regions.set_difference[0].selection = "column"; allowed values: "row", "matrix"'),
        (["regions", "set_difference", 0, "score_method"], "gradnorm", 'allowed values: "snip", "wanda"'),
        (["regions", "set_difference", 0, "points"], [[0.3, 0.1], [0.1]], "points[1] = [0.1]; it needs at least 2 items"),
        (["regions", "set_difference", 0, "points"], [[0.1, 0.1, 0.2]], "points[0] = [0.1, 0.1, 0.2]; it allows at most 2 items"),
        (["regions", "set_difference", 0, "points"], [[0.1, 0.1], [0.1, 0.1]], "has a repeated item"),
        (["regions", "set_difference", 0, "mode"], "greedy", 'regions.set_difference[0].mode = "greedy"; allowed values: "one-shot", "sequential"'),
        (["regions", "set_difference", 1, "random_baseline", "seeds"], [-1], "random_baseline.seeds[0] = -1; allowed: integer >= 0"),
        (["regions", "set_difference", 1, "random_baseline", "points"], [[0.9, 0.9]], "random_baseline.points: [[0.9, 0.9]] is not among that entry's points"),
        (["regions", "top", 0, "sparsities"], [0.0], "regions.top[0].sparsities[0] = 0.0; allowed: number > 0 and <= 1"),
        (["regions", "top", 0, "score_method"], "grasp", 'regions.top[0].score_method = "grasp"; allowed values: "snip", "wanda", "magnitude", "random"'),
        (["regions", "top", 0, "safety_dataset"], "alpaca", 'regions.top[0].safety_dataset = "alpaca"'),
        (["regions", "bottom", 3, "mode"], "sequential", 'regions.bottom[3].mode = "sequential" with score_method random; allowed: one-shot'),
        (["regions", "bottom", 0, "seeds"], [1, 2], "regions.bottom[0].seeds: seeds apply to score_method random only, not snip"),
        (["regions", "bottom", 0, "variants"], ["vanilla", "jailbreak"], 'regions.bottom[0].variants[1] = "jailbreak"'),
        (["regions", "head_probing", "top_k"], [0], "regions.head_probing.top_k[0] = 0; allowed: integer >= 1"),
        (["regions", "head_probing", "test_fraction"], 1.0, "regions.head_probing.test_fraction = 1.0; allowed: number > 0 and < 1"),
        (["regions", "head_probing", "harmless_splits"], ["evaluation"], 'regions.head_probing.harmless_splits[0] = "evaluation"'),
        (["regions", "overlap", "fraction"], 0, "regions.overlap.fraction = 0; allowed: number > 0 and <= 1"),
        (["figures", "fig3_min_accuracy"], 1.5, "figures.fig3_min_accuracy = 1.5; allowed: number >= 0 and <= 1"),
        (["evaluation", "prompts"], 0, "evaluation.prompts = 0"),
        (["runtime", "dtype"], "int8", 'runtime.dtype = "int8"; allowed values: "float32", "bfloat16", "float16"'),
        (["runtime", "device"], "tpu", 'runtime.device = "tpu"; auto, cpu, cuda or cuda:N'),
        (["runtime", "seed"], -1, "runtime.seed = -1; allowed: integer >= 0"),
        (["alignment", "learning_rate"], 0.5, "alignment.learning_rate = 0.5; allowed: number > 0 and <= 0.01"),
        (["alignment", "epochs"], 0, "alignment.epochs = 0; allowed: integer >= 1"),
        (["calibration", "samples"], "many", 'calibration.samples = "many"'),
        (["evaluation", "judge"], "oracle", 'evaluation.judge = "oracle"; allowed values: "keyword", "classifier"'),
        (["evaluation", "variants"], ["vanilla", "jailbreak"], 'evaluation.variants[1] = "jailbreak"'),
        (["evaluation", "aggregations"], ["mean"], 'evaluation.aggregations[0] = "mean"; allowed values: "paper", "reference_code"'),
        (["evaluation", "adv_decoding"], {"samples": 0}, "evaluation.adv_decoding.samples = 0; allowed: integer >= 1"),
        (["evaluation", "utility", "limit"], 0, "evaluation.utility.limit = 0"),
        (["model", "kind"], "onnx", 'model.kind = "onnx"; allowed values: "gguf_package", "local", "hub", "random_init"'),
        (["data", "harmful", "split_sizes", "evaluation"], 0, "data.harmful.split_sizes.evaluation = 0"),
        (["ranks", "reference_rank"], 0, "ranks.reference_rank = 0; allowed: integer >= 1"),
        (["ranks", "top", 0, "ranks"], [0], "ranks.top[0].ranks[0] = 0; allowed: integer >= 1"),
        (["ranks", "top", 0, "ranks"], [700], "ranks.top[0].ranks: 700 is above 576; allowed: 1 to 576"),
        (["ranks", "bottom", 0, "ranks"], [576], "ranks.bottom[0].ranks: 576 is above 575; allowed: 1 to 575"),
        (["ranks", "bottom", 0, "safety_dataset"], "utility", 'ranks.bottom[0].safety_dataset = "utility"'),
        (["ranks", "orthogonal_projection", 0, "points"], [[562, 600]], "ranks.orthogonal_projection[0].points: [562, 600]; allowed: r_u and r_s from 0 to ranks.reference_rank = 576"),
        (["ranks", "orthogonal_projection", 0, "points"], [[-1, 570]], "ranks.orthogonal_projection[0].points[0][0] = -1; allowed: integer >= 0"),
        (["ranks", "orthogonal_projection", 0, "mode"], "greedy", 'ranks.orthogonal_projection[0].mode = "greedy"'),
        (["attacks", "sweeps", 0, "examples"], [10, 500], "attacks.sweeps[0].examples: [500] is above the 100 examples available; allowed: 1 to 100, or raise data.harmful.split_sizes.attack"),
        (["attacks", "sweeps", 3, "examples"], [200], "attacks.sweeps[3].examples: [200] is above the 128 examples available"),
        (["attacks", "sweeps", 0, "protected_fractions"], [1.0], "attacks.sweeps[0].protected_fractions[0] = 1.0; allowed: number >= 0 and < 1"),
        (["attacks", "sweeps", 0, "protection"], "lock", 'attacks.sweeps[0].protection = "lock"; allowed values: "freeze", "rewind"'),
        (["attacks", "training", "epochs"], 0, "attacks.training.epochs = 0; allowed: integer >= 1"),
        (["attacks", "protected_region", "score_method"], "random", 'attacks.protected_region.score_method = "random"'),
    ],
)
def test_invalid_value_is_named(path, value, expected):
    with pytest.raises(ParameterError) as raised:
        validate_params(with_value(path, value), SCHEMA)
    assert expected in str(raised.value)


def test_unknown_key_is_named():
    config = with_value(["regions", "set_difference", 0, "sparsity"], 0.1)
    with pytest.raises(ParameterError, match=r"unknown parameter under regions.set_difference\[0\]"):
        validate_params(config, SCHEMA)


def test_misspelled_key_gets_suggestion():
    config = with_value(["evaluation", "max_new_token"], 32)
    with pytest.raises(ParameterError, match=r"max_new_token \(did you mean max_new_tokens\?\)"):
        validate_params(config, SCHEMA)


def test_unknown_lm_eval_task_is_named():
    config = with_value(["evaluation", "utility", "tasks"], ["boolq", "no_such_task"])
    with pytest.raises(ParameterError) as raised:
        check_sources(config)
    assert "'no_such_task' is not an lm-eval task" in str(raised.value)
    assert "'boolq'" not in str(raised.value)


def test_missing_suffix_file_is_named():
    config = with_value(["evaluation", "adv_suffix", "file"], "/nonexistent/suffixes.txt")
    with pytest.raises(ParameterError, match="evaluation.adv_suffix.file = '/nonexistent/suffixes.txt' not found"):
        check_sources(config)


def test_calibration_samples_above_candidates():
    config = with_value(["calibration", "samples"], 500)
    with pytest.raises(ParameterError, match="at most calibration.candidate_prompts"):
        validate_params(config, SCHEMA)


def test_missing_model_package_is_named():
    config = with_value(["model", "gguf_package"], {"package": "no-such-package", "file": "model.gguf"})
    with pytest.raises(ParameterError, match="package 'no-such-package' is not installed"):
        check_sources(config)


def test_scoring_code_closure():
    files = {Path(f).relative_to(ROOT / "src/safety_brittleness").as_posix() for f in module_files("safety_brittleness.steps.scoring", ROOT / "src/safety_brittleness")}
    assert {"scoring.py", "steps/scoring.py", "models.py", "__init__.py"} <= files
    assert "data.py" not in files
    assert "evaluation.py" not in files


def test_variants_outside_the_evaluated_ones_are_named():
    config = with_value(["evaluation", "variants"], ["vanilla"])
    with pytest.raises(ParameterError) as raised:
        validate_params(config, SCHEMA)
    assert 'regions.bottom[0].variants = ["adv_suffix", "adv_decoding"]; allowed: a subset of evaluation.variants (vanilla)' in str(raised.value)


def test_missing_attack_file_is_named():
    config = with_value(["attacks", "harmful_file"], "/nonexistent/attack.jsonl")
    with pytest.raises(ParameterError, match="attacks.harmful_file = '/nonexistent/attack.jsonl' not found"):
        check_sources(config)


def test_missing_vllm_is_named(monkeypatch):
    import importlib.util

    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *args: None if name == "vllm" else real_find_spec(name, *args))
    config = with_value(["runtime", "generation_backend"], "vllm")
    with pytest.raises(ParameterError, match="runtime.generation_backend = 'vllm', but vllm is not installed"):
        check_sources(config)


def test_paper_data_keys_are_checked():
    config = with_value(["data", "harmful", "files"], [{"download": "advbench"}])
    with pytest.raises(ParameterError, match=r"data.harmful.files\[0\].download = \"advbench\"; allowed: a name under data.downloads \(none defined\)"):
        validate_params(config, SCHEMA)
    config = with_value(["calibration", "utility_responses"], "dataset")
    with pytest.raises(ParameterError, match="calibration.utility_responses = \"dataset\"; the shipped benign instructions have no responses"):
        validate_params(config, SCHEMA)
    config = with_value(["data", "downloads"], {"advbench": {"sha256": "ab" * 32}})
    with pytest.raises(ParameterError, match="data.downloads.advbench: it has neither url nor local_copy"):
        validate_params(config, SCHEMA)
    config = with_value(["alignment", "enabled"], False)
    with pytest.raises(ParameterError, match="attacks.harmful_file = null with alignment.enabled false"):
        validate_params(config, SCHEMA)
    config = with_value(["data", "downloads"], {"advbench": {"url": "ftp://host/file.csv", "sha256": "ab" * 32}})
    with pytest.raises(ParameterError, match="data.downloads.advbench.url"):
        validate_params(config, SCHEMA)

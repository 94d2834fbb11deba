"""Validation of the workflow parameters, with messages that name the key, the value and the fix."""

from __future__ import annotations

import difflib
import importlib.util
import json
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from safety_brittleness.models import ModelSourceError, check_model_source, locate_package_file


class ParameterError(ValueError):
    """One or more parameters are invalid; the message lists each with its allowed values."""


def _key_path(path) -> str:
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        elif text:
            text += f".{part}"
        else:
            text = str(part)
    return text or "(top level)"


def _allowed(schema: dict[str, Any]) -> str:
    if "enum" in schema:
        return "allowed values: " + ", ".join(json.dumps(v) for v in schema["enum"])
    if "const" in schema:
        return f"allowed value: {json.dumps(schema['const'])}"
    bounds = []
    if "minimum" in schema:
        bounds.append(f">= {schema['minimum']}")
    if "exclusiveMinimum" in schema:
        bounds.append(f"> {schema['exclusiveMinimum']}")
    if "maximum" in schema:
        bounds.append(f"<= {schema['maximum']}")
    if "exclusiveMaximum" in schema:
        bounds.append(f"< {schema['exclusiveMaximum']}")
    if bounds:
        kind = schema.get("type", "number")
        return f"allowed: {kind} {' and '.join(bounds)}"
    if "pattern" in schema:
        return schema.get("description", f"allowed pattern: {schema['pattern']}")
    if "type" in schema:
        return f"expected type: {schema['type']}"
    return schema.get("description", "see workflow/schemas/params.schema.yaml")


def describe_error(error: jsonschema.ValidationError) -> str:
    key = _key_path(error.absolute_path)
    if error.validator == "required":
        missing = error.message.split("'")[1] if "'" in error.message else error.message
        prefix = f"{key}." if error.absolute_path else ""
        return f"missing parameter {prefix}{missing}"
    if error.validator == "additionalProperties":
        allowed = sorted(error.schema.get("properties", {}))
        unknown = sorted(set(error.instance) - set(allowed))
        hints = []
        for name in unknown:
            close = difflib.get_close_matches(name, allowed, n=1)
            hints.append(f"{name} (did you mean {close[0]}?)" if close else name)
        return f"unknown parameter under {key}: {', '.join(hints)}; allowed keys: {', '.join(allowed)}"
    if error.validator in ("minItems", "maxItems", "uniqueItems", "minLength"):
        value = json.dumps(error.instance, default=str)
        rule = {
            "minItems": f"needs at least {error.validator_value} items",
            "maxItems": f"allows at most {error.validator_value} items",
            "uniqueItems": "has a repeated item; each item must be unique",
            "minLength": f"needs at least {error.validator_value} characters",
        }[error.validator]
        return f"invalid parameter {key} = {value}; it {rule}"
    value = json.dumps(error.instance, default=str)
    if len(value) > 80:
        value = value[:77] + "..."
    return f"invalid parameter {key} = {value}; {_allowed(error.schema)}"


def load_schema(path: str | Path) -> dict[str, Any]:
    return yaml.safe_load(Path(path).read_text())


def sort_keys(value: Any) -> Any:
    """Return `value` with the keys of every mapping in it sorted, lists kept in their order."""
    if isinstance(value, dict):
        return {key: sort_keys(value[key]) for key in sorted(value)}
    if isinstance(value, list):
        return [sort_keys(item) for item in value]
    return value


def validate_params(config: dict[str, Any], schema: dict[str, Any]) -> None:
    """Raise ParameterError listing every schema violation in `config`."""
    validator = jsonschema.Draft202012Validator(schema)
    errors = sorted(validator.iter_errors(config), key=lambda e: list(map(str, e.absolute_path)))
    messages = []
    for error in errors:
        # For if/then and oneOf failures, report the innermost causes, which name the real key.
        causes = list(error.context) if error.context else []
        leaves = [e for e in causes if not e.context] or [error]
        messages.extend(describe_error(leaf) for leaf in leaves)
    messages.extend(_check_consistency(config))
    if messages:
        unique = list(dict.fromkeys(messages))
        raise ParameterError("invalid parameters:\n  - " + "\n  - ".join(unique))


def _check_consistency(config: dict[str, Any]) -> list[str]:
    """Check relations between keys, which a JSON schema cannot express."""
    messages = []
    calibration = config.get("calibration", {})
    samples = calibration.get("samples")
    candidates = calibration.get("candidate_prompts")
    if isinstance(samples, int) and isinstance(candidates, int) and samples > candidates:
        messages.append(
            f"invalid parameter calibration.samples = {calibration.get('samples')}; "
            f"allowed: at most calibration.candidate_prompts ({calibration.get('candidate_prompts')})"
        )
    messages.extend(_check_regions(config))
    messages.extend(_check_data(config))
    return messages


def _check_data(config: dict[str, Any]) -> list[str]:
    """Check that every named download exists and can be fetched or copied."""
    messages = []
    data = config.get("data") if isinstance(config.get("data"), dict) else {}
    downloads = data.get("downloads") or {}
    known = ", ".join(sorted(downloads)) or "none defined"
    for name, entry in downloads.items():
        if isinstance(entry, dict) and not entry.get("url") and not entry.get("local_copy"):
            messages.append(f"invalid parameter data.downloads.{name}: it has neither url nor local_copy; give one of them")
    harmful = data.get("harmful") if isinstance(data.get("harmful"), dict) else {}
    for index, entry in enumerate(harmful.get("files") or []):
        if isinstance(entry, dict) and "download" in entry and entry["download"] not in downloads:
            messages.append(
                f"invalid parameter data.harmful.files[{index}].download = {json.dumps(entry['download'])}; "
                f"allowed: a name under data.downloads ({known})"
            )
    benign = data.get("benign") if isinstance(data.get("benign"), dict) else {}
    calibration = config.get("calibration") if isinstance(config.get("calibration"), dict) else {}
    if calibration.get("utility_responses") == "dataset" and benign.get("source") != "download":
        messages.append(
            "invalid parameter calibration.utility_responses = \"dataset\"; the shipped benign instructions have no "
            "responses: use utility_responses: model, or data.benign.source: download"
        )
    if not config.get("alignment", {}).get("enabled", True) and config.get("attacks", {}).get("sweeps") \
            and not config.get("attacks", {}).get("harmful_file"):
        messages.append(
            "invalid parameter attacks.harmful_file = null with alignment.enabled false: the attack examples are the "
            "base model's answers, and an already aligned model refuses; give a file of harmful examples"
        )
    if benign.get("source") == "download" and benign.get("download") not in downloads:
        messages.append(
            f"invalid parameter data.benign.download = {json.dumps(benign.get('download'))}; with source: download "
            f"it must name an entry of data.downloads ({known})"
        )
    return messages


def _check_regions(config: dict[str, Any]) -> list[str]:
    """Check choices that depend on each other inside the region grids."""
    messages = []
    regions = config.get("regions")
    if not isinstance(regions, dict):
        return messages
    evaluated = set(config.get("evaluation", {}).get("variants", ["vanilla", "adv_suffix", "adv_decoding"]))
    entries = []
    for family in ("top", "bottom", "set_difference"):
        for index, entry in enumerate(regions.get(family) or []):
            if isinstance(entry, dict):
                entries.append((f"regions.{family}[{index}]", entry))
                if isinstance(entry.get("random_baseline"), dict):
                    entries.append((f"regions.{family}[{index}].random_baseline", entry["random_baseline"]))
    if isinstance(regions.get("head_probing"), dict):
        entries.append(("regions.head_probing", regions["head_probing"]))
    ranks = config.get("ranks") if isinstance(config.get("ranks"), dict) else {}
    for family in ("top", "bottom", "orthogonal_projection"):
        for index, entry in enumerate(ranks.get(family) or []):
            if isinstance(entry, dict):
                entries.append((f"ranks.{family}[{index}]", entry))
    attacks = config.get("attacks") if isinstance(config.get("attacks"), dict) else {}
    for index, entry in enumerate(attacks.get("sweeps") or []):
        if isinstance(entry, dict):
            entries.append((f"attacks.sweeps[{index}]", entry))
    for key, entry in entries:
        method = entry.get("score_method")
        if entry.get("mode") == "sequential" and method in ("magnitude", "random"):
            messages.append(
                f"invalid parameter {key}.mode = \"sequential\" with score_method {method}; "
                "allowed: one-shot (these scores do not depend on the inputs of a block)"
            )
        if "seeds" in entry and method not in (None, "random"):
            messages.append(f"invalid parameter {key}.seeds: seeds apply to score_method random only, not {method}")
        variants = entry.get("variants")
        if isinstance(variants, list):
            extra = [v for v in variants if v not in evaluated]
            if extra:
                messages.append(
                    f"invalid parameter {key}.variants = {json.dumps(variants)}; allowed: a subset of "
                    f"evaluation.variants ({', '.join(sorted(evaluated))})"
                )
    messages.extend(_check_ranks(ranks))
    messages.extend(_check_attacks(config, attacks))
    for index, entry in enumerate(regions.get("set_difference") or []):
        baseline = entry.get("random_baseline") if isinstance(entry, dict) else None
        if isinstance(baseline, dict) and isinstance(baseline.get("points"), list):
            points = [list(point) for point in entry.get("points", [])]
            missing = [point for point in baseline["points"] if list(point) not in points]
            if missing:
                messages.append(
                    f"invalid parameter regions.set_difference[{index}].random_baseline.points: {json.dumps(missing)} "
                    "is not among that entry's points"
                )
    return messages


def _check_ranks(ranks: dict[str, Any]) -> list[str]:
    """Check that every rank of the rank sweeps fits the width they are given at."""
    reference = ranks.get("reference_rank", 576)
    if not isinstance(reference, int):
        return []
    messages = []
    limits = {"top": reference, "bottom": reference - 1}
    for family, limit in limits.items():
        for index, entry in enumerate(ranks.get(family) or []):
            values = entry.get("ranks") if isinstance(entry, dict) else None
            for value in values if isinstance(values, list) else []:
                if isinstance(value, int) and value > limit:
                    messages.append(
                        f"invalid parameter ranks.{family}[{index}].ranks: {value} is above {limit}; allowed: 1 to {limit} "
                        f"at ranks.reference_rank = {reference}"
                        + (" (removing every direction would zero the weights)" if family == "bottom" else "")
                    )
    for index, entry in enumerate(ranks.get("orthogonal_projection") or []):
        points = entry.get("points") if isinstance(entry, dict) else None
        for point in points if isinstance(points, list) else []:
            if isinstance(point, list) and any(isinstance(v, int) and v > reference for v in point):
                messages.append(
                    f"invalid parameter ranks.orthogonal_projection[{index}].points: {json.dumps(point)}; allowed: r_u and "
                    f"r_s from 0 to ranks.reference_rank = {reference}"
                )
    return messages


def _check_attacks(config: dict[str, Any], attacks: dict[str, Any]) -> list[str]:
    """Check that no attack sweep requests more examples than its data contains.

    With attacks.harmful_file set, the harmful examples are the rows of that file.
    """
    harmful = (config.get("data", {}).get("harmful", {}).get("split_sizes", {}).get("attack"), "data.harmful.split_sizes.attack")
    harmful_file = attacks.get("harmful_file")
    if harmful_file:
        harmful = (_count_examples(harmful_file), f"the rows of attacks.harmful_file {harmful_file!r}")
    available = {"harmful": harmful, "benign": (config.get("calibration", {}).get("samples"), "calibration.samples")}
    messages = []
    for index, entry in enumerate(attacks.get("sweeps") or []):
        if not isinstance(entry, dict) or not isinstance(entry.get("examples"), list):
            continue
        limit, key = available.get(entry.get("data", "harmful"), (None, None))
        too_many = [n for n in entry["examples"] if isinstance(n, int) and isinstance(limit, int) and n > limit]
        if too_many:
            messages.append(
                f"invalid parameter attacks.sweeps[{index}].examples: {json.dumps(too_many)} is above the {limit} "
                f"examples available; allowed: 1 to {limit}, or raise {key}"
            )
    return messages


def _count_examples(path: str) -> int | None:
    """Rows of a Parquet or JSON Lines file of attack examples; None when it cannot be read yet."""
    if not Path(path).is_file():
        return None
    if str(path).endswith(".parquet"):
        import pyarrow.parquet as pq

        return pq.ParquetFile(path).metadata.num_rows
    with open(path, encoding="utf-8") as handle:
        return sum(1 for line in handle if line.strip())


def _check_lm_eval_tasks(tasks: list[str]) -> list[str]:
    """Return a message for each task name that lm-eval does not know."""
    from lm_eval.tasks import TaskManager

    known = set(TaskManager().all_tasks)
    return [
        f"evaluation.utility.tasks: '{task}' is not an lm-eval task; use 'embedded' or names such as boolq, arc_challenge"
        for task in tasks
        if task not in known
    ]


def model_source(config: dict[str, Any]) -> dict[str, Any]:
    """Return the model source of `config`: its kind plus the settings of that kind."""
    kind = config["model"]["kind"]
    source = {"kind": kind, **config["model"][kind]}
    if config["model"].get("chat_template"):
        source["chat_template"] = config["model"]["chat_template"]
    return source


def check_sources(config: dict[str, Any]) -> None:
    """Raise ParameterError when the model or a data package named in `config` is missing."""
    messages = []
    try:
        check_model_source(model_source(config))
    except ModelSourceError as error:
        messages.append(f"model.{config['model']['kind']}: {error}")
    for index, entry in enumerate(config["data"]["harmful"]["files"]):
        if "download" in entry:
            continue
        try:
            locate_package_file(entry["package"], entry["path"])
        except ModelSourceError as error:
            messages.append(f"data.harmful.files[{index}]: {error}")
    for name, entry in (config["data"].get("downloads") or {}).items():
        local_copy = entry.get("local_copy")
        if local_copy and not Path(local_copy).is_file():
            messages.append(f"data.downloads.{name}.local_copy = {local_copy!r} not found; give the path of the downloaded file")
    filter_file = config["data"]["benign"].get("filter_phrases")
    if filter_file and not Path(filter_file).is_file():
        messages.append(f"data.benign.filter_phrases = {filter_file!r} not found; give a YAML file with a 'phrases' list")
    if config.get("runtime", {}).get("generation_backend") == "vllm" and importlib.util.find_spec("vllm") is None:
        messages.append(
            "runtime.generation_backend = 'vllm', but vllm is not installed; install it on a CUDA machine "
            "(pip install vllm) or use transformers"
        )
    evaluation = config.get("evaluation", {})
    suffix_file = evaluation.get("adv_suffix", {}).get("file")
    if suffix_file and not Path(suffix_file).is_file():
        messages.append(f"evaluation.adv_suffix.file = {suffix_file!r} not found; give a file of suffixes, one per line")
    tasks = evaluation.get("utility", {}).get("tasks", "embedded")
    if isinstance(tasks, list):
        messages.extend(_check_lm_eval_tasks(tasks))
    attack_file = config.get("attacks", {}).get("harmful_file")
    if attack_file and not Path(attack_file).is_file():
        messages.append(
            f"attacks.harmful_file = {attack_file!r} not found; give a Parquet or JSON Lines file with prompt and "
            "response columns, or null to use the base model's answers"
        )
    if evaluation.get("judge") == "classifier":
        path = evaluation.get("classifier_path")
        if not path or not (Path(path) / "config.json").is_file():
            messages.append(
                f"evaluation.classifier_path = {path!r} is not a model folder (no config.json); "
                "the classifier judge needs a local guard model folder"
            )
    if messages:
        raise ParameterError("missing inputs:\n  - " + "\n  - ".join(messages))

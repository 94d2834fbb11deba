"""Run workflow jobs on the profile's threads and again on one thread each, two side by side; compare times and outputs.

Run it on a checkout of the workflow. A first, untimed pass builds the targets' missing inputs
(with the default targets: the data, the aligned model and what the two passes do not force):

    .venv/bin/python benchmarks/thread_allocation.py --workdir . [--target FILE ...] [--rule RULE ...]

Both timed passes force the listed rules to run (`--forcerun`), so each pass runs every job of
those rules that the targets need. The first pass gives the jobs the threads of the profile
(`resources.model_jobs.cpus`: all cores, one job at a time). The second gives every listed rule
one thread (`--set-threads RULE=1`), so on two cores two jobs run side by side. The tables give
each job's time from its log, the wall time of each pass, and whether each output file is the
same in both passes, by content: the tensors of a safetensors file, the frame of a Parquet file.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import torch
from safetensors.torch import load_file

from report import heading, table, write_section
from stage_resources import FINISHED

# Inputs of one evaluation of a one-shot set-difference region and of one fine-tuning attack, after alignment.
TARGETS = [
    "results/calibration/safety-full.parquet",
    "results/calibration/utility.parquet",
    "results/attacks/harmful_answers.parquet",
    "results/scores/snip/safety-full.safetensors",
    "results/scores/snip/utility.safetensors",
    "results/scores/wanda/safety-full.safetensors",
    "results/ranks/grams/safety-full.safetensors",
    "results/ranks/bases/safety-full.safetensors",
    "results/probes/heads.parquet",
    "results/regions/set_difference-snip-matrix-safety-full-one-shot-p0.2-q0.05.safetensors",
    "results/evaluation/finetune_attack-harmful-n10-none-q0.parquet",
]
RULES = [
    "build_safety_calibration", "build_utility_calibration", "generate_attack_data", "score_snip", "score_wanda",
    "compute_grams", "compute_bases", "probe_heads", "extract_region", "evaluate_attack",
]


def snakemake(workdir: Path, targets: list[str], extra: list[str]) -> float:
    """Run Snakemake on the default profile in `workdir`; return its wall time in seconds."""
    command = [sys.executable, "-m", "snakemake", "--profile", "workflow/profiles/default", *targets, *extra]
    start = time.perf_counter()
    subprocess.run(command, cwd=workdir, check=True)
    return time.perf_counter() - start


def job_times(logs: Path, since: float) -> dict[str, float]:
    """Return the logged seconds of each job whose log was written after `since`, by log path without `.log`."""
    times = {}
    for path in sorted(logs.rglob("*.log")):
        if path.stat().st_mtime < since:
            continue
        matches = FINISHED.findall(path.read_text(errors="replace"))
        if matches:
            times[str(path.relative_to(logs).with_suffix(""))] = float(matches[-1][1])
    return times


def keep_outputs(results: Path, since: float, destination: Path) -> list[str]:
    """Copy the files under `results` written after `since` to `destination`; return their relative paths."""
    copied = []
    for path in sorted(results.rglob("*")):
        if path.is_file() and path.stat().st_mtime >= since:
            relative = path.relative_to(results)
            (destination / relative).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, destination / relative)
            copied.append(str(relative))
    return copied


def difference(first: Path, second: Path) -> str:
    """Describe how two versions of one output differ by content: 'none' when they are the same."""
    if not second.exists():
        return "missing in the second pass"
    if first.suffix == ".safetensors":
        left, right = load_file(first), load_file(second)
        if left.keys() != right.keys():
            return "different tensor names"
        changed = [name for name in left if not torch.equal(left[name], right[name])]
        if not changed:
            return "none"
        entries = sum(int((left[name] != right[name]).sum()) for name in changed)
        scale = max(float(left[name].double().abs().max()) for name in changed) or 1.0
        largest = max(float((left[name].double() - right[name].double()).abs().max()) for name in changed)
        return f"{entries} entries in {len(changed)} tensors, largest difference {largest / scale:.1e} of the largest value"
    if first.suffix == ".parquet":
        left, right = pd.read_parquet(first), pd.read_parquet(second)
        if left.shape != right.shape or list(left.columns) != list(right.columns):
            return f"shape {left.shape} against {right.shape}"
        changed = [column for column in left.columns if not left[column].equals(right[column])]
        if not changed:
            return "none"
        rows = int((left[changed].astype(str) != right[changed].astype(str)).any(axis=1).sum())
        return f"{rows} of {len(left)} rows, in {', '.join(changed)}"
    return "none" if first.read_bytes() == second.read_bytes() else "different bytes"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", default=".", help="checkout to run the workflow in")
    parser.add_argument("--target", action="append", default=None, help=f"output to build (default: {len(TARGETS)} files)")
    parser.add_argument("--rule", action="append", default=None, help="rule to force and give one thread (default: the model rules of the targets)")
    parser.add_argument("--configfile", default=None, help="parameter file merged over params.yaml, as for Snakemake")
    parser.add_argument("--no-write", action="store_true", help="print the tables without writing docs/benchmarks.md")
    arguments = parser.parse_args()
    workdir = Path(arguments.workdir).resolve()
    if not (workdir / "Snakefile").is_file():
        parser.error(f"--workdir {arguments.workdir!r} has no Snakefile; pass the checkout to run the workflow in")
    targets, rules = arguments.target or TARGETS, arguments.rule or RULES
    config = ["--configfile", str(Path(arguments.configfile).resolve())] if arguments.configfile else []

    snakemake(workdir, targets, config)  # builds whatever the targets still miss; not timed
    passes = {"profile threads": [], "one thread each": ["--set-threads", *(f"{rule}=1" for rule in rules)]}
    walls, times = {}, {}
    with tempfile.TemporaryDirectory() as folder:
        copied = {}
        for index, (name, extra) in enumerate(passes.items()):
            start = time.time()
            walls[name] = snakemake(workdir, targets, [*config, "--forcerun", *rules, *extra])
            times[name] = job_times(workdir / "logs", start)
            copied[name] = keep_outputs(workdir / "results", start, Path(folder) / str(index))
        first, second = (Path(folder) / str(index) for index in range(2))
        outputs = [[path, difference(first / path, second / path)] for path in copied["profile threads"]]

    names = list(passes)
    jobs = sorted(set(times[names[0]]) | set(times[names[1]]))
    rows = [[job, *(f"{times[name][job]:.1f}" if job in times[name] else "-" for name in names)] for job in jobs]
    rows.append(["all jobs, wall time of the pass", *(f"{walls[name]:.0f}" for name in names)])
    same = sum(1 for _, change in outputs if change == "none")
    text = "\n".join([
        heading("Threads per job: the profile's against one thread each", root=workdir),
        f"Rules forced and given one thread in the second pass: {', '.join(rules)}. Job times from the job logs (s).",
        "",
        table(["job", "profile threads (s)", "one thread each (s)"], rows),
        "",
        f"{same} of {len(outputs)} output files are the same in both passes.",
        "",
        table(["output", "difference"], outputs),
    ])
    print(text)
    if not arguments.no_write:
        write_section("thread-allocation", text)


if __name__ == "__main__":
    main()

"""Summarise the wall time and peak resident memory of every workflow stage from the job logs.

Every job logs `rule NAME finished in S s, peak RSS M MiB` as its last line. Run from the
repository root (or pass the working directory of a run) after a workflow run:

    .venv/bin/python benchmarks/stage_resources.py [--workdir .] [--title "embedded main job, cold"]

Prints a Markdown table, one row per rule (jobs, total and largest job time, largest peak RSS),
and writes it to docs/benchmarks.md. Jobs whose log has no such line (failed, killed, or run by
an older version) are counted as missing.
"""

from __future__ import annotations

import argparse
import re
from collections import defaultdict
from pathlib import Path

from report import heading, table, write_section

FINISHED = re.compile(r"rule (\S+) finished in ([0-9.]+) s, peak RSS ([0-9]+) MiB")


def read_logs(logs: Path) -> tuple[dict[str, list[tuple[float, int]]], list[Path]]:
    """Return the (seconds, peak MiB) of each finished job by rule, and the logs without that line."""
    jobs: dict[str, list[tuple[float, int]]] = defaultdict(list)
    missing = []
    for path in sorted(logs.rglob("*.log")):
        matches = FINISHED.findall(path.read_text(errors="replace"))
        if not matches:
            missing.append(path)
            continue
        rule, seconds, peak = matches[-1]
        jobs[rule].append((float(seconds), int(peak)))
    return jobs, missing


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", default=".", help="working directory of the run (contains logs/)")
    parser.add_argument("--title", default="embedded main job", help="what ran, for the heading")
    parser.add_argument("--no-write", action="store_true", help="print the table without writing docs/benchmarks.md")
    arguments = parser.parse_args()

    jobs, missing = read_logs(Path(arguments.workdir) / "logs")
    if not jobs:
        raise SystemExit(f"no finished job found in {Path(arguments.workdir) / 'logs'}; run the workflow there first")
    rows = []
    for rule, measured in sorted(jobs.items(), key=lambda item: -sum(seconds for seconds, _ in item[1])):
        times = [seconds for seconds, _ in measured]
        rows.append([
            rule, len(measured), f"{sum(times):.0f}", f"{max(times):.0f}", max(peak for _, peak in measured),
        ])
    total = sum(seconds for measured in jobs.values() for seconds, _ in measured)
    text = "\n".join([
        heading(f"Time and peak memory per stage: {arguments.title}", root=Path(arguments.workdir)),
        f"{sum(len(measured) for measured in jobs.values())} jobs, {total / 60:.1f} min of job time in all "
        "(the step itself, without starting Python). Peak RSS is the largest of the rule's jobs.",
        "",
        table(["rule", "jobs", "total (s)", "largest job (s)", "peak RSS (MiB)"], rows),
    ])
    if missing:
        text += f"\n\n{len(missing)} job logs have no finished line, for example `{missing[0]}`."
    print(text)
    if not arguments.no_write:
        write_section("stages-" + re.sub(r"[^a-z0-9]+", "-", arguments.title.lower()).strip("-"), text)


if __name__ == "__main__":
    main()

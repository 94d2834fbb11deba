"""Restore results from a DVC remote so that Snakemake treats them as up to date.

`dvc pull` writes every file of results/ with the time of the pull, in no particular order, and a
fresh clone has no Snakemake records (.snakemake/metadata) of the parameters and code behind each
file. Snakemake would then rerun jobs whose inputs look newer than their outputs, and it could not
see a later parameter change. After the pull, DVC's status confirms that the files belong to the
checked-out parameters and code. Then `snakemake --touch --forceall` sets the modification times in
the order of the DAG and records the current parameters and code for every job.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

PROFILE = "workflow/profiles/default"


class RestoreError(RuntimeError):
    """A step of the restore failed: the message names the step and the fix."""


def _run(command: list[str], step: str, fix: str) -> subprocess.CompletedProcess:
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        output = (result.stdout + result.stderr).strip()
        raise RestoreError(f"{step} failed (exit code {result.returncode}): {output[-2000:]}\n{fix}")
    return result


def has_unrecorded_results(results: Path = Path("results"), records: Path = Path(".snakemake")) -> bool:
    """Return True when results/ contains Parquet files but Snakemake has no record of any job.

    A job that Snakemake started and lost (a killed run) leaves a marker in .snakemake/incomplete,
    which counts as a record: Snakemake reruns that job itself.
    """
    if not results.is_dir() or not any(results.rglob("*.parquet")):
        return False
    return not any(
        (records / name).is_dir() and any((records / name).iterdir()) for name in ("metadata", "incomplete")
    )


def pull_results(remote: str | None = None, jobs: int | None = None) -> int:
    """Fetch results/ with `dvc pull`, check that it matches the checkout, and mark it up to date.

    Returns the number of results files. Raises RestoreError, before any file time is changed, when
    the pulled results belong to other parameters or code.
    """
    pull = [sys.executable, "-m", "dvc", "pull"]
    if remote:
        pull += ["--remote", remote]
    if jobs:
        pull += ["--jobs", str(jobs)]
    _run(pull, "dvc pull", "Check the remote with `dvc remote list` and that it holds the results of this commit "
                           "(`dvc push` on the machine that computed them).")
    status = _run([sys.executable, "-m", "dvc", "status", "--json"], "dvc status", "Run `dvc status` to see the message.")
    changes = json.loads(status.stdout or "{}")
    if changes:
        raise RestoreError(
            "the pulled results do not match this checkout, so they were left as pulled and not marked up to date: "
            f"{json.dumps(changes)}\nRestore the parameters and code that dvc.lock records (`git stash`), run "
            "`safety-brittleness pull` again, then reapply the change and run `make reproduce`."
        )
    touch = [sys.executable, "-m", "snakemake", "--profile", PROFILE, "--touch", "--forceall", "--cores", "1"]
    _run(touch, "snakemake --touch", "Run `snakemake --profile workflow/profiles/default --touch --forceall` by hand "
                                     "to see the full message.")
    return sum(1 for path in Path("results").rglob("*") if path.is_file())

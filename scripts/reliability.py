"""Reliability checks that take too long for the test suite: two cold runs, and kill -9 at every stage.

    python scripts/reliability.py determinism [--configfile configs/ci.yaml] [--workdir DIR] [--target FILE]
    python scripts/reliability.py interrupt [--configfile configs/ci.yaml] [--workdir DIR] [--reference DIR]

`determinism` clones the repository twice, runs the workflow cold in each clone one after the
other, and compares the two results folders value by value (`safety-brittleness compare`).

`interrupt` needs a finished reference run (it makes one unless --reference names a run folder of
this script, run with the same --cores). It then runs the workflow again in a fresh clone, one job
at a time by default. The first time a job of each rule starts, it gets SIGKILL part way through
(--fraction of the job's wall time in the reference run), and Snakemake is started again. Kills
alternate between the job's processes alone, which Snakemake reports as a failed job, and the
whole Snakemake process group, after which `snakemake --unlock` removes the lock it left.
At the end it checks that Snakemake finds nothing left to do, that every Parquet and safetensors
file reads back whole, that no temporary file is left, and that the results equal the reference.

Both write summary.md and summary.json into the work folder. Without --configfile they run the
embedded main job, which takes hours on a laptop; configs/ci.yaml takes minutes.
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from safety_brittleness.compare import compare_results
from safety_brittleness.provenance import CorruptArtifactError, check_readable

ROOT = Path(__file__).resolve().parents[1]
JOB_START = re.compile(r"^(?:local)?rule (\w+):")
JOB_ID = re.compile(r"^\s+jobid: (\d+)")
JOB_END = re.compile(r"Finished jobid: (\d+) \(Rule: (\w+)\)")
TEMPORARY = re.compile(r"^\..+\.[a-z0-9_]{8}(\.[a-z]+)?$")


def current_commit() -> str:
    """Return the commit checked out in the repository, read once so that every run uses the same one."""
    return subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.strip()


def clone(destination: Path, commit: str) -> None:
    """Clone the repository into `destination` at `commit` (uncommitted changes are not copied)."""
    if destination.exists():
        raise SystemExit(f"error: '{destination}' already exists; pass an empty --workdir")
    subprocess.run(["git", "clone", "--quiet", str(ROOT), str(destination)], check=True)
    subprocess.run(["git", "checkout", "--quiet", commit], cwd=destination, check=True)


def checked_out(directory: Path) -> str:
    """Return the commit checked out in a run folder."""
    return subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=directory, capture_output=True, text=True, check=True
    ).stdout.strip()


def snakemake_command(arguments: argparse.Namespace, *extra: str) -> list[str]:
    command = [sys.executable, "-m", "snakemake", "--profile", "workflow/profiles/default", "--cores", str(arguments.cores)]
    command += list(extra)
    if arguments.configfile:
        command += ["--configfile", str(Path(arguments.configfile).resolve())]
    # Targets go last, since --configfile takes every value that follows it.
    return command + list(arguments.target)


class Run:
    """One Snakemake process: its output is read line by line to time each job, and it can be killed."""

    def __init__(self, command: list[str], directory: Path, log: Path):
        self.log = open(log, "a")
        self.process = subprocess.Popen(
            command, cwd=directory, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
        )
        self.lines: queue.Queue = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        self.pending_rule: str | None = None
        self.started: dict[str, tuple[str, float]] = {}   # job id -> (rule, start time)

    def _read(self) -> None:
        for line in self.process.stdout:
            self.lines.put((time.monotonic(), line))
        self.lines.put((time.monotonic(), None))

    def events(self, timeout: float):
        """Yield (kind, rule, job id, time) for the lines that arrive within `timeout` seconds.

        The kind is "start" or "end" of a job, or "exit" when Snakemake has closed its output.
        """
        deadline = time.monotonic() + timeout
        while (remaining := deadline - time.monotonic()) > 0:
            try:
                moment, line = self.lines.get(timeout=remaining)
            except queue.Empty:
                return
            if line is None:
                yield ("exit", None, None, moment)
                return
            self.log.write(line)
            if match := JOB_START.match(line):
                self.pending_rule = match.group(1)
            elif (match := JOB_ID.match(line)) and self.pending_rule:
                self.started[match.group(1)] = (self.pending_rule, moment)
                yield ("start", self.pending_rule, match.group(1), moment)
                self.pending_rule = None
            elif match := JOB_END.search(line):
                yield ("end", match.group(2), match.group(1), moment)

    def kill(self) -> None:
        """Send SIGKILL to Snakemake and every job it runs, as a power loss or `kill -9 -PGID` would."""
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()

    def kill_jobs(self) -> int:
        """Send SIGKILL to the running jobs only, leaving Snakemake to notice; return how many were killed."""
        victims = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit() or int(entry.name) == self.process.pid:
                continue
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[2]) == self.process.pid:   # the process group id
                victims.append(int(entry.name))
        for pid in victims:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        return len(victims)

    def close(self) -> int:
        code = self.process.wait()
        self.log.close()
        return code


def run_to_end(arguments: argparse.Namespace, directory: Path) -> dict:
    """Run the workflow in `directory` until it stops; return the wall time and each job's duration."""
    begin = time.monotonic()
    run = Run(snakemake_command(arguments), directory, directory / "snakemake.log")
    jobs = []
    finished = False
    while not finished:
        for kind, rule, job, moment in run.events(timeout=5.0):
            if kind == "end" and job in run.started:
                jobs.append({"rule": rule, "seconds": round(moment - run.started[job][1], 2)})
            finished = finished or kind == "exit"
    code = run.close()
    summary = {"returncode": code, "seconds": round(time.monotonic() - begin, 1), "jobs": jobs}
    (directory / "jobs.json").write_text(json.dumps(summary, indent=2))
    if code != 0:
        raise SystemExit(f"error: the workflow failed in {directory} (exit code {code}); see {directory / 'snakemake.log'}")
    return summary


def compare_runs(first: Path, second: Path) -> dict:
    differences = compare_results(first / "results", second / "results")
    return {
        f"{category}_differences": [vars(item) for item in differences if item.category == category]
        for category in ("data", "figure", "provenance")
    }


def determinism(arguments: argparse.Namespace) -> int:
    work = Path(arguments.workdir)
    commit = current_commit()
    runs = []
    for name in ("run-1", "run-2"):
        clone(work / name, commit)
        print(f"cold run in {work / name} ...", flush=True)
        summary = run_to_end(arguments, work / name)
        print(f"  {len(summary['jobs'])} jobs in {summary['seconds']} s", flush=True)
        runs.append(summary)
    comparison = compare_runs(work / "run-1", work / "run-2")
    result = {
        "commit": commit,
        "configfile": arguments.configfile,
        "targets": arguments.target,
        "runs": [{"jobs": len(run["jobs"]), "seconds": run["seconds"]} for run in runs],
        **comparison,
    }
    lines = [
        f"# Two cold runs ({arguments.configfile or 'params.yaml'}; targets: {' '.join(arguments.target) or 'all'})", "",
        f"- commit {commit}, {arguments.cores} cores",
        *(f"- run {index + 1}: {run['jobs']} jobs, {run['seconds']} s" for index, run in enumerate(result["runs"])),
        f"- data files that differ: {len(comparison['data_differences'])}",
        f"- figure files that differ: {len(comparison['figure_differences'])}",
        f"- provenance records that differ: {len(comparison['provenance_differences'])}", "",
        *(f"- {item['kind']} {item['path']}: {item['detail']}" for item in comparison["data_differences"]
          + comparison["figure_differences"] + comparison["provenance_differences"]),
    ]
    return finish(work, result, lines, ok=not comparison["data_differences"])


def interrupt(arguments: argparse.Namespace) -> int:
    work = Path(arguments.workdir)
    reference = Path(arguments.reference) if arguments.reference else work / "reference"
    commit = current_commit()
    if arguments.reference:
        if checked_out(reference) != commit:
            raise SystemExit(
                f"error: the reference run in {reference} is at commit {checked_out(reference)[:10]}, not the current "
                f"{commit[:10]}; check that commit out, or omit --reference to make a new reference run"
            )
    else:
        clone(reference, commit)
        print(f"reference run in {reference} ...", flush=True)
        run_to_end(arguments, reference)
    durations: dict[str, float] = {}
    for job in json.loads((reference / "jobs.json").read_text())["jobs"]:
        durations.setdefault(job["rule"], job["seconds"])

    directory = work / "interrupted"
    clone(directory, commit)
    kills = []
    killed_rules: set[str] = set()
    begin = time.monotonic()
    while True:
        run = Run(snakemake_command(arguments), directory, directory / "snakemake.log")
        target = None          # (rule, job id, time to kill)
        exited = False
        while not exited:
            for kind, rule, job, moment in run.events(timeout=0.2):
                if kind == "exit":
                    exited = True
                elif kind == "start" and target is None and rule not in killed_rules:
                    delay = max(0.5, arguments.fraction * durations.get(rule, 10.0))
                    target = (rule, job, moment + delay)
                elif kind == "end" and target and job == target[1]:
                    target = None   # finished before the kill time: take the next job of a new rule
            if target and time.monotonic() >= target[2] and not exited:
                rule, job, _ = target
                elapsed = round(time.monotonic() - run.started[job][1], 1)
                # Alternate between killing the job alone and killing Snakemake with it.
                victim = "job" if len(kills) % 2 == 0 else "snakemake"
                if victim == "job" and run.kill_jobs():
                    run.close()
                else:
                    victim = "snakemake"
                    run.kill()
                    run.close()
                    # A killed Snakemake leaves its lock behind: unlock, as a user would.
                    subprocess.run(snakemake_command(arguments, "--unlock"), cwd=directory, capture_output=True, check=True)
                kills.append({"rule": rule, "victim": victim, "seconds_into_job": elapsed})
                killed_rules.add(rule)
                print(f"  killed the {victim} during {rule} after {elapsed} s", flush=True)
                break
        else:
            code = run.close()
            if code != 0:
                raise SystemExit(f"error: the restarted workflow failed (exit code {code}); see {directory / 'snakemake.log'}")
            break
    seconds = round(time.monotonic() - begin, 1)

    dry = subprocess.run(snakemake_command(arguments, "--dry-run"), cwd=directory, capture_output=True, text=True)
    nothing_left = "Nothing to be done" in dry.stdout + dry.stderr
    corrupt, leftovers = [], []
    for path in sorted((directory / "results").rglob("*")):
        if TEMPORARY.match(path.name):
            leftovers.append(str(path.relative_to(directory)))
        elif path.suffix in (".parquet", ".safetensors"):
            try:
                check_readable(path)
            except CorruptArtifactError as error:
                corrupt.append(str(error))
    comparison = compare_runs(reference, directory)
    never_killed = sorted(set(durations) - killed_rules)
    result = {"commit": commit, "configfile": arguments.configfile, "kills": kills, "seconds": seconds, "nothing_left": nothing_left,
              "corrupt": corrupt, "leftovers": leftovers, "rules_not_killed": never_killed, **comparison}
    lines = [
        f"# kill -9 at each stage ({arguments.configfile or 'params.yaml'})", "",
        f"- commit {commit}, {arguments.cores} cores", "",
        "| rule | killed | after (s) | reference job time (s) |", "|---|---|---|---|",
        *(f"| {kill['rule']} | {kill['victim']} | {kill['seconds_into_job']} | {durations.get(kill['rule'])} |"
          for kill in kills), "",
        f"- {len(kills)} kills, {seconds} s until the interrupted run finished",
        f"- rules whose jobs finished before their kill time: {', '.join(never_killed) or 'none'}",
        f"- Snakemake afterwards: {'nothing to be done' if nothing_left else 'jobs left to run'}",
        f"- corrupt Parquet or safetensors files: {len(corrupt)}; temporary files left: {len(leftovers)}",
        f"- data files that differ from the reference: {len(comparison['data_differences'])}; "
        f"figure files: {len(comparison['figure_differences'])}; "
        f"provenance records: {len(comparison['provenance_differences'])}", "",
        *(f"- {item['kind']} {item['path']}: {item['detail']}" for item in comparison["data_differences"]
          + comparison["figure_differences"] + comparison["provenance_differences"]),
    ]
    ok = nothing_left and not corrupt and not leftovers and not comparison["data_differences"]
    return finish(work, result, lines, ok)


def finish(work: Path, result: dict, lines: list[str], ok: bool) -> int:
    (work / "summary.json").write_text(json.dumps(result, indent=2))
    (work / "summary.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    print("PASSED" if ok else "FAILED")
    return 0 if ok else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("check", choices=["determinism", "interrupt"])
    parser.add_argument("--configfile", help="override file merged on top of params.yaml (default: none, the main job)")
    parser.add_argument("--workdir", default="reliability-runs", help="empty folder for the runs (default: reliability-runs)")
    parser.add_argument("--cores", type=int, default=None, help="cores for Snakemake (default: 1 for interrupt, 2 otherwise)")
    parser.add_argument("--target", action="append", default=[],
                        help="file to build instead of every figure and table; repeat for more (default: the whole DAG)")
    parser.add_argument("--reference", help="interrupt: a finished run folder of this script with the same --cores, "
                                            "whose job times set the kill times")
    parser.add_argument("--fraction", type=float, default=0.5,
                        help="interrupt: kill this far into a job, as a fraction of its reference wall time (default 0.5)")
    arguments = parser.parse_args()
    if arguments.cores is None:
        arguments.cores = 1 if arguments.check == "interrupt" else 2
    if not 0 < arguments.fraction < 1:
        parser.error(f"--fraction {arguments.fraction} is out of range; use a value between 0 and 1")
    Path(arguments.workdir).mkdir(parents=True, exist_ok=True)
    if subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT, capture_output=True,
                      text=True).stdout.strip():
        print("warning: the repository has uncommitted changes; the clones run the committed workflow files, "
              "while the installed package runs the working tree's code", file=sys.stderr)
    return determinism(arguments) if arguments.check == "determinism" else interrupt(arguments)


if __name__ == "__main__":
    sys.exit(main())

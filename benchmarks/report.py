"""Shared helpers of the benchmark scripts: the machine description and the sections of docs/benchmarks.md.

Each script owns one section of docs/benchmarks.md, delimited by HTML comments that name it, and
replaces that section with its latest table when it finishes.
"""

from __future__ import annotations

import datetime
import os
import platform
import re
import shlex
import subprocess
import sys
from pathlib import Path

import torch

DOCUMENT = Path(__file__).resolve().parent.parent / "docs" / "benchmarks.md"
# New sections go before this heading, so the hand-measured history stays at the end.
EARLIER = "## Earlier measurements"


def machine() -> str:
    """Return the cores, architecture and library versions of this machine, in one line."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return (
        f"{cores} CPU cores ({platform.machine()}), {torch.get_num_threads()} torch threads, "
        f"PyTorch {torch.__version__}, Python {platform.python_version()}"
    )


def commit(root: Path | None = None) -> str:
    """Return the short git commit of `root` (default: this checkout), with `-dirty` for uncommitted changes."""
    root = root or DOCUMENT.parent.parent
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True, check=True
        ).stdout.strip()
        # The benchmark document itself changes as each script writes its section: it does not count.
        status = ["git", "status", "--porcelain", "--untracked-files=no", "--", ".", ":!docs/benchmarks.md"]
        dirty = subprocess.run(status, cwd=root, capture_output=True, text=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + ("-dirty" if dirty.strip() else "")


def heading(title: str, root: Path | None = None) -> str:
    """Return a section heading with the command line, the date, the commit of `root` and the machine."""
    command = shlex.join([".venv/bin/python", *sys.argv])
    return (
        f"## {title}\n\nCommand: `{command}`. Measured {datetime.date.today().isoformat()} at commit "
        f"`{commit(root)}` on {machine()}.\n"
    )


def write_section(name: str, text: str, document: Path = DOCUMENT) -> None:
    """Replace the section `name` of `document` with `text`, or add it before the earlier measurements."""
    start, end = f"<!-- benchmark:{name} -->", f"<!-- /benchmark:{name} -->"
    block = f"{start}\n{text.strip()}\n{end}"
    content = document.read_text() if document.exists() else "# Benchmarks\n"
    pattern = re.compile(re.escape(start) + r".*?" + re.escape(end), re.DOTALL)
    if pattern.search(content):
        content = pattern.sub(lambda _: block, content)
    elif EARLIER in content:
        content = content.replace(EARLIER, block + "\n\n" + EARLIER, 1)
    else:
        content = content.rstrip("\n") + "\n\n" + block + "\n"
    document.write_text(content)
    print(f"wrote section '{name}' of {document}")


def table(header: list[str], rows: list[list[object]]) -> str:
    """Return a Markdown table."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def load_parameters(configfile: str | None = None, params: str = "params.yaml") -> dict:
    """Return params.yaml with `configfile` merged over it key by key, as Snakemake's --configfile does."""
    import yaml

    def merge(base: dict, override: dict) -> dict:
        merged = dict(base)
        for key, value in override.items():
            merged[key] = merge(base[key], value) if isinstance(value, dict) and isinstance(base.get(key), dict) else value
        return merged

    config = yaml.safe_load(Path(params).read_text())
    if configfile:
        config = merge(config, yaml.safe_load(Path(configfile).read_text()) or {})
    return config

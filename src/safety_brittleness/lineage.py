"""The lineage of a result: the chain of artifacts and raw inputs that produced it, with hashes.

Every artifact of the workflow carries a provenance record (Parquet key-value metadata, the
safetensors header, `provenance.json` in a model folder, or a `<file>.provenance.json` sidecar
next to a figure or table; safetensors files get the sidecar too, repeating their header). The record names the rule, its parameters and the sha256 of each
input at the time the rule ran. Following the inputs back gives the lineage, and hashing each
input again shows whether the file on disk is still the one that was used.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from safety_brittleness.provenance import sha256_path

SIDECAR_SUFFIX = ".provenance.json"
FIGURE_SUFFIXES = (".png", ".pdf", ".csv", ".md")


class LineageError(ValueError):
    """The lineage target is not a results file, a figure name or an experiment id."""


def sidecar_path(path: str | Path) -> Path:
    """Return the provenance sidecar of a figure, table or safetensors file."""
    path = Path(path)
    return path.with_name(path.name + SIDECAR_SUFFIX)


class UnsupportedArtifact(ValueError):
    """The path is not a kind of artifact that carries a provenance record."""


def read_artifact_provenance(path: Path) -> dict[str, Any] | None:
    """Return the provenance record of a Parquet or safetensors file, a model folder, or a figure or table."""
    from safety_brittleness.models import PROVENANCE_FILE
    from safety_brittleness.provenance import read_provenance

    if path.is_dir():
        record_file = path / PROVENANCE_FILE
        return json.loads(record_file.read_text()) if record_file.is_file() else None
    if path.suffix in FIGURE_SUFFIXES:
        sidecar = sidecar_path(path)
        return json.loads(sidecar.read_text()) if sidecar.is_file() else None
    if path.suffix == ".parquet":
        return read_provenance(path)
    if path.suffix == ".safetensors":
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as handle:
            raw = (handle.metadata() or {}).get("provenance")
        return json.loads(raw) if raw else None
    raise UnsupportedArtifact(
        f"unsupported artifact '{path}'; expected a .parquet or .safetensors file, a model folder, or a figure or table"
    )


def read_record(path: Path) -> dict[str, Any] | None:
    """Return the provenance record of any artifact kind, or None for a raw input without one."""
    try:
        return read_artifact_provenance(path)
    except UnsupportedArtifact:
        return None


def resolve_target(target: str, results: Path = Path("results")) -> Path:
    """Turn a path, a figure or table name (fig2_neurons, table3) or an experiment id into a file."""
    path = Path(target)
    if path.exists():
        return path
    candidates = [
        results / "figures" / f"{target}.png",
        results / "tables" / f"{target}.csv",
        results / "evaluation" / f"{target}.parquet",
    ]
    for candidate in candidates:
        if candidate.exists():
            return candidate
    raise LineageError(
        f"'{target}' is neither a file nor a figure, table or experiment id with a result under {results}/; "
        "give a path such as results/metrics.parquet, a name such as fig2_neurons, or an experiment id"
    )


def _input_entries(record: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    entries = []
    for name, value in sorted((record.get("inputs") or {}).items()):
        if isinstance(value, list):
            entries.extend((f"{name}[{index}]", item) for index, item in enumerate(value))
        elif isinstance(value, dict):
            entries.append((name, value))
    return entries


def trace(path: str | Path) -> dict[str, Any]:
    """Return the lineage tree of an artifact as nested dictionaries.

    Each node has the path, the current sha256 of the file, the rule and package details of its
    record, and its inputs. An input node also has the sha256 recorded when its consumer ran and
    `matches`: whether the file on disk still has that hash. A path reached again (many results
    share the aligned model) is expanded once; later nodes carry `seen: true` and no inputs.
    """
    hashes: dict[str, str | None] = {}
    expanded: set[str] = set()

    def current_hash(node_path: Path) -> str | None:
        key = str(node_path)
        if key not in hashes:
            hashes[key] = sha256_path(node_path) if node_path.exists() else None
        return hashes[key]

    def visit(node_path: Path, recorded: str | None, name: str | None, package_version: str | None = None) -> dict[str, Any]:
        actual = current_hash(node_path)
        node: dict[str, Any] = {"path": str(node_path), "sha256": actual}
        if package_version:
            node["package_version"] = package_version
        if name is not None:
            node["input"] = name
            node["recorded_sha256"] = recorded
            node["matches"] = actual is not None and actual == recorded

        if actual is None:
            node["missing"] = True
            return node
        if str(node_path) in expanded:
            node["seen"] = True
            return node
        expanded.add(str(node_path))

        record = read_record(node_path)
        if record is None:
            node["raw_input"] = True
            return node

        node["rule"] = record.get("rule")
        node["package_version"] = record.get("package_version")
        node["git"] = record.get("git")
        node["seed"] = record.get("seed")
        if record.get("hub_commit"):
            node["hub_commit"] = record["hub_commit"]
        node["inputs"] = [
            visit(Path(entry["path"]), entry.get("sha256"), input_name, entry.get("package_version"))
            for input_name, entry in _input_entries(record)
        ]
        return node

    return visit(Path(path), None, None)


def mismatches(node: dict[str, Any]) -> list[dict[str, Any]]:
    """Return every input node whose file is missing or no longer has its recorded hash."""
    found = [node] if node.get("input") is not None and not node.get("matches") else []
    for child in node.get("inputs", []):
        found.extend(mismatches(child))
    return found


def render(node: dict[str, Any], prefix: str = "", last: bool = True, root: bool = True) -> list[str]:
    """Format the lineage tree as indented text, one artifact per line."""
    short = (node["sha256"] or "missing")[:12]
    parts = [node["path"]]
    if node.get("rule"):
        parts.append(f"[{node['rule']}]")
    parts.append(f"sha256 {short}")
    if node.get("input") is not None:
        if node.get("missing"):
            status = f"MISSING (recorded {(node['recorded_sha256'] or '')[:12]})"
        elif node["matches"]:
            status = "matches"
        else:
            status = f"CHANGED (recorded {(node['recorded_sha256'] or '')[:12]})"
        parts.append(status)
    if node.get("raw_input"):
        parts.append("raw input" + (f" (package version {node['package_version']})" if node.get("package_version") else ""))
    if node.get("seen"):
        parts.append("(expanded above)")

    if root:
        git = node.get("git") or {}
        commit = (git.get("commit") or "unknown")[:10] + (" with uncommitted changes" if git.get("dirty") else "")
        lines = [" ".join(parts)]
        if node.get("rule"):
            seed = "no seed" if node.get("seed") is None else f"seed {node['seed']}"
            lines.append(f"  code: safety-brittleness {node.get('package_version')}, commit {commit}, {seed}")
        child_prefix = ""
    else:
        label = f"{node['input']}: " if node.get("input") else ""
        lines = [prefix + ("└─ " if last else "├─ ") + label + " ".join(parts)]
        child_prefix = prefix + ("   " if last else "│  ")

    children = node.get("inputs", [])
    for index, child in enumerate(children):
        lines.extend(render(child, child_prefix, index == len(children) - 1, root=False))
    return lines

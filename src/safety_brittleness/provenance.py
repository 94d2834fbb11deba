"""Provenance metadata and atomic writes for every artifact the workflow produces."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import subprocess
import tempfile
from importlib import metadata
from pathlib import Path
from typing import Any, Iterator

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from safety_brittleness import __version__

PROVENANCE_KEY = b"safety_brittleness.provenance"
LIBRARIES = ("torch", "transformers", "lm-eval", "safetensors", "pandas", "pyarrow", "snakemake")


def sha256_file(path: str | Path, chunk_size: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk_size):
            digest.update(block)
    return digest.hexdigest()


def sha256_path(path: str | Path) -> str:
    """Hash a file, or a folder as the sorted list of its relative file names and file hashes."""
    path = Path(path)
    if path.is_file():
        return sha256_file(path)
    digest = hashlib.sha256()
    for child in sorted(p for p in path.rglob("*") if p.is_file()):
        digest.update(str(child.relative_to(path)).encode())
        digest.update(sha256_file(child).encode())
    return digest.hexdigest()


def git_state(root: str | Path | None = None) -> dict[str, Any]:
    """Return the current git commit and whether the work tree has uncommitted changes."""
    root = Path(root or Path.cwd())
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, check=True
        ).stdout.strip()
        status = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=root, capture_output=True, text=True, check=True,
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        return {"commit": None, "dirty": None}
    return {"commit": commit, "dirty": bool(status.strip())}


def library_versions() -> dict[str, str | None]:
    versions: dict[str, str | None] = {}
    for name in LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def build_provenance(
    rule: str,
    params: dict[str, Any],
    inputs: dict[str, Any] | None = None,
    seed: int | None = None,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Collect the facts needed to audit an artifact: rule, parameters, input hashes, code, versions."""
    hashed_inputs: dict[str, Any] = {}
    for name, value in (inputs or {}).items():
        paths = value if isinstance(value, (list, tuple)) else [value]
        records = [{"path": str(path), "sha256": sha256_path(path)} for path in paths]
        hashed_inputs[name] = records if isinstance(value, (list, tuple)) else records[0]
    record = {
        "rule": rule,
        "params": params,
        "inputs": hashed_inputs,
        "seed": seed,
        "package_version": __version__,
        "git": git_state(),
        "libraries": library_versions(),
    }
    if extra:
        record.update(extra)
    return record


@contextlib.contextmanager
def atomic_path(path: str | Path, suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path next to `path` and rename it into place only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix or ".tmp", dir=path.parent)
    os.close(handle)
    temporary = Path(temporary)
    try:
        yield temporary
        os.replace(temporary, path)
    finally:
        if temporary.exists():
            temporary.unlink()


@contextlib.contextmanager
def atomic_directory(path: str | Path) -> Iterator[Path]:
    """Yield a temporary folder next to `path` and move it into place only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    try:
        yield temporary
        if path.exists():
            shutil.rmtree(path)
        os.replace(temporary, path)
    finally:
        if temporary.exists():
            shutil.rmtree(temporary)


def write_parquet(frame: pd.DataFrame, path: str | Path, provenance: dict[str, Any]) -> None:
    """Write `frame` atomically with `provenance` stored as JSON in the Parquet key-value metadata."""
    table = pa.Table.from_pandas(frame, preserve_index=False)
    existing = table.schema.metadata or {}
    encoded = json.dumps(provenance, sort_keys=True, default=str).encode()
    table = table.replace_schema_metadata({**existing, PROVENANCE_KEY: encoded})
    with atomic_path(path, suffix=".parquet") as temporary:
        pq.write_table(table, temporary)


def write_safetensors(tensors: dict[str, Any], path: str | Path, metadata: dict[str, str]) -> None:
    """Write `tensors` atomically to a safetensors file whose bytes depend only on its contents.

    The safetensors library stores the metadata as a hash map, so its key order, and with it the
    file's sha256, changes from one process to the next. The header is written again with the
    metadata keys sorted, which keeps every recorded input hash stable between identical runs.
    """
    from safetensors.torch import save

    raw = save({name: tensor.contiguous() for name, tensor in tensors.items()}, metadata=metadata)
    length = int.from_bytes(raw[:8], "little")
    header = json.loads(raw[8:8 + length])
    header["__metadata__"] = dict(sorted(header.get("__metadata__", {}).items()))
    encoded = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode()
    encoded += b" " * (-len(encoded) % 8)
    with atomic_path(path, suffix=".safetensors") as temporary:
        with open(temporary, "wb") as handle:
            handle.write(len(encoded).to_bytes(8, "little"))
            handle.write(encoded)
            handle.write(raw[8 + length:])


def read_provenance(path: str | Path) -> dict[str, Any] | None:
    schema_metadata = pq.read_schema(path).metadata or {}
    raw = schema_metadata.get(PROVENANCE_KEY)
    return json.loads(raw) if raw else None


def write_json(data: Any, path: str | Path) -> None:
    with atomic_path(path, suffix=".json") as temporary:
        temporary.write_text(json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")


class CorruptArtifactError(RuntimeError):
    """An input artifact on disk is truncated or unreadable."""


def _check_safetensors(path: Path) -> None:
    size = path.stat().st_size
    with open(path, "rb") as handle:
        prefix = handle.read(8)
        if len(prefix) < 8:
            raise ValueError("shorter than a safetensors header")
        header_length = int.from_bytes(prefix, "little")
        if header_length > size - 8:
            raise ValueError(f"header of {header_length} bytes does not fit in a file of {size} bytes")
        header = json.loads(handle.read(header_length))
    end = max((entry["data_offsets"][1] for name, entry in header.items() if name != "__metadata__"), default=0)
    if 8 + header_length + end != size:
        raise ValueError(f"{size} bytes on disk, {8 + header_length + end} expected from its header")


def check_readable(path: str | Path) -> None:
    """Raise CorruptArtifactError when a Parquet or safetensors file, or a model folder, is truncated.

    Parquet files are checked through their footer, safetensors files against the sizes in their
    header; a model folder checks each of its safetensors files.
    """
    path = Path(path)
    files = sorted(path.glob("*.safetensors")) if path.is_dir() else [path]
    for file in files:
        try:
            if file.suffix == ".parquet":
                pq.read_metadata(file)
            elif file.suffix == ".safetensors":
                _check_safetensors(file)
        except (OSError, ValueError, KeyError, pa.ArrowException) as error:
            raise CorruptArtifactError(
                f"input '{file}' is corrupt or truncated ({error}); delete it and rerun the workflow, "
                "which then recomputes it"
            ) from error

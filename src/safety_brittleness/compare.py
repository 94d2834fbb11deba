"""Compare the results folders of two runs, value by value, to check that a run is reproducible.

Parquet tables are compared column by column on the bits of their values, and safetensors files
tensor by tensor on their bytes. The provenance stored in their metadata is left out. Every other
file (figures, tables, provenance records, model configuration) is compared byte for byte, and
each difference is sorted into data, figure or provenance.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd

VALUE_SUFFIXES = (".parquet", ".safetensors")
FIGURE_SUFFIXES = (".png", ".pdf")


@dataclasses.dataclass
class Difference:
    """One file, column or tensor that differs between the two runs."""

    path: str
    kind: str        # missing, extra, columns, values, tensors, bytes
    detail: str

    @property
    def category(self) -> str:
        """Return "figure" (PNG, PDF), "provenance" (provenance records) or "data" (everything else)."""
        if self.path.endswith("provenance.json"):
            return "provenance"
        return "figure" if Path(self.path).suffix in FIGURE_SUFFIXES else "data"


def _files(root: Path) -> set[str]:
    return {str(path.relative_to(root)) for path in root.rglob("*") if path.is_file()}


def _same(a, b) -> bool:
    """Return True when two cell values are bitwise equal (arrays by bytes, floats by bits, NaN equal to NaN)."""
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        a, b = np.asarray(a), np.asarray(b)
        return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()
    if isinstance(a, float) and isinstance(b, float):
        return np.float64(a).tobytes() == np.float64(b).tobytes()
    if a is None or b is None:
        return a is b
    return bool(a == b)


def _unequal(a: pd.Series, b: pd.Series) -> np.ndarray:
    """Return a mask of the rows whose values differ bitwise."""
    if a.dtype != b.dtype:
        return np.ones(len(a), dtype=bool)
    values_a, values_b = a.to_numpy(), b.to_numpy()
    if a.dtype.kind in "fiub":
        bits = np.dtype(f"u{values_a.dtype.itemsize}") if a.dtype.kind == "f" else values_a.dtype
        return values_a.view(bits) != values_b.view(bits)
    return np.array([not _same(x, y) for x, y in zip(values_a, values_b)], dtype=bool)


def _compare_parquet(first: Path, second: Path, name: str) -> list[Difference]:
    left, right = pd.read_parquet(first), pd.read_parquet(second)
    if list(left.columns) != list(right.columns) or len(left) != len(right):
        return [Difference(name, "columns", f"columns {list(left.columns)} x {len(left)} rows against "
                                             f"{list(right.columns)} x {len(right)} rows")]
    found = []
    for column in left.columns:
        a, b = left[column], right[column]
        unequal = _unequal(a, b)
        if not unequal.any():
            continue
        detail = f"column {column}: {int(unequal.sum())} of {len(a)} values differ"
        if a.dtype.kind == "f" and b.dtype.kind == "f":
            gaps = np.abs(a.to_numpy()[unequal] - b.to_numpy()[unequal])
            detail += f", largest absolute difference {np.nanmax(gaps, initial=0.0):.3g}"
        elif a.dtype != b.dtype:
            detail += f" (dtype {a.dtype} against {b.dtype})"
        found.append(Difference(name, "values", detail))
    return found


def _compare_safetensors(first: Path, second: Path, name: str) -> list[Difference]:
    import torch
    from safetensors import safe_open

    with safe_open(str(first), framework="pt") as left, safe_open(str(second), framework="pt") as right:
        keys_a, keys_b = set(left.keys()), set(right.keys())
        if keys_a != keys_b:
            return [Difference(name, "tensors", f"tensor names differ: {sorted(keys_a ^ keys_b)[:5]}")]
        differing = []
        largest = 0.0
        for key in sorted(keys_a):
            a, b = left.get_tensor(key), right.get_tensor(key)
            if a.dtype != b.dtype or a.shape != b.shape:
                differing.append(key)
                continue
            if not torch.equal(a.contiguous().view(torch.uint8), b.contiguous().view(torch.uint8)):
                differing.append(key)
                if a.is_floating_point():
                    largest = max(largest, float((a.double() - b.double()).abs().nan_to_num(0.0).max()))
    if not differing:
        return []
    return [Difference(name, "tensors", f"{len(differing)} of {len(keys_a)} tensors differ (first: {differing[0]}), "
                                        f"largest absolute difference {largest:.3g}")]


def compare_results(first: str | Path, second: str | Path) -> list[Difference]:
    """Return every difference between two results folders; an empty list means identical results."""
    first, second = Path(first), Path(second)
    for root in (first, second):
        if not root.is_dir():
            raise FileNotFoundError(f"results folder '{root}' not found; pass the results/ folders of two runs")
    files_a, files_b = _files(first), _files(second)
    differences = [Difference(name, "missing", f"only in {first}") for name in sorted(files_a - files_b)]
    differences += [Difference(name, "extra", f"only in {second}") for name in sorted(files_b - files_a)]
    for name in sorted(files_a & files_b):
        a, b = first / name, second / name
        suffix = a.suffix
        if suffix == ".parquet":
            differences += _compare_parquet(a, b, name)
        elif suffix == ".safetensors":
            differences += _compare_safetensors(a, b, name)
        elif a.read_bytes() != b.read_bytes():
            differences.append(Difference(name, "bytes", f"{a.stat().st_size} bytes against {b.stat().st_size}"))
    return differences

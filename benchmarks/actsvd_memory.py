"""Compare ActSVD from input Gram matrices with the SVD of stored activations: memory, time, subspaces.

Run from the repository root after the workflow has produced the aligned model and the calibration sets:

    .venv/bin/python benchmarks/actsvd_memory.py [--samples 128] [--rank 64]

Each method runs in its own process, so the peak resident memory of one does not hide the other.
Prints a Markdown table: wall time, peak RSS, the bytes the method keeps per calibration set, and
the smallest cosine of the principal angles between the two top-`rank` bases over all layers.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import torch

from report import heading, table, write_section
from safety_brittleness import models
from safety_brittleness.activations import BATCH_SIZE, for_each_response_input
from safety_brittleness.alignment import examples_from_frame
from safety_brittleness.actsvd import input_grams
from safety_brittleness.ranks import output_basis


def load(arguments):
    model, tokenizer = models.load_model(arguments.model, torch.device("cpu"), torch.float32)
    # Weights may be memory-mapped and read in on first use: touch them all, so that the memory
    # measured after loading contains the whole model and "added" counts only the method's own.
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.sum()
    frame = pd.read_parquet(arguments.calibration).head(arguments.samples)
    examples = examples_from_frame(frame, tokenizer, None)
    # One forward pass over the first batch before the baseline is taken: the math libraries' first-call
    # buffers and thread pools serve both methods alike, so they do not count as either method's memory.
    layers = models.block_linear_layers(model)
    for_each_response_input(model, tokenizer, examples[:BATCH_SIZE], arguments.max_length, layers,
                            lambda name, features: None, "warm-up")
    return model, tokenizer, examples


def run_method(arguments) -> None:
    """Compute the top-`rank` output bases of every layer with one method; write them and the stats."""
    model, tokenizer, examples = load(arguments)
    layers = models.block_linear_layers(model)
    loaded = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    start = time.perf_counter()
    if arguments.method == "gram":
        grams = input_grams(model, tokenizer, examples, arguments.max_length)
        kept_bytes = grams.nbytes()
        bases = {name: output_basis(layer.weight.detach(), grams[name])[1][:, :arguments.rank].float()
                 for name, layer in layers.items()}
    else:
        stored: dict[str, list[torch.Tensor]] = {name: [] for name in layers}
        for_each_response_input(model, tokenizer, examples, arguments.max_length, layers,
                                 lambda name, features: stored[name].append(features.clone()), "stored activations")
        kept_bytes = sum(part.numel() * part.element_size() for parts in stored.values() for part in parts)
        bases = {}
        for name, layer in layers.items():
            outputs = layer.weight.detach().double() @ torch.cat(stored[name]).double().T
            bases[name] = torch.linalg.svd(outputs, full_matrices=False)[0][:, :arguments.rank].float()
    seconds = time.perf_counter() - start
    torch.save(bases, arguments.output)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({
        "method": arguments.method, "seconds": seconds, "peak_rss_mib": peak, "added_mib": peak - loaded,
        "kept_mib": kept_bytes / 2**20,
    }))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="results/models/aligned")
    parser.add_argument("--calibration", default="results/calibration/safety-full.parquet")
    parser.add_argument("--samples", type=int, default=128)
    parser.add_argument("--rank", type=int, default=64, help="columns of each basis to compare")
    parser.add_argument("--max-length", dest="max_length", type=int, default=192)
    parser.add_argument("--no-write", action="store_true", help="print the table without writing docs/benchmarks.md")
    parser.add_argument("--method", choices=["gram", "stored"], help=argparse.SUPPRESS)
    parser.add_argument("--output", help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    if arguments.method:
        run_method(arguments)
        return

    results = {}
    for method in ("gram", "stored"):
        output = str(Path(tempfile.gettempdir()) / f"actsvd_{method}.pt")
        command = [sys.executable, __file__, "--method", method, "--output", output,
                   "--model", arguments.model, "--calibration", arguments.calibration,
                   "--samples", str(arguments.samples), "--rank", str(arguments.rank),
                   "--max-length", str(arguments.max_length)]
        finished = subprocess.run(command, capture_output=True, text=True, check=True)
        results[method] = json.loads(finished.stdout.strip().splitlines()[-1])
        results[method]["bases"] = torch.load(output)
    cosines = [
        float(torch.linalg.svdvals(results["gram"]["bases"][name].double().T @ results["stored"]["bases"][name].double()).min())
        for name in results["gram"]["bases"]
    ]
    labels = {
        "gram": "Gram matrices X^T X (float64, packed), eigenvectors of W X^T X W^T",
        "stored": "stored activations (float32), SVD of W X^T",
    }
    rows = [
        [labels[method], f"{results[method]['seconds']:.1f}", f"{results[method]['peak_rss_mib']:.0f}",
         f"{results[method]['added_mib']:.0f}", f"{results[method]['kept_mib']:.1f}"]
        for method in ("gram", "stored")
    ]
    gram, stored = results["gram"], results["stored"]
    text = "\n".join([
        heading("ActSVD: Gram matrices against stored activations"),
        f"Model `{arguments.model}`, calibration set `{arguments.calibration}` ({arguments.samples} samples), "
        f"{len(cosines)} block linear layers, top-{arguments.rank} bases. Each method runs in its own process, so "
        "the peak of one does not hide the other. Added: peak RSS minus the RSS with the whole model read into memory "
        "and one forward pass over the first batch done.",
        "",
        table(["method", "seconds", "peak RSS (MiB)", "added (MiB)", "kept per calibration set (MiB)"], rows),
        "",
        f"Smallest principal-angle cosine between the two top-{arguments.rank} bases over all layers: "
        f"{min(cosines):.6f}. Added memory, Gram over stored: {gram['added_mib'] / stored['added_mib']:.2f}; "
        f"time ratio (stored / Gram): {stored['seconds'] / gram['seconds']:.1f}x.",
    ])
    print(text)
    if not arguments.no_write:
        write_section("actsvd", text)

if __name__ == "__main__":
    main()

"""Time SNIP and Wanda scoring against straightforward reference loops and compare the scores.

Run from the repository root after the workflow has produced the model and the calibration sets:

    .venv/bin/python benchmarks/scoring_speed.py [--model results/models/aligned] [--samples 8]

SNIP reference: the loop of the reference code, layer by layer, with one forward and backward
pass per sample for each layer (L x N backward passes), taking the absolute gradient per sample.
The project's scorer takes the gradients of all layers from one backward pass per sample.
Wanda reference: one forward pass per sample, accumulating the squared inputs of every layer.
The project's scorer runs the samples in right-padded batches.

Both run in this process on the same samples. The relative difference of a layer is the largest
absolute difference of its scores divided by its largest score. The table gives the largest over
all layers. Prints a Markdown table and writes it to docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import time

import pandas as pd
import torch
from tqdm.auto import tqdm

from report import heading, load_parameters, table, write_section
from safety_brittleness import models, scoring
from safety_brittleness.alignment import examples_from_frame, tokenize_example


def reference_snip(model, tokenizer, examples, max_length: int, layers) -> dict[str, torch.Tensor]:
    """Score SNIP one layer at a time, rerunning every sample for each layer."""
    model.eval()
    model.requires_grad_(False)
    device = next(model.parameters()).device
    encoded = [tokenize_example(tokenizer, example, max_length) for example in examples]
    encoded = [(ids, labels) for ids, labels in encoded if any(label != -100 for label in labels[1:])]
    scores = {}
    for name, layer in tqdm(layers.items(), desc="SNIP reference", unit="layer"):
        layer.weight.requires_grad_(True)
        total = torch.zeros_like(layer.weight, dtype=torch.float32)
        for input_ids, labels in encoded:
            loss = model(
                input_ids=torch.tensor([input_ids], device=device), labels=torch.tensor([labels], device=device)
            ).loss
            (gradient,) = torch.autograd.grad(loss, [layer.weight])
            total += gradient.abs().float()
        layer.weight.requires_grad_(False)
        scores[name] = total * layer.weight.detach().abs().float()
    return scores


@torch.no_grad()
def reference_wanda(model, tokenizer, examples, max_length: int, layers) -> dict[str, torch.Tensor]:
    """Score Wanda with one forward pass per sample and the squared inputs summed per layer."""
    device = next(model.parameters()).device
    squares = {name: torch.zeros(layer.in_features, dtype=torch.float64) for name, layer in layers.items()}
    current = {}

    def hook_for(name):
        def hook(module, inputs, output):
            squares[name] += inputs[0][0][current["positions"]].double().pow(2).sum(dim=0)
        return hook

    handles = [layer.register_forward_hook(hook_for(name)) for name, layer in layers.items()]
    try:
        for example in tqdm(examples, desc="Wanda reference", unit="sample"):
            input_ids, labels = tokenize_example(tokenizer, example, max_length)
            current["positions"] = torch.tensor([label != -100 for label in labels], device=device)
            model(input_ids=torch.tensor([input_ids], device=device))
    finally:
        for handle in handles:
            handle.remove()
    return {
        name: layer.weight.detach().abs().float() * squares[name].sqrt().float().unsqueeze(0)
        for name, layer in layers.items()
    }


def relative_difference(scores: dict[str, torch.Tensor], reference: dict[str, torch.Tensor]) -> float:
    """Return the largest, over layers, of max |difference| / max |reference score|."""
    return max(
        float((scores[name] - reference[name]).abs().max() / reference[name].abs().max().clamp_min(1e-30))
        for name in reference
    )


def timed(function, *arguments):
    start = time.perf_counter()
    result = function(*arguments)
    return result, time.perf_counter() - start


def compare(label: str, project, reference, model, tokenizer, examples, max_length: int) -> list[str]:
    """Run the project's scorer and the reference loop on the same samples; return the table row."""
    layers = models.block_linear_layers(model)
    fast, fast_seconds = timed(project, model, tokenizer, examples, max_length)
    slow, slow_seconds = timed(reference, model, tokenizer, examples, max_length, layers)
    return [
        f"{label}, {len(examples)} samples, {len(layers)} layers", f"{slow_seconds:.1f}", f"{fast_seconds:.1f}",
        f"{slow_seconds / fast_seconds:.1f}x", f"{relative_difference(fast, slow):.1e}",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="results/models/aligned", help="model folder")
    parser.add_argument("--calibration", default="results/calibration/safety-full.parquet", help="calibration set")
    parser.add_argument("--configfile", default=None, help="parameter file merged over params.yaml, as for Snakemake")
    parser.add_argument("--samples", type=int, default=8, help="SNIP samples; the reference loop costs L x N passes")
    parser.add_argument("--wanda-samples", type=int, default=128, help="Wanda samples")
    parser.add_argument("--no-write", action="store_true", help="print the table without writing docs/benchmarks.md")
    arguments = parser.parse_args()

    settings = load_parameters(arguments.configfile)["scoring"]
    model, tokenizer = models.load_model(arguments.model, torch.device("cpu"), torch.float32)
    frame = pd.read_parquet(arguments.calibration)
    examples = examples_from_frame(frame, tokenizer, settings["system_prompt"])
    max_length = settings["max_length"]

    rows = [
        compare("SNIP", scoring.snip_scores, reference_snip, model, tokenizer, examples[: arguments.samples], max_length),
        compare(
            "Wanda", scoring.wanda_scores, reference_wanda, model, tokenizer, examples[: arguments.wanda_samples],
            max_length,
        ),
    ]

    text = "\n".join([
        heading("Scoring: SNIP and Wanda against reference loops"),
        f"Model `{arguments.model}`, calibration set `{arguments.calibration}`, max_length {max_length}.",
        "SNIP reference: for each layer, one forward and backward pass per sample (L x N passes). Wanda",
        "reference: one forward pass per sample. Relative difference: the largest over layers of",
        "max |difference| / max |reference score|.",
        "",
        table(["scores", "reference loop (s)", "project (s)", "speed-up", "relative difference"], rows),
    ])
    print(text)
    if not arguments.no_write:
        write_section("scoring", text)


if __name__ == "__main__":
    main()

"""Command-line interface: provenance and lineage of an artifact, parameter validation, run comparison, results pull."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

import yaml


def command_provenance(arguments: argparse.Namespace) -> int:
    from safety_brittleness.lineage import UnsupportedArtifact, read_artifact_provenance

    path = Path(arguments.artifact)
    if not path.exists():
        print(f"error: '{path}' not found; check the path, or run `make reproduce` to create results/", file=sys.stderr)
        return 2
    try:
        record = read_artifact_provenance(path)
    except UnsupportedArtifact as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except Exception as error:  # noqa: BLE001 - pyarrow and safetensors raise their own types on corrupt files
        print(f"error: cannot read '{path}' ({type(error).__name__}: {error}); the file is corrupt or "
              "incomplete, so delete it and rerun the rule that writes it", file=sys.stderr)
        return 1
    if record is None:
        print(f"error: '{path}' carries no provenance record; rerun the rule that writes it", file=sys.stderr)
        return 1
    print(json.dumps(record, indent=2, sort_keys=True, default=str))
    return 0


def command_lineage(arguments: argparse.Namespace) -> int:
    from safety_brittleness.lineage import LineageError, mismatches, render, resolve_target, trace

    try:
        path = resolve_target(arguments.target, Path(arguments.results))
        tree = trace(path)
    except LineageError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except Exception as error:  # noqa: BLE001 - pyarrow and safetensors raise their own types on corrupt files
        print(f"error: cannot read the lineage of '{arguments.target}' ({type(error).__name__}: {error}); a file in "
              "the chain is corrupt or incomplete, so delete it and rerun the rule that writes it", file=sys.stderr)
        return 2
    changed = mismatches(tree)
    if arguments.json:
        print(json.dumps(tree, indent=2, default=str))
    else:
        print("\n".join(render(tree)))
        if changed:
            print(f"\n{len(changed)} input(s) differ from what was used: " + ", ".join(node["path"] for node in changed[:5])
                  + ("" if len(changed) <= 5 else ", ..."), file=sys.stderr)
    return 1 if changed else 0


def command_validate(arguments: argparse.Namespace) -> int:
    from safety_brittleness.config import ParameterError, check_sources, load_schema, validate_params

    try:
        config = _read_yaml(arguments.params)
        for override in arguments.configfile:
            _merge(config, _read_yaml(override))
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    from safety_brittleness.experiments import RegistryError, build_registry

    try:
        validate_params(config, load_schema(arguments.schema))
        check_sources(config)
        experiments = build_registry(config)
    except (ParameterError, RegistryError) as error:
        print(error, file=sys.stderr)
        return 1
    print(f"parameters are valid: {len(experiments)} experiments")
    return 0


def command_compare(arguments: argparse.Namespace) -> int:
    from safety_brittleness.compare import compare_results

    try:
        differences = compare_results(arguments.first, arguments.second)
    except FileNotFoundError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if arguments.json:
        print(json.dumps([dataclasses.asdict(item) for item in differences], indent=2))
    else:
        for item in differences:
            print(f"{item.kind:8} {item.path}: {item.detail}")
    counts = {category: sum(item.category == category for item in differences) for category in ("data", "figure", "provenance")}
    print(f"{counts['data']} difference(s) in data files, {counts['figure']} in figures, "
          f"{counts['provenance']} in provenance records", file=sys.stderr)
    counted = counts["data"] if arguments.values_only else len(differences)
    return 1 if counted else 0


def command_pull(arguments: argparse.Namespace) -> int:
    from safety_brittleness.restore import RestoreError, pull_results

    if not Path("dvc.yaml").is_file():
        print("error: dvc.yaml not found; run `safety-brittleness pull` from the repository root", file=sys.stderr)
        return 2
    try:
        count = pull_results(arguments.remote, arguments.jobs)
    except RestoreError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(f"pulled and marked up to date: {count} files under results/")
    return 0


def _read_yaml(path: str) -> dict:
    file = Path(path)
    if not file.is_file():
        raise ValueError(f"parameter file '{file}' not found; run from the repository root or pass its path")
    try:
        data = yaml.safe_load(file.read_text())
    except yaml.YAMLError as error:
        raise ValueError(f"'{file}' is not valid YAML: {error}") from None
    if not isinstance(data, dict):
        raise ValueError(f"'{file}' must contain a mapping of parameters, not {type(data).__name__}")
    return data


def _merge(base: dict, override: dict) -> None:
    """Merge `override` into `base` recursively, as Snakemake merges --configfile files."""
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            _merge(base[key], value)
        else:
            base[key] = value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="safety-brittleness", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    provenance = commands.add_parser("provenance", help="print the provenance record stored with an artifact")
    provenance.add_argument("artifact", help="a .parquet or .safetensors file, a model folder, or a figure or table under results/")
    provenance.set_defaults(function=command_provenance)

    lineage = commands.add_parser(
        "lineage", help="trace a result back to its raw inputs, and check each recorded hash against the file on disk",
    )
    lineage.add_argument("target", help="a results file, a figure or table name (fig2_neurons, table3) or an experiment id")
    lineage.add_argument("--json", action="store_true", help="print the lineage tree as JSON")
    lineage.add_argument("--results", default="results", help="results folder for names and ids (default: results)")
    lineage.set_defaults(function=command_lineage)

    validate = commands.add_parser("validate", help="check a parameter file against the schema and the installed inputs")
    validate.add_argument("params", nargs="?", default="params.yaml", help="parameter file (default: params.yaml)")
    validate.add_argument("--configfile", action="append", default=[], help="override file merged on top, as in Snakemake")
    validate.add_argument("--schema", default="workflow/schemas/params.schema.yaml", help="JSON schema of the parameters")
    validate.set_defaults(function=command_validate)

    compare = commands.add_parser(
        "compare", help="compare the results folders of two runs: Parquet and safetensors values bitwise, other files by bytes",
    )
    compare.add_argument("first", help="results folder of the first run")
    compare.add_argument("second", help="results folder of the second run")
    compare.add_argument("--json", action="store_true", help="print the differences as JSON")
    compare.add_argument("--values-only", action="store_true",
                         help="exit with 0 when only figures (PNG, PDF) and provenance records differ")
    compare.set_defaults(function=command_compare)

    pull = commands.add_parser(
        "pull", help="fetch results/ from the DVC remote and mark it up to date for Snakemake (use instead of `dvc pull`)",
    )
    pull.add_argument("--remote", "-r", help="DVC remote to pull from (default: the default remote)")
    pull.add_argument("--jobs", "-j", type=int, help="parallel downloads, passed to `dvc pull`")
    pull.set_defaults(function=command_pull)

    arguments = parser.parse_args(argv)
    try:
        return arguments.function(arguments)
    except BrokenPipeError:
        # The reader of the output (such as `head`) closed the pipe: not an error of this command.
        sys.stderr.close()
        return 0


if __name__ == "__main__":
    sys.exit(main())

"""The registry of evaluated experiments: one id per model or region, with its parameters and paths."""

from __future__ import annotations

from typing import Any

RESULTS = "results"

# Parameter columns carried by every metric row; experiments that do not use one leave it empty.
PARAMETER_COLUMNS = (
    "model", "region", "score_method", "selection", "mode", "safety_dataset", "utility_dataset", "p", "q",
)


def format_fraction(value: float) -> str:
    """Render a fraction for paths and ids without float noise: 0.1 -> '0.1', 0.025 -> '0.025'."""
    return f"{float(value):.6g}"


def model_path(name: str) -> str:
    return f"{RESULTS}/models/{name}"


def score_path(method: str, dataset: str) -> str:
    return f"{RESULTS}/scores/{method}/{dataset}.safetensors"


def set_difference_id(settings: dict[str, Any], p: float, q: float) -> str:
    return (
        f"set_difference-{settings['score_method']}-{settings['selection']}-{settings['safety_dataset']}"
        f"-p{format_fraction(p)}-q{format_fraction(q)}"
    )


def set_difference_path(settings: dict[str, Any], p: float, q: float) -> str:
    folder = f"{settings['score_method']}-{settings['selection']}-{settings['safety_dataset']}-{settings['utility_dataset']}"
    return f"{RESULTS}/regions/set_difference/{folder}/p{format_fraction(p)}-q{format_fraction(q)}.safetensors"


def build_registry(config: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Map each experiment id to its parameters and the artifacts it is computed from."""
    registry: dict[str, dict[str, Any]] = {}
    for name in ("base", "aligned"):
        registry[name] = {"model": name, "region": "none", "region_path": None}
    settings = config["regions"]["set_difference"]
    for p, q in settings["points"]:
        experiment_id = set_difference_id(settings, p, q)
        registry[experiment_id] = {
            "model": "aligned",
            "region": "set_difference",
            "region_path": set_difference_path(settings, p, q),
            "score_method": settings["score_method"],
            "selection": settings["selection"],
            "mode": "one-shot",
            "safety_dataset": settings["safety_dataset"],
            "utility_dataset": settings["utility_dataset"],
            "p": float(p),
            "q": float(q),
        }
    for spec in registry.values():
        for column in PARAMETER_COLUMNS:
            spec.setdefault(column, None)
    return registry

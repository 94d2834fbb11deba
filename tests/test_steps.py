"""Step registry: each rule's family is found from the sources, so a job imports only that family."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest

from safety_brittleness.steps import FAMILIES, STEPS, family_of


def test_family_of_every_step():
    for family in FAMILIES:
        importlib.import_module(f"safety_brittleness.steps.{family}")
    assert len(STEPS) > 20
    for rule, function in STEPS.items():
        assert family_of(rule) == function.__module__.rsplit(".", 1)[1], rule


def test_unknown_rule_rejected():
    with pytest.raises(KeyError, match="no step function for rule 'plot_nothing'"):
        family_of("plot_nothing")


def test_figure_family_skips_torch():
    code = "import sys, importlib; importlib.import_module('safety_brittleness.steps.figures'); print('torch' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"

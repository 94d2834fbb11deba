"""Safety-critical regions of aligned language models: scoring, pruning, rank removal, evaluation."""

__version__ = "0.1.0"

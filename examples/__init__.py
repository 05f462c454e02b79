"""The paper's applications written as models against pyro-ardae; run each with ``python -m
examples.NAME --help`` from the repository root."""

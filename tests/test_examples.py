"""Every example runs end to end at a shrunk setting (cf. Pyro's tests/test_examples.py)."""

import importlib
import math
from pathlib import Path

import pytest
from conftest import data_dir

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
SHRUNK = {
    "banana": ["--steps", "30", "--num-samples", "200"],
    "diagnostics": [
        "--steps",
        "30",
        "--num-samples",
        "100",
        "--nuts-draws",
        "50",
        "--chains",
        "1",
    ],
    "max_entropy": [
        "--repeats",
        "1",
        "--steps",
        "10",
        "--batch",
        "32",
        "--num-samples",
        "50",
        "--no-progress",
    ],
    "vae_mnist": [
        "--data-dir",
        data_dir(),
        "--no-download",
        "--train-size",
        "256",
        "--test-size",
        "16",
        "--epochs",
        "1",
        "--batch-size",
        "64",
        "--k",
        "40",
        "--score-samples",
        "8",
        "--no-progress",
    ],
    "vae_toy": [
        "--steps",
        "20",
        "--batch-size",
        "32",
        "--score-samples",
        "8",
        "--test-size",
        "50",
        "--k",
        "16",
        "--no-progress",
    ],
    "sac": [
        "--total-steps",
        "300",
        "--learning-starts",
        "100",
        "--batch-size",
        "32",
        "--score-samples",
        "8",
        "--normalizer-samples",
        "8",
        "--eval-every",
        "300",
        "--eval-episodes",
        "1",
        "--csv",
        "",
        "--no-progress",
    ],
    "energy_fitting": [
        "--targets",
        "U1",
        "--steps",
        "20",
        "--particles",
        "32",
        "--num-samples",
        "200",
        "--no-progress",
    ],
}


def test_every_example_is_listed():
    scripts = {p.stem for p in EXAMPLES.glob("*.py")} - {"__init__", "common"}
    folders = {p.parent.name for p in EXAMPLES.glob("*/__main__.py")}
    assert sorted(scripts | folders) == sorted(SHRUNK)


def load(name):
    """The module with the example's ``main`` and ``parser``."""
    package = EXAMPLES / name / "__main__.py"
    return importlib.import_module(f"examples.{name}" + (".main" if package.exists() else ""))


@pytest.mark.parametrize("name", sorted(SHRUNK))
def test_example_runs(name, tmp_path):
    module = load(name)
    out = tmp_path / ("figures" if name == "diagnostics" else "out.png")
    result = module.main(module.parser().parse_args([*SHRUNK[name], "--out", str(out)]))
    assert out.exists()
    assert all(math.isfinite(v) for v in result.values())


BENCHMARKS = EXAMPLES.parent / "benchmarks"


@pytest.mark.parametrize("name", sorted(p.stem for p in BENCHMARKS.glob("*.py")))
def test_every_benchmark_imports_as_a_package_module(name):
    # `python -m benchmarks.NAME` runs it; its imports (examples, sibling benchmarks) resolve
    # from the repository root with no sys.path edits.
    module = importlib.import_module(f"benchmarks.{name}")
    assert module.__doc__

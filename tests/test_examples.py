"""Every example runs end to end at a shrunk setting (cf. Pyro's tests/test_examples.py)."""

import importlib.util
import math
from pathlib import Path

import pytest
from conftest import data_dir

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
SHRUNK = {
    "banana.py": ["--steps", "30", "--num-samples", "200"],
    "diagnostics.py": [
        "--steps",
        "30",
        "--num-samples",
        "100",
        "--nuts-draws",
        "50",
        "--chains",
        "1",
    ],
    "max_entropy.py": [
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
    "vae_mnist.py": [
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
    "vae_toy.py": [
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
    "sac.py": [
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
    "energy_fitting.py": [
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
    assert sorted(p.name for p in EXAMPLES.glob("*.py")) == sorted(SHRUNK)


def load(name):
    spec = importlib.util.spec_from_file_location(name[:-3], EXAMPLES / name)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("name", sorted(SHRUNK))
def test_example_runs(name, tmp_path):
    module = load(name)
    out = tmp_path / ("figures" if name == "diagnostics.py" else "out.png")
    result = module.main(module.parser().parse_args([*SHRUNK[name], "--out", str(out)]))
    assert out.exists()
    assert all(math.isfinite(v) for v in result.values())

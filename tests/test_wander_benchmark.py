"""benchmarks/wander.py follows the robustness matrix's Pyro fit: its looks do not change the
fit, so its last checkpoint is the matrix's end point."""

import argparse

import pytest

from benchmarks import wander
from benchmarks.robustness import Cell, run_pyro


def test_the_last_checkpoint_is_the_matrix_end_point():
    steps, draws = 30, 300
    run = wander.trajectory(("linreg", 1e-2, "float32", 0, steps, 10, 7, draws))
    assert run["checkpoints"] == 4  # steps 10, 17, 24 and the last
    (implicit,) = [
        r
        for r in run_pyro(Cell("pyro", "linreg", 1e-2, "float32", (0,), steps, draws))
        if r["guide"] == "implicit"
    ]
    assert run["end"] == round(implicit["sd_ratio"], 4)


def test_bad_cells_and_grids_are_refused():
    with pytest.raises(argparse.ArgumentTypeError, match="MODEL:LR:DTYPE.*'linreg:1e-2'"):
        wander.parse_cell("linreg:1e-2")
    with pytest.raises(SystemExit):
        wander.parse_args(["--steps", "100", "--start", "200"])

"""What every benchmark records next to its figures: which library it ran, on what."""

from __future__ import annotations

import dataclasses
import hashlib
import platform
import subprocess
from pathlib import Path

import pyro
import torch

import pyro_ardae
from pyro_ardae import ARDAE_ELBO


def provenance() -> dict[str, object]:
    """A hash of pyro_ardae's sources, the git commit (``-dirty`` when the sources differ
    from it), ARDAE_ELBO's and the score network's defaults, versions and the machine."""
    src = Path(pyro_ardae.__file__).resolve().parent
    digest = hashlib.sha256()
    for path in sorted(src.glob("*.py")):
        digest.update(path.name.encode() + path.read_bytes())
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=src, capture_output=True, text=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", str(src)],
            cwd=src,
            capture_output=True,
            text=True,
        ).stdout.strip()
    except OSError:
        commit, dirty = "", ""
    elbo = ARDAE_ELBO()
    return {
        "pyro_ardae_src_sha256": digest.hexdigest()[:12],
        "pyro_ardae_git": commit + ("-dirty" if dirty else ""),
        "ardae_elbo_defaults": {k: getattr(elbo, k) for k in ("score_steps", "score_samples")},
        "score_net_defaults": dataclasses.asdict(pyro_ardae.ScoreConfig()),
        "torch": torch.__version__,
        "pyro": pyro.__version__,
        "machine": f"{platform.machine()}, {torch.get_num_threads()} torch threads",
    }

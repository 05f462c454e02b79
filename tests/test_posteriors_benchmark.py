"""benchmarks/posteriors.py runs end to end in both backends, and the suite's NumPyro twins
(``suite.numpyro_model``) are its Pyro models (same sites, same log joint)."""

import json
import math

import jax
import jax.numpy as jnp
import pytest
from numpyro.infer.util import log_density
from pyro import poutine

from benchmarks import posteriors
from benchmarks.posteriors import METHODS, NUMPYRO_METHODS
from benchmarks.suite import flatten, numpyro_model, problems

TINY = ["--steps", "30", "--draws", "200", "--no-equal-time", "--threads", "1"]
SUMMARY = (
    "ardae_vs_autonormal_max",
    "ardae_vs_best_flow_geomean",
    "ardae_regression_sd_ratio_worst",
    "ardae_divergences",
    "divergences",
)


@pytest.mark.parametrize("name", [p.name for p in problems()])
def test_numpyro_twin_has_the_pyro_log_joint(name):
    prob = next(p for p in problems() if p.name == name)
    pyro_trace = poutine.trace(prob.model).get_trace()
    latents = {
        k: site["value"]
        for k, site in pyro_trace.nodes.items()
        if site["type"] == "sample" and not site["is_observed"]
    }
    model = numpyro_model(name)
    numpyro_lp = jax.jit(lambda z: log_density(model, (), {}, z)[0])(
        {k: jnp.asarray(v.numpy()) for k, v in latents.items()}
    )
    assert math.isclose(float(numpyro_lp), pyro_trace.log_prob_sum().item(), rel_tol=1e-4)
    draws = flatten(name, {k: v.numpy()[None] for k, v in latents.items()})
    assert draws.shape[1] == prob.reference(10, 0)["draws"].shape[1]


def run(capsys, argv):
    result = posteriors.main(argv)
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert json.loads(last) == json.loads(json.dumps(result))
    return result


def check(result, models, prefix, methods):
    for name in models:
        for method in methods:
            edist = result[f"{prefix}{name}_{method}_edist"]
            assert edist is not None and math.isfinite(edist), (name, method)
            assert result[f"{prefix}{name}_{method}_sdratio_worst"] > 0
    for key in SUMMARY:
        assert prefix + key in result
    assert result[prefix + "ardae_vs_autonormal_max"] > 0
    assert result[prefix + "ardae_vs_best_flow_geomean"] > 0
    assert result[prefix + "divergences"] == 0


@pytest.mark.slow
def test_both_backends_end_to_end(capsys):
    # One model: each NumPyro fit compiles its own SVI.run (about 30 s for the five methods
    # on one core, most of it ARDAE's and BNAF's compilation).
    result = run(capsys, ["--models", "funnel", *TINY])
    assert result["backends"] == ["pyro", "numpyro"]
    check(result, ["funnel"], "", METHODS)
    check(result, ["funnel"], "numpyro_", NUMPYRO_METHODS)
    assert result["numpyro_funnel_ardae_compile_seconds"] > 0
    assert "funnel_bnaf_edist" not in result


def test_pyro_backend_alone(capsys):
    models = ["correlated", "gamma_poisson"]
    result = run(capsys, ["--backend", "pyro", "--models", ",".join(models), *TINY])
    check(result, models, "", METHODS)
    assert not any(k.startswith("numpyro_") for k in result)


def test_a_model_run_alone_reproduces_its_figures_in_a_larger_run(capsys):
    one = ["--backend", "pyro", "--methods", "ardae,autonormal", *TINY]
    alone = run(capsys, ["--models", "correlated", *one])
    among = run(capsys, ["--models", "funnel,correlated", *one])
    for method in ("ardae", "autonormal"):
        key = f"correlated_{method}_edist"
        assert alone[key] == among[key], key


def test_unknown_model_names_are_refused():
    with pytest.raises(ValueError, match=r"unknown \['bananna'\].*'banana'"):
        posteriors.main(["--models", "banana,bananna", *TINY])


def test_summary_per_backend():
    backend = posteriors.BACKENDS["numpyro"]
    result = {}
    for name, worst in (("funnel", 0.2), ("logistic", 0.8), ("ar1", 1.5)):
        for method, edist in zip(NUMPYRO_METHODS, (0.1, 0.1, 0.3, 0.2, 0.05), strict=True):
            result[f"numpyro_{name}_{method}_edist"] = edist
        result[f"numpyro_{name}_ardae_sdratio_worst"] = worst
    out = posteriors.summary(
        result, ["funnel", "logistic", "ar1"], backend, {"ardae": 0, "iaf": 2, "bnaf": 1}
    )
    assert out["numpyro_ardae_vs_autonormal_max"] == round(0.1 / 0.12, 3)
    assert out["numpyro_ardae_vs_best_flow_geomean"] == 2.0  # bnaf is the best flow
    assert out["numpyro_ardae_regression_sd_ratio_worst"] == 1.5  # |log 1.5| > |log 0.8|
    assert out["numpyro_ardae_divergences"] == 0
    assert out["numpyro_divergences"] == 3

"""NumPyro's autoguide conventions, run against AutoImplicitGuide and, as the control,
AutoNormal (Pyro's: test_conventions.py): pickling, a repeated and a resumed ``svi.run``,
``sample_posterior``/``median``/``quantiles`` with deterministic and reparameterised sites,
``Predictive`` in both modes, init strategies, improper priors, ``AutoGuideList`` and
float64. A difference from the control is a failure, except where an implicit guide cannot
behave the same, which the test says. No torch needed.
"""

from __future__ import annotations

import pickle

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as nd
import optax
import pytest
from numpyro.infer import SVI as NumPyroSVI
from numpyro.infer import Trace_ELBO as NumPyroTraceELBO
from numpyro.infer import autoguide as numpyro_autoguide
from numpyro.infer.reparam import TransformReparam

import numpyro_ardae

SMALL = {"hidden": (8,), "score": numpyro_ardae.ScoreConfig(hidden=(16,))}
X = np.random.default_rng(0).normal(size=(20, 2))
Y = X @ np.array([1.0, -2.0]) + 0.5 * np.random.default_rng(1).normal(size=20)


@pytest.fixture(params=["implicit", "autonormal"])
def kind(request) -> str:
    return request.param


def numpyro_model() -> None:
    mu = numpyro.param("mu", 0.5)
    w = numpyro.sample("w", nd.Normal(0.0, 3.0).expand([2]).to_event(1))
    s = numpyro.sample("s", nd.HalfNormal(2.0))
    numpyro.deterministic("w_sum", w.sum())
    with numpyro.handlers.reparam(config={"t": TransformReparam()}):
        affine = nd.transforms.AffineTransform(mu, 2.0)
        numpyro.sample("t", nd.TransformedDistribution(nd.Normal(0.0, 1.0), affine))
    with numpyro.plate("n", len(Y)):
        numpyro.sample("y", nd.Normal(jnp.asarray(X) @ w, s), obs=jnp.asarray(Y))


def numpyro_guide(kind: str, model=numpyro_model, **kwargs):
    if kind == "implicit":
        return numpyro_ardae.AutoImplicitGuide(model, **SMALL, **kwargs)
    return numpyro_autoguide.AutoNormal(model, **kwargs)


def numpyro_svi(kind: str, guide, model=numpyro_model) -> NumPyroSVI:
    elbo = numpyro_ardae.ARDAE_ELBO(score_samples=64) if kind == "implicit" else NumPyroTraceELBO()
    return NumPyroSVI(model, guide, optax.adam(1e-2), elbo)


def tree_equal(a, b) -> bool:
    return all(jax.tree.leaves(jax.tree.map(lambda x, y: bool(jnp.all(x == y)), a, b)))


def tree_close(a, b) -> bool:
    return all(
        jax.tree.leaves(jax.tree.map(lambda x, y: bool(jnp.allclose(x, y, 1e-5, 1e-6)), a, b))
    )


def test_numpyro_guide_params_and_state_pickle(kind):
    guide = numpyro_guide(kind)
    result = numpyro_svi(kind, guide).run(jax.random.PRNGKey(0), 5, progress_bar=False)
    params = pickle.loads(pickle.dumps(result.params))
    state = pickle.loads(pickle.dumps(result.state))
    copy = pickle.loads(pickle.dumps(guide))
    key = jax.random.PRNGKey(1)
    a = guide.sample_posterior(key, result.params, sample_shape=(4,))
    assert tree_equal(a, copy.sample_posterior(key, params, sample_shape=(4,)))
    assert tree_equal(result.state.optim_state, state.optim_state)


def test_numpyro_run_twice_with_one_key_repeats(kind):
    svi = numpyro_svi(kind, numpyro_guide(kind))
    first = svi.run(jax.random.PRNGKey(0), 5, progress_bar=False).params
    second = svi.run(jax.random.PRNGKey(0), 5, progress_bar=False).params
    assert tree_equal(first, second)


def test_numpyro_resumed_run_equals_the_uninterrupted_one(kind):
    key = jax.random.PRNGKey(0)
    uninterrupted = numpyro_svi(kind, numpyro_guide(kind)).run(key, 10, progress_bar=False)
    half = numpyro_svi(kind, numpyro_guide(kind)).run(key, 5, progress_bar=False)
    state = pickle.loads(pickle.dumps(half.state))
    svi = numpyro_svi(kind, numpyro_guide(kind))  # a fresh session: init, then the state
    svi.init(jax.random.PRNGKey(7))
    resumed = svi.run(key, 5, init_state=state, progress_bar=False)
    assert tree_close(uninterrupted.params, resumed.params)


def test_numpyro_posterior_sites(kind):
    guide = numpyro_guide(kind)
    result = numpyro_svi(kind, guide).run(jax.random.PRNGKey(0), 3, progress_bar=False)
    key = jax.random.PRNGKey(1)
    draws = guide.sample_posterior(key, result.params, sample_shape=(5,))
    assert set(draws) == {"w", "s", "w_sum", "t", "t_base"}
    assert draws["w"].shape == (5, 2) and draws["w_sum"].shape == (5,)
    assert jnp.allclose(draws["w_sum"], draws["w"].sum(-1))
    assert set(guide.median(result.params)) >= {"w", "s", "w_sum", "t"}
    quantiles = guide.quantiles(result.params, [0.25, 0.75])
    assert quantiles["w"].shape == (2, 2)


@pytest.mark.parametrize("parallel", [False, True])
def test_numpyro_predictive_matches_the_control(parallel):
    shapes = {}
    for kind in ("implicit", "autonormal"):
        guide = numpyro_guide(kind)
        result = numpyro_svi(kind, guide).run(jax.random.PRNGKey(0), 2, progress_bar=False)
        predictive = numpyro.infer.Predictive(
            numpyro_model, guide=guide, params=result.params, num_samples=7, parallel=parallel
        )
        shapes[kind] = {k: v.shape for k, v in predictive(jax.random.PRNGKey(1)).items()}
    assert shapes["implicit"] == shapes["autonormal"]
    assert shapes["implicit"]["y"] == (7, 20)


def test_numpyro_init_to_value(kind):
    start = jnp.array([1.0, -2.0])
    guide = numpyro_guide(kind, init_loc_fn=numpyro.infer.init_to_value(values={"w": start}))
    svi = numpyro_svi(kind, guide)
    params = svi.get_params(svi.init(jax.random.PRNGKey(0)))
    # AutoNormal: exact; implicit: the median of 2000 draws of N(start, 0.1^2), SE 0.003
    assert jnp.allclose(guide.median(params)["w"], start, atol=0.015)


def test_numpyro_float64(kind):
    with jax.enable_x64(True):
        guide = numpyro_guide(kind, model=numpyro_regression)
        result = numpyro_svi(kind, guide, numpyro_regression).run(
            jax.random.PRNGKey(0), 2, progress_bar=False
        )
        draws = guide.sample_posterior(jax.random.PRNGKey(1), result.params, sample_shape=(3,))
        assert draws["w"].dtype == jnp.float64
        assert all(x.dtype == jnp.float64 for x in jax.tree.leaves(result.params))


def numpyro_improper_model() -> None:
    z = numpyro.sample("z", nd.ImproperUniform(nd.constraints.positive, (), (2,)))
    numpyro.sample("x", nd.Normal(z, 1.0).to_event(1), obs=jnp.array([1.0, 2.0]))


def test_numpyro_improper_prior(kind):
    guide = numpyro_guide(kind, model=numpyro_improper_model)
    svi = numpyro_svi(kind, guide, numpyro_improper_model)
    result = svi.run(jax.random.PRNGKey(0), 3, progress_bar=False)
    draws = guide.sample_posterior(jax.random.PRNGKey(1), result.params, sample_shape=(5,))
    assert jnp.all(draws["z"] > 0)


def numpyro_regression() -> None:
    w = numpyro.sample("w", nd.Normal(0.0, 3.0).expand([2]).to_event(1))
    s = numpyro.sample("s", nd.HalfNormal(2.0))
    with numpyro.plate("n", len(Y)):
        numpyro.sample("y", nd.Normal(jnp.asarray(X) @ w, s), obs=jnp.asarray(Y))


def numpyro_two_parts(kind: str, prefixes: tuple[str, str]):
    # NumPyro's AutoGuideList refuses parts whose model has deterministic sites
    guides = numpyro_autoguide.AutoGuideList(numpyro_regression)
    for hide, prefix in zip((["s"], ["w"]), prefixes, strict=True):
        blocked = numpyro.handlers.block(numpyro_regression, hide=hide)
        guides.append(numpyro_guide(kind, model=blocked, prefix=prefix))
    return guides


def test_numpyro_auto_guide_list(kind):
    guides = numpyro_two_parts(kind, ("auto_a", "auto_b"))
    svi = numpyro_svi(kind, guides, numpyro_regression)
    result = svi.run(jax.random.PRNGKey(0), 3, progress_bar=False)
    draws = guides.sample_posterior(jax.random.PRNGKey(1), result.params, sample_shape=(4,))
    assert draws["w"].shape == (4, 2) and draws["s"].shape == (4,)


def test_numpyro_auto_guide_list_shared_prefix_names_the_fix():
    # AutoNormal's parameters are named after their sites, so two parts coexist under the
    # default prefix; an implicit guide's are the guide's, so the error says what to change
    guides = numpyro_two_parts("autonormal", ("auto", "auto"))
    svi = numpyro_svi("autonormal", guides, numpyro_regression)
    svi.run(jax.random.PRNGKey(0), 3, progress_bar=False)
    guides = numpyro_two_parts("implicit", ("auto", "auto"))
    svi = numpyro_svi("implicit", guides, numpyro_regression)
    with pytest.raises(ValueError, match="own prefix"):
        svi.run(jax.random.PRNGKey(0), 3, progress_bar=False)

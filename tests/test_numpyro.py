"""numpyro_ardae: the Pyro core's statistical tests, ported (NumPyro only: no torch needed;
the two backends' parity is in test_parity.py)."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
import optax
import pytest
from numpyro import handlers
from numpyro.infer import SVI, Predictive, Trace_ELBO
from numpyro.infer.autoguide import AutoNormal

from numpyro_ardae import ARDAE_ELBO, AutoImplicitGuide, ImplicitGuide, ScoreConfig, ScoreEstimator

KEY = jax.random.PRNGKey(0)


def fit(model, guide, args=(), steps=1500, lr=1e-2, **elbo_kwargs):
    elbo_kwargs = {"num_particles": 8, **elbo_kwargs}
    # lr decays by 10x over the run so that the last iterate is close to the optimum
    optim = optax.adam(optax.exponential_decay(lr, steps, 0.1))
    svi = SVI(model, guide, optim, ARDAE_ELBO(**elbo_kwargs))
    result = svi.run(KEY, steps, *args, progress_bar=False)  # lax.scan: state shapes fixed
    assert np.isfinite(result.losses).all()
    return result


def test_score_of_correlated_gaussian():
    cov = jnp.array([[1.0, 1.8], [1.8, 4.0]])
    loc = jnp.array([1.0, -3.0])
    chol = jnp.linalg.cholesky(cov)
    samples = loc + jax.random.normal(KEY, (50_000, 2)) @ chol.T
    est = ScoreEstimator(2, config=ScoreConfig(hidden=(64, 64)))
    state, stats, _ = est.fit(est.init(KEY), KEY, samples, num_steps=300)
    z = samples[:2000]
    exact = -(z - loc) @ jnp.linalg.inv(cov)
    rel = jnp.linalg.norm(est.score(state, stats, z) - exact, axis=-1).mean()
    assert rel / jnp.linalg.norm(exact, axis=-1).mean() < 0.1


def conjugate_normal(x):
    mu = numpyro.sample("mu", dist.Normal(0.0, 1.0))
    with numpyro.plate("data", x.shape[0]):
        numpyro.sample("obs", dist.Normal(mu, 1.0), obs=x)


X = jax.random.normal(jax.random.PRNGKey(1), (10,)) + 1.0


def test_conjugate_normal_and_distinct_draws():
    guide = AutoImplicitGuide(conjugate_normal, hidden=(32, 32), score=ScoreConfig(hidden=(64, 64)))
    result = fit(conjugate_normal, guide, (X,))
    mu = guide.sample_posterior(KEY, result.params, X, sample_shape=(4000,))["mu"]
    mean, sd = X.sum() / 11, (1 / 11) ** 0.5
    assert abs(mu.mean() - mean) < 0.15 * sd
    assert abs(mu.std() / sd - 1) < 0.15
    pred = Predictive(
        conjugate_normal, guide=guide, params=result.params, num_samples=200, return_sites=["mu"]
    )(KEY, X)["mu"]
    assert jnp.unique(pred).size == 200


RHO = 0.95
COV = jnp.array([[1.0, RHO * 2.0], [RHO * 2.0, 4.0]])


def correlated():
    z = numpyro.sample("z", dist.Normal(0.0, 10.0).expand([2]).to_event(1))
    numpyro.factor("target", dist.MultivariateNormal(jnp.array([1.0, -1.0]), COV).log_prob(z))


def test_correlated_posterior_with_factor():
    guide = AutoImplicitGuide(correlated, hidden=(32, 32), score=ScoreConfig(hidden=(64, 64)))
    result = fit(correlated, guide)
    z = guide.sample_posterior(KEY, result.params, sample_shape=(4000,))["z"]
    post_cov = jnp.linalg.inv(jnp.linalg.inv(COV) + jnp.eye(2) / 100)
    exact_rho = post_cov[0, 1] / jnp.sqrt(post_cov[0, 0] * post_cov[1, 1])
    assert abs(jnp.corrcoef(z.T)[0, 1] - exact_rho) < 0.02
    assert jnp.allclose(z.std(0), jnp.sqrt(jnp.diag(post_cov)), rtol=0.15)


def gamma_poisson(counts):
    rate = numpyro.sample("rate", dist.Gamma(3.0, 1.0))
    with numpyro.plate("data", counts.shape[0]):
        numpyro.sample("obs", dist.Poisson(rate), obs=counts)


def test_gamma_poisson_constrained_site():
    counts = jnp.array([2.0, 4.0, 3.0, 1.0, 5.0])
    guide = AutoImplicitGuide(gamma_poisson, hidden=(32, 32), score=ScoreConfig(hidden=(64, 64)))
    result = fit(gamma_poisson, guide, (counts,))
    rate = guide.sample_posterior(KEY, result.params, counts, sample_shape=(4000,))["rate"]
    exact = dist.Gamma(3.0 + counts.sum(), 1.0 + 5)
    assert (rate > 0).all()
    assert abs(rate.mean() - exact.mean) < 0.1 * jnp.sqrt(exact.variance)
    assert abs(rate.std() / jnp.sqrt(exact.variance) - 1) < 0.15


class Affine(eqx.Module):
    a: jax.Array
    B: jax.Array

    def __call__(self, eps):
        return self.a + self.B @ eps


@pytest.mark.parametrize("positive", [False, True])
def test_surrogate_gradient_is_minus_entropy_gradient(positive):
    support = dist.constraints.positive if positive else dist.constraints.real

    def flat():
        numpyro.sample("z", dist.ImproperUniform(support, (), (2,)))

    net = Affine(jnp.array([0.5, -1.0]), jnp.array([[1.0, 0.0], [0.8, 0.5]]))
    guide = ImplicitGuide(net, noise_dim=2, sites={"z": support}, score=ScoreConfig(hidden=(32,)))
    elbo = ARDAE_ELBO(num_particles=50_000, score_samples=4096)
    svi = SVI(flat, guide, optax.sgd(0.0), elbo)
    state = svi.init(KEY)
    params = svi.get_params(state)

    def loss(p):
        return elbo.loss_with_mutable_state(KEY, {**p, **state.mutable_state}, flat, guide)["loss"]

    grad = jax.grad(loss)(params)["implicit$net$params"]
    expected_a = jnp.ones(2) if positive else jnp.zeros(2)
    assert jnp.allclose(grad.B, -jnp.linalg.inv(net.B).T, atol=0.06)
    assert jnp.allclose(grad.a, -expected_a, atol=0.06)


class Encoder(eqx.Module):
    layers: list

    def __init__(self, key):
        k1, k2 = jax.random.split(key)
        self.layers = [eqx.nn.Linear(3, 32, key=k1), eqx.nn.Linear(32, "scalar", key=k2)]

    def __call__(self, noise, x):
        return self.layers[1](jax.nn.elu(self.layers[0](jnp.concatenate([noise, x]))))


def local_model(x):
    with numpyro.plate("data", x.shape[0]):
        z = numpyro.sample("z", dist.Normal(0.0, 1.0))
        numpyro.sample("obs", dist.Normal(z, 1.0), obs=x)


def test_amortized_guide():
    # z_i | x_i ~ N(x_i / 2, 1/2)
    xs = 2 * jax.random.normal(KEY, (50,))
    guide = ImplicitGuide(
        Encoder(KEY),
        noise_dim=2,
        sites="z",
        context=lambda x: x[:, None],
        score=ScoreConfig(hidden=(32, 32)),
    )
    result = fit(local_model, guide, (xs,), num_particles=4, score_samples=32)
    x = jnp.array([-2.0, 0.0, 2.0])
    z = guide.sample_posterior(KEY, result.params, x, sample_shape=(4000,))["z"]
    assert z.shape == (4000, 3)
    assert jnp.allclose(z.mean(0), x / 2, atol=0.15)
    assert jnp.allclose(z.std(0), jnp.sqrt(0.5), rtol=0.15)


def test_amortised_draw_is_centred_at_the_zero_noise_output():
    encoder = Encoder(KEY)
    guide = ImplicitGuide(encoder, noise_dim=2, sites="z", context=lambda x: x[:, None])
    x = jnp.array([-1.0, 0.0, 3.0])
    draw = handlers.trace(handlers.seed(guide, KEY)).get_trace(x)["z"]["fn"].draw
    expected = jax.vmap(encoder)(jnp.zeros((3, 2)), x[:, None])
    assert draw.loc.shape == draw.unconstrained.shape == (3, 1)
    assert jnp.allclose(draw.loc[:, 0], expected)


def test_float64():
    with jax.enable_x64(True):
        guide = AutoImplicitGuide(conjugate_normal, hidden=(8,), score=ScoreConfig(hidden=(8,)))
        result = fit(conjugate_normal, guide, (X.astype(jnp.float64),), steps=5)
        assert result.params["auto$generator$params"].loc.dtype == jnp.float64
        assert result.state.mutable_state["auto$score"].net.h.layers[0].weight.dtype == jnp.float64


def test_fourier_features_reach_the_score_net_and_stay_fixed():
    guide = AutoImplicitGuide(
        conjugate_normal, hidden=(8,), score=ScoreConfig(hidden=(8,), fourier_features=4)
    )
    svi = SVI(conjugate_normal, guide, optax.adam(1e-2), ARDAE_ELBO(num_particles=4))
    state = svi.init(KEY, X)
    start = state.mutable_state["auto$score"].net
    for _ in range(5):
        state, _ = svi.update(state, X)
    end = state.mutable_state["auto$score"].net
    assert end.frequencies.shape == (1, 4)
    assert end.h.layers[0].weight.shape == (8, 1 + 2 * 4 + 1)
    assert jnp.array_equal(start.frequencies, end.frequencies)
    assert not jnp.array_equal(start.h.layers[0].weight, end.h.layers[0].weight)


def test_trace_elbo_refuses_implicit_guide():
    guide = AutoImplicitGuide(conjugate_normal, hidden=(8,))
    svi = SVI(conjugate_normal, guide, optax.adam(1e-3), Trace_ELBO())
    with pytest.raises(NotImplementedError, match="no density.*ARDAE_ELBO"):
        svi.run(KEY, 2, X, progress_bar=False)


def test_bad_inputs_match_pyro():
    def model():
        numpyro.sample("z", dist.Normal(jnp.zeros(2), 1.0).to_event(1))

    def run(guide):
        SVI(model, guide, optax.adam(1e-3), ARDAE_ELBO(score_samples=16)).run(
            KEY, 2, progress_bar=False
        )

    with pytest.raises(TypeError, match="guide site 'z_auto_loc'|has a"):
        run(AutoNormal(model))
    with pytest.raises(ValueError, match=r"samples 'w'.*latent sites are \['z'\]"):
        run(ImplicitGuide(Affine(jnp.zeros(2), jnp.eye(2)), noise_dim=2, sites="w"))
    with pytest.raises(TypeError, match="AutoImplicitGuide: expected score to be a ScoreConfig"):
        AutoImplicitGuide(model, score={"hidden": (8,)})
    with pytest.raises(TypeError, match="ImplicitGuide: expected score to be a ScoreConfig"):
        ImplicitGuide(Affine(jnp.zeros(2), jnp.eye(2)), noise_dim=2, score=(8,))
    with pytest.raises(ValueError, match="num_particles"):
        ARDAE_ELBO(num_particles=0)
    with pytest.raises(ValueError, match="non-empty str prefix"):
        ImplicitGuide(Affine(jnp.zeros(2), jnp.eye(2)), noise_dim=2, prefix="")

    def two_sites():
        numpyro.sample("a", dist.Normal(0.0, 1.0))
        numpyro.sample("b", dist.Normal(0.0, 1.0))

    first, other = (
        ImplicitGuide(
            Affine(jnp.zeros(()), jnp.ones(2)), noise_dim=2, sites=s, score=ScoreConfig(hidden=(8,))
        )
        for s in "ab"
    )
    with pytest.raises(ValueError, match="already named its parameters 'implicit.net'.*own prefix"):
        SVI(two_sites, lambda: {**first(), **other()}, optax.adam(1e-3), ARDAE_ELBO()).run(
            KEY, 2, progress_bar=False
        )

    def discrete():
        numpyro.sample("k", dist.Bernoulli(0.5))

    with pytest.raises(ValueError, match="'k' is discrete.*pyro.ai/examples/enumeration"):
        run_guide = AutoImplicitGuide(discrete)
        with numpyro.handlers.seed(rng_seed=0):
            run_guide()


class ListNet(eqx.Module):
    weight: jax.Array

    def __call__(self, noise):
        return [self.weight @ noise]


class SumNet(eqx.Module):
    weight: jax.Array

    def __call__(self, noise, context=None):
        x = noise if context is None else jnp.concatenate([noise, context])
        return self.weight @ x


def test_bad_guides_and_models_are_named():
    def model():
        numpyro.sample("z", dist.Normal(jnp.zeros(2), 1.0).to_event(1))

    def run(model, guide, *args, **elbo):
        elbo = ARDAE_ELBO(**({"score_samples": 16} | elbo))
        SVI(model, guide, optax.adam(1e-3), elbo).run(KEY, 2, *args, progress_bar=False)

    with pytest.raises(TypeError, match="an array per site, got a list for 'z'"):
        run(model, ImplicitGuide(ListNet(jnp.eye(2)), noise_dim=2, sites="z"))
    with pytest.raises(ValueError, match=r"shape \(\), which does not cover .* \(2,\)"):
        run(model, ImplicitGuide(SumNet(jnp.ones(2)), noise_dim=2, sites="z"))

    def local(x):
        with numpyro.plate("n", 10):
            numpyro.sample("z", dist.Normal(0.0, 1.0).expand([2]).to_event(1))

    one_row = ImplicitGuide(
        SumNet(jnp.ones((2, 6))), noise_dim=2, sites="z", context=lambda x: x[:1]
    )
    with pytest.raises(ValueError, match=r"shape \(1, 2\), which does not cover .* \(10, 2\)"):
        run(local, one_row, jnp.ones((10, 4)))

    def two_shapes():
        numpyro.sample("a", dist.Normal(0.0, 1.0).expand([2]).to_event(1))
        numpyro.sample("b", dist.Normal(0.0, 1.0).expand([3]).to_event(1))

    first = ImplicitGuide(
        SumNet(jnp.eye(2)), noise_dim=2, sites="a", score=ScoreConfig(hidden=(8,))
    )
    other = ImplicitGuide(
        SumNet(jnp.eye(3)), noise_dim=3, sites="b", score=ScoreConfig(hidden=(8,))
    )
    with pytest.raises(ValueError, match="'implicit.net'; give each implicit guide its own"):
        run(two_shapes, lambda: {**first(), **other()})

    def observed():
        numpyro.sample("x", dist.Normal(0.0, 1.0), obs=1.0)

    with pytest.raises(ValueError, match="no latent sample site"):
        run(observed, AutoImplicitGuide(observed))

    def wide():
        numpyro.sample("z", dist.Normal(jnp.zeros(260), 1.0).to_event(1))

    with pytest.raises(ValueError, match=r"260 latent dimensions.*ARDAE_ELBO\(score_samples="):
        run(
            wide,
            AutoImplicitGuide(wide, hidden=(8,), score=ScoreConfig(hidden=(8,))),
            score_samples=512,
        )
    for kwargs, match in (
        ({"score_steps": 0}, "score_steps to be an int >= 1, got 0"),
        ({"score_lr": float("inf")}, "finite score_lr"),
    ):
        with pytest.raises(ValueError, match=match):
            ARDAE_ELBO(**kwargs)


def test_inconsistent_plate_is_named():
    def model():
        with numpyro.plate("a", 10, dim=-1):
            numpyro.sample("x", dist.Normal(0.0, 1.0))
        with numpyro.plate("a", 5, dim=-1):
            numpyro.sample("y", dist.Normal(0.0, 1.0))

    with pytest.raises(ValueError, match="plate 'a' has inconsistent dim or size"):
        with numpyro.handlers.seed(rng_seed=0):
            AutoImplicitGuide(model)()


def test_update_whitens_each_half_with_the_other_halfs_moments():
    est = ScoreEstimator(1, config=ScoreConfig(hidden=(4,)))
    key = jax.random.PRNGKey(0)
    a = jax.random.normal(key, (50, 1))
    b = jax.random.normal(jax.random.PRNGKey(1), (50, 1)) + 10.0
    state = est.init(key)
    _, stats, loss = est.update(state, key, jnp.concatenate([a, b]))
    assert jnp.allclose(stats.loc, a.mean(0)) and jnp.isfinite(loss)
    with pytest.raises(ValueError, match=r"needs at least 8 fresh samples .* got 7"):
        est.update(state, key, jnp.zeros((7, 1)))


def test_each_score_step_trains_on_score_samples_fresh_draws(monkeypatch):
    calls = []
    update = ScoreEstimator.update

    def spy(self, state, key, samples, context=None, loc=None):
        calls.append(tuple(samples.shape))  # at trace time, under jit
        return update(self, state, key, samples, context, loc)

    monkeypatch.setattr(ScoreEstimator, "update", spy)
    elbo = ARDAE_ELBO(score_samples=32, score_steps=2)
    guide = AutoImplicitGuide(conjugate_normal, hidden=(8,), score=ScoreConfig(hidden=(8,)))
    result = SVI(conjugate_normal, guide, optax.adam(1e-3), elbo).run(KEY, 3, X, progress_bar=False)
    assert calls == [(32, 1), (32, 1)] and jnp.isfinite(result.losses).all()


def test_import_loads_neither_torch_nor_pyro():
    import subprocess
    import sys

    code = "import numpyro_ardae, sys; print('torch' in sys.modules, 'pyro' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]

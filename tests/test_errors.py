"""Bad input gets a clear error before any training step."""

import pyro
import pyro.distributions as dist
import pytest
import torch
from pyro.infer import SVI, Trace_ELBO
from pyro.infer.autoguide import AutoNormal

from pyro_ardae import ARDAE_ELBO, AutoImplicitGuide, ImplicitGuide


def model():
    pyro.sample("z", dist.Normal(torch.zeros(2), 1.0).to_event(1))


def svi_step(model, guide, elbo=None, *args):
    svi = SVI(model, guide, pyro.optim.Adam({"lr": 1e-3}), elbo or ARDAE_ELBO(score_samples=16))
    return svi.step(*args)


def test_trace_elbo_refuses_implicit_guide():
    guide = AutoImplicitGuide(model, hidden=(8,))
    with pytest.raises(NotImplementedError, match="no density.*ARDAE_ELBO"):
        svi_step(model, guide, Trace_ELBO())


def test_density_guide_is_refused():
    with pytest.raises(TypeError, match="guide site 'z_unconstrained' has a.*implicit guides"):
        svi_step(model, AutoNormal(model))


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"num_particles": 0}, "num_particles"),
        ({"score_samples": 1}, "score_samples"),
        ({"score_steps": -1}, "score_steps"),
        ({"num_noise": 1.5}, "num_noise"),
        ({"score_lr": 0.0}, "score_lr"),
        ({"whitening_momentum": 1.0}, r"whitening_momentum in \[0, 1\), got 1.0"),
        ({"whitening_samples": 256}, r"whitening_samples .* >= score_samples \(512\), got 256"),
        ({"whitening_samples": 2048.0}, r"whitening_samples .*, got 2048.0"),
    ],
)
def test_elbo_options(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ARDAE_ELBO(**kwargs)


def test_wrong_site_name():
    guide = ImplicitGuide(torch.nn.Linear(2, 2), noise_dim=2, sites="w")
    with pytest.raises(ValueError, match=r"samples 'w'.*latent sites are \['z'\]"):
        svi_step(model, guide)


def test_missing_site():
    def two_sites():
        pyro.sample("a", dist.Normal(0.0, 1.0))
        pyro.sample("b", dist.Normal(0.0, 1.0))

    guide = ImplicitGuide(lambda e: e.sum(-1), noise_dim=2, sites="a")
    with pytest.raises(ValueError, match=r"\['b'\] are not sampled"):
        svi_step(two_sites, guide)


def test_wrong_output_shape():
    guide = ImplicitGuide(lambda e: e[0], noise_dim=2, sites="z")
    with pytest.raises(ValueError, match=r"shape \(3,\) \+ event_shape"):
        with pyro.plate("p", 3):
            guide()


def test_wrong_output_keys():
    guide = ImplicitGuide(lambda e: {"a": e, "c": e}, noise_dim=2, sites=["a", "b"])
    with pytest.raises(ValueError, match=r"returned sites \['a', 'c'\], expected \['a', 'b'\]"):
        guide()


def test_support_mismatch():
    def positive():
        pyro.sample("s", dist.LogNormal(0.0, 1.0))

    guide = ImplicitGuide(lambda e: e.sum(-1), noise_dim=2, sites="s")
    with pytest.raises(ValueError, match="support"):
        svi_step(positive, guide)


def test_bad_guide_arguments():
    with pytest.raises(TypeError, match="callable net"):
        ImplicitGuide(3, noise_dim=2)
    with pytest.raises(ValueError, match="noise_dim"):
        ImplicitGuide(torch.nn.Linear(2, 2), noise_dim=0)
    with pytest.raises(ValueError, match="continuous support"):
        ImplicitGuide(torch.nn.Linear(2, 2), noise_dim=2, sites={"k": dist.constraints.boolean})
    with pytest.raises(ValueError, match="noise_dim"):
        AutoImplicitGuide(model, noise_dim=-1)
    with pytest.raises(ValueError, match="score_parameterization"):
        AutoImplicitGuide(model, score_parameterization="scalar")
    with pytest.raises(ValueError, match="score_delta"):
        AutoImplicitGuide(model, score_delta=0.0)
    with pytest.raises(ValueError, match="score_hidden"):
        ImplicitGuide(torch.nn.Linear(2, 2), noise_dim=2, score_hidden=(0,))
    with pytest.raises(ValueError, match="score_fourier_features to be an int >= 0, got -1"):
        AutoImplicitGuide(model, score_fourier_features=-1)
    with pytest.raises(ValueError, match="score_fourier_scale > 0, got 0"):
        ImplicitGuide(torch.nn.Linear(2, 2), noise_dim=2, score_fourier_scale=0)
    with pytest.raises(ValueError, match="non-empty str prefix"):
        ImplicitGuide(torch.nn.Linear(2, 2), noise_dim=2, prefix="")


@pytest.mark.parametrize("second", ["implicit", "b_guide"])
def test_two_guides_need_two_names(second):
    def two_sites():
        pyro.sample("a", dist.Normal(0.0, 1.0))
        pyro.sample("b", dist.Normal(0.0, 1.0))

    pyro.clear_param_store()
    first = ImplicitGuide(torch.nn.Linear(2, 1), noise_dim=2, sites="a", score_hidden=(8,))
    other = ImplicitGuide(
        torch.nn.Linear(2, 1), noise_dim=2, sites="b", score_hidden=(8,), prefix=second
    )

    def guide():
        return {**first(), **other()}

    elbo = ARDAE_ELBO(score_samples=16)
    if second == "implicit":
        with pytest.raises(ValueError, match="both named 'implicit'.*own prefix"):
            svi_step(two_sites, guide, elbo)
        return
    svi_step(two_sites, guide, elbo)
    assert sorted(elbo.estimators) == ["b_guide", "implicit"]
    names = set(pyro.get_param_store())
    assert {"implicit.net$$$weight", "b_guide.net$$$weight"} <= names


def test_noise_dim_below_latent_dim():
    with pytest.raises(ValueError, match="noise_dim=1 is below the latent dimension 2"):
        AutoImplicitGuide(model, noise_dim=1)()


def test_discrete_latent():
    def discrete():
        pyro.sample("k", dist.Bernoulli(0.5))

    with pytest.raises(ValueError, match="'k' is discrete"):
        AutoImplicitGuide(discrete)()


def test_local_latent_in_subsampled_plate():
    def local(x):
        with pyro.plate("data", 100, subsample_size=10):
            pyro.sample("z", dist.Normal(0.0, 1.0))

    with pytest.raises(ValueError, match="subsampled plate 'data'.*ImplicitGuide"):
        AutoImplicitGuide(local)(None)


def test_batched_guide_without_context():
    def local():
        with pyro.plate("data", 5):
            pyro.sample("z", dist.Normal(0.0, 1.0))

    guide = ImplicitGuide(lambda e: e.sum(-1), noise_dim=2, sites="z")

    def guide_in_plate():
        with pyro.plate("data", 5):
            return guide()

    with pytest.raises(ValueError, match="needs a context"):
        svi_step(local, guide_in_plate)


def test_bad_context():
    guide = ImplicitGuide(lambda e, c: e, noise_dim=2, context=lambda: [1.0])
    with pytest.raises(ValueError, match="context.. must return a Tensor"):
        guide()


def test_nothing_trained_before_error():
    # The check runs on the first traces, before any parameter changes.
    guide = ImplicitGuide(torch.nn.Linear(2, 2), noise_dim=2, sites="w")
    before = [p.detach().clone() for p in guide.parameters()]
    with pytest.raises(ValueError):
        svi_step(model, guide)
    assert all(torch.equal(a, b) for a, b in zip(before, guide.parameters(), strict=True))

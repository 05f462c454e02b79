"""Bad input gets a clear error before any training step."""

import math

import pyro
import pyro.distributions as dist
import pytest
import torch
from pyro.infer import SVI, Trace_ELBO
from pyro.infer.autoguide import AutoNormal

from pyro_ardae import ARDAE_ELBO, AutoImplicitGuide, ImplicitGuide, ScoreConfig


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
        ({"score_steps": 0}, "score_steps to be an int >= 1, got 0"),
        ({"score_lr": float("inf")}, "finite score_lr"),
        ({"score_lr": 0.0}, "score_lr"),
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
    with pytest.raises(ValueError, match="finite init_scale > 0, got inf"):
        AutoImplicitGuide(model, init_scale=float("inf"))
    with pytest.raises(TypeError, match="AutoImplicitGuide: expected score to be a ScoreConfig"):
        AutoImplicitGuide(model, score={"hidden": (8,)})
    with pytest.raises(TypeError, match="ImplicitGuide: expected score to be a ScoreConfig"):
        ImplicitGuide(torch.nn.Linear(2, 2), noise_dim=2, score=(8,))
    with pytest.raises(ValueError, match="non-empty str prefix"):
        ImplicitGuide(torch.nn.Linear(2, 2), noise_dim=2, prefix="")


@pytest.mark.parametrize("second", ["implicit", "b_guide"])
def test_two_guides_need_two_names(second):
    def two_sites():
        pyro.sample("a", dist.Normal(0.0, 1.0))
        pyro.sample("b", dist.Normal(0.0, 1.0))

    pyro.clear_param_store()
    first = ImplicitGuide(
        torch.nn.Linear(2, 1), noise_dim=2, sites="a", score=ScoreConfig(hidden=(8,))
    )
    other = ImplicitGuide(
        torch.nn.Linear(2, 1), noise_dim=2, sites="b", score=ScoreConfig(hidden=(8,)), prefix=second
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

    with pytest.raises(ValueError, match="'k' is discrete.*pyro.ai/examples/enumeration"):
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


def test_broadcast_guide_value_is_refused():
    # a scalar where the model's site is (2,) would tie both coordinates to one value
    guide = ImplicitGuide(lambda e: e.sum(-1), noise_dim=2, sites="z")
    with pytest.raises(ValueError, match=r"shape \(\), which does not cover .* \(2,\)"):
        svi_step(model, guide)


def test_context_of_one_row_in_a_plate_of_ten():
    def local(x):
        with pyro.plate("n", 10):
            pyro.sample("z", dist.Normal(0.0, 1.0).expand([2]).to_event(1))

    net = torch.nn.Linear(3 + 4, 2)
    guide = ImplicitGuide(
        lambda e, c: net(torch.cat([e, c], -1)), noise_dim=3, context=lambda x: x[:1]
    )
    with pytest.raises(ValueError, match=r"shape \(1, 2\), which does not cover .* \(10, 2\)"):
        svi_step(local, guide, None, torch.randn(10, 4))


def test_store_of_another_guide_is_named():
    pyro.clear_param_store()
    ImplicitGuide(torch.nn.Linear(2, 1), noise_dim=2, sites="z")()
    guide = ImplicitGuide(torch.nn.Linear(3, 2), noise_dim=3, sites="z")
    with pytest.raises(ValueError, match="store is another guide's.*clear_param_store"):
        guide()
    pyro.clear_param_store()


def test_model_without_latents():
    def observed():
        pyro.sample("x", dist.Normal(0.0, 1.0), obs=torch.tensor(1.0))

    with pytest.raises(RuntimeError, match="found no latent variables"):  # Pyro's message
        AutoImplicitGuide(observed)()


def wide_model():
    pyro.sample("z", dist.Normal(torch.zeros(260), 1.0).to_event(1))


def test_wide_guide_names_score_samples():
    guide = AutoImplicitGuide(wide_model, hidden=(8,), score=ScoreConfig(hidden=(8,)))
    with pytest.raises(ValueError, match=r"260 latent dimensions.*ARDAE_ELBO\(score_samples="):
        svi_step(wide_model, guide, ARDAE_ELBO(score_samples=512))


def test_wide_guide_trains_at_the_default():
    pyro.clear_param_store()
    guide = AutoImplicitGuide(wide_model, hidden=(8,), score=ScoreConfig(hidden=(8,)))
    assert math.isfinite(svi_step(wide_model, guide, ARDAE_ELBO()))


def test_model_guide_checks_run_on_the_first_step_only(monkeypatch):
    import pyro_ardae.elbo

    calls = []
    check = pyro_ardae.elbo.check_traces
    monkeypatch.setattr(pyro_ardae.elbo, "check_traces", lambda *a: calls.append(1) or check(*a))
    guide = AutoImplicitGuide(model, hidden=(8,), score=ScoreConfig(hidden=(8,)))
    svi = SVI(model, guide, pyro.optim.Adam({"lr": 1e-3}), ARDAE_ELBO(score_samples=16))
    svi.step()
    first = len(calls)
    for _ in range(3):
        svi.step()
    assert first >= 1 and len(calls) == first

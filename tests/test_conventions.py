"""Pyro's autoguide conventions, run against AutoImplicitGuide and, as the control,
AutoNormal (NumPyro's: test_numpyro_conventions.py).

The same test body runs for both guides: saving and loading Pyro's param
store, re-creating a guide, pickling, resuming an interrupted run, ``Predictive`` in both
modes, ``median``/``quantiles``, deterministic and reparameterised sites, ``AutoGuideList``,
init strategies, improper priors and dtypes. A difference from the control is a failure,
except where an implicit guide cannot behave the same (it has no density), which the test
says.
"""

from __future__ import annotations

import pickle
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pyro
import pyro.distributions as dist
import pytest
import torch
from pyro.infer import SVI, Predictive, Trace_ELBO
from pyro.infer.autoguide import AutoGuideList, AutoNormal, init_to_value

import pyro_ardae

SMALL = {"hidden": (8,), "score": pyro_ardae.ScoreConfig(hidden=(16,))}
X = np.random.default_rng(0).normal(size=(20, 2))
Y = X @ np.array([1.0, -2.0]) + 0.5 * np.random.default_rng(1).normal(size=20)


# --- Pyro ----------------------------------------------------------------------------------
def pyro_model() -> None:
    dtype = torch.get_default_dtype()
    x, y = torch.tensor(X, dtype=dtype), torch.tensor(Y, dtype=dtype)
    w = pyro.sample("w", dist.Normal(0.0, 3.0).expand([2]).to_event(1))
    s = pyro.sample("s", dist.HalfNormal(2.0))
    with pyro.plate("n", len(y)):  # (x * w).sum(-1): draws may carry batch dims (Predictive)
        pyro.sample("y", dist.Normal((x * w.unsqueeze(-2)).sum(-1), s), obs=y)


def pyro_guide(kind: str, model=pyro_model, **kwargs):
    if kind == "implicit":
        return pyro_ardae.AutoImplicitGuide(model, **SMALL, **kwargs)
    return AutoNormal(model, **kwargs)


def pyro_elbo(kind: str):
    return pyro_ardae.ARDAE_ELBO(score_samples=64) if kind == "implicit" else Trace_ELBO()


def pyro_fit(kind: str, guide, steps: int, optim=None, elbo=None):
    optim = optim or pyro.optim.Adam({"lr": 1e-2})
    elbo = elbo or pyro_elbo(kind)
    svi = SVI(pyro_model, guide, optim, elbo)
    for _ in range(steps):
        svi.step()
    return optim, elbo


def seeded_draws(guide, seed: int = 3) -> dict[str, torch.Tensor]:
    pyro.set_rng_seed(seed)
    with torch.no_grad():
        return {k: v.clone() for k, v in guide().items()}


def assert_same(a: dict, b: dict) -> None:
    assert set(a) == set(b)
    for k in a:
        assert torch.equal(a[k], b[k]), k


@pytest.fixture(params=["implicit", "autonormal"])
def kind(request) -> str:
    pyro.clear_param_store()
    return request.param


@pytest.fixture
def default_dtype():
    before = torch.get_default_dtype()
    yield torch.set_default_dtype
    torch.set_default_dtype(before)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_pyro_loaded_store_restores_the_fit(kind, dtype, default_dtype, tmp_path):
    default_dtype(dtype)
    pyro.set_rng_seed(0)
    guide = pyro_guide(kind)
    pyro_fit(kind, guide, 20)
    trained = seeded_draws(guide)
    pyro.get_param_store().save(tmp_path / "params.pt")
    pyro.clear_param_store()
    pyro.get_param_store().load(tmp_path / "params.pt")
    fresh = pyro_guide(kind)
    fresh()  # set-up draws random numbers (AutoNormal's too)
    restored = seeded_draws(fresh)
    assert_same(trained, restored)
    assert restored["w"].dtype == dtype


def test_pyro_recreated_guide_trains_the_store(kind):
    pyro.set_rng_seed(0)
    first = pyro_guide(kind)
    pyro_fit(kind, first, 10)
    before = seeded_draws(first)
    second = pyro_guide(kind)  # a re-run notebook cell: no clear_param_store()
    pyro_fit(kind, second, 10)
    after = seeded_draws(second)
    assert not torch.equal(before["w"], after["w"])  # the second guide trained
    assert_same(after, seeded_draws(first))  # ... the store both guides read


def test_pyro_guide_and_elbo_pickle(kind):
    pyro.set_rng_seed(0)
    guide = pyro_guide(kind)
    _, elbo = pyro_fit(kind, guide, 5)
    copy = pickle.loads(pickle.dumps(guide))
    assert_same(seeded_draws(guide), seeded_draws(copy))
    elbo_copy = pickle.loads(pickle.dumps(elbo))
    if kind == "implicit":
        saved, loaded = elbo.state_dict(), elbo_copy.state_dict()
        assert saved["num_steps"] == loaded["num_steps"] == 5
        for name, tensor in saved["estimators"][guide._pyro_name].items():
            if isinstance(tensor, torch.Tensor):
                assert torch.equal(tensor, loaded["estimators"][guide._pyro_name][name])


def save_run(kind: str, optim, elbo) -> dict:
    state = {
        "params": pyro.get_param_store().get_state(),
        "optim": optim.get_state(),
        "rng": torch.get_rng_state(),
    }
    if kind == "implicit":
        state["elbo"] = elbo.state_dict()
    return state


def resume_run(kind: str, state: dict):
    pyro.clear_param_store()
    pyro.get_param_store().set_state(state["params"])
    guide = pyro_guide(kind)
    guide()  # set up before the random state is restored
    optim, elbo = pyro.optim.Adam({"lr": 1e-2}), pyro_elbo(kind)
    optim.set_state(state["optim"])
    if kind == "implicit":
        elbo.load_state_dict(state["elbo"])
    torch.set_rng_state(state["rng"])
    return guide, optim, elbo


def store_values() -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in pyro.get_param_store().items()}


def test_pyro_resumed_run_equals_the_uninterrupted_one(kind, tmp_path):
    pyro.set_rng_seed(0)
    guide = pyro_guide(kind)
    optim, elbo = pyro_fit(kind, guide, 10)
    torch.save(save_run(kind, optim, elbo), tmp_path / "run.pt")
    pyro_fit(kind, guide, 10, optim, elbo)
    uninterrupted = store_values()

    state = torch.load(tmp_path / "run.pt", weights_only=False)
    guide, optim, elbo = resume_run(kind, state)
    pyro_fit(kind, guide, 10, optim, elbo)
    resumed = store_values()
    assert_same(uninterrupted, resumed)


RESUME_SCRIPT = """
import sys, torch, pyro
sys.path.insert(0, {tests!r})
import test_conventions as t
torch.set_num_threads(1)
state = torch.load({path!r}, weights_only=False)
guide, optim, elbo = t.resume_run("implicit", state)
t.pyro_fit("implicit", guide, 10, optim, elbo)
torch.save(t.store_values(), {out!r})
"""


def test_pyro_run_resumes_in_a_fresh_process(tmp_path):
    pyro.clear_param_store()
    pyro.set_rng_seed(0)
    guide = pyro_guide("implicit")
    optim, elbo = pyro_fit("implicit", guide, 10)
    torch.save(save_run("implicit", optim, elbo), tmp_path / "run.pt")
    pyro_fit("implicit", guide, 10, optim, elbo)
    uninterrupted = store_values()

    script = RESUME_SCRIPT.format(
        tests=str(__import__("pathlib").Path(__file__).parent),
        path=str(tmp_path / "run.pt"),
        out=str(tmp_path / "resumed.pt"),
    )
    subprocess.run([sys.executable, "-c", textwrap.dedent(script)], check=True)
    assert_same(uninterrupted, torch.load(tmp_path / "resumed.pt"))


@pytest.mark.parametrize("parallel", [False, True])
def test_pyro_predictive_shapes_match_the_control(parallel):
    shapes = {}
    for kind in ("implicit", "autonormal"):
        pyro.clear_param_store()
        guide = pyro_guide(kind)
        pyro_fit(kind, guide, 2)
        out = Predictive(pyro_model, guide=guide, num_samples=7, parallel=parallel)()
        shapes[kind] = {k: v.shape for k, v in out.items() if k in ("w", "s", "y")}
    assert shapes["implicit"] == shapes["autonormal"]
    assert shapes["implicit"]["y"] == (7, 20)


def amortised_model(x: torch.Tensor) -> None:
    with pyro.plate("n", x.shape[0]):
        z = pyro.sample("z", dist.Normal(0.0, 1.0).expand([2]).to_event(1))
        pyro.sample("obs", dist.Normal(z.sum(-1), 1.0), obs=x[:, 0])


class Encoder(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.layer = torch.nn.Linear(3 + 4, 2)

    def forward(self, noise: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        return self.layer(torch.cat([noise, context], -1))


@pytest.mark.parametrize("parallel", [False, True])
def test_pyro_predictive_amortised_guide(parallel):
    pyro.clear_param_store()
    guide = pyro_ardae.ImplicitGuide(Encoder(), noise_dim=3, sites="z", context=lambda x: x)
    x = torch.randn(10, 4)
    out = Predictive(amortised_model, guide=guide, num_samples=5, parallel=parallel)(x)
    assert out["z"].shape == (5, 10, 2)


def test_pyro_median_and_quantiles_repeat_and_agree(kind):
    guide = pyro_guide(kind)
    pyro_fit(kind, guide, 2)
    median = guide.median()
    assert_same(median, guide.median())
    q = guide.quantiles([0.25, 0.5, 0.75])
    for name, value in median.items():
        assert torch.equal(q[name][1], value)
        assert torch.all(q[name][0] < q[name][1]) and torch.all(q[name][1] < q[name][2])


def test_pyro_init_to_value(kind):
    start = torch.tensor([1.0, -2.0])
    guide = pyro_guide(kind, init_loc_fn=init_to_value(values={"w": start}))
    guide()
    # AutoNormal: exact; implicit: the median of 2000 draws of N(start, 0.1^2), SE 0.003
    assert torch.allclose(guide.median()["w"], start, atol=0.015)


def improper_model() -> None:
    z = pyro.sample("z", dist.ImproperUniform(dist.constraints.positive, (), (2,)))
    pyro.sample("x", dist.Normal(z, 1.0).to_event(1), obs=torch.tensor([1.0, 2.0]))


def test_pyro_improper_prior(kind):
    # Pyro's init_to_median and init_to_feasible sample the prior (for AutoNormal alike)
    start = init_to_value(values={"z": torch.ones(2)})
    guide = pyro_guide(kind, model=improper_model, init_loc_fn=start)
    svi = SVI(improper_model, guide, pyro.optim.Adam({"lr": 1e-2}), pyro_elbo(kind))
    for _ in range(3):
        svi.step()
    assert torch.all(guide()["z"] > 0)


def test_pyro_auto_guide_list(kind):
    guides = AutoGuideList(pyro_model)
    guides.append(pyro_guide(kind, model=pyro.poutine.block(pyro_model, hide=["s"])))
    guides.append(pyro_guide(kind, model=pyro.poutine.block(pyro_model, hide=["w"])))
    svi = SVI(pyro_model, guides, pyro.optim.Adam({"lr": 1e-2}), pyro_elbo(kind))
    for _ in range(3):
        svi.step()
    assert set(guides()) == {"w", "s"}


def test_pyro_frozen_guide_calls_without_warning(kind):
    guide = pyro_guide(kind)
    guide()
    guide.requires_grad_(False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        guide()


def test_pyro_density_methods_say_what_to_use():
    # a limit of implicit guides: no density, so no posterior distribution object
    guide = pyro_guide("implicit")
    guide()
    for method in (guide.get_posterior, guide.get_base_dist, guide.get_transform):
        with pytest.raises(NotImplementedError, match="median"):
            method()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_pyro_cuda(kind):
    def model():
        loc = torch.zeros(2, device="cuda")
        pyro.sample("z", dist.Normal(loc, 1.0).to_event(1))

    guide = pyro_guide(kind, model=model)
    svi = SVI(model, guide, pyro.optim.Adam({"lr": 1e-2}), pyro_elbo(kind))
    svi.step()
    assert guide()["z"].device.type == "cuda"

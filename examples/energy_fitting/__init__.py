"""Fit the 2-D energy targets U1-U4 (Rezende & Mohamed, 2015) with implicit samplers: the
paper's Fig. 4 as Pyro models.

Each target is a model: ``z ~ ImproperUniform(R^2)`` with ``pyro.factor("target", -beta * (U(z)
+ wall(z)))``, where ``wall(z) = sum_i relu(|z_i| - 6)^2`` keeps U2-U4 proper and the inverse
temperature ``beta`` is annealed from 0.01 to 1 over the first part of training (``--anneal``).
The samplers (``--methods``):

* ``implicit``: ``AutoImplicitGuide`` (noise in R^10, an MLP generator) with ``ARDAE_ELBO``;
* ``hierarchical``: an ``ImplicitGuide`` whose net draws ``x ~ N(mu(e), sigma(e)^2)`` from
  noise ``e ~ N(0, I_2)``: the AR-DAE learns the score of the marginal of ``x``;
* ``iaf``: ``AutoIAFNormal``, a normalising flow, with ``Trace_ELBO`` (the baseline).

As in the paper, the implicit samplers take two AR-DAE steps per generator step
(``--score-steps``) and the learning rate decays over the run (``--lr-decay``). Their score
networks see random Fourier features of their input (``--fourier-features``; Tancik et al.,
2020): the targets are thin curved bands whose score a plain MLP learns slowly. ``--ema D``
draws each sampler from an exponential moving average of its parameters, ``--pool K`` from a
mixture of its iterates over the last ``K`` steps (``examples.common``); both also score the
last iterate. ``--score-parameterization gradient`` makes the score networks the gradient of a
learned energy, a curl-free field.

Each fit is scored by the energy distance between its draws and exact draws of the target
(fine-grid inverse-CDF sampling), and a figure shows the density and the draws of each method.
``--device cuda`` trains on a GPU. ``benchmarks/energy.py`` runs the fits over seeds and
reports them against the flow (docs/benchmarks.md).

    python -m examples.energy_fitting --targets U1,U2,U3,U4 --steps 5000
"""

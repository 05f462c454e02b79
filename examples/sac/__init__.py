"""Soft actor-critic with an implicit policy (SAC-AR-DAE, the paper's Table 3) or the
standard tanh-Gaussian policy, on a gymnasium environment with a box action space.

Both policies share everything but the actor: the replay buffer, twin critics (MLP 256-256,
ReLU) with Polyak-averaged targets, batch 256, gamma 0.99, tau 0.005, Adam 3e-4, the
temperature alpha (0.05 fixed, or learned with ``--autotune``) and one gradient step per
environment step. The soft-Q target is
``r + gamma (1 - terminated) (min Q'(s', a') - alpha log pi(a' | s'))``, a' ~ pi(. | s').

**Temperature.** With ``--autotune`` alpha is learned as in Haarnoja et al. (2018, "Soft
Actor-Critic Algorithms and Applications"): ``log alpha`` takes an Adam step on
``log alpha * (H - H_target)``, with ``H`` the batch mean of ``-log pi(a' | s')`` that the
soft-Q target has just computed (next states from the buffer, as good a sample of the state
distribution as the current ones, so the implicit policy needs no second normaliser
estimate) and ``H_target = -dim(A)`` by default (``--target-entropy``). Alpha falls while the
policy's entropy is above the target and rises below it; both policies use the same rule.

**Squashing.** Both policies draw an unconstrained ``u`` and map it to the action box
``[low, high]`` with ``T = biject_to(interval(low, high))``, i.e.
``a = low + (high - low) sigmoid(u)`` = the tanh squashing of ``u / 2`` rescaled to the box,
and take ``log|det J_T(u)|`` from the transform, not from a hand-written correction. The
Gaussian policy is thus the usual tanh-Gaussian one (a Gaussian in ``u``).

**Implicit policy.** ``u = g(eps, s)``, ``eps ~ N(0, I_10)``, has no density. Its
improvement step is inference against the library: for a batch of states, the model puts a
uniform prior on the action box (a constant) and ``pyro.factor(min(Q1, Q2)(s, a) / alpha)``
on the action, the guide is an ``ImplicitGuide`` whose generator takes the state as context,
and ``SVI`` with ``ARDAE_ELBO`` maximises ``E[Q / alpha] + H(pi(. | s))``, which is SAC's
policy objective divided by alpha. The entropy gradient comes from the AR-DAE (gradient
form, per-state whitening of ``score_samples`` fresh draws per state). The soft-Q target
needs ``log pi(a' | s')`` at new states: the scalar form gives ``log q(u | s)`` up to a
constant, ``-F(y, 0, s) - log|det L(s)|`` with ``y = L(s)^-1 (u - m(s))`` whitened by fresh
draws of the policy at ``s'``; the normaliser ``log Z(s)`` is estimated by importance
sampling from ``N(0, I)`` in whitened coordinates (``pyro_ardae.log_normalizer``, the
paper's estimator with the whitening as its proposal scale), and
``log pi(a | s) = log q(u | s) - log|det J_T(u)|``.

**Collapse.** The mean over states of the sd of the policy's unconstrained draws (the
AR-DAE's per-state whitening scale) is monitored; when it drops below
``--collapse-threshold`` a warning line is logged and counted. Collapse is prevented by the
authors' Jacobian clamping, written as a separate term of the actor's loss next to the
ELBO surrogate (it is a penalty on the generator, not a part of the model):
``jc_weight * sum_s (min(0, r(s) - eta) / eta)^2`` with
``r = ||a(eps + d p, s) - a(eps, s)||^2 / (d^2 ||p||^2)``, ``d = 0.01``, ``p ~ N(0, I)``, the
actions measured in half-widths of the box. It only acts when the generator's mean squared
slope falls below ``eta``.

**Device.** ``--device cuda`` builds the networks, the replay batches and every tensor of
the updates on the GPU (the run executes under ``torch.device``, the default device of
tensor factories); the environments stay on the CPU and each action crosses over once.

    python -m examples.sac --env Pendulum-v1 --policy implicit --total-steps 20000
    python -m examples.sac --env HalfCheetah-v5 --policy gaussian --total-steps 100000
    python -m examples.sac --env HalfCheetah-v5 --device cuda
"""

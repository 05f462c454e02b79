"""VAE on dynamically binarised MNIST: an implicit (AR-DAE) encoder against a Gaussian one.

The paper's Table 1 experiment as a Pyro model and two guides. The model: z ~ N(0, I_32),
x | z ~ Bernoulli(decoder(z)), over a subsampled ``pyro.plate`` of the training set. The
encoders share the features h(x) of the paper's MLP (4 softplus layers of 300; ``--arch conv``
for a convolutional variant):

* implicit: z = head(eps, h(x)), eps ~ N(0, I_96), an :class:`~pyro_ardae.ImplicitGuide`
  with h as its context, trained with :class:`~pyro_ardae.ARDAE_ELBO`. Since q(z | x)
  depends on x only through h(x), h(x) (detached) is also the score network's context; the
  per-x whitening of the draws is the paper's adaptive noise scale. The head
  (:class:`ImplicitHead`) starts as a diagonal Gaussian and its non-Gaussian part, which
  acts on each coordinate of z separately, learns at ``--residual-lr``;
* Gaussian: z ~ N(mu(h(x)), sd(h(x))^2), trained with ``Trace_ELBO``.

Test log p(x) is estimated by importance sampling with K proposals per image: the Gaussian
encoder's own q(z | x), and for the implicit one a full-covariance Gaussian fitted to K of
its draws (:func:`~pyro_ardae.importance_log_likelihood`). Writes a checkpoint that
reloads and reproduces the test figure, and a PNG of reconstructions and prior samples.
``--device cuda`` trains and evaluates on a GPU (the run executes under ``torch.device``);
the test binarisation is drawn on the CPU, so it is the same on every device.

    python -m examples.vae_mnist --epochs 10 --data-dir ../shared/data
    python -m examples.vae_mnist --epochs 20 --data-dir ../shared/data --device cuda
"""

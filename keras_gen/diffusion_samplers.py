"""The diffusion schedule and its samplers: one core behind `Diffusion.generate` and the exported
`generate` signature.

Schedule: continuous time t in [0, 1] with the cosine schedule alpha_t = cos(pi t / 2),
sigma_t = sin(pi t / 2) (variance preserving, Nichol & Dhariwal 2021 without their offset), so
x_t = alpha_t x_0 + sigma_t eps. The network is evaluated at t clipped to [T_MIN, T_MAX], where
neither alpha nor sigma is 0; sampling starts from pure noise at T_MAX and ends at t = 0
exactly (alpha = 1, sigma = 0: the last step returns the denoised estimate).

A sampler takes `denoise(x, t) -> (x0, eps)` (the model's estimates of the clean image and of
the noise at time t; `t` a Python float) and the starting noise, and runs a fixed number of
steps on a uniform grid of t. Every coefficient is computed in Python from the grid, and the
loop is a Python loop, so the same function runs eagerly, inside `tf.function`, and in an
exported graph of builtin ops (the loop is unrolled at trace time).

- `ddpm`: ancestral sampling from the true posterior q(x_s | x_t, x0) (Ho et al. 2020), the
  reference the others are tested against; needs one Gaussian draw per step.
- `ddim`: Song et al. 2021; eta = 0 is the deterministic ODE sampler, eta = 1 draws from the
  same posterior as `ddpm`.
- `dpm_solver_2m`: DPM-Solver++(2M) (Lu et al. 2022), the second-order multistep solver of the
  probability-flow ODE in data prediction, first order at the first and the last step.
"""

from __future__ import annotations

import math

import tensorflow as tf

# The network never sees t = 0 (sigma = 0) or t = 1 (alpha = 0).
T_MIN = 1e-3
T_MAX = 1.0 - 1e-3

SAMPLERS = ("dpm++2m", "ddim", "ddpm")
# Samplers that draw fresh noise at every step (`ddim` only when eta > 0).
STOCHASTIC = ("ddpm",)


def alpha_sigma(t):
    """(alpha_t, sigma_t) of the cosine schedule; Python floats for a float t, tensors for a
    tensor t."""
    if isinstance(t, (int, float)):
        return math.cos(0.5 * math.pi * t), math.sin(0.5 * math.pi * t)
    return tf.cos(0.5 * math.pi * t), tf.sin(0.5 * math.pi * t)


def clip_time(t):
    """t as the network sees it."""
    if isinstance(t, (int, float)):
        return min(max(float(t), T_MIN), T_MAX)
    return tf.clip_by_value(t, T_MIN, T_MAX)


def training_time(uniform):
    """Uniform noise in [0, 1) -> training times, uniform in [T_MIN, T_MAX]."""
    return T_MIN + (T_MAX - T_MIN) * uniform


def grid(steps):
    """steps + 1 times from T_MAX down to 0, evenly spaced."""
    return [T_MAX * (1.0 - i / steps) for i in range(steps)] + [0.0]


# -- parameterisations: what the network predicts -> (x0, eps) ---------------------------------

PREDICTIONS = ("v", "eps")


def v_target(x0, eps, alpha, sigma):
    """The velocity v = alpha eps - sigma x0 (Salimans & Ho 2022)."""
    return alpha * eps - sigma * x0


def estimates(prediction, output, x, alpha, sigma):
    """(x0, eps) from the network's output at x_t. v: exact at every t. eps: x0 = (x - sigma
    eps) / alpha blows up as alpha -> 0, so that x0 is clipped to the data range [-1, 1] (and
    eps recomputed from it), as DDPM implementations do."""
    if prediction == "v":
        return alpha * x - sigma * output, sigma * x + alpha * output
    x0 = tf.clip_by_value((x - sigma * output) / alpha, -1.0, 1.0)
    return x0, (x - alpha * x0) / sigma


# -- samplers ---------------------------------------------------------------------------------


def ddim_step(x, x0, eps, t, s, eta=0.0, noise=None):
    """One DDIM update from time t to s < t (Song et al. 2021, eq. 12):
    x_s = alpha_s x0 + sqrt(sigma_s^2 - c^2) eps + c z, c = eta sigma_s / sigma_t
    sqrt(1 - alpha_t^2 / alpha_s^2)."""
    alpha_t, sigma_t = alpha_sigma(t)
    alpha_s, sigma_s = alpha_sigma(s)
    c = eta * sigma_s / sigma_t * math.sqrt(max(0.0, 1.0 - (alpha_t / alpha_s) ** 2)) if eta else 0.0
    x = alpha_s * x0 + math.sqrt(max(0.0, sigma_s**2 - c**2)) * eps
    return x + c * noise if c else x


def ddim(denoise, x, steps, eta=0.0, noise=None):
    """DDIM with `steps` network evaluations; `noise` (steps, *x.shape) when eta > 0."""
    times = grid(steps)
    for i in range(steps):
        x0, eps = denoise(x, times[i])
        x = ddim_step(x, x0, eps, times[i], times[i + 1], eta, None if noise is None else noise[i])
    return x


def ddpm(denoise, x, steps, noise):
    """Ancestral sampling: x_s ~ q(x_s | x_t, x0 = the model's estimate), whose mean is
    (alpha_t|s sigma_s^2 x_t + alpha_s sigma_t|s^2 x0) / sigma_t^2 and variance
    sigma_t|s^2 sigma_s^2 / sigma_t^2, with alpha_t|s = alpha_t / alpha_s and
    sigma_t|s^2 = sigma_t^2 - alpha_t|s^2 sigma_s^2."""
    times = grid(steps)
    for i in range(steps):
        t, s = times[i], times[i + 1]
        alpha_t, sigma_t = alpha_sigma(t)
        alpha_s, sigma_s = alpha_sigma(s)
        alpha_ts = alpha_t / alpha_s
        var_ts = sigma_t**2 - alpha_ts**2 * sigma_s**2
        x0, _ = denoise(x, t)
        mean = (alpha_ts * sigma_s**2 * x + alpha_s * var_ts * x0) / sigma_t**2
        x = mean + math.sqrt(var_ts * sigma_s**2) / sigma_t * noise[i]
    return x


def _lambda(t):
    """Half the log signal-to-noise ratio, log(alpha_t / sigma_t)."""
    alpha, sigma = alpha_sigma(t)
    return math.log(alpha / sigma)


def dpm_solver_2m(denoise, x, steps):
    """DPM-Solver++(2M) (Lu et al. 2022, Algorithm 2): with h = lambda_s - lambda_t,
    x_s = sigma_s / sigma_t x_t - alpha_s (e^-h - 1) D, where D is the last x0 estimate
    extrapolated with the one before, D = (1 + 1/2r) x0_i - 1/2r x0_{i-1}, r = h_prev / h.
    The first step has no previous estimate and the last (to sigma = 0, h = inf) takes the
    estimate itself: both first order."""
    times = grid(steps)
    previous, h_previous = None, None
    for i in range(steps):
        t, s = times[i], times[i + 1]
        x0, _ = denoise(x, t)
        if s == 0.0:
            return x0
        alpha_s, sigma_s = alpha_sigma(s)
        sigma_t = alpha_sigma(t)[1]
        h = _lambda(s) - _lambda(t)
        if previous is None:
            d = x0
        else:
            r = h_previous / h
            d = (1.0 + 0.5 / r) * x0 - (0.5 / r) * previous
        x = (sigma_s / sigma_t) * x + (alpha_s * -math.expm1(-h)) * d
        previous, h_previous = x0, h
    return x


def sample(sampler, denoise, x, steps, eta=0.0, noise=None):
    """Runs `sampler` ("dpm++2m", "ddim" or "ddpm") from the noise x at T_MAX to t = 0."""
    if sampler == "dpm++2m":
        return dpm_solver_2m(denoise, x, steps)
    if sampler == "ddim":
        return ddim(denoise, x, steps, eta, noise)
    if sampler == "ddpm":
        return ddpm(denoise, x, steps, noise)
    raise ValueError(f"sampler must be one of {SAMPLERS}; got {sampler!r}.")


def needs_step_noise(sampler, eta):
    return sampler == "ddpm" or (sampler == "ddim" and eta > 0)

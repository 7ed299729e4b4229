"""Generative inverse design: a conditional variational autoencoder over compositions (PyTorch, CPU).

The ``generative`` sampler is the surrogate sampler with another source of candidates. Each round a
conditional VAE (Kingma et al. 2014; Sohn et al. 2015) learns the campaign's results (and any imported
prior data): the encoder maps a composition and its objective value to a small latent space, the decoder
maps a latent point and a value back to a composition (a softmax over the elements, so every output is a
composition). Sampling the latent prior with the value set inside a target range (by default: as good as
the best tenth of the results, up to one standard deviation beyond the best) gives compositions the
model of the data associates with good values, in spaces of many elements where grids are hopeless.
Each decoded composition is then drawn again from a Dirichlet distribution centred on it
(``concentration``: 50 by default, a spread of about 0.06 in a fraction of 0.3): with few results the
decoder mostly reproduces compositions already computed, and the spread gives new ones near them.

The samples are made real compositions (the largest fractions name the elements, at most
``max_elements``, no forbidden pair; fractions moved into the bounds and realised on the cell; cost and
density constraints kept), snapped to the nearest composition not yet computed in grid and list
spaces, and ranked by the surrogate's acquisition like any candidates; the batch is chosen as usual.
Training and sampling are seeded by the campaign seed and the round and run on one thread, so a resumed
campaign proposes what an uninterrupted one would.
"""

from __future__ import annotations

import importlib.util
import time
from typing import Any

import numpy as np

from htflow.errors import InputError
from htflow.schemas.config import GenerativeConfig, SurrogateConfig
from htflow.search.context import ProposalContext
from htflow.search.guided import SurrogateGenerator
from htflow.search.samplers import pool_tree
from htflow.space.compositions import composition_key
from htflow.utils.threads import pin_torch

INSTALL = "pip install 'htflow[generative]' (PyTorch 2.13, CPU)"


def available() -> bool:
    """True when PyTorch can be imported."""
    return importlib.util.find_spec("torch") is not None


class ConditionalVAE:
    """A conditional VAE over compositions: ``fit(X, c)`` then ``sample(n, c_range)``."""

    def __init__(self, settings: GenerativeConfig, seed: int):
        self.s, self.seed = settings, seed

    def fit(self, X: np.ndarray, c: np.ndarray) -> ConditionalVAE:
        """Learn fraction rows ``X`` with their (standardised) condition ``c``."""
        import torch  # heavy: PyTorch only when the generative sampler runs
        from torch import nn  # heavy: as above

        s, d = self.s, X.shape[1]
        pin_torch()
        torch.set_num_threads(1)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)
            self.enc = nn.Sequential(nn.Linear(d + 1, s.hidden), nn.Tanh(), nn.Linear(s.hidden, s.hidden),
                                     nn.Tanh(), nn.Linear(s.hidden, 2 * s.latent)).double()
            self.dec = nn.Sequential(nn.Linear(s.latent + 1, s.hidden), nn.Tanh(),
                                     nn.Linear(s.hidden, s.hidden), nn.Tanh(),
                                     nn.Linear(s.hidden, d)).double()
            opt = torch.optim.Adam([*self.enc.parameters(), *self.dec.parameters()], lr=s.learning_rate)
            Xt = torch.as_tensor(X, dtype=torch.float64)
            ct = torch.as_tensor(c, dtype=torch.float64)[:, None]
            self.loss: list[float] = []
            for epoch in range(s.epochs):
                mu, logvar = self.enc(torch.cat([Xt, ct], 1)).chunk(2, dim=1)
                z = mu + torch.randn_like(mu) * (0.5 * logvar).exp()
                logp = torch.log_softmax(self.dec(torch.cat([z, ct], 1)), dim=1)
                recon = -(Xt * logp).sum(1).mean()  # cross-entropy of the composition
                kl = -0.5 * (1 + logvar - mu.pow(2) - logvar.exp()).sum(1).mean()
                beta = s.beta * min(1.0, (epoch + 1) / max(1, s.epochs // 4))  # KL annealing
                loss = recon + beta * kl
                opt.zero_grad()
                loss.backward()
                opt.step()
                self.loss.append(loss.item())
            with torch.no_grad():
                self.latent = self.enc(torch.cat([Xt, ct], 1)).chunk(2, dim=1)[0].numpy()
        return self

    def sample(self, n: int, lo: float, hi: float, rng: np.random.Generator) -> np.ndarray:
        """``n`` compositions decoded from the latent prior, the condition uniform in ``[lo, hi]``."""
        import torch  # heavy: PyTorch only when the generative sampler runs

        z = torch.as_tensor(rng.standard_normal((n, self.s.latent)))
        c = torch.as_tensor(rng.uniform(lo, hi, (n, 1)))
        with torch.no_grad():
            logits = self.dec(torch.cat([z, c], 1)) / self.s.temperature
            p = torch.softmax(logits, dim=1).numpy()
        if self.s.concentration is None:
            return p
        # each decoded composition spread by a Dirichlet around it: new compositions near the ones the
        # decoder favours (with few results it mostly reproduces them, and those are known already)
        g = rng.gamma(self.s.concentration * p + 1e-3)
        return g / g.sum(axis=1, keepdims=True)


def target_range(y_up: np.ndarray, settings: GenerativeConfig) -> tuple[float, float, float, float]:
    """The condition's range (standardised) and the mean and scale that standardise, from values
    where larger is better: from the ``target_quantile`` of the values up to ``beyond`` standard
    deviations past the best."""
    mu, sd = float(np.mean(y_up)), float(np.std(y_up)) or 1.0
    z = (y_up - mu) / sd
    lo = float(np.quantile(z, 1.0 - settings.target_quantile))
    return lo, float(z.max()) + settings.beyond, mu, sd


def generate(X: np.ndarray, y_up: np.ndarray, settings: GenerativeConfig, seed: int,
             rng: np.random.Generator, target: tuple[float, float] | None = None) -> tuple[np.ndarray, dict]:
    """Train the conditional VAE on fractions ``X`` with values ``y_up`` (larger is better) and draw
    ``settings.samples`` compositions conditioned on the target range; returns them and a record
    (loss curve, latent map, range) for the round."""
    t0 = time.perf_counter()
    lo, hi, mu, sd = target_range(y_up, settings)
    if target is not None:  # the user's range, in the objective's own units (larger is better here)
        lo, hi = sorted(((target[0] - mu) / sd, (target[1] - mu) / sd))
    model = ConditionalVAE(settings, seed).fit(X, (y_up - mu) / sd)
    samples = model.sample(settings.samples, lo, hi, rng)
    step = max(1, len(model.loss) // 100)
    keep = np.sort(rng.choice(len(X), min(len(X), 500), replace=False))
    record: dict[str, Any] = {
        "samples": settings.samples, "epochs": settings.epochs, "latent_dim": settings.latent,
        "loss": [round(v, 5) for v in model.loss[::step]], "loss_every": step,
        "target_standardised": [lo, hi], "target": [mu + lo * sd, mu + hi * sd],
        "latent": np.round(model.latent[keep, :2], 4).tolist(), "latent_values": (y_up[keep]).tolist(),
    }
    record["seconds"] = time.perf_counter() - t0
    return samples, record


class GenerativeGenerator(SurrogateGenerator):
    """The ``generative`` sampler: the surrogate sampler choosing among conditional-VAE samples."""

    def __init__(self, settings: SurrogateConfig | None = None, generative: GenerativeConfig | None = None):
        if not available():
            raise InputError(f"search.sampler: 'generative' needs PyTorch, which is not installed: {INSTALL}")
        super().__init__(settings)
        self.generative = generative or GenerativeConfig()

    def _candidates(self, ctx: ProposalContext, train: np.ndarray | None = None, y: np.ndarray | None = None,
                    sign: float = 1.0) -> tuple[list[dict[str, float]], list[str]]:
        if train is None or y is None or len(y) < 2:
            return super()._candidates(ctx, train, y, sign)
        g = self.generative
        target = None if g.target is None else (-sign * g.target[0], -sign * g.target[1])
        seed = int(np.random.SeedSequence([ctx.seed, ctx.round, 11]).generate_state(1)[0])
        samples, record = generate(train, -y, g, seed, ctx.rng(11), target)
        # the record in the objective's own units (values here are "larger is better": -y)
        record["target"] = sorted(-sign * v for v in record["target"])
        record["latent_values"] = [-sign * v for v in record["latent_values"]]
        cands = self._snap(ctx, samples) if ctx.space.is_grid else self._realise_all(ctx, samples)
        record["valid"] = len(cands)
        ctx.report["generative"] = record
        if not cands:  # nothing new or nothing within the constraints: the usual candidates
            return super()._candidates(ctx, train, y, sign)
        return cands, [composition_key(ctx.builder.realise(c)) for c in cands]

    def _realise_all(self, ctx: ProposalContext, samples: np.ndarray) -> list[dict[str, float]]:
        """Samples made real compositions (less than half an atom of an element: none of it), each once."""
        realise = self._realiser(ctx)
        half_atom = 0.5 / ctx.builder.n_atoms if getattr(ctx.builder, "n_atoms", None) else 0.0
        out: dict[str, dict[str, float]] = {}
        for z in samples:
            frac = realise(np.where(z >= half_atom, z, 0.0))
            if frac is not None:
                out.setdefault(composition_key(frac), frac)
        return list(out.values())

    def _snap(self, ctx: ProposalContext, samples: np.ndarray) -> list[dict[str, float]]:
        """Grid and list spaces: each sample's nearest composition of the space not yet computed."""
        keys = self._keys(ctx)
        free = np.array([k not in ctx.known for k in keys])
        if not free.any():
            return []
        k = min(len(keys), 16)
        _, idx = pool_tree(ctx).query(samples, k=k)
        chosen: dict[int, None] = {}
        for row in np.atleast_2d(idx):
            hit = next((int(i) for i in row if free[int(i)]), None)
            if hit is not None:
                chosen.setdefault(hit)
        return [ctx.pool[i] for i in chosen]

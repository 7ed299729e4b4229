"""Search: which compositions to evaluate next.

``context`` (what a generator sees) → ``samplers`` (grid, random, Sobol, GA) and
``guided`` (the surrogate sampler: ``features`` → ``surrogates`` → ``planner``
(fit, CV, prune, pick by ``acquisition``), ``multiobjective`` (ParEGO) and
``ehvi`` (BoTorch)); ``generative`` (a conditional VAE proposing the surrogate sampler's candidates);
``explain`` (Shapley values of a round's model per element and pair); ``registry`` finds a sampler by name.
"""

from htflow.search.context import Generator, ProposalContext
from htflow.search.features import get_featurizer
from htflow.search.guided import SurrogateGenerator
from htflow.search.planner import Planner, Selection
from htflow.search.registry import get_generator, sampler_names
from htflow.search.surrogates import Surrogate, get_surrogate

__all__ = ["Generator", "Planner", "ProposalContext", "Selection", "Surrogate", "SurrogateGenerator",
           "get_featurizer", "get_generator", "get_surrogate", "sampler_names"]

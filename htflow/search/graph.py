"""Graph features (``search.surrogate.features: chgnet``; ``pip install 'htflow[mlip]'``).

Each composition's features are CHGNet's crystal feature vector: the atom features after its
message passing over the crystal graph, averaged over the atoms (the 64 numbers its energy head
reads), of the campaign's own cell for that composition (``structure``: prototype, atoms,
decoration), as built before any relaxation. The surrogate then learns the objective from what a
graph network pretrained on 1.5 million DFT structures sees of each alloy, local environments
included, instead of from the fractions alone.

One model pass per composition (graph and network: about 0.05 s for a 16-atom cell and 0.1 s for a
32-atom one on one CPU thread), each cached for the campaign: a pool of 4,000 32-atom cells costs
some 400 s once. That is why these features are for grid
and list spaces, and why rounds that use them record no Shapley explanation (which evaluates the
model on thousands of made-up compositions); the validation says so.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from htflow.space.structures import StructureBuilder
from htflow.utils.threads import pin_torch

DIM = 64  # CHGNet 0.3.0's atom feature size


class CHGNetFeatures:
    """CHGNet's crystal features of each composition's cell (see the module docstring)."""

    #: one model pass per composition: explanations and continuous searches leave it out
    slow = True

    def __init__(self, elements: Sequence[str], model: str = "0.3.0"):
        self.elements = list(elements)
        self.model = model
        self.builder: Any = StructureBuilder("fcc", 16)  # until the campaign binds its own
        self._cache: dict[bytes, np.ndarray] = {}
        self._model: Any = None

    def bind(self, builder: Any) -> None:
        """Build the campaign's cells (its ``structure`` block); features already computed are kept
        only if the builder is the same."""
        if builder is not self.builder:
            self.builder = builder
            self._cache.clear()

    def labels(self) -> list[str]:
        return [f"chgnet_{i}" for i in range(DIM)]

    def __call__(self, fractions: np.ndarray) -> np.ndarray:
        fractions = np.atleast_2d(np.asarray(fractions, float))
        keys = [np.round(row, 9).tobytes() for row in fractions]
        todo = list(dict.fromkeys(k for k in keys if k not in self._cache))
        if todo:
            rows = {k: fractions[keys.index(k)] for k in todo}
            for k, fea in zip(todo, self._features([rows[k] for k in todo]), strict=True):
                self._cache[k] = fea
        return np.array([self._cache[k] for k in keys]).reshape(len(keys), DIM)

    def _features(self, rows: list[np.ndarray]) -> list[np.ndarray]:
        import torch  # heavy: optional (htflow[mlip])
        from chgnet.model import CHGNet  # heavy: optional (htflow[mlip])

        if self._model is None:
            pin_torch()
            self._model = CHGNet.load(model_name=self.model, use_device="cpu", verbose=False)
        model = self._model
        structures = [self.builder.build({el: float(x) for el, x in zip(self.elements, row, strict=True)
                                          if x > 0}) for row in rows]
        graphs = [model.graph_converter(s) for s in structures]
        # without autograd: CHGNet keeps every intermediate otherwise (5 GB for 32 cells of 32 atoms);
        # small batches are the fastest on a CPU thread (0.10 s per 32-atom cell at 4, 0.19 s at 64)
        with torch.no_grad():
            out = model.predict_graph(graphs, task="e", return_crystal_feas=True, batch_size=4)
        out = out if isinstance(out, list) else [out]
        return [np.asarray(o["crystal_fea"], float).ravel() for o in out]

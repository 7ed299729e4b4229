"""The composition space a campaign file's ``space`` block describes."""

from __future__ import annotations

from htflow.schemas.config import CampaignConfig, SpaceConfig
from htflow.space.candidates import read_candidates
from htflow.space.compositions import CompositionSpace, SpaceError
from htflow.space.constraints import Constraints
from htflow.space.structures import ExactBuilder, StructureBuilder


def build_space(cfg: SpaceConfig) -> CompositionSpace:
    """The :class:`CompositionSpace` of ``cfg`` (grid, continuous, or the listed compositions);
    raises :class:`SpaceError`."""
    c = cfg.constraints
    constraints = Constraints(c.max_cost, c.max_density, tuple(tuple(p) for p in c.forbidden_pairs),
                              dict(c.prices))
    points = None
    elements = tuple(cfg.elements)
    if cfg.mode == "list":
        points = tuple(read_candidates(cfg.file))
        listed = sorted({el for p in points for el in p})
        if elements:
            outside = [el for el in listed if el not in elements]
            if outside:
                raise SpaceError(f"space.file: the list has {', '.join(outside)}, not in space.elements; "
                                 "remove space.elements (the list's elements are used) or add them")
        else:
            elements = tuple(listed)
    return CompositionSpace(
        constraints=constraints if constraints.active else None,
        elements=elements,
        bounds={k: tuple(v) for k, v in cfg.bounds.items()},
        step=cfg.step if cfg.mode == "grid" else None,
        max_elements=cfg.max_elements,
        max_pool=cfg.max_pool,
        points=points,
    )


def make_builder(cfg: CampaignConfig) -> StructureBuilder | ExactBuilder:
    """How the campaign realises a composition: a supercell of its structure block, or (experiment
    campaigns) the composition as it is."""
    if cfg.is_experiment:
        return ExactBuilder()
    st = cfg.structure
    return StructureBuilder(st.prototype, st.n_atoms, st.lattice_constant, st.decoration, st.configurations)

"""Data users bring: tables of measured or computed compositions read, checked row by row and
stored in the ``imported`` collection (:mod:`htflow.datasets.importer`)."""

from htflow.datasets.importer import ImportSummary, aggregate, prepare, store_rows
from htflow.datasets.rows import ColumnMap

__all__ = ["ColumnMap", "ImportSummary", "aggregate", "prepare", "store_rows"]

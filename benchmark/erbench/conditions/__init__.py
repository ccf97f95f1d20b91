"""Conditions applied to the test images before coding: clean, corruptions, attacks.

``CONDITIONS`` (``catalog.py``) lists every condition id with its kind, summary and flags without
importing an implementation; ``CONDITIONS.get(id)`` imports it (attacks import torch).
"""

from erbench.conditions.base import CONDITIONS, PARAM_COLUMNS, Cell, Condition, Context, Generated  # noqa: F401
from erbench.conditions.catalog import CORRUPTIONS, SEVERITIES, ConditionInfo  # noqa: F401

"""Conditions applied to the test images before coding: clean, corruptions, attacks.

Importing this package registers every condition in ``CONDITIONS``.
"""

from erbench.conditions.base import CONDITIONS, Cell, Condition, Context, Generated  # noqa: F401
from erbench.conditions import attacks, clean, corruptions  # noqa: F401  (registration)
from erbench.conditions.attacks import adaptive  # noqa: F401  (registration; see docs/defense.md)

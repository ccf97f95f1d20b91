"""One small generic registry for architectures, datasets, conditions and protocols.

An entry is either the object itself or a lazy ``"module:attr"`` target (``attr`` may be dotted,
as in entry points: ``"pkg.mod:TABLE.snow"``), imported on the first ``get``. Metadata declared at
registration (``meta=``) is readable without importing the target, so listing what is registered,
or planning a protocol, never imports torch.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from typing import Any, Generic, TypeVar

from erbench.errors import ErbenchError, did_you_mean

T = TypeVar("T")


def resolve(target: str) -> Any:
    """The object a ``"module:attr"`` (or ``"module:attr.sub"``) target names, importing its module."""
    module, sep, attr = target.partition(":")
    if not sep or not module or not attr:
        raise ValueError(f"target {target!r} is not of the form 'module:attr'")
    obj = importlib.import_module(module)
    for part in attr.split("."):
        obj = getattr(obj, part)
    return obj


class _Lazy:
    """A registered target not imported yet."""

    __slots__ = ("target",)

    def __init__(self, target: str):
        self.target = target

    def __repr__(self) -> str:
        return f"<lazy {self.target}>"


class Registry(Generic[T]):
    """Name -> entry, with duplicate detection, 'did you mean' on a miss and lazy targets."""

    def __init__(self, kind: str):
        self.kind = kind
        self._entries: dict[str, T | _Lazy] = {}
        self._meta: dict[str, Any] = {}
        self._targets: dict[str, str] = {}

    def register(self, name: str, entry: T | None = None, *, target: str | None = None, meta: Any = None) -> T | None:
        """Register ``entry``, or the lazy ``target`` ("module:attr", imported on the first ``get``).

        ``meta`` is what may be known about the entry without importing it (``meta(name)``).
        """
        if (entry is None) == (target is None):
            raise ValueError(f"{self.kind} '{name}': give exactly one of an entry or a target")
        if target is not None and ":" not in target:
            raise ValueError(f"{self.kind} '{name}': target {target!r} is not of the form 'module:attr'")
        if name in self._entries:
            raise ValueError(f"{self.kind} '{name}' is registered twice")
        self._entries[name] = _Lazy(target) if target is not None else entry
        if target is not None:
            self._targets[name] = target
        if meta is not None:
            self._meta[name] = meta
        return entry

    def _miss(self, name: str, file: str | None, field: str | None) -> ErbenchError:
        hint = did_you_mean(name, self._entries)
        return ErbenchError(f"unknown {self.kind} '{name}'{hint}", file=file, field=field)

    def get(self, name: str, *, file: str | None = None, field: str | None = None) -> T:
        """The entry; a lazy target is imported now (once)."""
        try:
            entry = self._entries[name]
        except KeyError:
            raise self._miss(name, file, field) from None
        if isinstance(entry, _Lazy):
            entry = self._entries[name] = resolve(entry.target)
        return entry

    def meta(self, name: str, *, file: str | None = None, field: str | None = None) -> Any:
        """The metadata declared for ``name`` at registration, without importing its target."""
        if name not in self._entries:
            raise self._miss(name, file, field)
        try:
            return self._meta[name]
        except KeyError:
            raise KeyError(f"{self.kind} '{name}' was registered without metadata") from None

    def target(self, name: str) -> str | None:
        """The ``"module:attr"`` target ``name`` was registered with (None for an entry given as an object)."""
        return self._targets.get(name)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._entries))

    def items(self) -> list[tuple[str, T]]:
        """Every (name, entry), sorted; imports every lazy target."""
        return [(name, self.get(name)) for name in self]

    def metas(self) -> list[tuple[str, Any]]:
        """Every (name, metadata), sorted, without importing anything (entries without metadata are left out)."""
        return [(name, self._meta[name]) for name in self if name in self._meta]

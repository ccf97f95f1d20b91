"""One small generic registry for architectures, datasets and conditions."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Generic, TypeVar

from erbench.errors import ErbenchError, did_you_mean

T = TypeVar("T")


class Registry(Generic[T]):
    """Name -> entry, with duplicate detection and 'did you mean' on a miss."""

    def __init__(self, kind: str):
        self.kind = kind
        self._entries: dict[str, T] = {}

    def register(self, name: str, entry: T) -> T:
        if name in self._entries:
            raise ValueError(f"{self.kind} '{name}' is registered twice")
        self._entries[name] = entry
        return entry

    def get(self, name: str, *, file: str | None = None, field: str | None = None) -> T:
        try:
            return self._entries[name]
        except KeyError:
            hint = did_you_mean(name, self._entries)
            raise ErbenchError(f"unknown {self.kind} '{name}'{hint}", file=file, field=field) from None

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._entries))

    def items(self) -> list[tuple[str, T]]:
        return sorted(self._entries.items())

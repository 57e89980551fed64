"""Named registries (timm's pattern): one name, one function, listed in one place."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

Item = TypeVar("Item", bound=Callable)


def registrar(registry: dict[str, Item], kind: str) -> Callable[[str], Callable[[Item], Item]]:
    """A decorator factory that adds functions to ``registry`` by name and refuses a name twice."""

    def register(name: str) -> Callable[[Item], Item]:
        def add(item: Item) -> Item:
            if name in registry:
                raise ValueError(f"{kind} '{name}' is registered twice")
            registry[name] = item
            return item

        return add

    return register

"""Named registries (timm's pattern): one name, one function, listed in one place.

A :class:`Registry` holds the functions of one kind (models, classical classifiers, feature
extractors, dataset readers) by name, each with the attributes its kind declares: what a caller
needs to know about an entry without calling it (a model's minimum input size, a reader's layout),
kept beside the function instead of in dicts that run in parallel with the registry::

    MODELS = Registry("model", attributes={"min_input_size": 1})

    @MODELS.register("tiny", min_input_size=5)
    def tiny(input_shape, n_classes=2): ...

    MODELS.get("tiny")                      # the function; ValueError naming the kind and the known names
    MODELS.names()                          # every name, sorted
    MODELS.names(min_input_size=5)          # the names whose attributes have these values
    MODELS.attribute("tiny", "min_input_size")
    MODELS.view("min_input_size")           # a live, read-only {name: value}
    "tiny" in MODELS, list(MODELS), len(MODELS)

An entry's attributes are the registry's declared ones (their defaults filled in); an attribute the
registry does not declare is refused, so a misspelt one fails at import, not silently.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Generic, TypeVar

Item = TypeVar("Item", bound=Callable[..., Any])


@dataclass(frozen=True)
class Entry(Generic[Item]):
    """One registered function with its attributes (read-only)."""

    name: str
    item: Item
    attributes: Mapping[str, Any]


class Registry(Generic[Item]):
    """Functions of one kind by name, each with the attributes the kind declares.

    Args:
        kind: what an entry is, in messages ("model" gives "unknown model 'x'; registered models: ...").
        attributes: the attributes every entry has, with their defaults.
        listed_as: how messages introduce the known names (default ``"registered <kind>s"``).
    """

    def __init__(self, kind: str, *, attributes: Mapping[str, Any] | None = None, listed_as: str | None = None):
        self.kind = kind
        self.defaults: Mapping[str, Any] = MappingProxyType(dict(attributes or {}))
        self.listed_as = listed_as or f"registered {kind}s"
        self._entries: dict[str, Entry[Item]] = {}

    def register(self, name: str, **attributes: Any) -> Callable[[Item], Item]:
        """A decorator adding a function under ``name`` with these attributes (the others take
        their defaults); ValueError for a name registered before, which keeps its first entry."""
        self._check_keys(name, attributes)
        values = MappingProxyType({**self.defaults, **attributes})

        def add(item: Item) -> Item:
            if name in self._entries:
                raise ValueError(f"{self.kind} '{name}' is registered twice")
            self._entries[name] = Entry(name, item, values)
            return item

        return add

    def entry(self, name: str) -> Entry[Item]:
        """The entry of ``name``; ValueError naming the kind, the name and the known names."""
        try:
            return self._entries[name]
        except (KeyError, TypeError):
            raise ValueError(f"unknown {self.kind} '{name}'; {self.listed_as}: {', '.join(self.names())}") from None

    def get(self, name: str) -> Item:
        """The function registered as ``name`` (ValueError as :meth:`entry`)."""
        return self.entry(name).item

    def attribute(self, name: str, key: str) -> Any:
        """One attribute of ``name``'s entry (ValueError as :meth:`entry`; KeyError for an undeclared key)."""
        return self.entry(name).attributes[key]

    def names(self, **attributes: Any) -> list[str]:
        """The registered names, sorted; with keywords, only those whose attributes equal them."""
        self._check_keys("names()", attributes)
        return sorted(name for name, entry in self._entries.items()
                      if all(entry.attributes[key] == value for key, value in attributes.items()))

    def view(self, key: str) -> Mapping[str, Any]:
        """A read-only ``{name: attribute}`` of every entry that follows later registrations."""
        if key not in self.defaults:
            raise KeyError(f"{self.kind} entries have no attribute {key!r}; they have: {', '.join(self.defaults)}")
        return _AttributeView(self, key)

    def _check_keys(self, where: str, attributes: Mapping[str, Any]) -> None:
        unknown = sorted(set(attributes) - set(self.defaults))
        if unknown:
            raise TypeError(f"{self.kind} {where}: unknown attribute(s) {', '.join(unknown)}; "
                            f"{self.kind} entries have: {', '.join(self.defaults) or 'none'}")

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self._entries)

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}: {', '.join(self.names())})"


class _AttributeView(Mapping[str, Any]):
    """One attribute of every entry of a registry, by name (:meth:`Registry.view`)."""

    def __init__(self, registry: Registry, key: str):
        self._registry, self._key = registry, key

    def __getitem__(self, name: str) -> Any:
        if name not in self._registry:
            raise KeyError(name)
        return self._registry.attribute(name, self._key)

    def __iter__(self) -> Iterator[str]:
        return iter(self._registry)

    def __len__(self) -> int:
        return len(self._registry)

    def __repr__(self) -> str:
        return repr(dict(self))

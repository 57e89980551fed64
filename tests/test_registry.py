"""The registries of classifiers and feature extractors refuse a name twice."""

from __future__ import annotations

import pytest

from leukobench.learn.classical import CLASSIFIERS, register_classifier
from leukobench.learn.features import FEATURE_EXTRACTORS, register_extractor
from leukobench.registry import registrar


def test_a_registrar_adds_by_name_and_refuses_a_name_twice():
    registry: dict = {}
    register = registrar(registry, "thing")

    @register("first")
    def first():
        return 1

    assert registry == {"first": first} and first() == 1
    with pytest.raises(ValueError, match="thing 'first' is registered twice"):
        register("first")(lambda: 2)
    assert registry["first"] is first


@pytest.mark.parametrize("register, registry, name, kind", [
    (register_classifier, CLASSIFIERS, "svm", "classifier"),
    (register_extractor, FEATURE_EXTRACTORS, "hog_pca", "feature extractor"),
])
def test_the_package_registries_keep_their_first_entry(register, registry, name, kind):
    before = registry[name]
    with pytest.raises(ValueError, match=f"{kind} '{name}' is registered twice"):
        register(name)(lambda *args, **kwargs: None)
    assert registry[name] is before

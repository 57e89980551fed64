"""The registries (one pattern: :class:`leukobench.registry.Registry`), and every list of allowed
values in the config schema tied to the registry or constant in code that it stands for."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest
import yaml

from leukobench import models
from leukobench.data import readers, splits, store
from leukobench.data.readers.aria import ARIA_OPTIONS
from leukobench.data.readers.folder import FOLDER_OPTIONS
from leukobench.data.augment import FILL_MODES
from leukobench.learn import classical, feature_extractors, recipe, train
from leukobench.learn.saliency import SALIENCY_MODES
from leukobench.metrics import SUBJECT_AGGREGATIONS
from leukobench.predictions import EVALUATED_SPLITS
from leukobench.plan import config as plan_config
from leukobench.registry import Registry

REPO = Path(__file__).resolve().parents[1]
SCHEMA = yaml.safe_load((REPO / "workflow/schemas/config.schema.yaml").read_text())


# ----------------------------------------------------------------------------- the Registry


def test_a_registry_adds_by_name_and_refuses_a_name_twice():
    registry: Registry = Registry("thing")

    @registry.register("first")
    def first():
        return 1

    assert registry.names() == ["first"] and registry.get("first") is first and first() == 1
    with pytest.raises(ValueError, match="thing 'first' is registered twice"):
        registry.register("first")(lambda: 2)
    assert registry.get("first") is first
    assert "first" in registry and list(registry) == ["first"] and len(registry) == 1


def test_get_names_the_kind_the_name_and_the_known_names():
    registry: Registry = Registry("widget")
    for name in ("b", "a"):
        registry.register(name)(lambda: None)
    with pytest.raises(ValueError, match=r"^unknown widget 'c'; registered widgets: a, b$"):
        registry.get("c")
    listed: Registry = Registry("dataset format", listed_as="known formats")
    with pytest.raises(ValueError, match=r"^unknown dataset format 'x'; known formats: $"):
        listed.get("x")


def test_entries_carry_the_declared_attributes_with_their_defaults():
    registry: Registry = Registry("model", attributes={"min_input_size": 1, "transfer": False})
    registry.register("small")(lambda: None)
    registry.register("big", min_input_size=32, transfer=True)(lambda: None)
    assert registry.attribute("small", "min_input_size") == 1 and registry.attribute("big", "transfer") is True
    assert registry.names(transfer=True) == ["big"] and registry.names(min_input_size=1) == ["small"]
    view = registry.view("min_input_size")
    assert dict(view) == {"big": 32, "small": 1} and view.get("none", 7) == 7
    registry.register("later", min_input_size=5)(lambda: None)
    assert view["later"] == 5  # the view follows the registry
    with pytest.raises(TypeError, match="unknown attribute"):
        registry.register("typo", min_size=3)
    with pytest.raises(TypeError, match="unknown attribute"):
        registry.names(min_size=3)
    with pytest.raises(KeyError):
        registry.view("min_size")
    with pytest.raises(TypeError):
        registry.entry("big").attributes["transfer"] = False  # read-only


@pytest.mark.parametrize("register, registry, name, kind", [
    (classical.register_classifier, classical.CLASSIFIERS, "svm", "classifier"),
    (feature_extractors.register_extractor, feature_extractors.FEATURE_EXTRACTORS, "hog_pca", "feature extractor"),
    (models.MODELS.register, models.MODELS, "abed_cnn", "model"),
    (readers.READERS.register, readers.READERS, "cnmc", "dataset format"),
])
def test_the_package_registries_keep_their_first_entry(register, registry, name, kind):
    before = registry.get(name)
    with pytest.raises(ValueError, match=f"{kind} '{name}' is registered twice"):
        register(name)(lambda *args, **kwargs: None)
    assert registry.get(name) is before


def test_the_package_registries_are_registries():
    for registry in (models.MODELS, classical.CLASSIFIERS, feature_extractors.FEATURE_EXTRACTORS, readers.READERS):
        assert isinstance(registry, Registry)


def test_model_attributes_are_what_the_callers_read():
    assert dict(models.MIN_INPUT_SIZE) == {name: models.MODELS.attribute(name, "min_input_size")
                                           for name in models.list_models()}
    assert set(models.transfer_models()) == {"vgg16", "vgg19", "resnet50", "densenet169", "efficientnetv2b0"}
    # the reference recipe's options reach the reference models only, the studies' models train as they did
    assert set(models.recipe_models()) == {"reference_resnet_small", "efficientnetv2b0", "efficientnetv2b0_scratch"}
    for name in models.list_models():
        application = models.MODELS.attribute(name, "application")
        transfer = models.MODELS.attribute(name, "transfer")
        assert (application is not None) == transfer == (name in models.transfer_models())
        # a transfer model takes ImageNet weights; a model trained from scratch does not
        assert ("weights" in models.builder_parameters(name)) == (name in models.transfer_models())


def test_a_reader_takes_options_exactly_when_its_entry_names_them():
    for fmt in readers.READERS.names():
        entry = readers.READERS.entry(fmt)
        has_keyword = "options" in inspect.signature(entry.item).parameters
        assert has_keyword == bool(entry.attributes["options"]), fmt
        assert entry.attributes["layout"], f"{fmt}: no layout text"
    assert readers.READERS.attribute("aria", "options") == tuple(ARIA_OPTIONS)
    assert readers.READERS.attribute("folder", "options") == FOLDER_OPTIONS


def test_the_features_a_classical_trial_may_name_are_the_extractors_of_a_store():
    assert feature_extractors.FEATURE_EXTRACTORS.names() == sorted(plan_config.TABULAR_FEATURES)


# ----------------------------------------------------------------------------- the schema's enums


def schema_enums(node, path: str = "") -> dict[str, list]:
    """Every ``enum`` of the schema by a readable path: ``.`` a property, ``*`` any key of a
    mapping (additionalProperties), ``[]`` a list's items; anyOf / oneOf branches share a path."""
    found: dict[str, list] = {}
    if isinstance(node, dict):
        if "enum" in node:
            assert path not in found
            found[path] = node["enum"]
        for key, child in node.items():
            if key == "properties":
                for name, sub in child.items():
                    for where, values in schema_enums(sub, f"{path}.{name}" if path else name).items():
                        assert found.setdefault(where, values) == values, f"{where}: two different enums"
            elif key in ("additionalProperties", "items"):
                suffix = ".*" if key == "additionalProperties" else "[]"
                found.update(schema_enums(child, path + suffix))
            elif key in ("anyOf", "oneOf", "allOf"):
                for branch in child:
                    for where, values in schema_enums(branch, path).items():
                        assert found.setdefault(where, values) == values, f"{where}: two different enums"
    return found


def schema_node(path: str) -> dict:
    """The schema node of a property path (``.`` separated, ``*`` = additionalProperties, ``name[]``
    = the items of the list ``name``)."""
    node = SCHEMA
    for part in path.split("."):
        if part == "*":
            node = node["additionalProperties"]
        else:
            node = node["properties"][part.removesuffix("[]")]
            node = node["items"] if part.endswith("[]") else node
    return node


# Each enum of the schema, by path, and the values the code allows there. An enum added to the
# schema fails test_every_schema_enum_is_tied until it is tied here.
TIES: dict[str, set] = {
    # the readers; synthetic is one of them (the generator writes the C-NMC layout), nothing added
    "datasets.*.format": set(readers.READERS.names()),
    "split.method": set(splits.SPLIT_METHODS),
    "split.method[]": set(splits.SPLIT_METHODS),
    "split.duplicates": set(splits.DUPLICATE_POLICIES),
    "variants.*.balance": set(store.BALANCE_MODES),
    "variants.*.augment_scope": set(store.AUGMENT_SCOPES),
    "variants.*.normalization": set(store.NORMALIZATIONS),
    "variants.*.interpolation": set(store.INTERPOLATIONS),
    "variants.*.color": set(store.COLOR_MODES),
    "grid.optimizer[]": set(train.OPTIMIZERS),
    "grid.loss[]": set(train.LOSSES),
    "training.lr_schedule": set(recipe.LR_SCHEDULES),
    # features a store alone gives; 'cnn' features come from a trained trial (the hybrid section)
    "classical.features[]": set(plan_config.TABULAR_FEATURES),
    # a study's numbers are on its own val or test part; 'external' (C-NMC's preliminary test
    # phase, split.external_test) is an extra split of this workflow that no published number names
    "published.results[].split": set(EVALUATED_SPLITS) - {"external"},
    "evaluation.subject_aggregation": set(SUBJECT_AGGREGATIONS),
    # evaluation.calibration and evaluation.tta have no enum: the config check takes their values from the
    # registry of score variants (test_score_variants), so that a variant added there needs no schema edit
    "evaluation.saliency": set(SALIENCY_MODES),
}


def test_every_schema_enum_is_tied():
    assert set(schema_enums(SCHEMA)) == set(TIES)


@pytest.mark.parametrize("path", sorted(TIES))
def test_each_schema_enum_allows_what_the_code_allows(path):
    enum = schema_enums(SCHEMA)[path]
    assert len(enum) == len(set(enum)), f"{path}: {enum} repeats a value"
    assert set(enum) == TIES[path], f"{path}: the schema allows {sorted(enum)}, the code {sorted(TIES[path])}"


def test_schema_defaults_are_allowed_values():
    for path in TIES:
        if path.endswith("[]"):
            continue
        node = schema_node(path)
        if "default" in node:
            values = node["default"] if isinstance(node["default"], list) else [node["default"]]
            assert set(values) <= TIES[path], f"{path}: default {node['default']!r}"
    for key in ("optimizer", "loss"):
        assert set(schema_node(f"grid.{key}")["default"]) <= TIES[f"grid.{key}[]"]


def test_generated_formats_are_readers():
    assert set(plan_config.GENERATED_FORMATS) <= set(readers.READERS.names())


# ----------------------------------------------------------------------------- names in descriptions


def test_the_format_description_explains_every_reader():
    description = schema_node("datasets.*.format")["description"]
    for fmt in readers.READERS.names():
        assert re.search(rf"\b{fmt} = ", description), f"format '{fmt}' is not explained"


def test_the_options_description_names_every_readers_options():
    description = schema_node("datasets.*.options")["description"]
    named = set(re.findall(r"(\w+):", description))
    assert named == set(readers.READERS.names()) - set(readers.READERS.names(options=()))
    for fmt in named:
        for option in readers.READERS.attribute(fmt, "options"):
            assert option in description, f"{fmt}: option {option} not described"
    for option, values in ARIA_OPTIONS.items():
        assert f"{option} ({' | '.join(map(str, values))})" in description


def test_the_hybrid_classifiers_description_names_every_registered_classifier():
    description = schema_node("hybrid.classifiers")["description"]
    assert set(re.findall(r"\w+", description)) == set(classical.list_classifiers())


def test_the_model_description_points_at_the_registry():
    # the schema lists no model names (config_problems checks them against list_models())
    assert "list_models()" in schema_node("grid.model")["description"]


def test_the_augmentation_description_names_every_fill_mode():
    description = schema_node("variants.*.augmentation")["description"]
    assert f"fill_mode ({' | '.join(FILL_MODES)})" in description

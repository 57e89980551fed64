"""Every registered model builds, trains one epoch on tiny data, and has the published shape."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

import leukobench.models as models
import leukobench.models.weights as weights
from leukobench.learn.train import build_before_tracing
from leukobench.models import transfer
from leukobench.models import MIN_INPUT_SIZE, create_model, list_models, register_model, transfer_models

# Keras 3.15 converts its variables with np.array(..., copy=False), which NumPy 2 flags; not ours.
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation doesn't accept a copy keyword:DeprecationWarning")

TINY = 32  # smallest size the studies use
# The transfer models default to ImageNet weights, which the tests never download (they must pass without network access).
TRANSFER_MODELS = frozenset(transfer_models())
TEST_KWARGS = {name: {"weights": None} for name in TRANSFER_MODELS}
CHEAP_MODELS = sorted(set(list_models()) - TRANSFER_MODELS)
# keras.applications architectures: building one takes seconds, tracing its training graph far more than a
# few eager steps on a few images (efficientnetv2b0_scratch: minutes on 2 cores)
APPLICATION_MODELS = TRANSFER_MODELS | {"efficientnetv2b0_scratch"}
slow = pytest.mark.slow  # left out by make test-fast


def by_cost(names) -> list:
    """``names`` as parameters, the keras.applications architectures marked slow."""
    return [pytest.param(name, marks=slow) if name in APPLICATION_MODELS else name for name in names]


def _layer_types(model) -> list[str]:
    return [layer.__class__.__name__ for layer in model.layers]


@slow
@pytest.mark.parametrize("name", list_models())
@pytest.mark.parametrize("n_classes", [2, 4])
def test_every_model_builds_and_trains_one_epoch(name, n_classes):
    import keras

    keras.utils.set_random_seed(0)
    model = create_model(name, input_shape=(TINY, TINY, 3), n_classes=n_classes, **TEST_KWARGS.get(name, {}))
    assert len(model.get_layer("features").output.shape) == 2  # flat feature vectors
    images = np.random.default_rng(0).integers(0, 256, size=(4, TINY, TINY, 3), dtype=np.uint8)
    labels = np.arange(4) % n_classes  # every class once at least: one epoch is one step of one batch
    loss = "binary_crossentropy" if n_classes == 2 else "sparse_categorical_crossentropy"
    # traced as the workflow trains (its variables built first, one trace); the large applications, and every
    # model's 4-class head, step eagerly: what they test is the model and its head, not the tracing once more
    eager = name in APPLICATION_MODELS or n_classes > 2
    model.compile(optimizer="adam", loss=loss, run_eagerly=eager)
    targets = labels.astype("float32") if n_classes == 2 else labels
    if not eager:
        build_before_tracing(model, images[:1], targets[:1])
    history = model.fit(images, targets, epochs=1, batch_size=4, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    scores = model.predict(images, verbose=0)
    assert scores.shape == (4, 1 if n_classes == 2 else n_classes)
    assert np.all((scores >= 0) & (scores <= 1))
    if n_classes > 2:
        np.testing.assert_allclose(scores.sum(axis=1), 1, rtol=1e-5)


@pytest.mark.parametrize(
    "name, n_conv, size, length",
    [
        ("varol_cnn1", 3, 32, 50176),
        ("varol_cnn1", 3, 48, 123904),
        ("varol_cnn2", 6, 32, 73728),
        ("varol_cnn2", 6, 48, 204800),
        ("varol_cnn3", 9, 32, 1024),
        ("varol_cnn3", 9, 48, 4096),
        ("varol_cnn4", 10, 32, 64),
        ("varol_cnn4", 10, 48, 576),
    ],
)
def test_varol_feature_lengths_match_table_6(name, n_conv, size, length):
    model = create_model(name, input_shape=(size, size, 3))
    assert model.get_layer("features").output.shape[-1] == length
    assert _layer_types(model).count("Conv2D") == n_conv
    assert [layer.units for layer in model.layers if layer.__class__.__name__ == "Dense"] == [256, 128, 1]


def test_unknown_model_lists_the_registered_ones():
    with pytest.raises(ValueError, match="unknown model 'resnet9000'.*abed_cnn.*varol_cnn1"):
        create_model("resnet9000", input_shape=(32, 32, 3))


def test_bad_arguments_and_double_registration_are_refused():
    with pytest.raises(ValueError, match="input_shape"):
        create_model("abed_cnn", input_shape=(32, 32))
    with pytest.raises(ValueError, match="n_classes"):
        create_model("abed_cnn", input_shape=(32, 32, 3), n_classes=1)
    def abed_cnn(input_shape, n_classes=2):  # same name as a registered model
        raise AssertionError("never built")

    with pytest.raises(ValueError, match="registered twice"):
        register_model(abed_cnn)
    assert list_models() == sorted(list_models())


def test_listing_models_does_not_import_keras():
    code = (
        "import sys, leukobench.models as m; m.list_models(); dict(m.MIN_INPUT_SIZE); "
        "assert 'keras' not in sys.modules and 'tensorflow' not in sys.modules, 'keras imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


# --- minimum input sizes ---------------------------------------------------------------------

def test_min_input_size_covers_every_registered_model():
    assert set(MIN_INPUT_SIZE) == set(list_models())
    assert all(isinstance(size, int) and size >= 1 for size in MIN_INPUT_SIZE.values())
    assert all(MIN_INPUT_SIZE[name] == 32 for name in TRANSFER_MODELS)  # keras.applications' minimum


@pytest.mark.parametrize("name", list_models())
def test_too_small_input_is_refused_naming_the_minimum(name):
    minimum = MIN_INPUT_SIZE[name]
    with pytest.raises(ValueError, match=rf"'{name}'.*at least {minimum}x{minimum}.*got {minimum - 1}x{minimum + 5}"):
        create_model(name, input_shape=(minimum - 1, minimum + 5, 3), **TEST_KWARGS.get(name, {}))


def test_transfer_builder_called_directly_also_checks_the_size():
    with pytest.raises(ValueError, match="'vgg16'.*at least 32x32.*got 31x31"):
        transfer.vgg16(input_shape=(31, 31, 3), weights=None)


@pytest.mark.parametrize("name", by_cost(CHEAP_MODELS))
def test_min_input_size_builds_and_one_pixel_less_does_not(name):
    minimum = MIN_INPUT_SIZE[name]
    model = create_model(name, input_shape=(minimum, minimum, 3))
    assert model.get_layer("features").output.shape[-1] >= 1
    with pytest.raises(ValueError):  # the minimum is tight: Keras itself fails one pixel below
        models.MODELS.get(name)(input_shape=(minimum - 1, minimum - 1, 3), n_classes=2)


# --- transfer models -------------------------------------------------------------------------

@pytest.fixture
def empty_keras_home(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras_home"))
    monkeypatch.delenv(weights.WEIGHTS_DIR_ENV, raising=False)
    monkeypatch.setattr(weights, "KERAS_FALLBACK_DIR", tmp_path / "no_fallback")
    return tmp_path / "keras_home"


@pytest.mark.parametrize("name", sorted(TRANSFER_MODELS))
def test_missing_imagenet_weights_name_the_file_and_folder(name, empty_keras_home):
    fname = models.MODELS.attribute(name, "application").weights_file  # e.g. vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5
    assert fname == f"{name}_weights_tf_dim_ordering_tf_kernels_notop.h5" or name == "efficientnetv2b0"
    with pytest.raises(FileNotFoundError) as error:
        create_model(name, input_shape=(TINY, TINY, 3))  # weights="imagenet" by default
    message = str(error.value)
    assert fname in message
    assert str(empty_keras_home / "models") in message
    assert "null" in message and "path" in message
    assert weights.weights_folder() / models.MODELS.attribute(name, "application").weights_file == empty_keras_home / "models" / fname


def test_missing_local_weights_file_is_refused(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere.h5"):
        create_model("vgg19", input_shape=(TINY, TINY, 3), weights=str(tmp_path / "nowhere.h5"))


def cache_random_weights(name: str, application: str) -> "keras.Model":
    """A randomly initialised base saved as if it were Keras' cached ImageNet file of ``name``."""
    import h5py
    import keras
    from keras.src.legacy.saving import legacy_h5_format  # Keras' own format of the notop files

    donor = getattr(keras.applications, application)(include_top=False, weights=None, input_shape=(TINY, TINY, 3))
    path = weights.weights_folder() / models.MODELS.attribute(name, "application").weights_file
    path.parent.mkdir(parents=True)
    with h5py.File(path, "w") as f:
        legacy_h5_format.save_weights_to_hdf5_group(f, donor)
    return donor


@slow
def test_cached_imagenet_weights_are_loaded_from_keras_home(empty_keras_home):
    donor = cache_random_weights("vgg16", "VGG16")
    model = create_model("vgg16", input_shape=(TINY, TINY, 3))  # weights="imagenet"
    for loaded, saved in zip(model.get_layer("base").get_weights(), donor.get_weights()):
        np.testing.assert_array_equal(loaded, saved)


@slow
def test_fine_tuned_pretrained_base_keeps_its_batch_norms_frozen(empty_keras_home):
    import keras

    cache_random_weights("resnet50", "ResNet50")
    model = create_model("resnet50", input_shape=(TINY, TINY, 3), trainable_layers=-1)
    base = model.get_layer("base")
    norms = [layer for layer in base.layers if isinstance(layer, keras.layers.BatchNormalization)]
    assert norms and not any(layer.trainable for layer in norms)
    assert all(layer.trainable for layer in base.layers if layer not in norms)
    images = np.random.default_rng(3).integers(0, 256, size=(4, TINY, TINY, 3), dtype=np.uint8)
    np.testing.assert_allclose(model(images, training=True), model(images, training=False), rtol=1e-5, atol=1e-6)


@slow
@pytest.mark.parametrize("trainable_layers", [0, 1, 5, -1])
def test_trainable_layers_unfreeze_exactly_the_top_of_the_base(trainable_layers):
    model = create_model("vgg16", input_shape=(TINY, TINY, 3), weights=None, trainable_layers=trainable_layers)
    base = model.get_layer("base")
    n = len(base.layers)
    flags = [layer.trainable for layer in base.layers]
    head_weights = sum(len(model.get_layer(name).trainable_weights) for name in ("fc1", "fc2", "output"))
    if trainable_layers == 0:
        assert base.trainable_weights == []
        assert len(model.trainable_weights) == head_weights
    elif trainable_layers == -1:
        assert all(flags)
    else:
        assert flags == [False] * (n - trainable_layers) + [True] * trainable_layers
        trainable_base = [w for layer in base.layers[-trainable_layers:] for w in layer.trainable_weights]
        assert len(base.trainable_weights) == len(trainable_base)
        assert len(model.trainable_weights) == head_weights + len(trainable_base)
    with pytest.raises(ValueError, match="trainable_layers"):
        create_model("vgg16", input_shape=(TINY, TINY, 3), weights=None, trainable_layers=n + 1)


@slow
def test_transfer_model_applies_the_applications_preprocessing_and_survives_saving(tmp_path):
    import keras

    model = create_model("vgg16", input_shape=(TINY, TINY, 3), weights=None)
    images = np.random.default_rng(1).integers(0, 256, size=(3, TINY, TINY, 3), dtype=np.uint8)
    features = keras.Model(model.input, model.get_layer("features").output).predict(images, verbose=0)
    expected = model.get_layer("base").predict(
        keras.applications.vgg16.preprocess_input(images.astype("float32")), verbose=0
    ).reshape(len(images), -1)
    np.testing.assert_allclose(features, expected, rtol=1e-5, atol=1e-5)
    model.save(tmp_path / "model.keras")
    reloaded = keras.models.load_model(tmp_path / "model.keras")
    np.testing.assert_allclose(reloaded.predict(images, verbose=0), model.predict(images, verbose=0), rtol=1e-6)


@slow
def test_grayscale_images_are_repeated_to_rgb_for_the_transfer_models():
    model = create_model("vgg19", input_shape=(TINY, TINY, 1), weights=None)
    assert model.get_layer("gray_to_rgb").output.shape[-1] == 3
    with pytest.raises(ValueError, match="channels"):
        create_model("vgg19", input_shape=(TINY, TINY, 4), weights=None)


# --- Rezayi and Zhang ------------------------------------------------------------------------

def test_rezayi_cnn_has_ten_2x2_convolutions_each_batch_normalised():
    model = create_model("rezayi_cnn", input_shape=(TINY, TINY, 3))
    types = _layer_types(model)
    convs = [layer for layer in model.layers if layer.__class__.__name__ == "Conv2D"]
    assert len(convs) == 10 and types.count("BatchNormalization") == 10
    assert [c.filters for c in convs] == [128, 128, 64, 64, 32, 32, 16, 16, 8, 8]
    assert all(c.kernel_size == (2, 2) and c.padding == "same" for c in convs)
    assert types.count("MaxPooling2D") == 5 and types.count("Dropout") == 5
    for i, layer_type in enumerate(types):  # every convolution is followed by its batch norm
        if layer_type == "Conv2D":
            assert types[i + 1] == "BatchNormalization"
    assert model.get_layer("fc1").units == 1024


def test_zhang_cnn_softmax_head_gives_two_probabilities_for_two_classes():
    model = create_model("zhang_cnn", input_shape=(TINY, TINY, 1), n_classes=2, head="softmax")
    images = np.random.default_rng(2).integers(0, 256, size=(4, TINY, TINY, 1), dtype=np.uint8)
    scores = model.predict(images, verbose=0)
    assert scores.shape == (4, 2)
    np.testing.assert_allclose(scores.sum(axis=1), 1, rtol=1e-5)
    assert create_model("zhang_cnn", input_shape=(TINY, TINY, 1), n_classes=2).output.shape[-1] == 1  # "auto"
    assert create_model("zhang_cnn", input_shape=(TINY, TINY, 1), n_classes=4).output.shape[-1] == 4


@pytest.mark.parametrize("name", by_cost(CHEAP_MODELS))
def test_every_builder_takes_the_same_head_options(name):
    assert "head" in models.builder_parameters(name)
    assert create_model(name, input_shape=(TINY, TINY, 3), n_classes=2, head="softmax").output.shape[-1] == 2
    assert create_model(name, input_shape=(TINY, TINY, 3), n_classes=2, head="sigmoid").output.shape[-1] == 1
    with pytest.raises(ValueError, match="head must be one of auto, sigmoid, softmax"):
        create_model(name, input_shape=(TINY, TINY, 3), head="tanh")
    with pytest.raises(ValueError, match="needs 2 classes"):
        create_model(name, input_shape=(TINY, TINY, 3), n_classes=3, head="sigmoid")


def test_builder_parameters_name_each_builders_options():
    for name in TRANSFER_MODELS:
        assert models.builder_parameters(name) == {"head", "weights", "trainable_layers"}
    assert models.builder_parameters("abed_cnn") == {"head", "normalization"}
    with pytest.raises(ValueError, match="unknown model"):
        models.builder_parameters("resnet9000")

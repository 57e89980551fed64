"""Every registered model builds, trains one epoch on tiny data, and has the published shape."""

from __future__ import annotations

import numpy as np
import pytest

from leukobench.models import create_model, list_models, register_model

TINY = 32  # smallest size the studies use


@pytest.mark.parametrize("name", list_models())
@pytest.mark.parametrize("n_classes", [2, 4])
def test_every_model_builds_and_trains_one_epoch(name, n_classes):
    import keras

    keras.utils.set_random_seed(0)
    model = create_model(name, input_shape=(TINY, TINY, 3), n_classes=n_classes)
    images = np.random.default_rng(0).integers(0, 256, size=(8, TINY, TINY, 3), dtype=np.uint8)
    labels = np.arange(8) % n_classes
    loss = "binary_crossentropy" if n_classes == 2 else "sparse_categorical_crossentropy"
    model.compile(optimizer="adam", loss=loss)
    history = model.fit(images, labels.astype("float32") if n_classes == 2 else labels, epochs=1, batch_size=4, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    scores = model.predict(images, verbose=0)
    assert scores.shape == (8, 1 if n_classes == 2 else n_classes)
    assert np.all((scores >= 0) & (scores <= 1))
    if n_classes > 2:
        np.testing.assert_allclose(scores.sum(axis=1), 1, rtol=1e-5)


@pytest.mark.parametrize("size, length", [(32, 50176), (48, 123904)])
def test_varol_cnn1_feature_length_matches_table_6(size, length):
    model = create_model("varol_cnn1", input_shape=(size, size, 3))
    assert model.get_layer("features").output.shape[-1] == length


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

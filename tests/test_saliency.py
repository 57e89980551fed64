"""Grad-CAM (leukobench.learn.saliency) is tested by where it points: a CNN trained on images whose
class signal lies in one known quadrant looks at that quadrant, an untrained one does not; a linear
model's map is its evidence; every registered model gives a map; the trial share and the saliency
sheet do what they say."""

from __future__ import annotations

import matplotlib.image as mpimg
import matplotlib.pyplot as plt
import numpy as np
import pytest

from leukobench.models import MIN_INPUT_SIZE, create_model, list_models, transfer_models
from leukobench.learn.saliency import MAX_CELL_AREA, _map_and_logits, cell_share, feature_map_layer, grad_cam, share_text
from leukobench.learn.saliency_panels import write_sheet_panels
from leukobench.learn.saliency_sheet import draw_saliency_sheet, overlay, plot_saliency_sheet

# ------------------------------------------------------------------ learning: the map moves to the signal

SIZE, HALF, SQUARE = 32, 16, 6  # images, quadrant and object sides (px)
SIGNAL_AREA = (HALF / SIZE) ** 2  # the top-left quadrant: 0.25 of the image
CHECKER = np.add.outer(np.arange(SQUARE) // 2, np.arange(SQUARE) // 2) % 2 == 0  # 2 px checks


def quadrant_images(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """uint8 ``(n, 32, 32, 3)`` noise with one bright 6 px object at a random place in each quadrant,
    of a random colour: a solid square everywhere, except in the top-left quadrant of class 1, where
    it is a checkerboard. Brightness and objects are alike in every quadrant, so only a model that
    learned the class finds the top-left one special."""
    rng = np.random.default_rng(seed)
    labels = rng.permutation(np.arange(n) % 2)
    images = rng.integers(0, 60, size=(n, SIZE, SIZE, 3), dtype=np.uint8)
    for i in range(n):
        for qy in (0, 1):
            for qx in (0, 1):
                y, x = qy * HALF + rng.integers(0, HALF - SQUARE + 1), qx * HALF + rng.integers(0, HALF - SQUARE + 1)
                patch = images[i, y:y + SQUARE, x:x + SQUARE]
                colour = rng.integers(180, 256, size=3)
                if (qy, qx) == (0, 0) and labels[i] == 1:
                    patch[CHECKER] = colour
                else:
                    patch[:] = colour
    return images, labels


def small_cnn(head: str):
    """Two conv layers (a 16x16 map), global average pooling, a sigmoid unit or a 2-way softmax."""
    import keras
    from keras import layers

    inputs = layers.Input(shape=(SIZE, SIZE, 3))
    x = layers.Rescaling(1 / 255)(inputs)
    x = layers.Conv2D(16, 3, padding="same", activation="relu")(x)
    x = layers.MaxPooling2D(2)(x)
    x = layers.Conv2D(32, 3, padding="same", activation="relu", name="last_conv")(x)
    x = layers.GlobalAveragePooling2D()(x)
    outputs = layers.Dense(1, activation="sigmoid")(x) if head == "sigmoid" else layers.Dense(2, activation="softmax")(x)
    return keras.Model(inputs, outputs)


def signal_share(model, images: np.ndarray) -> float:
    """Mean share of the Grad-CAM mass (predicted class) in the top-left quadrant."""
    heat = grad_cam(model, images).astype(np.float64)
    total = heat.sum(axis=(1, 2))
    kept = total > 0
    return float((heat[kept, :HALF, :HALF].sum(axis=(1, 2)) / total[kept]).mean())


# Measured on 2 CPU cores with seed 0 (Keras 3.15, TensorFlow 2.21): trained 0.69 (sigmoid) and 0.62
# (softmax) of the heat in the signal quadrant, untrained 0.24 and 0.23, against 0.25 by area; held-out
# accuracy 1.00 and 0.99. Seeds 1-4: trained 0.62-0.94, untrained 0.17-0.25, accuracy 0.83-1.00.
@pytest.mark.parametrize("head", ["sigmoid", "softmax"])
@pytest.mark.slow
def test_a_trained_cnn_looks_where_the_class_signal_is_and_an_untrained_one_does_not(head, record_property):
    import keras

    train_images, train_labels = quadrant_images(600, seed=1)
    test_images, test_labels = quadrant_images(200, seed=2)
    keras.utils.set_random_seed(0)
    model = small_cnn(head)
    with_signal = test_images[test_labels == 1]
    untrained = signal_share(model, with_signal)

    sigmoid = head == "sigmoid"
    model.compile(optimizer=keras.optimizers.Adam(3e-3),
                  loss="binary_crossentropy" if sigmoid else "sparse_categorical_crossentropy")
    model.fit(train_images, train_labels.astype("float32") if sigmoid else train_labels,
              epochs=10, batch_size=32, verbose=0)
    scores = model.predict(test_images, verbose=0)
    predicted = scores[:, 0] > 0.5 if sigmoid else scores.argmax(axis=1)
    accuracy = float(np.mean(predicted == test_labels))
    trained = signal_share(model, with_signal)
    record_property("terminal_summary", f"Grad-CAM in the signal quadrant ({head}): trained {trained:.3f}, untrained "
                    f"{untrained:.3f}, by area {SIGNAL_AREA}; held-out accuracy {accuracy:.3f}")

    assert accuracy >= 0.8, f"the model did not learn the signal (held-out accuracy {accuracy:.2f}, chance 0.5)"
    assert trained >= 2 * SIGNAL_AREA, f"trained: {trained:.2f} of the heat in the signal quadrant, {SIGNAL_AREA} by area"
    assert untrained <= SIGNAL_AREA + 0.1, f"untrained: {untrained:.2f} in the signal quadrant, {SIGNAL_AREA} by area"
    assert trained - untrained >= 0.25, f"trained {trained:.2f} vs untrained {untrained:.2f}"


# ------------------------------------------------------------------ a model whose evidence is known


def linear_model(head: str, side: int = 12):
    """gray → [0, 1] → 1x1 conv with weight 1 (the map is the image) → mean → a head whose class-1
    logit grows with the mean brightness (class 0's falls)."""
    import keras
    from keras import layers

    inputs = layers.Input(shape=(side, side, 1))
    x = layers.Rescaling(1 / 255)(inputs)
    x = layers.Conv2D(1, 1, use_bias=False, kernel_initializer="ones", name="identity")(x)
    x = layers.GlobalAveragePooling2D()(x)
    if head == "sigmoid":
        output = layers.Dense(1, activation="sigmoid", kernel_initializer="ones", bias_initializer="zeros")
    else:
        output = layers.Dense(2, activation="softmax", kernel_initializer=keras.initializers.Constant([[-1.0, 1.0]]),
                              bias_initializer="zeros")
    return keras.Model(inputs, output(x))


@pytest.mark.parametrize("head", ["sigmoid", "softmax"])
def test_the_map_of_a_linear_model_is_its_evidence_for_the_class_and_none_against(head):
    model = linear_model(head)
    images = np.random.default_rng(0).integers(0, 256, size=(3, 12, 12, 1), dtype=np.uint8)
    evidence = images[..., 0] / images[..., 0].max(axis=(1, 2), keepdims=True)  # the map, scaled to its peak
    np.testing.assert_allclose(grad_cam(model, images, class_index=1), evidence, atol=1e-5)
    np.testing.assert_array_equal(grad_cam(model, images, class_index=0), 0)  # brightness only argues against 0
    np.testing.assert_allclose(grad_cam(model, images), evidence, atol=1e-5)  # bright images: class 1 predicted
    np.testing.assert_allclose(grad_cam(model, images, class_index=[1, 0, 1])[1], 0)
    with pytest.raises(ValueError, match="class_index"):
        grad_cam(model, images, class_index=2)
    with pytest.raises(ValueError, match="images must be"):
        grad_cam(model, images[:, :10])


# ------------------------------------------------------------------ every registered model


def registry_model(name: str, head: str = "auto", channels: int = 3):
    import keras

    keras.utils.set_random_seed(0)
    size = MIN_INPUT_SIZE[name]  # each model at its smallest size (the transfer models: 32 px)
    kwargs = {"weights": None} if name in transfer_models() else {}  # the tests never download ImageNet weights
    return create_model(name, input_shape=(size, size, channels), head=head, **kwargs)


@pytest.mark.parametrize("name, head, channels", [(name, "auto", 3) for name in list_models()]
                         + [("abed_cnn", "softmax", 3), ("vgg16", "softmax", 3), ("zhang_cnn", "softmax", 1)])
@pytest.mark.slow
def test_every_registered_model_gives_maps_in_0_1_of_the_input_size(name, head, channels):
    model = registry_model(name, head, channels)
    path = feature_map_layer(model)
    layer = model.get_layer(path[0]) if len(path) == 1 else model.get_layer(path[0]).get_layer(path[1])
    assert len(layer.output.shape) == 4
    assert (path[0] == "base") == (name in transfer_models())

    side = model.input_shape[1]
    images = np.random.default_rng(1).integers(0, 256, size=(3, side, side, channels), dtype=np.uint8)
    for class_index in (None, [0, 1, 0]):  # the predicted class; each class
        heat = grad_cam(model, images, class_index=class_index, batch_size=2)  # batches of 2 and 1
        assert heat.shape == (3, side, side) and heat.dtype == np.float32
        assert np.isfinite(heat).all() and heat.min() >= 0 and heat.max() <= 1

    # the graph cut at a nested base is still the model: its logits give the model's scores
    call, is_logit = _map_and_logits(model, path)
    _, logits = call(images.astype("float32"))
    logits = np.asarray(logits)
    scores = np.asarray(model(images.astype("float32"), training=False))
    assert is_logit
    if scores.shape[1] == 1:
        np.testing.assert_allclose(1 / (1 + np.exp(-logits)), scores, atol=1e-5)
    else:
        softmax = np.exp(logits - logits.max(axis=1, keepdims=True))
        np.testing.assert_allclose(softmax / softmax.sum(axis=1, keepdims=True), scores, atol=1e-5)


def test_the_map_is_taken_before_pooling_and_inside_a_transfer_base():
    assert feature_map_layer(registry_model("varol_cnn4")) == ("conv4_1",)  # not pool4 (1x1 at 32 px)
    assert feature_map_layer(registry_model("zhang_cnn")) == ("conv3",)
    assert feature_map_layer(registry_model("vgg16")) == ("base", "block5_conv3")


def test_a_model_without_a_spatial_map_is_refused():
    import keras

    inputs = keras.layers.Input(shape=(4,))
    with pytest.raises(ValueError, match="no layer with a 4-D"):
        feature_map_layer(keras.Model(inputs, keras.layers.Dense(1, activation="sigmoid")(inputs)))


# ------------------------------------------------------------------ trial share


def cell_on_black(n: int = 2, side: int = 20) -> np.ndarray:
    """A bright disc (the trial) on pure black, with a dim noisy rim below the threshold."""
    yy, xx = np.mgrid[:side, :side]
    disc = (yy - side / 2) ** 2 + (xx - side / 2) ** 2 < (side / 3) ** 2
    images = np.zeros((n, side, side, 3), dtype=np.uint8)
    images[:, disc] = (120, 40, 90)
    images[:, 0, :, 1] = 5  # faint background noise, not trial
    return images


def test_cell_share_is_the_heat_on_the_cell():
    images = cell_on_black()
    cell = images.max(axis=-1) > 10
    area = cell[0].mean()
    assert 0.2 < area < 0.6
    np.testing.assert_allclose(cell_share(cell.astype(float), images), 1)
    np.testing.assert_allclose(cell_share((~cell).astype(float), images), 0)
    np.testing.assert_allclose(cell_share(np.full(cell.shape, 0.3), images), area)
    shares = cell_share(np.stack([np.zeros(cell.shape[1:]), np.ones(cell.shape[1:])]), images)
    assert np.isnan(shares[0]) and shares[1] == pytest.approx(area)
    np.testing.assert_allclose(cell_share(cell.astype(float), images[..., :1]), 1)  # gray images too
    with pytest.raises(ValueError, match="differ"):
        cell_share(cell[:, :10].astype(float), images)


def test_an_image_without_a_dark_background_gets_no_share_rather_than_a_perfect_one():
    """A smear field (Aria, ALL-IDB): bright everywhere, so the threshold calls all of it cell, and any
    map would put 1.00 of its heat on the cell: a model that looks only at the cell, said of nothing."""
    smear = np.full((1, 20, 20, 3), 200, dtype=np.uint8)
    images = np.concatenate([cell_on_black(1), smear])
    heat = np.ones((2, 20, 20))
    shares = cell_share(heat, images)
    assert 0 < shares[0] < MAX_CELL_AREA and np.isnan(shares[1])
    none = {"images": 5, "images_on_background": 0, "saliency_on_cell": None, "cell_area": None}
    assert "not measured" in share_text(none) and "dark background" in share_text(none)
    some = {"images": 5, "images_on_background": 3, "saliency_on_cell": 0.8, "cell_area": 0.4}
    assert share_text(some) == "0.80 of the heat on the cell, which covers 0.40 of the image (the 3 of 5 images on a dark background)"
    assert share_text(some | {"images_on_background": 5}).endswith("covers 0.40 of the image")


# ------------------------------------------------------------------ overlay and the sheet


def test_overlay_blends_the_heat_over_the_rgb_image_in_its_channel_order():
    red = np.zeros((8, 8, 3), dtype=np.uint8)
    red[..., 0] = 200  # RGB, as the store holds images
    cold = overlay(red, np.zeros((8, 8)), alpha=0.5)
    assert cold.dtype == np.uint8 and cold.shape == (8, 8, 3)
    assert cold[0, 0, 0] > 90 and cold[0, 0, 1:].max() < 20  # still red, not swapped to blue
    np.testing.assert_array_equal(overlay(red, np.ones((8, 8)), alpha=0), red)
    hot = overlay(red, np.ones((8, 8)), alpha=1)
    assert hot[0, 0].min() > 150  # inferno's hot end is pale yellow
    gray = overlay(np.full((8, 8, 1), 100, dtype=np.uint8), np.zeros((8, 8)), alpha=0)
    np.testing.assert_array_equal(gray, 100)
    with pytest.raises(ValueError, match="heatmap"):
        overlay(red, np.ones((4, 4)))


@pytest.fixture
def no_open_figures():
    plt.close("all")
    yield
    assert plt.get_fignums() == [], "a plot function left a figure open"


def assert_png(path) -> np.ndarray:
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    image = mpimg.imread(path)
    assert image.shape[0] >= 300 and image.shape[1] >= 300 and image[..., :3].std() > 0.01
    assert not list(path.parent.glob(".*.tmp")), "temporary file left behind"
    return image


def test_saliency_sheet_is_written_with_an_empty_group(tmp_path, no_open_figures):
    rng = np.random.default_rng(0)
    images = cell_on_black(10, 32)
    heat = rng.random((10, 32, 32))
    labels = np.array([0, 0, 0, 0, 0, 1, 1, 1, 1, 1])
    predicted = np.array([0, 0, 1, 0, 0, 1, 1, 1, 1, 1])  # no wrong "all": an empty group
    scores = np.where(predicted == 1, 0.6 + 0.4 * rng.random(10), 0.4 * rng.random(10))
    path = tmp_path / "saliency.png"
    plot_saliency_sheet(images, heat, labels, predicted, scores, ["hem", "all"], path, per_group=4)
    assert_png(path)


def test_saliency_sheet_of_several_classes_and_bad_input(tmp_path, no_open_figures):
    rng = np.random.default_rng(1)
    images = cell_on_black(12, 24)[..., :1]  # gray
    labels, predicted = np.arange(12) % 3, rng.integers(0, 3, 12)
    scores = rng.dirichlet(np.ones(3), 12)
    path = tmp_path / "sheet.png"
    plot_saliency_sheet(images, rng.random((12, 24, 24)), labels, predicted, scores, ["a", "b", "c"], path, per_group=2)
    assert_png(path)
    with pytest.raises(ValueError, match="scores"):
        plot_saliency_sheet(images, rng.random((12, 24, 24)), labels, predicted, scores[:, 0], ["a", "b", "c"],
                            tmp_path / "bad.png")
    with pytest.raises(ValueError, match="labels"):
        plot_saliency_sheet(images, rng.random((12, 24, 24)), labels + 3, predicted, scores, ["a", "b", "c"],
                            tmp_path / "bad.png")
    assert not (tmp_path / "bad.png").exists()


def test_the_saliency_jobs_panels_draw_the_sheet_of_every_image(tmp_path, no_open_figures):
    """The saliency job keeps only the sheet's panels (its TensorFlow pass is not rerun to redraw the sheet);
    the sheet drawn from them is the sheet drawn from all the images."""
    rng = np.random.default_rng(2)
    images = cell_on_black(40, 32)
    heat = rng.random((40, 32, 32)).astype(np.float32)
    labels, predicted = np.arange(40) % 2, rng.integers(0, 2, 40)
    scores = np.where(predicted == 1, 0.5 + 0.5 * rng.random(40), 0.5 * rng.random(40))
    scores[:6] = scores[6]  # ties keep their order
    plot_saliency_sheet(images, heat, labels, predicted, scores, ["hem", "all"], tmp_path / "all.png", title="t")
    write_sheet_panels(tmp_path / "panels.npz", images, heat, labels, predicted, scores, ["hem", "all"], title="t")
    with np.load(tmp_path / "panels.npz") as panels:
        assert len(panels["images"]) == 16 < len(images)  # 4 per true class and verdict
    draw_saliency_sheet(tmp_path / "panels.npz", tmp_path / "sheet.png")
    assert np.array_equal(assert_png(tmp_path / "sheet.png"), assert_png(tmp_path / "all.png"))


def test_the_chosen_trials_job_refuses_a_trial_it_has_no_model_of_and_writes_nothing(tmp_path):
    from leukobench.learn.saliency import saliency_of_chosen_trials

    with pytest.raises(ValueError, match=r"chosen trials \['results/trials/b'\] are not among"):
        saliency_of_chosen_trials([("b", "results/trials/b")], ["results/trials/a/model.keras"],
                                 ["results/trials/a/predictions.parquet"], ["store.parquet"],
                                 tmp_path / "summary.json", tmp_path / "panels")
    assert not list(tmp_path.iterdir())

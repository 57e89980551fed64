"""Seeded OpenCV augmentation: determinism, Keras' meaning (checked against Keras itself), options."""

from __future__ import annotations

import numpy as np
import pytest

from leukobench.data.augment import (
    FILL_MODES, Augmentation, Transform, affine_matrix, apply_transform, augment_image, augment_many,
)

# Keras' legacy module calls scipy.ndimage.interpolation.affine_transform, which scipy deprecates.
pytestmark = pytest.mark.filterwarnings("ignore:Please import `affine_transform`:DeprecationWarning")

FULL = Augmentation(rotation_range=30, shear_range=10, brightness_range=(0.5, 1.2), contrast_range=(0.8, 1.2),
                    horizontal_flip=True, vertical_flip=True, fill_mode="constant")


def smooth_image(size: int = 64) -> np.ndarray:
    """An RGB test image: smooth patterns (so bilinear implementations agree) and one bright block."""
    yy, xx = np.mgrid[0:size, 0:size]
    image = np.stack([(xx * 4) % 256, (yy * 3 + xx) % 256, 128 + 100 * np.sin(xx / 7.0) * np.cos(yy / 5.0)], -1)
    image = image.astype(np.uint8)
    image[10:20, 30:50] = 255
    return image


def batch(n: int = 6, size: int = 24, channels: int = 3) -> np.ndarray:
    return np.random.default_rng(7).integers(0, 256, size=(n, size, size, channels), dtype=np.uint8)


@pytest.fixture(scope="module")
def keras_image():
    """Keras' own legacy ImageDataGenerator module (the reference for the meaning of every option)."""
    return pytest.importorskip("keras.src.legacy.preprocessing.image")


def keras_affine(module, image: np.ndarray, theta: float, shear: float, fill_mode: str) -> np.ndarray:
    return module.apply_affine_transform(image.astype(np.float32), theta=theta, shear=shear, row_axis=0, col_axis=1,
                                         channel_axis=2, fill_mode=fill_mode, cval=0.0, order=1)


# --- determinism -----------------------------------------------------------------------------------

def test_same_seed_gives_identical_images_whatever_the_threads_and_another_seed_differs():
    images = batch()
    first, origin = augment_many(images, FULL, seed=3, count=20)
    again, origin_again = augment_many(images, FULL, seed=3, count=20, threads=4)
    other, _ = augment_many(images, FULL, seed=4, count=20)
    np.testing.assert_array_equal(first, again)
    np.testing.assert_array_equal(origin, origin_again)
    assert not np.array_equal(first, other)
    one = augment_image(images[0], FULL, np.random.default_rng(11))
    np.testing.assert_array_equal(one, augment_image(images[0], FULL, np.random.default_rng(11)))


def test_identity_augmentation_returns_the_input_unchanged_as_a_new_array():
    aug = Augmentation()
    assert aug.is_identity and not FULL.is_identity
    for image in (batch()[0], batch(channels=1)[0], batch(channels=1)[0, :, :, 0]):
        out = augment_image(image, aug, np.random.default_rng(0))
        np.testing.assert_array_equal(out, image)
        assert out is not image and not np.shares_memory(out, image)
    images = batch()
    out, origin = augment_many(images, aug, seed=0, count=9)
    np.testing.assert_array_equal(out, images[origin])


def test_flips_only_give_one_of_the_four_flips_and_all_four_occur():
    image = batch()[0]
    flips = [image, image[:, ::-1], image[::-1], image[::-1, ::-1]]
    aug = Augmentation(horizontal_flip=True, vertical_flip=True)
    seen = set()
    for seed in range(40):
        out = augment_image(image, aug, np.random.default_rng(seed))
        matches = [k for k, flipped in enumerate(flips) if np.array_equal(out, flipped)]
        assert len(matches) == 1
        seen.add(matches[0])
    assert seen == {0, 1, 2, 3}


# --- the same meaning as Keras ---------------------------------------------------------------------

def test_a_90_degree_rotation_is_exact_counter_clockwise_and_equal_to_keras(keras_image):
    image = smooth_image()
    out = apply_transform(image, Transform(theta=90.0))
    np.testing.assert_array_equal(out, np.rot90(image, 1))  # positive angle: counter-clockwise, as in Keras
    np.testing.assert_allclose(out, keras_affine(keras_image, image, 90.0, 0.0, "nearest"), atol=1e-6)


@pytest.mark.parametrize("fill_mode", ["nearest", "reflect", "constant"])
@pytest.mark.parametrize("theta, shear", [(23.0, 0.0), (0.0, 15.0), (-17.0, 8.0)])
def test_rotation_and_shear_in_degrees_mean_what_keras_means(keras_image, theta, shear, fill_mode):
    image = smooth_image()
    expected = keras_affine(keras_image, image, theta, shear, fill_mode)
    out = apply_transform(image, Transform(theta=theta, shear=shear), fill_mode).astype(np.float64)
    opposite = apply_transform(image, Transform(theta=-theta, shear=-shear), fill_mode).astype(np.float64)
    if fill_mode == "constant":
        # scipy's "constant" zeroes any pixel whose source lies outside the input by any amount, OpenCV
        # blends it with black: they differ only in a one-pixel band along the rotated image's edge.
        matrix = affine_matrix(theta, shear, *image.shape[:2])
        yy, xx = np.mgrid[0:image.shape[0], 0:image.shape[1]]
        sx = matrix[0, 0] * xx + matrix[0, 1] * yy + matrix[0, 2]
        sy = matrix[1, 0] * xx + matrix[1, 1] * yy + matrix[1, 2]
        band = (sx > -1) & (sx < 1) | (sx > image.shape[1] - 2) & (sx < image.shape[1]) \
            | (sy > -1) & (sy < 1) | (sy > image.shape[0] - 2) & (sy < image.shape[0])
        keep = ~band
        expected, out, opposite = expected[keep], out[keep], opposite[keep]
    assert np.abs(out - expected).mean() < 0.5  # bilinear both; OpenCV rounds to uint8 and uses 1/32 px weights
    assert np.abs(opposite - expected).mean() > 10  # the sign (direction) matters, and it matches


def test_keras_image_data_generator_draws_and_applies_the_same_transform(keras_image):
    """Varol's Dataset3 options: Keras' draw, applied by Keras and by this module, agree."""
    image = smooth_image()
    generator = keras_image.ImageDataGenerator(rotation_range=30, shear_range=0.2, brightness_range=[0.1, 1.0])
    params = generator.get_random_transform(image.shape, seed=5)
    assert -0.2 <= params["shear"] <= 0.2  # shear_range 0.2 is 0.2 degrees (apply_affine_transform: np.deg2rad)
    expected = generator.apply_transform(image.astype(np.float32), params)
    ours = apply_transform(image, Transform(theta=params["theta"], shear=params["shear"],
                                            brightness=params["brightness"]))
    assert np.abs(ours - expected).mean() < 0.75


def test_brightness_is_pil_brightness_as_keras_applies_it(keras_image):
    image = smooth_image()
    for factor in (0.1, 0.37, 0.99, 1.3):
        expected = keras_image.apply_brightness_shift(image.astype(np.float32), factor, scale=False)
        np.testing.assert_array_equal(apply_transform(image, Transform(brightness=factor)), expected)


def test_brightness_factor_scales_the_mean_within_its_range_and_clips():
    grey = np.full((16, 16, 3), 200, dtype=np.uint8)
    np.testing.assert_array_equal(augment_image(grey, Augmentation(brightness_range=(0.5, 0.5)), np.random.default_rng(0)),
                                  np.full_like(grey, 100))
    ratios = [augment_image(grey, Augmentation(brightness_range=(0.1, 1.0)), np.random.default_rng(s)).mean() / 200
              for s in range(30)]
    assert 0.1 - 0.01 <= min(ratios) and max(ratios) <= 1.0 and max(ratios) - min(ratios) > 0.3
    bright = augment_image(grey, Augmentation(brightness_range=(1.5, 2.0)), np.random.default_rng(0))
    assert bright.dtype == np.uint8 and (bright == 255).all()


def test_contrast_is_pil_contrast_about_the_grey_mean():
    image_module = pytest.importorskip("PIL.Image")
    enhance = pytest.importorskip("PIL.ImageEnhance")
    for image in (smooth_image(32), smooth_image(32)[:, :, :1]):
        pil = image_module.fromarray(image if image.shape[2] == 3 else image[:, :, 0])
        for factor in (0.3, 1.0, 1.7):
            expected = np.asarray(enhance.Contrast(pil).enhance(factor)).reshape(image.shape)
            np.testing.assert_array_equal(apply_transform(image, Transform(contrast=factor)), expected)


@pytest.mark.parametrize("shape", [(24, 24, 3), (24, 24, 1), (24, 24), (20, 30, 3), (16, 16, 6)])
def test_shape_and_dtype_are_kept(shape):
    image = np.random.default_rng(1).integers(0, 256, size=shape, dtype=np.uint8)
    for seed in range(5):
        out = augment_image(image, FULL, np.random.default_rng(seed))
        assert out.shape == image.shape and out.dtype == np.uint8


def test_fill_mode_constant_brings_in_black_and_nearest_does_not():
    white = np.full((32, 32, 3), 255, dtype=np.uint8)
    corner = apply_transform(white, Transform(theta=45.0), "constant")
    assert corner[0, 0].max() == 0 and corner[16, 16].min() == 255
    for mode in ("nearest", "reflect"):
        assert (apply_transform(white, Transform(theta=45.0), mode) == 255).all()


# --- many images -------------------------------------------------------------------------------------

def test_augment_many_uses_every_source_about_equally_and_says_which():
    images = batch(n=7)
    aug = Augmentation(horizontal_flip=True, vertical_flip=True)
    out, origin = augment_many(images, aug, seed=1, count=50)
    assert out.shape == (50, *images.shape[1:]) and out.dtype == np.uint8 and origin.shape == (50,)
    assert set(np.bincount(origin, minlength=7)) <= {7, 8}
    for image, source in zip(out, origin):
        original = images[source]
        assert any(np.array_equal(image, f) for f in (original, original[:, ::-1], original[::-1], original[::-1, ::-1]))
    subset = np.array([1, 4, 5])
    _, origin = augment_many(images, aug, seed=1, count=10, sources=subset)
    assert set(origin) == {1, 4, 5} and set(np.bincount(origin)[subset]) <= {3, 4}
    empty, none = augment_many(images, aug, seed=1, count=0)
    assert empty.shape == (0, *images.shape[1:]) and none.shape == (0,)


def test_draws_stay_within_their_ranges_in_degrees():
    aug = Augmentation(rotation_range=30, shear_range=0.2, brightness_range=(0.1, 1.0), contrast_range=(0.9, 1.1))
    draws = [aug.draw(np.random.default_rng(s)) for s in range(200)]
    thetas = np.array([d.theta for d in draws])
    assert np.abs(thetas).max() <= 30 and thetas.min() < -20 and thetas.max() > 20
    assert max(abs(d.shear) for d in draws) <= 0.2
    assert all(0.1 <= d.brightness <= 1.0 and 0.9 <= d.contrast <= 1.1 for d in draws)
    assert not any(d.flip_horizontal or d.flip_vertical for d in draws)


# --- options ------------------------------------------------------------------------------------------

def test_from_config_round_trips():
    options = {"rotation_range": 30, "shear_range": 0.2, "brightness_range": [0.1, 1.0], "fill_mode": "constant"}
    aug = Augmentation.from_config(options)
    assert aug.brightness_range == (0.1, 1.0) and aug.rotation_range == 30.0
    assert Augmentation.from_config(aug.to_config()) == aug
    assert Augmentation.from_config({}) == Augmentation() == Augmentation.from_config(None)
    assert set(FILL_MODES) == {"nearest", "constant", "reflect"}


@pytest.mark.parametrize("options, field", [
    ({"rotation_range": -5}, "rotation_range"),
    ({"rotation_range": 200}, "rotation_range"),
    ({"rotation_range": "30"}, "rotation_range"),
    ({"shear_range": 90}, "shear_range"),
    ({"brightness_range": [1.0, 0.1]}, "brightness_range"),
    ({"brightness_range": [0.5]}, "brightness_range"),
    ({"contrast_range": [-0.1, 1.0]}, "contrast_range"),
    ({"horizontal_flip": "yes"}, "horizontal_flip"),
    ({"vertical_flip": 1}, "vertical_flip"),
    ({"fill_mode": "wrap"}, "fill_mode"),
    ({"zoom_range": 0.1}, "zoom_range"),
])
def test_invalid_options_raise_naming_the_field(options, field):
    with pytest.raises(ValueError, match=field) as error:
        Augmentation.from_config(options)
    if field == "zoom_range":
        assert "rotation_range" in str(error.value)  # lists the allowed keys


def test_invalid_inputs_raise():
    with pytest.raises(ValueError, match="uint8"):
        augment_image(np.zeros((8, 8, 3), dtype=np.float32), FULL, np.random.default_rng(0))
    with pytest.raises(ValueError, match="sources"):
        augment_many(batch(n=3), FULL, seed=0, count=4, sources=np.array([0, 3]))
    with pytest.raises(ValueError, match="seed"):
        augment_many(batch(n=3), FULL, seed=-1, count=4)

"""Synthetic white-blood-cell images in the C-NMC 2019 Kaggle layout.

The default dataset of the workflow: no download, fully deterministic. ``write_cnmc_tree`` writes

    <root>/training_data/fold_<k>/{all,hem}/UID_<subject>_<image>_<cell>_<all|hem>.bmp

with ALL patients named ``1``, ``2``, ... (only ``all`` cells) and healthy subjects ``H1``,
``H2``, ... (only ``hem`` cells); every subject lives in exactly one fold, as in C-NMC.

Each image is one stained cell, segmented on a pure black background, drawn with numpy from a
few morphological traits that carry the signal pathologists use:

* blasts (ALL): somewhat larger cells whose nucleus fills nearly the whole cell, fine and
  homogeneous chromatin, 1-3 visible nucleoli (small paler spots), a less regular outline;
* normal lymphocytes (hem): smaller cells with a denser, darker nucleus, coarse clumped
  chromatin, a visible lighter rim of cytoplasm and a rounder outline.

Every trait of a cell is ``class centre + subject offset + cell noise``. The two class centres
move towards their midpoint as ``difficulty`` goes from 0 (far apart) to 1 (identical), so the
class distributions overlap. Each subject also has its own stain (hue, saturation, brightness)
and size shift, scaled by ``subject_shift``: cells of one subject resemble each other, and a
classifier scores higher on a random cell-level split than on a subject-disjoint one, as on
the real data.

Colours follow a simple absorbance model: a pixel is ``255 * exp(-density * stain)`` per BGR
channel, with one stain vector for the nucleus and one for the cytoplasm, calibrated so that
the colour inside the cell matches the C-NMC images (dark purple; BGR mean about 80, 30, 72).
"""

from __future__ import annotations

import errno
import math
import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pandas as pd

# --- layout -------------------------------------------------------------------------------
TRAINING_DIR = "training_data"
CLASS_DIRS = {1: "all", 0: "hem"}  # label -> folder and file-name suffix
HEALTHY_PREFIX = "H"
FILE_NAME = re.compile(r"UID_(?P<subject>H?\d+)_(?P<image>\d+)_(?P<cell>\d+)_(?P<cls>all|hem)\.bmp")
MANIFEST_COLUMNS = ["path", "subject", "label", "fold"]
TEMP_PREFIX = ".synthetic-"
TREE_MODE = 0o755
SECOND_CELL_PROBABILITY = 0.15  # chance that the next cell comes from the same microscope image
SKIPPED_IMAGE_PROBABILITY = 0.3  # chance that an image number is skipped (no usable cell in it)

# --- limits of SyntheticSpec ----------------------------------------------------------------
MIN_SUBJECTS, MAX_SUBJECTS = 2, 10_000
MAX_CELLS_PER_SUBJECT = 100_000
MIN_IMAGE_SIZE, MAX_IMAGE_SIZE = 32, 2048
MAX_SUBJECT_SHIFT = 2.0

# --- random streams: each Generator is seeded from (seed, stream, label, subject[, cell]) --
SUBJECT_STREAM = 1
CELL_STREAM = 2

# --- geometry, as fractions of the image width unless named otherwise -----------------------
POSITION_JITTER = 0.04  # sd of the cell centre's offset from the image centre
BORDER_MARGIN_PX = 1  # the cell never touches the image border
ELONGATION_MEAN, ELONGATION_SD = 0.05, 0.03  # amplitude of the 2nd outline harmonic
FIRST_IRREGULAR_HARMONIC, LAST_HARMONIC = 3, 9
HARMONIC_DECAY = 0.7  # amplitude of harmonic k falls as k ** -HARMONIC_DECAY
NUCLEUS_IRREGULARITY_FACTOR = 0.5  # nucleus outline is smoother than the cell's
NUCLEUS_OFFSET_RANGE = (0.3, 0.9)  # eccentricity: share of the free room the nucleus shifts by
NUCLEUS_EDGE_PX_AT_128 = 1.2  # width of the soft nucleus/cytoplasm boundary at 128 px
FINE_CHROMATIN_SIGMA = 0.010
COARSE_CHROMATIN_SIGMA = 0.025
CLUMP_THRESHOLD = 0.3  # coarse chromatin: only the densest parts of the noise form clumps
CYTOPLASM_TEXTURE = 0.08
NUCLEOLI_RANGE = (1, 3)  # inclusive; visibility comes from the nucleolus_contrast trait
NUCLEOLUS_RADIUS = 0.022
NUCLEOLUS_RADIUS_JITTER = (0.7, 1.3)
NUCLEOLUS_PLACEMENT = 0.55  # nucleoli lie within this share of the nucleus radius
BLUR_SIGMA = 0.006
BLUR_JITTER = (0.6, 1.4)
NOISE_SD = 2.0  # additive sensor noise, grey levels
MIN_INSIDE_LEVEL = 1  # a cell pixel is never pure black, so the mask stays exact

# --- colour: absorbance per BGR channel at density 1 ----------------------------------------
WHITE = 255.0
NUCLEUS_STAIN = np.array([1.22, 2.25, 1.38])  # ~ (75, 27, 64): dark purple
CYTOPLASM_STAIN = np.array([0.92, 1.60, 0.98])  # ~ (102, 51, 96): lighter lilac
CYTOPLASM_DENSITY = 1.0
CELL_STAIN_JITTER = 0.03  # within-subject sd of the stain (log scale)
SUBJECT_HUE_SD = 0.32  # per-channel log-scale shift of the stain vectors
SUBJECT_SATURATION_SD = 0.48  # log-scale stretch of the stain vectors around their mean
SUBJECT_BRIGHTNESS_SD = 0.32  # log-scale shift of the overall density
SUBJECT_SIZE_SD = 0.06  # additive shift of the cell diameter


@dataclass(frozen=True)
class Trait:
    """One morphological trait: class centres at difficulty 0 and its spreads."""

    hem: float
    all: float
    cell_sd: float
    subject_sd: float
    low: float
    high: float

    def centre(self, label: int, separation: float) -> float:
        """The class centre when the classes are ``separation`` (0..1) of the full gap apart."""
        middle = (self.hem + self.all) / 2
        half_gap = (self.all - self.hem) / 2
        return middle + (1 if label == 1 else -1) * separation * half_gap


TRAITS: dict[str, Trait] = {
    # cell diameter as a fraction of the image width (the subject's size shift is SUBJECT_SIZE_SD)
    "diameter": Trait(hem=0.43, all=0.57, cell_sd=0.02, subject_sd=0.0, low=0.3, high=0.7),
    # nucleus radius / cell radius
    "nc_ratio": Trait(hem=0.62, all=1.02, cell_sd=0.035, subject_sd=0.06, low=0.5, high=0.97),
    # outline harmonic amplitude
    "irregularity": Trait(hem=-0.007, all=0.069, cell_sd=0.008, subject_sd=0.016, low=0.0, high=0.12),
    # 0 = fine homogeneous chromatin, 1 = coarse clumps
    "coarseness": Trait(hem=1.2, all=-0.2, cell_sd=0.1, subject_sd=0.16, low=0.0, high=1.0),
    # relative density modulation of the chromatin texture
    "chromatin_contrast": Trait(hem=0.25, all=0.05, cell_sd=0.028, subject_sd=0.04, low=0.0, high=0.6),
    # how much paler a nucleolus is than the nucleus around it
    "nucleolus_contrast": Trait(hem=-0.14, all=0.42, cell_sd=0.056, subject_sd=0.1, low=0.0, high=0.6),
    # nuclear stain density (higher = darker)
    "nucleus_density": Trait(hem=1.175, all=0.875, cell_sd=0.042, subject_sd=0.08, low=0.7, high=1.4),
}


@dataclass(frozen=True)
class SyntheticSpec:
    """What to generate; every field is validated on construction."""

    subjects: int = 30
    all_fraction: float = 0.6
    cells_per_subject: int = 50
    image_size: int = 128
    difficulty: float = 0.5
    subject_shift: float = 0.5
    folds: int = 3
    seed: int = 0

    def __post_init__(self) -> None:
        """Raise ValueError naming the field, the value received and what is allowed."""
        _check_int("subjects", self.subjects, MIN_SUBJECTS, MAX_SUBJECTS)
        _check_int("cells_per_subject", self.cells_per_subject, 1, MAX_CELLS_PER_SUBJECT)
        _check_int("image_size", self.image_size, MIN_IMAGE_SIZE, MAX_IMAGE_SIZE)
        _check_int("folds", self.folds, 1, self.subjects)
        _check_int("seed", self.seed, 0, None)
        _check_float("all_fraction", self.all_fraction, 0.0, 1.0)
        _check_float("difficulty", self.difficulty, 0.0, 1.0)
        _check_float("subject_shift", self.subject_shift, 0.0, MAX_SUBJECT_SHIFT)
        n_all = self.all_subjects
        if not 1 <= n_all <= self.subjects - 1:
            raise ValueError(
                f"all_fraction: got {self.all_fraction!r}, which gives {n_all} ALL subject(s) of "
                f"{self.subjects}; allowed: a fraction leaving at least one ALL and one healthy subject"
            )

    @property
    def all_subjects(self) -> int:
        """Number of ALL patients (the rest are healthy)."""
        return int(round(self.subjects * self.all_fraction))

    @property
    def separation(self) -> float:
        """Share of the full class gap kept: 1 at difficulty 0, 0 at difficulty 1."""
        return 1.0 - float(self.difficulty)


def _check_int(name: str, value: object, low: int, high: int | None) -> None:
    """Raise ValueError unless ``value`` is an int (not a bool) in [low, high]."""
    allowed = f"an integer >= {low}" if high is None else f"an integer in [{low}, {high}]"
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"{name}: got {value!r} ({type(value).__name__}); allowed: {allowed}")
    if value < low or (high is not None and value > high):
        raise ValueError(f"{name}: got {value!r}; allowed: {allowed}")


def _check_float(name: str, value: object, low: float, high: float) -> None:
    """Raise ValueError unless ``value`` is a finite real number in [low, high]."""
    allowed = f"a number in [{low}, {high}]"
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ValueError(f"{name}: got {value!r} ({type(value).__name__}); allowed: {allowed}")
    if not math.isfinite(value) or not low <= value <= high:
        raise ValueError(f"{name}: got {value!r}; allowed: {allowed}")


# --- subjects -------------------------------------------------------------------------------
@dataclass(frozen=True)
class Subject:
    """One subject: name, class, fold and the shifts shared by all its cells."""

    name: str
    number: int
    label: int
    fold: int
    trait_offsets: dict[str, float]
    nucleus_stain: np.ndarray
    cytoplasm_stain: np.ndarray
    brightness: float


def _shift_stain(stain: np.ndarray, hue: np.ndarray, saturation: float) -> np.ndarray:
    """Apply a per-channel (hue) and a spread (saturation) shift to a stain vector."""
    shifted = stain * np.exp(hue)
    mean = shifted.mean()
    return mean + (shifted - mean) * math.exp(saturation)


def _subject(spec: SyntheticSpec, label: int, number: int, fold: int) -> Subject:
    """Draw one subject's stain and morphology shifts from its own Generator."""
    rng = np.random.default_rng([spec.seed, SUBJECT_STREAM, label, number])
    shift = float(spec.subject_shift)
    offsets = {name: shift * trait.subject_sd * rng.standard_normal() for name, trait in TRAITS.items()}
    offsets["diameter"] += shift * SUBJECT_SIZE_SD * rng.standard_normal()
    nucleus_hue, cytoplasm_hue = shift * SUBJECT_HUE_SD * rng.standard_normal((2, 3))
    saturation = shift * SUBJECT_SATURATION_SD * rng.standard_normal()
    brightness = math.exp(shift * SUBJECT_BRIGHTNESS_SD * rng.standard_normal())
    name = str(number) if label == 1 else f"{HEALTHY_PREFIX}{number}"
    return Subject(
        name=name, number=number, label=label, fold=fold, trait_offsets=offsets,
        nucleus_stain=_shift_stain(NUCLEUS_STAIN, nucleus_hue, saturation),
        cytoplasm_stain=_shift_stain(CYTOPLASM_STAIN, cytoplasm_hue, saturation),
        brightness=brightness,
    )


def _subjects(spec: SyntheticSpec) -> list[Subject]:
    """All subjects, ALL first; folds dealt round-robin so each fold gets both classes."""
    n_all = spec.all_subjects
    subjects = [_subject(spec, 1, i + 1, i % spec.folds) for i in range(n_all)]
    subjects += [
        _subject(spec, 0, j + 1, (n_all + j) % spec.folds) for j in range(spec.subjects - n_all)
    ]
    return subjects


def _image_cell_numbers(spec: SyntheticSpec, subject: Subject) -> list[tuple[int, int]]:
    """(image, cell) numbers of a subject's cells: a few images hold two cells, some are skipped."""
    rng = np.random.default_rng([spec.seed, SUBJECT_STREAM, subject.label, subject.number, 0])
    numbers, image, cell = [], 1, 1
    for _ in range(spec.cells_per_subject):
        numbers.append((image, cell))
        if cell == 1 and rng.random() < SECOND_CELL_PROBABILITY:
            cell = 2
        else:
            image += 1 + int(rng.random() < SKIPPED_IMAGE_PROBABILITY)
            cell = 1
    return numbers


# --- cells ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class CellTraits:
    """The trait values of one cell, after class centre, subject offset and cell noise."""

    diameter: float
    nc_ratio: float
    irregularity: float
    coarseness: float
    chromatin_contrast: float
    nucleolus_contrast: float
    nucleus_density: float


def _cell_traits(spec: SyntheticSpec, subject: Subject, rng: np.random.Generator) -> CellTraits:
    """Draw a cell's traits: class centre + subject offset + cell noise, clipped to the trait's range."""
    values = {}
    for name, trait in TRAITS.items():
        value = trait.centre(subject.label, spec.separation) + subject.trait_offsets[name]
        value += trait.cell_sd * rng.standard_normal()
        values[name] = float(np.clip(value, trait.low, trait.high))
    return CellTraits(**values)


def _outline(theta: np.ndarray, radius: float, elongation: float, axis: float,
             irregularity: float, rng: np.random.Generator) -> np.ndarray:
    """Radius of a closed outline at each angle: ellipse-like plus decaying random harmonics."""
    harmonics = np.arange(FIRST_IRREGULAR_HARMONIC, LAST_HARMONIC + 1)
    amplitudes = irregularity * np.abs(rng.standard_normal(harmonics.size)) * harmonics ** -HARMONIC_DECAY
    phases = rng.uniform(0, 2 * np.pi, harmonics.size)
    shape = 1 + elongation * np.cos(2 * (theta - axis))
    for k, amplitude, phase in zip(harmonics, amplitudes, phases):
        shape += amplitude * np.cos(k * theta + phase)
    return radius * shape


def _smooth_noise(rng: np.random.Generator, size: int, sigma: float) -> np.ndarray:
    """Gaussian-filtered white noise scaled to zero mean and unit sd."""
    noise = rng.standard_normal((size, size)).astype(np.float32)
    noise = cv2.GaussianBlur(noise, (0, 0), sigmaX=max(sigma, 0.3), borderType=cv2.BORDER_REFLECT)
    return (noise - noise.mean()) / max(float(noise.std()), 1e-6)


def _chromatin(rng: np.random.Generator, size: int, coarseness: float) -> np.ndarray:
    """Chromatin texture (zero mean, unit sd): fine homogeneous grain mixed with coarse clumps."""
    fine = _smooth_noise(rng, size, FINE_CHROMATIN_SIGMA * size)
    coarse = _smooth_noise(rng, size, COARSE_CHROMATIN_SIGMA * size)
    clumps = np.maximum(coarse - CLUMP_THRESHOLD, 0)
    clumps = (clumps - clumps.mean()) / max(float(clumps.std()), 1e-6)
    texture = (1 - coarseness) * fine + coarseness * clumps
    return texture / max(float(texture.std()), 1e-6)


def _nucleoli(rng: np.random.Generator, xx: np.ndarray, yy: np.ndarray, centre: tuple[float, float],
              nucleus_radius: float, size: int) -> np.ndarray:
    """Sum of 1-3 soft round spots (0..1) placed inside the nucleus."""
    spots = np.zeros_like(xx)
    count = int(rng.integers(NUCLEOLI_RANGE[0], NUCLEOLI_RANGE[1] + 1))
    for _ in range(count):
        distance = NUCLEOLUS_PLACEMENT * nucleus_radius * math.sqrt(rng.random())
        angle = rng.uniform(0, 2 * np.pi)
        sigma = NUCLEOLUS_RADIUS * size * rng.uniform(*NUCLEOLUS_RADIUS_JITTER)
        cx = centre[0] + distance * math.cos(angle)
        cy = centre[1] + distance * math.sin(angle)
        spots += np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * sigma ** 2))
    return np.minimum(spots, 1.0)


def render_cell(traits: CellTraits, subject: Subject, size: int, rng: np.random.Generator) -> np.ndarray:
    """Draw one cell as a BGR uint8 image of ``size`` x ``size`` on a pure black background."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    radius = traits.diameter * size / 2
    elongation = abs(ELONGATION_MEAN + ELONGATION_SD * rng.standard_normal())
    axis = rng.uniform(0, np.pi)  # random rotation of the whole cell
    max_extent = radius * (1 + elongation + traits.irregularity * 3)
    room = max(size / 2 - max_extent - BORDER_MARGIN_PX, 0)
    cx, cy = np.clip(size / 2 + POSITION_JITTER * size * rng.standard_normal(2), size / 2 - room, size / 2 + room)

    theta = np.arctan2(yy - cy, xx - cx)
    cell = np.hypot(xx - cx, yy - cy) <= _outline(theta, radius, elongation, axis, traits.irregularity, rng)

    nucleus_radius = traits.nc_ratio * radius
    free = (1 - traits.nc_ratio) * radius * rng.uniform(*NUCLEUS_OFFSET_RANGE)
    direction = rng.uniform(0, 2 * np.pi)
    nx, ny = cx + free * math.cos(direction), cy + free * math.sin(direction)
    theta_n = np.arctan2(yy - ny, xx - nx)
    nucleus_edge = _outline(theta_n, nucleus_radius, elongation, axis,
                            traits.irregularity * NUCLEUS_IRREGULARITY_FACTOR, rng)
    edge_px = NUCLEUS_EDGE_PX_AT_128 * size / 128
    nucleus = np.clip((nucleus_edge - np.hypot(xx - nx, yy - ny)) / edge_px + 0.5, 0, 1)

    chromatin = _chromatin(rng, size, traits.coarseness)
    spots = _nucleoli(rng, xx, yy, (nx, ny), nucleus_radius, size)
    nucleus_density = traits.nucleus_density * (1 + traits.chromatin_contrast * chromatin)
    nucleus_density *= 1 - traits.nucleolus_contrast * spots
    cytoplasm_density = CYTOPLASM_DENSITY * (1 + CYTOPLASM_TEXTURE * _smooth_noise(rng, size, FINE_CHROMATIN_SIGMA * size))

    stain_jitter = np.exp(CELL_STAIN_JITTER * rng.standard_normal(3))
    absorbance = (nucleus * np.maximum(nucleus_density, 0))[..., None] * (subject.nucleus_stain * stain_jitter)
    absorbance += ((1 - nucleus) * cytoplasm_density)[..., None] * (subject.cytoplasm_stain * stain_jitter)
    image = WHITE * np.exp(-subject.brightness * absorbance)

    sigma = BLUR_SIGMA * size * rng.uniform(*BLUR_JITTER)
    image = cv2.GaussianBlur(image.astype(np.float32), (0, 0), sigmaX=sigma, borderType=cv2.BORDER_REFLECT)
    image += NOISE_SD * rng.standard_normal(image.shape).astype(np.float32)
    image = np.clip(np.rint(image), MIN_INSIDE_LEVEL, 255).astype(np.uint8)
    image[~cell] = 0
    return image


def _cell_rng(spec: SyntheticSpec, subject: Subject, cell_index: int) -> np.random.Generator:
    """The Generator of one cell, seeded from (seed, subject, cell)."""
    return np.random.default_rng([spec.seed, CELL_STREAM, subject.label, subject.number, cell_index])


def generate_cell(spec: SyntheticSpec, subject: Subject, cell_index: int) -> np.ndarray:
    """Draw the traits of a subject's ``cell_index``-th cell and render it."""
    rng = _cell_rng(spec, subject, cell_index)
    return render_cell(_cell_traits(spec, subject, rng), subject, spec.image_size, rng)


# --- writing --------------------------------------------------------------------------------
def _check_root(root: Path) -> None:
    """Raise FileExistsError when ``root`` exists and is a file or a non-empty folder."""
    if root.is_dir():
        if any(root.iterdir()):
            raise FileExistsError(f"{root}: folder exists and is not empty; refusing to write synthetic data into it")
    elif root.exists() or root.is_symlink():
        raise FileExistsError(f"{root}: exists and is not a folder; refusing to write synthetic data there")


def _write_tree(tmp: Path, spec: SyntheticSpec) -> pd.DataFrame:
    """Write every image under ``tmp`` and return the rows of the manifest."""
    rows = []
    for subject in _subjects(spec):
        class_name = CLASS_DIRS[subject.label]
        folder = tmp / TRAINING_DIR / f"fold_{subject.fold}" / class_name
        folder.mkdir(parents=True, exist_ok=True)
        for index, (image_no, cell_no) in enumerate(_image_cell_numbers(spec, subject)):
            path = folder / f"UID_{subject.name}_{image_no}_{cell_no}_{class_name}.bmp"
            if not cv2.imwrite(str(path), generate_cell(spec, subject, index)):
                raise OSError(f"{path}: OpenCV could not write the BMP")
            rows.append({"path": path.relative_to(tmp).as_posix(), "subject": subject.name,
                         "label": subject.label, "fold": subject.fold})
    for fold in range(spec.folds):  # an empty class folder still shows the layout
        for class_name in CLASS_DIRS.values():
            (tmp / TRAINING_DIR / f"fold_{fold}" / class_name).mkdir(parents=True, exist_ok=True)
    return pd.DataFrame(rows, columns=MANIFEST_COLUMNS)


def write_cnmc_tree(root: str | os.PathLike, spec: SyntheticSpec) -> pd.DataFrame:
    """Write a synthetic C-NMC training tree to ``root``, atomically.

    The tree is built in a temporary sibling folder and renamed into place, so ``root`` either
    does not appear or is complete. An existing empty ``root`` folder is replaced.

    Args:
        root: the dataset folder; ``root/training_data/fold_<k>/{all,hem}/`` is written.
        spec: what to generate.

    Returns:
        One row per file: path (relative to ``root``, POSIX), subject, label (1 = all,
        0 = hem), fold (int).

    Raises:
        FileExistsError: ``root`` exists and is a file or a non-empty folder.
    """
    root = Path(root)
    _check_root(root)
    root.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f"{TEMP_PREFIX}{root.name}.", dir=root.parent))
    try:
        manifest = _write_tree(tmp, spec)
        _check_root(root)
        tmp.chmod(TREE_MODE)  # mkdtemp makes the folder private
        try:
            os.rename(tmp, root)  # atomic; replaces only an empty folder
        except OSError as error:
            if error.errno not in (errno.ENOTEMPTY, errno.EEXIST, errno.ENOTDIR):
                raise
            raise FileExistsError(f"{root}: appeared while writing and is not empty; nothing written") from error
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
    return manifest

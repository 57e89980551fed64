"""Synthetic white-blood-cell images in the C-NMC 2019 Kaggle layout.

The default dataset of the workflow: no download, fully deterministic. ``write_cnmc_tree`` writes

    <root>/training_data/fold_<k>/{all,hem}/UID_<subject>_<image>_<cell>_<all|hem>.bmp

with ALL patients named ``1``, ``2``, ... (only ``all`` cells) and healthy subjects ``H1``,
``H2``, ... (only ``hem`` cells); every subject lives in exactly one fold, as in C-NMC.

Each image is one stained cell segmented on a pure black background, drawn with numpy from a
few morphological traits that carry the signal pathologists use:

* blasts (ALL): somewhat larger cells whose nucleus fills nearly the whole cell, fine and
  homogeneous chromatin, 1-3 visible nucleoli (small paler spots), a less regular outline;
* normal lymphocytes (hem): smaller cells with a denser, darker nucleus, coarse clumped
  chromatin, a visible lighter rim of cytoplasm and a rounder outline.

A trait of a cell is ``class centre + blast-likeness + subject offset + cell noise``:

* the class centres lie ``1 - difficulty`` of the full hem-all gap apart (``TRAITS`` holds the
  centres at difficulty 0), so at difficulty 1 both classes come from the same distribution;
* blast-likeness moves all traits of a cell together towards one class; it has a subject part
  (some patients' blasts look mature, some healthy lymphocytes look reactive) and a cell part;
* subject offsets (per trait) and the subject's stain (darker or paler slide, bluer or pinker,
  more or less saturated, white balance, cytoplasm density) are scaled by ``subject_shift``.

Cells of one subject therefore resemble each other, and a classifier scores higher on a random
cell-level split than on a subject-disjoint one, as on the real data. Rotation, position jitter,
slight blur and sensor noise vary from cell to cell.

Colours follow an absorbance model: a pixel is ``white * exp(-density * stain)`` per BGR channel,
with one stain vector for the nucleus and one for the cytoplasm, calibrated so that the colour
inside the cell is the dark purple of the C-NMC images (BGR mean about 70-95, 22-40, 60-87).
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
from types import MappingProxyType

import cv2
import numpy as np
import pandas as pd

__all__ = ["FILE_NAME", "SyntheticSpec", "write_cnmc_tree"]


def _constant(values: list[float]) -> np.ndarray:
    """A read-only float array, so module constants cannot be changed by accident."""
    array = np.array(values, dtype=float)
    array.setflags(write=False)
    return array


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

# --- random streams: every Generator is seeded from (seed, stream, label, subject, cell) ----
SUBJECT_STREAM = 1  # a subject's shifts (cell = 0)
CELL_STREAM = 2  # everything about one cell
NUMBERING_STREAM = 3  # the image and cell numbers in a subject's file names (cell = 0)

# --- geometry, as fractions of the image width unless named otherwise -----------------------
POSITION_JITTER = 0.04  # sd of the cell centre's offset from the image centre
BORDER_MARGIN_PX = 1  # the cell never touches the image border
ELONGATION_MEAN, ELONGATION_SD = 0.05, 0.03  # amplitude of the 2nd outline harmonic
HARMONICS = _constant(list(range(3, 10)))  # outline harmonics beyond the ellipse (k = 2)
OUTLINE_ANGLES = _constant(np.linspace(0, 2 * np.pi, 720, endpoint=False).tolist())  # where outlines are evaluated
HARMONIC_DECAY = 0.7  # amplitude of harmonic k falls as k ** -HARMONIC_DECAY
NUCLEUS_IRREGULARITY_FACTOR = 0.5  # nucleus outline is smoother than the cell's
NUCLEUS_OFFSET_RANGE = (0.3, 0.9)  # eccentricity: share of the free room the nucleus shifts by
REFERENCE_SIZE = 128  # image size at which pixel constants are given
NUCLEUS_EDGE_PX_AT_128 = 1.2  # width of the soft nucleus/cytoplasm boundary at 128 px
FINE_CHROMATIN_SIGMA = 0.010  # grain size of fine chromatin (Gaussian sigma)
COARSE_CHROMATIN_SIGMA = 0.018  # size of chromatin clumps
CLUMP_THRESHOLD = 0.0  # clumps: the coarse noise above this level (in sd); the rest is clear
CYTOPLASM_TEXTURE = 0.08  # relative density modulation of the cytoplasm
NUCLEOLI_RANGE = (1, 3)  # inclusive; visibility comes from the nucleolus_contrast trait
NUCLEOLUS_RADIUS = 0.022  # Gaussian sigma of a nucleolus
NUCLEOLUS_RADIUS_JITTER = (0.7, 1.3)  # factor on NUCLEOLUS_RADIUS, uniform
NUCLEOLUS_PLACEMENT = 0.55  # nucleoli lie within this share of the nucleus radius
BLUR_SIGMA = 0.006  # optical blur (Gaussian sigma)
BLUR_JITTER = (0.6, 1.4)  # factor on BLUR_SIGMA, uniform
NOISE_SD = 2.0  # additive sensor noise, grey levels
MIN_INSIDE_LEVEL = 1  # a cell pixel is never pure black, so the mask stays exact
MAX_LEVEL = 255

# --- colour: absorbance per BGR channel at density 1 ----------------------------------------
WHITE = 255.0
NUCLEUS_STAIN = _constant([1.25, 2.30, 1.48])  # ~ (73, 26, 58): dark purple
CYTOPLASM_STAIN = _constant([0.95, 1.65, 1.05])  # ~ (99, 49, 89): lighter lilac
CELL_STAIN_JITTER = 0.03  # within-subject sd of the stain (log scale)
# Subject (slide / staining batch) shifts, each a standard deviation at subject_shift = 1:
SUBJECT_DENSITY_SD = 0.22  # log-scale shift of all absorbance: a darker or paler slide
SUBJECT_BALANCE_SD = 0.12  # shift along BALANCE_AXIS of the log absorbance: bluer or pinker
BALANCE_AXIS = _constant([-0.5, 0.0, 0.5])  # bluer = absorbs more red, less blue
SUBJECT_SATURATION_SD = 0.36  # log-scale stretch of the stain vectors around their mean
SUBJECT_WHITE_BALANCE_SD = 0.06  # per-channel log gain of the illumination
SUBJECT_CYTOPLASM_SD = 0.3  # log-scale shift of the cytoplasm density

# --- class overlap, in half-gaps of every trait (see Trait.centre) --------------------------
# Cells mature along one axis: a blast-like hem cell is blast-like in all its traits at once.
SUBJECT_BLAST_LIKENESS_SD = 0.25  # at subject_shift = 1: some subjects look like the other class
CELL_BLAST_LIKENESS_SD = 0.15  # cell to cell, within a subject


@dataclass(frozen=True)
class Trait:
    """One morphological trait: its class centres at difficulty 0, spreads and valid range.

    A centre may lie outside [low, high] (the draws are clipped), so that moderate difficulties
    still keep the classes' centres apart inside the range.
    """

    hem: float
    all: float
    cell_sd: float
    subject_sd: float
    low: float
    high: float

    def centre(self, label: int, separation: float, blast_likeness: float = 0.0) -> float:
        """Where a cell of class ``label`` sits on this trait, before its independent noise.

        Args:
            label: 1 = all, 0 = hem.
            separation: share (0..1) of the full hem-all gap between the two class centres.
            blast_likeness: shift towards the ``all`` end, in half-gaps (negative: towards hem).
        """
        middle = (self.hem + self.all) / 2
        half_gap = (self.all - self.hem) / 2
        return middle + ((1 if label == 1 else -1) * separation + blast_likeness) * half_gap


TRAITS: MappingProxyType[str, Trait] = MappingProxyType({
    # cell diameter as a fraction of the image width
    "diameter": Trait(hem=0.44, all=0.56, cell_sd=0.02, subject_sd=0.03, low=0.3, high=0.7),
    # nucleus radius / cell radius
    "nc_ratio": Trait(hem=0.66, all=0.98, cell_sd=0.035, subject_sd=0.03, low=0.5, high=0.97),
    # outline harmonic amplitude
    "irregularity": Trait(hem=0.0, all=0.07, cell_sd=0.008, subject_sd=0.008, low=0.0, high=0.12),
    # 0 = fine homogeneous chromatin, 1 = coarse clumps
    "coarseness": Trait(hem=0.85, all=0.15, cell_sd=0.1, subject_sd=0.08, low=0.0, high=1.0),
    # relative density modulation of the chromatin texture
    "chromatin_contrast": Trait(hem=0.18, all=0.12, cell_sd=0.028, subject_sd=0.02, low=0.0, high=0.6),
    # how much paler a nucleolus is than the nucleus around it
    "nucleolus_contrast": Trait(hem=0.0, all=0.3, cell_sd=0.056, subject_sd=0.05, low=0.0, high=0.6),
    # nuclear stain density (higher = darker)
    "nucleus_density": Trait(hem=1.2, all=0.9, cell_sd=0.042, subject_sd=0.04, low=0.7, high=1.4),
})


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
    blast_likeness: float  # shift of all traits towards the all end, in half-gaps
    trait_offsets: dict[str, float]  # independent shift of each trait
    nucleus_stain: np.ndarray  # absorbance per BGR channel at density 1
    cytoplasm_stain: np.ndarray
    illumination: np.ndarray  # white level per BGR channel


def _shift_stain(stain: np.ndarray, log_shift: np.ndarray, saturation: float) -> np.ndarray:
    """Shift a stain vector per channel (log scale), then stretch it around its mean."""
    shifted = stain * np.exp(log_shift)
    mean = shifted.mean()
    return mean + (shifted - mean) * math.exp(saturation)


def _subject(spec: SyntheticSpec, label: int, number: int, fold: int) -> Subject:
    """Draw one subject's stain and morphology shifts from its own Generator."""
    rng = np.random.default_rng([spec.seed, SUBJECT_STREAM, label, number, 0])
    shift = float(spec.subject_shift)
    blast_likeness = shift * SUBJECT_BLAST_LIKENESS_SD * rng.standard_normal()
    offsets = {name: shift * trait.subject_sd * rng.standard_normal() for name, trait in TRAITS.items()}
    density, balance, saturation, cytoplasm = shift * rng.standard_normal(4) * np.array(
        [SUBJECT_DENSITY_SD, SUBJECT_BALANCE_SD, SUBJECT_SATURATION_SD, SUBJECT_CYTOPLASM_SD])
    log_shift = density + balance * BALANCE_AXIS
    white_balance = shift * SUBJECT_WHITE_BALANCE_SD * rng.standard_normal(3)
    name = str(number) if label == 1 else f"{HEALTHY_PREFIX}{number}"
    return Subject(
        name=name, number=number, label=label, fold=fold, blast_likeness=blast_likeness, trait_offsets=offsets,
        nucleus_stain=_shift_stain(NUCLEUS_STAIN, log_shift, saturation),
        cytoplasm_stain=_shift_stain(CYTOPLASM_STAIN, log_shift + cytoplasm, saturation),
        illumination=WHITE * np.exp(white_balance),
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
    rng = np.random.default_rng([spec.seed, NUMBERING_STREAM, subject.label, subject.number, 0])
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
    blast_likeness = subject.blast_likeness + CELL_BLAST_LIKENESS_SD * rng.standard_normal()
    values = {}
    for name, trait in TRAITS.items():
        value = trait.centre(subject.label, spec.separation, blast_likeness) + subject.trait_offsets[name]
        value += trait.cell_sd * rng.standard_normal()
        values[name] = float(np.clip(value, trait.low, trait.high))
    return CellTraits(**values)


@dataclass(frozen=True)
class Outline:
    """A closed, star-shaped outline: radius(angle) = size x (1 + elongation + harmonics)."""

    radius: float
    elongation: float
    axis: float
    amplitudes: np.ndarray  # of harmonics FIRST_IRREGULAR_HARMONIC..LAST_HARMONIC
    phases: np.ndarray

    def sampled(self) -> np.ndarray:
        """The outline's radius at OUTLINE_ANGLES."""
        shape = 1 + self.elongation * np.cos(2 * (OUTLINE_ANGLES - self.axis))
        shape += self.amplitudes @ np.cos(np.outer(HARMONICS, OUTLINE_ANGLES) + self.phases[:, None])
        return self.radius * shape

    def at(self, theta: np.ndarray) -> np.ndarray:
        """The outline's radius at each angle (radians), interpolated from OUTLINE_ANGLES."""
        return np.interp(theta, OUTLINE_ANGLES, self.sampled(), period=2 * np.pi).astype(np.float32)

    def extent(self) -> float:
        """The largest radius of the outline."""
        return float(self.sampled().max())


def _outline(rng: np.random.Generator, radius: float, elongation: float, axis: float,
             irregularity: float) -> Outline:
    """Draw random harmonics whose amplitudes scale with ``irregularity`` and decay with order."""
    amplitudes = irregularity * np.abs(rng.standard_normal(HARMONICS.size)) * HARMONICS ** -HARMONIC_DECAY
    phases = rng.uniform(0, 2 * np.pi, HARMONICS.size)
    return Outline(radius, elongation, axis, amplitudes, phases)


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


def _place(outline: Outline, size: int, rng: np.random.Generator) -> tuple[Outline, float, float]:
    """Shrink the outline if it cannot fit, then jitter its centre so it never touches the border."""
    half = size / 2 - BORDER_MARGIN_PX
    extent = outline.extent()
    if extent > half:
        outline = Outline(outline.radius * half / extent, outline.elongation, outline.axis,
                          outline.amplitudes, outline.phases)
        extent = half
    room = half - extent
    cx, cy = np.clip(size / 2 + POSITION_JITTER * size * rng.standard_normal(2), size / 2 - room, size / 2 + room)
    return outline, float(cx), float(cy)


def _polar(xx: np.ndarray, yy: np.ndarray, cx: float, cy: float) -> tuple[np.ndarray, np.ndarray]:
    """Distance and angle of every pixel from a centre."""
    return np.hypot(xx - cx, yy - cy), np.arctan2(yy - cy, xx - cx)


def render_cell(traits: CellTraits, subject: Subject, size: int, rng: np.random.Generator) -> np.ndarray:
    """Draw one cell as a BGR uint8 image of ``size`` x ``size`` on a pure black background."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    elongation = abs(ELONGATION_MEAN + ELONGATION_SD * rng.standard_normal())
    axis = rng.uniform(0, np.pi)  # random rotation of the whole cell
    cell_outline = _outline(rng, traits.diameter * size / 2, elongation, axis, traits.irregularity)
    cell_outline, cx, cy = _place(cell_outline, size, rng)
    rho, theta = _polar(xx, yy, cx, cy)
    cell = rho <= cell_outline.at(theta)

    # the nucleus: same orientation, smoother outline, shifted off-centre within the free room
    nucleus_radius = traits.nc_ratio * cell_outline.radius
    free = (cell_outline.radius - nucleus_radius) * rng.uniform(*NUCLEUS_OFFSET_RANGE)
    direction = rng.uniform(0, 2 * np.pi)
    nx, ny = cx + free * math.cos(direction), cy + free * math.sin(direction)
    nucleus_outline = _outline(rng, nucleus_radius, elongation, axis,
                               traits.irregularity * NUCLEUS_IRREGULARITY_FACTOR)
    rho_n, theta_n = _polar(xx, yy, nx, ny)
    edge_px = NUCLEUS_EDGE_PX_AT_128 * size / REFERENCE_SIZE
    nucleus = np.clip((nucleus_outline.at(theta_n) - rho_n) / edge_px + 0.5, 0, 1)

    # stain densities: chromatin texture and paler nucleoli in the nucleus, faint grain in the cytoplasm
    chromatin = _chromatin(rng, size, traits.coarseness)
    nucleus_density = traits.nucleus_density * (1 + traits.chromatin_contrast * chromatin)
    nucleus_density *= 1 - traits.nucleolus_contrast * _nucleoli(rng, xx, yy, (nx, ny), nucleus_radius, size)
    cytoplasm_density = 1 + CYTOPLASM_TEXTURE * _smooth_noise(rng, size, FINE_CHROMATIN_SIGMA * size)

    stain_jitter = np.exp(CELL_STAIN_JITTER * rng.standard_normal(3))
    absorbance = (nucleus * np.maximum(nucleus_density, 0))[..., None] * (subject.nucleus_stain * stain_jitter)
    absorbance += ((1 - nucleus) * cytoplasm_density)[..., None] * (subject.cytoplasm_stain * stain_jitter)
    image = (subject.illumination * np.exp(-absorbance)).astype(np.float32)
    return _finish(image, cell, size, rng)


def _finish(image: np.ndarray, cell: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
    """Slight optical blur and sensor noise, then the segmentation: black outside the cell."""
    sigma = BLUR_SIGMA * size * rng.uniform(*BLUR_JITTER)
    image = cv2.GaussianBlur(image, (0, 0), sigmaX=sigma, borderType=cv2.BORDER_REFLECT)
    image += NOISE_SD * rng.standard_normal(image.shape).astype(np.float32)
    image = np.clip(np.rint(image), MIN_INSIDE_LEVEL, MAX_LEVEL).astype(np.uint8)
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
    """Raise FileExistsError when ``root`` exists and is a link, a file or a non-empty folder."""
    if root.is_symlink():
        raise FileExistsError(f"{root}: is a symbolic link; refusing to write synthetic data there")
    if root.is_dir():
        if any(root.iterdir()):
            raise FileExistsError(f"{root}: folder exists and is not empty; refusing to write synthetic data into it")
    elif root.exists():
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
        FileExistsError: ``root`` is a link, a file or a non-empty folder; nothing is written.
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

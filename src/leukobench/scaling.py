"""How a smoke run (``scale`` < 1) shrinks one epoch count or one image size.

Its own module, with no imports, because two sides need the same numbers: the config (which
scales the grid) and the reproduction table (which compares a published number with the cell a
scaled run really ran). Through leukobench.config the report rules would reach every registry
and rerun whenever a model or classifier changed: each rule's code digest follows imports.
"""

SMOKE_MIN_SIZE = 32  # the smallest size every registered model accepts


def scaled_epochs(epochs: int, scale: float) -> int:
    return max(1, round(epochs * scale))


def scaled_size(size: int, scale: float) -> int:
    return max(SMOKE_MIN_SIZE, min(size, round(size * scale)))

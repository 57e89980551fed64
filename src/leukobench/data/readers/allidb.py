"""The ALL-IDB2 reader (``allidb``): one cell per TIFF crop, labelled by the name's suffix."""

from __future__ import annotations

import re
from pathlib import Path

from leukobench.data.readers.common import READERS, Candidate, LayoutError, Reading, _relative_id, child_dir

ALLIDB_CLASSES = ("normal", "blast")  # index = label: suffix _0 normal, _1 blast
ALLIDB_NAME = re.compile(r"Im(?P<image>\d{3})_(?P<label>[01])\.tiff?", re.IGNORECASE)
ALLIDB_DIRS = ("ALL_IDB2/img", "img")
ALLIDB_LAYOUT = (
    "ALL-IDB2: <root>/ALL_IDB2/img/Im<nnn>_<0|1>.tif (_1 = blast, _0 = normal); <root> may also be "
    "ALL_IDB2/ (holding img/) or img/ itself"
)


def _allidb_image_dir(root: Path) -> Path:
    for name in ALLIDB_DIRS:
        folder = root
        for part in name.split("/"):
            folder = child_dir(folder, part) if folder is not None else None
        if folder is not None:
            return folder
    if any(p.is_file() and ALLIDB_NAME.fullmatch(p.name) for p in root.iterdir()):
        return root
    raise LayoutError(
        f"{root}: no ALL-IDB2 image folder found (looked for {', '.join(ALLIDB_DIRS)} and Im<nnn>_<0|1>.tif "
        f"files in the folder itself). Expected layout: {ALLIDB_LAYOUT}."
    )


@READERS.register("allidb", layout=ALLIDB_LAYOUT)
def allidb_candidates(root: Path, rejected: list[dict]) -> Reading:
    """All images of ALL-IDB2: 257x257 TIFF crops of one cell each, labelled by the name's suffix.

    ALL-IDB names no patients, so ``patient_id`` is empty and splits cannot be subject-disjoint.
    """
    images = _allidb_image_dir(root)
    entries = sorted(images.iterdir())
    if not any(p.is_file() for p in entries):
        raise LayoutError(f"{images}: the image folder is empty. Expected layout: {ALLIDB_LAYOUT}.")
    candidates = []
    for path in entries:
        match = ALLIDB_NAME.fullmatch(path.name)
        if match is None:
            what = "folder" if path.is_dir() else "name"
            rejected.append({"path": str(path), "reason": f"{what} does not match {ALLIDB_NAME.pattern}"})
            continue
        label = int(match["label"])
        candidates.append(Candidate(
            path=path, image_id=_relative_id(path, root), label=label, class_name=ALLIDB_CLASSES[label],
            patient_id="", fold="", subset="training",
        ))
    return ALLIDB_CLASSES, candidates

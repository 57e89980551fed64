"""Readers: turn a raw dataset folder into the manifest, one row per image.

A reader walks a dataset in its published layout, decodes every image once (so a truncated or
unreadable file is caught here, not in the middle of training), and returns two tables:

* the manifest (``MANIFEST_COLUMNS``): path, label, class name, patient, fold, subset,
  content hash (XXH3-128 of the file's bytes: equal for byte-identical files), width, height,
  status;
* the rejected files: path and the reason, written by the workflow to ``rejected.tsv``.

The run goes on without the rejected files. A folder in none of the known layouts is an error
that names the folder and the layout that was expected.

Formats (``READERS``, a :class:`leukobench.registry.Registry`), one module per dataset layout:
:mod:`~leukobench.data.readers.cnmc` (``cnmc`` and ``synthetic``, C-NMC 2019),
:mod:`~leukobench.data.readers.aria` (``aria``, Aria et al.), :mod:`~leukobench.data.readers.allidb`
(``allidb``, ALL-IDB2) and :mod:`~leukobench.data.readers.folder` (``folder``, a lab's own images, one
folder per class); :mod:`~leukobench.data.readers.common` holds what they share and
:func:`read_dataset`. A reader is a function ``(root, rejected) -> (classes, candidates)``,
registered with its ``layout`` (the text that error messages show) and its ``options`` (the
option names it takes; none by default); one that takes options has a keyword ``options`` as
well, and ``read_dataset(..., options=...)`` passes them on. Every file is judged and decoded by
:func:`leukobench.data.images.open_image`. This package imports every layout module, so that
``READERS`` lists every format; a new layout is one module here and one line below.
"""

from leukobench.data.readers import allidb, aria, cnmc, folder  # noqa: F401  each registers its reader in READERS
from leukobench.data.readers.common import (MANIFEST_COLUMNS, NOT_UTF8, READERS, REJECTED_COLUMNS, Candidate,
                                            LayoutError, MissingClassError, Reading, check_classes, child_dir,
                                            read_dataset)

__all__ = ["MANIFEST_COLUMNS", "NOT_UTF8", "READERS", "REJECTED_COLUMNS", "Candidate", "LayoutError",
           "MissingClassError", "Reading", "check_classes", "child_dir", "read_dataset"]

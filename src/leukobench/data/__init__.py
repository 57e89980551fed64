"""The data layer: raw files to image stores. Readers of the datasets' layouts, image decoding,
downloads, the synthetic generator, splits, augmentation, the image store and its sample sheet.
Imports only the ground floor (leukobench.io, keys, metrics, registry, style)."""

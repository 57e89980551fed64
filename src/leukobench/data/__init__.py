"""The data layer: raw files to image stores. Readers of the datasets' layouts (``readers/``: one module per layout, beside their shared part), image decoding,
downloads, the synthetic generator, splits, augmentation, the image store and its sample sheet
(a figure, drawn by a rule of its own). Imports only the ground floor and itself."""

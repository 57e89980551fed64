"""The planning side, used by the Snakefile and the workflow scripts: the config checks and the
grid's trials, the code digests that make code edits rerun their rules, and job logging (in no digest)."""

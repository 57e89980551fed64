from leukobench.plan.joblog import log_to

log_to(snakemake.log[0])

import pandas as pd

from leukobench.io import atomic_path
from leukobench.report.tables import reproduction_display, reproduction_summary, reproduction_table, write_tables
from leukobench.report.selection import cell_level
from leukobench.settings import read_settings

published = read_settings(snakemake.input.published)
table = reproduction_table(cell_level(pd.read_csv(snakemake.input.metrics)), published, snakemake.params.scale,
                           snakemake.params.smoke_min_size)
with atomic_path(snakemake.output.csv) as tmp:
    table.to_csv(tmp, index=False)
summary = reproduction_summary(table)
scale = snakemake.params.scale
intro = ("Each number the study published beside ours for the same configuration (difference = ours − published; "
         "inside CI = the published number lies inside our 95 % interval). "
         + (f"This is a smoke run (scale {scale}): epochs and sizes were scaled, so were the configurations compared. "
            if scale != 1 else ""))
write_tables([(published["study"], summary, reproduction_display(table))], snakemake.output.markdown,
             snakemake.output.html, f"Reproduction: {published['study']}", intro)
print(summary)

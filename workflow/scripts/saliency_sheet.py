from leukobench.plan.joblog import log_to

log_to(snakemake.log[0])

from leukobench.learn.saliency_sheet import draw_saliency_sheet

draw_saliency_sheet(snakemake.input.panels, snakemake.output.sheet)

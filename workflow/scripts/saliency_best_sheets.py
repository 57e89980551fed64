from leukobench.plan.joblog import log_to

log_to(snakemake.log[0])

from leukobench.learn.saliency_sheet import draw_saliency_sheets

names = draw_saliency_sheets(snakemake.input.panels, snakemake.output.sheets)
print(f"{len(names)} Grad-CAM sheets drawn: {', '.join(names)}")

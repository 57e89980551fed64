# leukobench: raw microscope images of white blood cells -> one comparison of ALL classifiers.
import time

from snakemake.utils import min_version

min_version("9.0")

STARTED = time.monotonic()  # the run's clock: planning included, printed when it ends


configfile: "config.yaml"


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/prepare.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/report.smk"


rule all:
    input:
        final_outputs(),
    default_target: True


onsuccess:
    minutes, seconds = divmod(round(time.monotonic() - STARTED), 60)
    print(f"leukobench: the run took {minutes} min {seconds:02d} s, planning included", flush=True)

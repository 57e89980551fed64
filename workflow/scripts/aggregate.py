from leukobench.plan.joblog import log_to

log_to(snakemake.log[0])

from leukobench.keys import TRIAL_KEYS
from leukobench.metrics import aggregate_metrics

table = aggregate_metrics(snakemake.input.metrics, snakemake.output.table, snakemake.input.saliency)
test = table[table["split"] == "test"]
keys = [key for key in TRIAL_KEYS if key in test]
print(test[[*keys, "accuracy", "accuracy_low", "accuracy_high"]].to_string(index=False))

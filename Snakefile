# lesionflow: dermoscopy lesion segmentation, then 7-class classification, in the ISIC 2018 format.
#   snakemake --cores 8 --resources gpu=1                 # the demo data, on a laptop
#   snakemake --profile profiles/slurm                    # on a SLURM cluster
#   snakemake results/masks/test --cores 4                # one target and what it needs

from snakemake.utils import min_version

min_version("9.0")


configfile: "config/config.yaml"


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/segmentation.smk"
include: "workflow/rules/ensemble.smk"
include: "workflow/rules/masking.smk"
include: "workflow/rules/classification.smk"
include: "workflow/rules/fetch.smk"
include: "workflow/rules/predict.smk"
include: "workflow/rules/export.smk"
include: "workflow/rules/experiments.smk"
include: "workflow/rules/report.smk"


rule all:
    default_target: True
    input:
        all_outputs,

"""Score a submission CSV against the set's ground truth, as the official Task 3 scorer does."""

import pandas as pd

from lesionflow import provenance
from lesionflow.jobs import job
from lesionflow.labels import read_ground_truth
from lesionflow.metrics import classification_scores

with job(f"score_predictions {snakemake.wildcards.set}", snakemake.log[0], outputs=snakemake.output) as log:
    prediction = pd.read_csv(snakemake.input.predictions, dtype={"image": str}).set_index("image")
    truth = read_ground_truth(snakemake.input.labels, prediction.index)
    scores = classification_scores(truth, prediction)
    provenance.write_json(snakemake.output[0], scores)
    log.info(
        "%s: balanced accuracy %.4f, accuracy %.4f",
        snakemake.wildcards.set,
        scores["balanced_accuracy"],
        scores["accuracy"],
    )

"""A few masked lesion crops of every class of the training set: what the classifier sees."""

from pathlib import Path

from lesionflow.jobs import job
from lesionflow.labels import read_ground_truth
from lesionflow.plots.figures import class_samples_figure, samples_per_class, save_figure
from lesionflow.plots.readers import load_thumbnail

with job("plot_masked_samples", snakemake.log[0], outputs=snakemake.output):
    crops = Path(snakemake.input.crops)
    truth = read_ground_truth(snakemake.input.labels, sorted(p.stem for p in crops.glob("ISIC_*.png")))
    chosen = samples_per_class(truth, snakemake.params.per_class)
    samples = {
        name: [load_thumbnail(crops / f"{i}.png", snakemake.params.max_side) for i in ids]
        for name, ids in chosen.items()
    }
    counts = truth.sum().astype(int).to_dict()
    save_figure(
        class_samples_figure(samples, counts, "Masked lesion crops of the training set, per class"), snakemake.output[0]
    )

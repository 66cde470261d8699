"""Predicted (and ground-truth) lesion contours on the best, median and worst images of a set, or a sample."""

from pathlib import Path

from lesionflow import isic
from lesionflow.jobs import job
from lesionflow.plots.figures import gallery_figure, pick_cases, save_figure, spread_sample
from lesionflow.plots.readers import load_case, read_per_image_scores
from lesionflow.validation import checked_files

image_set = snakemake.wildcards.set
per_row, side = snakemake.params.per_row, snakemake.params.max_side
with job(f"plot_mask_gallery {image_set}", snakemake.log[0], outputs=snakemake.output) as log:
    ids, image_paths, _ = checked_files(snakemake.input.checked)
    images = dict(zip(ids, image_paths))
    predicted = Path(snakemake.input.masks)
    if "scores" in snakemake.input.keys():
        _, _, truth_masks = checked_files(snakemake.input.truth_checked)
        truth = truth_masks[0].parent
        scores = read_per_image_scores(snakemake.input.scores)
        rows = [
            (
                name,
                [
                    load_case(images[i], predicted / isic.mask_name(i), truth / isic.mask_name(i), scores[i], side)
                    for i in ids
                ],
            )
            for name, ids in pick_cases(scores, per_row).items()
        ]
        title = f"Set {image_set}: best, median and worst Jaccard of the predicted masks"
    else:
        ids = spread_sample(images, 3 * per_row)
        cases = [load_case(images[i], predicted / isic.mask_name(i), max_side=side) for i in ids]
        rows = [("sample", cases[k : k + per_row]) for k in range(0, len(cases), per_row)]
        title = f"Set {image_set}: predicted masks on a sample (no ground truth)"
    save_figure(gallery_figure(rows, title), snakemake.output[0])
    log.info("%d images shown", sum(len(cases) for _, cases in rows))

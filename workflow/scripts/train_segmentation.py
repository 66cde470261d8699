"""Train the U-Net of one fold."""

from pathlib import Path

from lesionflow import device, provenance
from lesionflow.cache import load_cache
from lesionflow.folds import read_folds
from lesionflow.jobs import job
from lesionflow.settings import SegmentationTraining

out = snakemake.output
settings = SegmentationTraining.from_params(snakemake.params.settings)
fold = int(snakemake.wildcards.fold)
name = f"train_segmentation fold {fold}"
with job(name, snakemake.log[0], snakemake.threads, outputs=snakemake.output, resources=snakemake.resources):
    used = device.configure(
        job=name, threads=snakemake.threads, seed=settings.seed + fold, config=snakemake.config, speed=settings.speed
    )
    from lesionflow.segmentation import train_fold  # TensorFlow starts on the GPU claimed above

    cache = load_cache(snakemake.input.images, snakemake.input.index, snakemake.input.masks)
    folds = read_folds(snakemake.input.folds, cache.ids)
    inputs = [snakemake.input.images, snakemake.input.masks, snakemake.input.index, snakemake.input.folds]
    input_hashes, data_hash = provenance.fingerprints(inputs)  # the resume key and the provenance record
    history = train_fold(
        cache,
        folds,
        fold,
        settings,
        work_dir=Path(out.model).parent / "work",
        model_out=out.model,
        history_out=out.history,
        data_key=data_hash,
    )
    record = provenance.record(
        dict(snakemake.params.settings), inputs, used, (input_hashes, data_hash), fold=fold, epochs_run=len(history)
    )
    provenance.write_json(out.provenance, record)

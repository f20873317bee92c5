"""CLI commands of this package (argparse lives here, never in domain modules)."""

from __future__ import annotations

import argparse
import logging

from pipelines.core.cli_options import (
    add_post_stage_arguments,
    add_run_arguments,
    post_stage_config,
    print_run_summary,
    run_settings,
)
from pipelines.core.config import validate_all
from pipelines.core.inputs import expand_paths, iter_paths
from pipelines.core.run_dir import RunDir
from pipelines.core.runner import run_pipeline
from pipelines.images.captions import attach_captions, caption_counts, read_caption_table
from pipelines.images.config import ImagesConfig
from pipelines.images.pipeline import IMAGE_SUFFIXES, image_refs, iter_image_refs

log = logging.getLogger(__name__)


def add_images_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = "Turn image files into WebDataset shards."
    parser.add_argument("inputs", nargs="+", help="image files, directories, globs or list files")
    parser.add_argument("--min-side", type=int, default=ImagesConfig.min_side,
                        help="drop images whose shorter side is below this "
                             f"(default {ImagesConfig.min_side} px)")
    parser.add_argument("--captions", default=ImagesConfig.captions, metavar="FILE",
                        help="caption table: parquet/CSV/TSV with url|path|key and "
                             "caption|text columns (wins over sidecar files)")
    parser.add_argument("--no-sidecar-captions", dest="sidecar_captions", action="store_false",
                        default=ImagesConfig.sidecar_captions,
                        help="do not read NAME.txt / NAME.json captions beside NAME.jpg")
    add_post_stage_arguments(parser)
    add_run_arguments(parser)

def images_config(args: argparse.Namespace) -> ImagesConfig:
    """The typed settings of the flags (not yet validated)."""
    return ImagesConfig(min_side=args.min_side, sidecar_captions=args.sidecar_captions,
                        captions=args.captions, **post_stage_config(args))

def images_command(args: argparse.Namespace, beam_args: list[str]) -> int:
    config, settings = images_config(args), run_settings(args)
    validate_all(config, settings)  # every flag problem at once, before reading inputs
    if config.captions:  # read once here; each caption travels in its image's input ref
        refs = image_refs(expand_paths(args.inputs, IMAGE_SUFFIXES))
        matched = attach_captions(refs, read_caption_table(config.captions))
        log.info("caption table %s: captions for %d of %d images",
                 config.captions, matched, len(refs))
    else:  # streamed into the planner: the driver never holds every input
        refs = iter_image_refs(iter_paths(args.inputs, IMAGE_SUFFIXES))
    stats = run_pipeline("images", refs, config, args.out,
                         beam_args, task_size=settings.task_size, overwrite=args.overwrite,
                         drop_duplicates=True,  # a file named by two arguments runs once
                         **settings.shard_bounds,
                         validation_fraction=settings.validation_fraction)
    # Captions dropped by the quality rule leave their image written, so the run's drop
    # counts do not show them: count them from the samples' JSON members.
    stats["captions"] = caption_counts(RunDir(args.out).iter_samples(payloads=False))
    print_run_summary(stats, args.out, args.json)
    if not args.json:
        for what, count in stats["captions"].items():
            print(f"    caption  {count:6d}  {what}")
    return 0

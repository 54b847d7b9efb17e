"""`rnnkit caption` (train | predict): images in, captions out.

    rnnkit caption train images.csv --image-col file --text-col caption --out runs/captions --time 600
    rnnkit caption predict runs/captions photo1.png photo2.jpg --beam-size 3
    rnnkit caption predict runs/captions strip.png --attention where.png
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..errors import UsageError
from ..images.configs import CaptionerConfig
from ..config import CHOICES
from .flags import add_config_flags, config_values
from .tasks import _check_new_out, read_rows

NOT_FLAGS = ("verbose", "beam_size", "warm_start")
RENAME = {"random_state": "seed"}


def add_commands(sub, parser_class) -> dict:
    p = sub.add_parser("caption", help="images in, captions out: train, predict",
                       description="A small convolutional encoder (trained from scratch, no downloaded weights) "
                       "and a recurrent decoder that attends over the encoder's grid of features before every "
                       "token it writes (Xu et al. 2015, soft attention).",
                       epilog=__doc__.split("\n\n", 1)[1], formatter_class=argparse.RawDescriptionHelpFormatter)
    actions = p.add_subparsers(dest="action", required=True, parser_class=parser_class, metavar="ACTION")
    t = actions.add_parser("train", help="train on the images and captions of a CSV file",
                           description="Train on IMAGES.csv: --image-col holds image paths (relative to the CSV's "
                           "folder; PNG, JPEG or anything Pillow reads), --text-col the caption. Every image is "
                           "resized to --image-height x --image-width, greyscale unless --colour. 10% of the rows "
                           "(--validation-fraction) are held out to report validation loss per epoch.")
    t.add_argument("data", metavar="IMAGES.csv")
    t.add_argument("--image-col", required=True, metavar="NAME", help="column with the image paths")
    t.add_argument("--text-col", required=True, metavar="NAME", help="column with the captions")
    t.add_argument("--out", required=True, metavar="DIR", help="where to save the model (a new directory)")
    t.add_argument("--quiet", action="store_true", help="print nothing while training; errors still show")
    t.set_defaults(flags=add_config_flags(t, CaptionerConfig, NOT_FLAGS, RENAME))
    pr = actions.add_parser("predict", help="print one caption per image",
                            description="Caption each image (one line per image, in order, on stdout). "
                            "--attention draws, for each generated token, where the decoder looked.")
    pr.add_argument("model_dir", metavar="DIR", help="directory written by `rnnkit caption train`")
    pr.add_argument("images", nargs="+", metavar="IMAGE", help="image files")
    pr.add_argument("--beam-size", type=int, default=None, metavar="N", help="beam search width; 1 = greedy "
                    "(default: the model's, 1 unless set)")
    pr.add_argument("--attention", metavar="OUT.png", help="write a PNG: a row per image (at most 8), a panel per "
                    "token with the attention weights over the image")
    pr.add_argument("--force", action="store_true", help="replace an existing --attention file rnnkit did not write")
    pr.add_argument("--device", choices=CHOICES["device"], default="auto",
                    help="where the model runs: auto = cuda when PyTorch sees a GPU (default auto)")
    return {"caption": run}


def run(args: argparse.Namespace) -> int:
    return _train(args) if args.action == "train" else _predict(args)


def _train(args: argparse.Namespace) -> int:
    from .. import checkpoint
    from ..images import RNNCaptioner
    _, rows = read_rows(args.data, [args.image_col, args.text_col])
    folder = Path(args.data).parent
    paths = [folder / row[args.image_col].strip() for row in rows]
    for number, path in enumerate(paths, start=2):  # every file checked before any work
        if not path.is_file():
            raise UsageError(f"{args.data}, line {number}: image {path} "
                             f"{'does not exist' if not path.exists() else 'is not a regular file'}")
    out = _check_new_out(args.out)
    model = RNNCaptioner(**config_values(args, args.flags), verbose=0 if args.quiet else 1)
    model.config()  # bad settings are reported before any training
    try:
        model.fit([str(p) for p in paths], [row[args.text_col] for row in rows])
    except UsageError:
        raise
    except ValueError as e:
        raise UsageError(f"{args.data}: {e}") from None
    model.save(out)
    checkpoint.update_meta(out, image_col=args.image_col, text_col=args.text_col, history=model.history_)
    if not args.quiet:
        print(f"trained on {len(rows):,} images; validation loss {model.history_[-1]['val_loss']:.4f}; "
              f"saved in {out}", file=sys.stderr)
    return 0


def _predict(args: argparse.Namespace) -> int:
    from ..api import resolve_device
    from ..checkpoint import is_run_dir, read_meta
    from ..images import RNNCaptioner
    from ..outputs import claim, write
    if not is_run_dir(args.model_dir):
        raise UsageError(f"{args.model_dir} is not a model directory (no rnnkit.json); train one with "
                         "`rnnkit caption train`")
    task = read_meta(args.model_dir).get("task", "language_model")
    if task != "RNNCaptioner":
        raise UsageError(f"{args.model_dir} holds a {task!r} model, not a captioner; train one with "
                         "`rnnkit caption train`")
    figure = claim([args.attention], args.force, "--attention")[0] if args.attention else None
    if figure is not None and figure.suffix.lower() != ".png":
        raise UsageError(f"--attention {figure} must end in .png")
    for path in args.images:
        if not Path(path).is_file():
            raise UsageError(f"{path}: no such image" if not Path(path).exists() else f"{path} is not a regular file")
    model = RNNCaptioner.load(args.model_dir)
    model.model_.to(resolve_device(args.device))
    if args.beam_size is not None:
        if args.beam_size < 1:
            raise UsageError(f"--beam-size must be >= 1 (got {args.beam_size})")
        model.set_params(beam_size=args.beam_size)
    captions, maps = model.predict_with_attention(list(args.images))
    for caption in captions:
        print(caption)
    if figure is not None:
        from ..images.data import as_images
        from ..images.figures import attention_png
        shown = min(8, len(captions))
        pictures = as_images(list(args.images[:shown]), model.image_height, model.image_width, model.colour).numpy()
        write(figure, attention_png(pictures, captions[:shown], maps[:shown], model.level))
        print(f"wrote {figure}", file=sys.stderr)
    return 0

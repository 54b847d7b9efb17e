"""`rnnkit export`: a trained model as an ONNX file, to run without rnnkit or PyTorch.

    rnnkit export runs/shakespeare --onnx shakespeare.onnx     # the generation step
    rnnkit export runs/reviews --onnx reviews.onnx             # a classifier trained with --ensemble none
"""

from __future__ import annotations

import argparse
import sys

from ..errors import UsageError
from .flags import WHICH


def add_commands(sub, parser_class) -> dict:
    p = sub.add_parser("export", help="write a trained model as an ONNX file",
                       description="Export a language model's generation step (a token and the recurrent state "
                       "in; the next token's logits and the new state out) or a classifier's or regressor's "
                       "network (token ids of texts of one length in; outputs out) as ONNX, for onnxruntime. The "
                       "file's metadata holds the vocabulary or tokenizer as JSON. Needs pip install "
                       "'rnnkit[onnx]'.", epilog=__doc__.split("\n\n", 1)[1],
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model_dir", metavar="DIR", help="a directory written by `rnnkit train` or `rnnkit classify train`")
    p.add_argument("--onnx", required=True, metavar="OUT.onnx", help="the file to write")
    p.add_argument("--which", choices=WHICH, default="best", help="a language model's best (lowest validation "
                   "loss) or last weights")
    p.add_argument("--force", action="store_true", help="replace an existing file that rnnkit did not write")
    return {"export": run}


def run(args: argparse.Namespace) -> int:
    from ..checkpoint import is_run_dir, read_meta
    from ..export import estimator_onnx, language_model_onnx, require_onnx
    from ..outputs import claim, write
    out = claim([args.onnx], args.force, "--onnx")[0]
    if out.suffix.lower() != ".onnx":
        raise UsageError(f"--onnx {out} must end in .onnx")
    if not is_run_dir(args.model_dir):
        raise UsageError(f"{args.model_dir} is not a model directory (no rnnkit.json); train one first")
    require_onnx()
    task = read_meta(args.model_dir).get("task", "language_model")
    if task == "language_model":
        from ..api import load
        data = language_model_onnx(load(args.model_dir, which=args.which, device="cpu"))
    elif task in ("RNNClassifier", "RNNRegressor"):
        from .. import estimators
        data = estimator_onnx(getattr(estimators, task).load(args.model_dir))
    else:
        raise UsageError(f"{args.model_dir} holds a {task!r} model; ONNX export covers language models, "
                         "classifiers and regressors")
    write(out, data)
    print(f"wrote {out} ({len(data) / 1e6:.1f} MB)", file=sys.stderr)
    return 0

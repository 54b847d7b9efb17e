"""`rnnkit music` (train | sample | check | export): folk tunes in ABC notation.

    rnnkit music train --corpus folk --out runs/folk --time 600
    rnnkit music sample runs/folk --meter 6/8 --key Dmix --num-tunes 3 --seed 1 > tunes.abc
    rnnkit music check tunes.abc --against runs/folk
    rnnkit music export tunes.abc --out tunes/ --midi --musicxml
    rnnkit music serve runs/folk          # then open http://127.0.0.1:8000/
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ..config import ModelConfig, TrainConfig
from ..errors import UsageError
from .flags import add_config_flags, add_which_and_device, config_values

TRAIN_SKIP = ("tokens", "max_vocab", "documents", "sample_every", "tensorboard")
MAX_TUNES = 10_000


def add_commands(sub, parser_class) -> dict:
    p = sub.add_parser("music", help="folk tunes in ABC notation and MIDI performances: train, sample, check, export",
                       description="A language model over ABC notation, one token per musical unit (a note with "
                       "its accidental, octave and length; a bar line; a repeat), trained one tune at a time as "
                       "folk-rnn was; samples are asked for by meter and key; checks of the bars, repeats and form "
                       "of tunes; export to MIDI and MusicXML through music21. With --events, a Performance RNN "
                       "instead: a language model over MIDI events (note on and off, time shifts of 10 ms, "
                       "loudness), trained on .mid files or the Bach chorales, sampled into .mid files.",
                       epilog=__doc__.split("\n\n", 1)[1], formatter_class=argparse.RawDescriptionHelpFormatter)
    actions = p.add_subparsers(dest="action", required=True, parser_class=parser_class, metavar="ACTION")
    from ..music.model import DEFAULTS

    t = actions.add_parser("train", help="train a tune model on ABC files (or --corpus folk)",
                           description="Train a tune model. Tunes are split on X: lines; title, notes and other "
                           "header fields are dropped (M:, L:, K: are kept); tunes that cannot be read (several "
                           "voices, a key without a tonic, text that is not ABC) are skipped and counted, and a tune "
                           "whose notes repeat an earlier tune's is dropped before the split, so no tune is both "
                           "trained on and validated on. Defaults that differ from `rnnkit train`: "
                           + ", ".join(f"--{k.replace('_', '-')} {v}" for k, v in DEFAULTS.items())
                           + "; without a budget, --time 600.")
    t.add_argument("files", nargs="*", metavar="FILE.abc", help="ABC files (UTF-8 or latin-1); with --events, "
                   "Standard MIDI files")
    t.add_argument("--corpus", choices=("folk", "bach"), help="folk: music21's O'Neill, Ryan and Aird collections "
                   "(4,248 Irish and Scottish tunes); bach, with --events: the 408 Bach chorales of music21's corpus "
                   "rendered at 100 quarter notes a minute (read once, about a minute, then cached); both need "
                   "music21 installed")
    t.add_argument("--events", action="store_true", help="train a Performance RNN (Oore et al. 2018) on MIDI "
                   "events instead of a tune model on ABC")
    t.add_argument("--pitch-shifts", type=int, metavar="N", help="with --events: also train on every training "
                   "performance moved up and down by 1..N semitones, as Oore et al. did; validation performances stay "
                   "as they are (default 3: on the chorales 0.87 nats/event against 1.09 with 0)")
    t.add_argument("--out", required=True, metavar="DIR", help="the run directory (new or empty)")
    t.add_argument("--chords", action="store_true", help="keep chord symbols (\"Am\") as tokens; by default "
                   "they are dropped, as folk-rnn did")
    t.add_argument("--transpose", metavar="TONIC", help="move every tune to this tonic before "
                   "training, keeping its mode (as folk-rnn's second model did): the model learns each mode once "
                   "rather than once per key, and `sample --key` moves its tunes back to the key asked for; none "
                   "keeps each tune's own key (default C)")
    t.add_argument("--no-clock", dest="clock", action="store_false", help="do not give the model the bar clock "
                   "(read beside each token: the room left in the bar, the bars so far in the section, what the "
                   "last bar line left owing and the opening pickup's length; by default it is given)")
    t.add_argument("--quiet", action="store_true", help="print nothing while training; errors still show")
    t.set_defaults(flags={**add_config_flags(t, ModelConfig), **add_config_flags(t, TrainConfig, TRAIN_SKIP)})

    s = actions.add_parser("sample", help="write new tunes as ABC to stdout",
                           description="Sample tunes from a trained model, each with X:, M:, L: and K: lines. "
                           "--meter and --key start every tune with those fields (the model chooses the rest); "
                           "values the model never saw are refused with the list of those it knows.")
    s.add_argument("run_dir", metavar="DIR", help="directory written by `rnnkit music train`")
    s.add_argument("--events", action="store_true", help="the run is a Performance RNN (`music train --events`): "
                   "write --num-tunes performances as .mid files to --out")
    s.add_argument("--out", metavar="FILE.mid", help="with --events: the MIDI file (several: FILE-1.mid, FILE-2.mid, "
                   "...); a file there that rnnkit did not write is refused unless --force")
    s.add_argument("--seconds", type=float, default=30.0, metavar="X", help="with --events: length of each "
                   "performance; it then stops its notes and ends (default 30)")
    s.add_argument("--force", action="store_true", help="with --events: replace existing files")
    s.add_argument("--meter", metavar="M", help="e.g. 6/8, 4/4, 3/4 (default: drawn by the model)")
    s.add_argument("--key", metavar="K", help="tonic and mode, e.g. G, Am, Dmix, Edor (default: drawn by the model)")
    s.add_argument("--num-tunes", type=int, default=1, metavar="N", help="tunes to write, drawn in one batch "
                   "(default 1)")
    s.add_argument("--temperature", type=float, default=1.0, metavar="X", help="> 0; below 1 safer and more "
                   "repetitive, above 1 wilder (default 1)")
    s.add_argument("--top-k", type=int, metavar="N", help="sample only among the N likeliest tokens")
    s.add_argument("--top-p", type=float, metavar="X", help="nucleus sampling, in (0, 1]: draw each note from the "
                   "smallest set of tokens that holds this much of the model's probability, dropping the unlikely "
                   "tail where slips such as a note too long for its bar live; the meter and key are drawn from the "
                   "whole distribution. Tunes: default 0.9 (chosen by measurement, docs/music.md); 1 draws from the "
                   "whole distribution. --events: default 1")
    s.add_argument("--seed", type=int, metavar="N", help="same seed, same tunes")
    s.add_argument("--free", action="store_true", help="take the model's raw choices; by default tokens that would "
                   "break ABC's syntax (an unclosed chord, a tie to another pitch, a repeat opened twice, a tune "
                   "ending inside a bar) are masked and the model chooses among the rest; bar lengths are never "
                   "forced (see --keep-meter)")
    s.add_argument("--keep-meter", action="store_true", help="also mask the notes that would overfill a bar and the "
                   "bar lines that would close one early (a pickup, and a short bar that completes it at a repeat, "
                   "stay allowed): every bar then keeps the meter, whatever the model would have chosen")
    add_which_and_device(s)

    c = actions.add_parser("check", help="how well made the tunes of an ABC file are",
                           description="Check every tune of FILE.abc: readable by rnnkit's tokenizer, by music21 "
                           "(parse and render to MIDI) and by abc2midi (when installed); every complete bar as long "
                           "as the meter (a short bar at a repeat or ending may pair with its neighbour or the "
                           "pickup); repeats and endings balanced; two repeated 8-bar parts (AABB); meters and "
                           "modes. With --against, also the longest run of notes and of bars each tune shares "
                           "with the training tunes of that run.")
    c.add_argument("file", metavar="FILE.abc")
    c.add_argument("--against", metavar="DIR", help="a `rnnkit music train` run: compare with its training tunes")
    c.add_argument("--json", action="store_true", help="print one JSON object")
    c.add_argument("--no-music21", dest="music21", action="store_false", help="skip the music21 check (slow: "
                   "about 0.15 s a tune)")
    c.add_argument("--no-abc2midi", dest="abc2midi", action="store_false", help="skip the abc2midi check")
    c.add_argument("--quiet", action="store_true", help="no progress bars or notes; the results and errors still show")

    e = actions.add_parser("export", help="write each tune of an ABC file as MIDI and/or MusicXML",
                           description="Write every tune of FILE.abc as <name>-<X>.mid and/or <name>-<X>.musicxml in "
                           "--out (created if missing), through music21. Existing files are refused unless --force.")
    e.add_argument("file", metavar="FILE.abc")
    e.add_argument("--out", required=True, metavar="DIR", help="folder for the files")
    e.add_argument("--midi", action="store_true", help="write .mid files")
    e.add_argument("--musicxml", action="store_true", help="write .musicxml files")
    e.add_argument("--force", action="store_true", help="replace existing files of the same names")

    v = actions.add_parser("serve", help="a local web page: new tunes as sheet music you can play",
                           description="Serve a page on which a trained tune model writes tunes on request (meter, "
                           "key, temperature, seed), drawn as sheet music by abcjs and played in the browser with "
                           "its own synthesiser: nothing is fetched from the network. abcjs is installed with the "
                           "environment (`python -m rnnkit.music.abcjs`). On a loopback address the page answers "
                           "only requests for 127.0.0.1 or localhost.")
    v.add_argument("run_dir", metavar="DIR", help="directory written by `rnnkit music train`")
    v.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only)")
    v.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    v.add_argument("--abcjs", metavar="DIR", help="folder holding abcjs-basic-min.js (default: the one installed "
                   "in this environment)")
    add_which_and_device(v)
    return {"music": run}


def run(args: argparse.Namespace) -> int:
    return {"train": _train, "sample": _sample, "check": _check, "export": _export,
            "serve": _serve}[args.action](args)


def _serve(args: argparse.Namespace) -> int:
    from ..extras import require
    require(("starlette", "uvicorn"), "serve", "rnnkit music serve")
    from ..music.serve import serve
    serve(args.run_dir, host=args.host, port=args.port, abcjs_dir=args.abcjs, which=args.which, device=args.device)
    return 0


def _train(args: argparse.Namespace) -> int:
    from ..music import model
    options = config_values(args, args.flags)
    quiet = {"log": lambda line: None, "progress": False} if args.quiet else {}
    if args.events or args.corpus == "bach":
        from ..music import performance
        if not args.events:
            raise UsageError("--corpus bach trains a Performance RNN; add --events")
        if args.chords or args.transpose is not None or not args.clock:
            raise UsageError("--chords, --transpose and --no-clock apply to ABC tunes, not to MIDI events; leave them out")
        shifts = {} if args.pitch_shifts is None else {"pitch_shifts": args.pitch_shifts}
        performance.train(args.files or None, corpus=args.corpus, out=args.out, **shifts, **quiet, **options)
        return 0
    if args.pitch_shifts is not None:
        raise UsageError("--pitch-shifts moves MIDI performances; add --events (ABC tunes use --transpose)")
    transpose = "C" if args.transpose is None else None if args.transpose.strip().lower() == "none" else args.transpose
    model.train(args.files or None, corpus=args.corpus, out=args.out, chords=args.chords, transpose=transpose,
                clock=args.clock, **quiet, **options)
    return 0


def _sample(args: argparse.Namespace) -> int:
    from ..music import model
    if not 1 <= args.num_tunes <= MAX_TUNES:
        raise UsageError(f"--num-tunes must be in 1..{MAX_TUNES} (got {args.num_tunes})")
    if args.events:
        return _sample_events(args)
    if args.out is not None:
        raise UsageError("--out is for --events (MIDI files); tunes are written to stdout as ABC")
    m = model.load(args.run_dir, which=args.which, device=args.device)
    top_p = model.DEFAULT_TOP_P if args.top_p is None else args.top_p
    tunes = m.sample(args.num_tunes, meter=args.meter, key=args.key, temperature=args.temperature, top_k=args.top_k,
                     top_p=top_p, seed=args.seed, strict=not args.free, keep_meter=args.keep_meter)
    sys.stdout.write(m.abc(tunes))
    return 0


def _sample_events(args: argparse.Namespace) -> int:
    from .. import outputs
    from ..music import events, performance
    if args.out is None:
        raise UsageError("--events writes MIDI files: give --out FILE.mid")
    if args.meter or args.key or args.keep_meter:
        raise UsageError("--meter, --key and --keep-meter apply to ABC tunes, not to MIDI events; leave them out")
    base = Path(args.out)
    paths = [base] if args.num_tunes == 1 else [base.with_name(f"{base.stem}-{i}{base.suffix or '.mid'}")
                                                for i in range(1, args.num_tunes + 1)]
    claimed = outputs.claim(paths, args.force)
    m = performance.load(args.run_dir, which=args.which, device=args.device)
    streams = m.sample(args.num_tunes, seconds=args.seconds, temperature=args.temperature, top_k=args.top_k,
                       top_p=args.top_p, seed=args.seed, strict=not args.free)
    for path, stream in zip(claimed, streams):
        notes, faults = events.events_to_notes(stream)
        outputs.write(path, events.midi_bytes(notes))
        broken = ", ".join(f"{n} {k.replace('_', ' ')}" for k, n in faults.items() if n)
        print(f"wrote {path}: {len(notes)} notes, {events.duration(stream):.1f} s"
              + (f" (repaired: {broken})" if broken else ""), file=sys.stderr)
    return 0


def _read(path: str):
    from ..music.abc import AbcError, split_tunes, tokenize
    from ..music.corpus import read_text
    texts = split_tunes(read_text(Path(path)))
    if not texts:
        raise UsageError(f"{path} holds no tunes: an ABC tune starts with a line such as `X:1`")
    tunes, unreadable = [], []
    for text in texts:
        try:
            tunes.append((text, tokenize(text)))
        except AbcError as e:
            unreadable.append(str(e))
    return texts, tunes, unreadable


def _check(args: argparse.Namespace) -> int:
    from ..music import model, quality
    from ..music.export import check_music21
    if args.music21:
        check_music21("the music21 check (or pass --no-music21)")
    training = None
    if args.against:
        m = model.load(args.against, device="cpu")
        training = model.split_tunes(m, "train")
        if not training:
            raise UsageError(f"{args.against} no longer holds its encoded tunes (data/); --against needs them")
    _, tunes, unreadable = _read(args.file)
    say = (lambda line: None) if args.quiet else (lambda line: print(line, file=sys.stderr))  # noqa: E731
    result = quality.report([t for _, t in tunes], len(unreadable), training, args.music21, args.abc2midi,
                            progress=sys.stderr.isatty() and not args.quiet, say=say)
    if args.json:
        print(json.dumps(result))
        return 0
    for key, value in result.items():
        shown = ", ".join(f"{k} {v}" for k, v in value.items()) if isinstance(value, dict) else value
        print(f"{key.replace('_', ' ')}: {shown}")
    if unreadable:
        print(f"unreadable: {unreadable[0]}" + (f" (and {len(unreadable) - 1} more)" if len(unreadable) > 1 else ""))
    return 0


def _export(args: argparse.Namespace) -> int:
    from ..music.export import Renderer, check_music21
    from ..outputs import write
    if not (args.midi or args.musicxml):
        raise UsageError("say what to write: --midi, --musicxml or both")
    check_music21("rnnkit music export")
    texts, tunes, unreadable = _read(args.file)
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out} is a file; give a folder")
    stem = Path(args.file).stem
    wanted = {fmt: suffix for fmt, suffix, asked in (("midi", ".mid", args.midi), ("musicxml", ".musicxml",
                                                                                      args.musicxml)) if asked}
    targets = [out / f"{stem}-{n}{suffix}" for n in range(1, len(texts) + 1) for suffix in wanted.values()]
    clashes = [p for p in targets if p.exists() or p.is_symlink()]
    if clashes and not args.force:
        raise UsageError(f"{clashes[0]} exists; choose another --out or pass --force to replace it")
    if any(p.is_symlink() or (p.exists() and not p.is_file()) for p in clashes):
        raise UsageError(f"{next(p for p in clashes if not p.is_file() or p.is_symlink())} is not a regular file; "
                         "choose another --out")
    out.mkdir(parents=True, exist_ok=True)
    written, failed = 0, []
    with Renderer() as renderer:
        for n, text in enumerate(texts, start=1):
            try:
                files = renderer.render(text, tuple(wanted))
            except ValueError as e:
                failed.append(f"tune {n}: {e}")
                continue
            for fmt, suffix in wanted.items():
                write(out / f"{stem}-{n}{suffix}", files[fmt])
                written += 1
    print(f"wrote {written} file(s) to {out}" + (f"; {len(failed)} tune(s) music21 could not read ({failed[0]})"
                                                 if failed else ""), file=sys.stderr)
    if not written:
        raise UsageError(f"music21 could read none of the tunes of {args.file} ({failed[0] if failed else ''})")
    return 0

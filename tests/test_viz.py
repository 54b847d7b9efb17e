"""Activation capture, the unit finder, the static page, plots, and the web app (HTTP and a real
headless Chromium driven by Playwright)."""

import json
import shutil
import socket
import threading
import time
import urllib.error
import urllib.request
from html.parser import HTMLParser

import numpy as np
import pytest
import torch

import rnnkit
from rnnkit.diagnostics.activations import capture
from rnnkit.diagnostics.units import rank_units, text_properties

from .conftest import BROWSER_ARGS, CHROMIUM, serving



def test_text_properties():
    text = 'a "b" (c[d])\n  e # f\n'
    props = text_properties(text)
    assert props["inside double quotes"].tolist()[:6] == [0, 0, 1, 1, 1, 0]
    assert props["bracket depth"][text.index("d")] == 2 and props["bracket depth"][text.index("\n")] == 0
    assert props["position in line"][text.index("e")] == 3
    assert props["indentation"][text.index("e")] == 2
    assert props["inside # comment"][text.index("f")] == 1 and props["inside # comment"][text.index("e")] == 0
    assert props["start of word"][text.index("e")] == 1


def test_unit_finder_recovers_a_planted_quote_unit():
    rng = np.random.default_rng(0)
    words = ["alpha", "beta", '"quoted words here"', "gamma (delta)", "\n"]
    text = " ".join(rng.choice(words) for _ in range(800))
    quotes = text_properties(text)["inside double quotes"]
    activations = rng.normal(0, 1, (len(text), 40))
    activations[:, 17] = np.tanh(2 * quotes - 1 + rng.normal(0, 0.3, len(text)))  # the planted quote unit
    names = [f"u{j}" for j in range(40)]
    ranked = rank_units(names, activations, text_properties(text), top=3)
    unit, r = ranked["inside double quotes"][0]
    assert unit == "u17" and r > 0.8
    assert abs(ranked["inside double quotes"][1][1]) < 0.2  # no other unit comes close


def test_capture_agrees_with_the_fused_forward_pass(trained_run, corpus_file):
    model = rnnkit.load(trained_run)
    tokens = model.encode(corpus_file.read_text()[:300], "text")
    acts = capture(model.module, tokens)
    logits, _ = model.module(torch.from_numpy(tokens[None]).to(model.device))
    # on a GPU, cuDNN's sequence kernel multiplies in TF32 (PyTorch's default) and the capture's steps do not
    tolerance = 1e-5 if model.device.type == "cpu" else 1e-3
    assert np.allclose(acts.probs, torch.softmax(logits[0], -1).detach().cpu().numpy(), atol=tolerance)
    H = model.config.hidden_size
    assert acts.units.shape == (300, 2 * H) and acts.unit_names[H] == "L1 c 0"  # h units, then LSTM cells
    assert set(acts.gates) == {"input_gate", "forget_gate", "output_gate"}
    assert acts.gates["forget_gate"].min() >= 0 and acts.gates["forget_gate"].max() <= 1


class _Checker(HTMLParser):
    """Balanced tags, and no reference to anything outside the file."""
    VOID = {"meta", "br", "img", "input", "link", "hr"}

    def __init__(self):
        super().__init__()
        self.stack, self.problems = [], []

    def handle_starttag(self, tag, attrs):
        for name, value in attrs:
            if name in ("src", "href") and value and not value.startswith(("#", "data:")):
                self.problems.append(f"external reference {name}={value}")
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag):
        if not self.stack or self.stack.pop() != tag:
            self.problems.append(f"unbalanced </{tag}>")


def test_viz_page_is_valid_and_self_contained(cli, trained_run, corpus_file, tmp_path):
    page = tmp_path / "page.html"
    status, out, err = cli("viz", trained_run, corpus_file, "-o", page, "--chars", "500")
    assert status == 0, err
    html = page.read_text()
    checker = _Checker()
    checker.feed(html)
    assert checker.problems == [] and checker.stack == []
    assert html.startswith("<!DOCTYPE html>") and "http://" not in html and "https://" not in html
    data = json.loads(html.split('<script id="rv-data" type="application/json">')[1].split("</script>")[0])
    assert len(data["chars"]) == 500 and len(data["top"][0]) == 5
    assert len(data["units"]) == len(data["values"]) == 2 * 64  # every unit, best first
    assert ":" in data["units"][0]["label"]  # the first listed unit carries its property and r


def test_units_and_plot_commands(cli, trained_run, corpus_file, tmp_path):
    status, out, err = cli("units", trained_run, corpus_file, "--chars", "2000", "--json")
    assert status == 0, err
    ranked = json.loads(out)
    assert "position in line" in ranked and len(ranked["vowel"]) == 3
    assert all(-1 <= r <= 1 for units in ranked.values() for _, r in units)
    status, out, err = cli("plot", trained_run, "-o", tmp_path / "loss.png")
    assert status == 0, err
    assert (tmp_path / "loss.png").read_bytes()[:4] == b"\x89PNG"


@pytest.mark.parametrize("args,message", [
    (["viz", "{run}", "{corpus}", "--chars", "1"], "--chars must be in 2..100,000"),
    (["viz", "{run}", "{corpus}", "-o", "{tmp}"], "is a directory"),
    (["units", "{run}", "{corpus}", "--top", "0"], "--top must be >= 1"),
    (["plot", "{tmp}"], "is not an rnnkit run directory"),
    (["serve", "{run}", "--port", "70000"], "--port must be in 1..65535"),
])
def test_bad_input_gets_one_clean_line(cli, trained_run, corpus_file, tmp_path, args, message):
    status, out, err = cli(*[a.format(run=trained_run, corpus=corpus_file, tmp=tmp_path) for a in args])
    assert status == 2 and message in err and len(err.strip().splitlines()) == 1


# ----------------------------------------------------------------------------- the web app
@pytest.fixture(scope="module")
def server(trained_run):
    from rnnkit.viz.server import create_app
    yield from serving(create_app(trained_run))


def _post(url, body, raw=False):
    data = body if raw else json.dumps(body).encode()
    request = urllib.request.Request(url + "/api/generate", data=data, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def test_generate_streams_one_json_line_per_character(server):
    status, body = _post(server, {"prompt": "the cat", "length": 40, "temperature": 0.5, "client": "a"})
    assert status == 200
    lines = [json.loads(line) for line in body.splitlines()]
    assert len(lines) == 7 + 40 and [x["prompt"] for x in lines].count(True) == 7
    assert "".join(x["c"] for x in lines[:7]) == "the cat"
    assert all(len(x["top"]) == 5 and abs(sum(p for _, p in x["top"]) - 1) < 0.5 for x in lines)
    info = json.loads(urllib.request.urlopen(server + "/api/info").read())
    assert all(len(x["v"]) == len(info["units"]) for x in lines)


@pytest.mark.parametrize("body,status,message", [
    ({"prompt": "", "length": 5}, 400, "prompt must be a non-empty string"),
    ({"prompt": "x" * 3000, "length": 5}, 400, "prompt is too long"),
    ({"prompt": "the", "length": 0}, 400, "length must be an integer"),
    ({"prompt": "the", "length": 10**6}, 400, "length must be an integer"),
    ({"prompt": "the", "temperature": 0}, 400, "temperature must be a finite number > 0"),
    ({"prompt": "the", "temperature": "hot"}, 400, "temperature must be a finite number > 0"),
    ({"prompt": "the", "top_k": -1}, 400, "top_k must be a whole number >= 1"),
    ({"prompt": "the", "top_p": 2}, 400, "top_p must be a number in (0, 1]"),
    ({"prompt": "ΩΩ"}, 400, "outside the model's vocabulary"),
    (b"{not json", 400, "must be a JSON object"),
    (b"[1, 2]", 400, "must be a JSON object"),
])
def test_bad_requests_get_clean_4xx(server, body, status, message):
    got, text = _post(server, body, raw=isinstance(body, bytes))
    assert got == status and message in json.loads(text)["error"]


def test_the_app_samples_with_the_one_sampler(server):
    # a vanishing temperature is greedy in the limit (as on the command line), never a dead stream
    a = _post(server, {"prompt": "the", "length": 30, "temperature": 1e-300, "client": "t1"})
    b = _post(server, {"prompt": "the", "length": 30, "top_k": 1, "client": "t2"})
    assert a[0] == b[0] == 200 and a[1] == b[1]


def test_one_generation_per_client_and_no_file_access(server):
    results = {}

    def long_request():
        results["first"] = _post(server, {"prompt": "the", "length": 5000})
    thread = threading.Thread(target=long_request)
    thread.start()
    time.sleep(0.5)
    # the limit is keyed on the client's address: an id in the body changes nothing
    status, text = _post(server, {"prompt": "the", "length": 5, "client": "someone else"})
    assert status == 429 and "already has a generation running" in text
    thread.join()
    assert results["first"][0] == 200
    assert _post(server, {"prompt": "the", "length": 5})[0] == 200  # free again once the first ended
    for path in ("/../rnnkit.json", "/rnnkit.json", "/api/../../etc/passwd", "/static/viewer.js"):
        with pytest.raises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(server + path)
        assert e.value.code == 404
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(server + "/api/generate")  # GET
    assert e.value.code == 405


def _raw(url, body: bytes, headers: dict) -> tuple[int, str]:
    request = urllib.request.Request(url + "/api/generate", data=body, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


JSON = {"Content-Type": "application/json"}


@pytest.mark.parametrize("body,headers,status,message", [
    (b'{"prompt": "the"}', {"Content-Type": "text/plain"}, 415, "Content-Type: application/json"),
    (b'{"prompt": "the"}', {}, 415, "Content-Type: application/json"),
    (b'{"prompt": "' + b"x" * 100_000 + b'"}', JSON, 413, "larger than"),
    (b"[" * 100_000 + b"]" * 100_000, JSON, 413, "larger than"),
    (b"[" * 30_000 + b"]" * 30_000, JSON, 400, "must be a JSON object"),  # deeper than the parser goes
    (b'{"prompt": "the", "length": 1' + b"0" * 5000 + b"}", JSON, 400, "must be a JSON object"),  # past int limits
    (b'{"prompt": "the", "length": 1e400}', JSON, 400, "length must be an integer"),
    (b'{"prompt": "the", "temperature": NaN}', JSON, 400, "temperature must be a finite number"),
    (b'{"prompt": "the", "top_k": 10000000000000000000000}', JSON, 200, ""),  # larger than the vocabulary: no filter
    (b"\xff\xfe", JSON, 400, "must be a JSON object"),
])
def test_hostile_bodies_get_clean_answers(server, body, headers, status, message):
    got, text = _raw(server, body, headers)
    assert got == status, text[:200]
    if status != 200:
        assert message in json.loads(text)["error"]


def test_requests_for_another_host_name_are_refused(server):
    # DNS rebinding: a page on evil.example resolves its name to 127.0.0.1 and calls the app
    request = urllib.request.Request(server + "/api/info", headers={"Host": "evil.example:8000"})
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(request, timeout=10)
    assert e.value.code == 403
    request = urllib.request.Request(server + "/api/info", headers={"Host": "localhost"})
    assert urllib.request.urlopen(request, timeout=10).status == 200


def test_a_port_in_use_is_one_line(cli, trained_run):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        status, out, err = cli("serve", trained_run, "--port", taken.getsockname()[1])
    assert status == 2 and "cannot listen on 127.0.0.1" in err and len(err.strip().splitlines()) == 1


@pytest.mark.skipif(shutil.which(CHROMIUM) is None, reason="Debian chromium not installed (make test installs it)")
def test_browser_types_a_prompt_and_sees_text_and_predictions(server):
    from playwright.sync_api import sync_playwright
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=BROWSER_ARGS)
        try:
            page = browser.new_page()
            page.goto(server)
            page.fill("#rv-prompt", "the old king")
            page.fill("#rv-length", "5000")  # the most the app allows: stop should land while it streams
            page.click("#rv-generate")
            # text streams in: more characters than the prompt, while the run is still going
            page.wait_for_function("document.querySelectorAll('#rv-text span[data-pos]').length > 60", timeout=20000)
            assert page.is_enabled("#rv-stop")
            page.hover("#rv-text span[data-pos='40']")
            page.wait_for_selector("#rv-tip table tr", state="visible", timeout=5000)
            assert page.locator("#rv-tip tr").count() == 5 and "next character" in page.inner_text("#rv-tip")
            page.click("#rv-stop")
            # 'done' only if a fast machine streamed all 5,000 characters before the click landed
            page.wait_for_function("/^(stopped|done)/.test(document.getElementById('rv-status').textContent)",
                                   timeout=10000)
            shown = page.locator("#rv-text span[data-pos]").count()
            stopped = page.inner_text("#rv-status").startswith("stopped")
            assert 60 < shown < (5000 + 12 if stopped else 5000 + 13)  # the prompt is 12 characters
            assert page.locator("#rv-unit option").count() > 0
            # the model's top guesses after the text are offered; taking one continues from there
            page.wait_for_selector("#rv-next button", state="visible", timeout=5000)
            choice = page.locator("#rv-next button").first
            taken = choice.inner_text().split(" ")[0].replace("\u2423", " ").replace("\u21b5", "\n")
            page.fill("#rv-length", "5")
            choice.click()
            page.wait_for_function("document.getElementById('rv-status').textContent.startsWith('done')",
                                   timeout=20000)
            prompt = page.input_value("#rv-prompt")
            assert prompt.endswith(taken) and len(prompt) > 60
            # the new prompt is the text so far plus the choice, cut to the app's prompt limit from the left
            limit = page.evaluate("document.getElementById('rv-prompt').maxLength")
            assert prompt.startswith("the old king") if shown + 1 <= limit else len(prompt) == limit
            assert page.evaluate("document.getElementById('rv-curves') === null || "
                                 "document.getElementById('rv-curves').naturalWidth > 0")
        finally:
            browser.close()

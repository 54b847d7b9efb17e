"""`rnnkit music serve`: the tune API over HTTP, its refusals, the abcjs installer's checks, and a
real headless Chromium that asks for a tune, sees the staff abcjs draws and plays it."""

import json
import shutil
import socket
import urllib.error
import urllib.request

import pytest

from rnnkit.errors import UsageError
from rnnkit.music import abcjs
from rnnkit.music import model as music_model

from .conftest import BROWSER_ARGS, CHROMIUM, serving
from .test_music import toy_tunes

ABCJS_INSTALLED = (abcjs.default_dir() / "abcjs-basic-min.js").is_file()
needs_abcjs = pytest.mark.skipif(not ABCJS_INSTALLED, reason="abcjs not installed (make test installs it)")


@pytest.fixture(scope="module")
def tune_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tunes")
    source = folder / "toy.abc"
    source.write_text(toy_tunes(60), encoding="utf-8")
    music_model.train([source], out=folder / "run", max_steps=150, hidden_size=48, embedding_size=16,
                      batch_size=16, lr=1e-2, dropout=0.0, progress=False, log=lambda line: None)
    return folder / "run"


@pytest.fixture(scope="module")
def server(tune_run):
    from rnnkit.music.serve import create_app
    yield from serving(create_app(tune_run))


def _post(url, body: bytes, headers=None):
    request = urllib.request.Request(url + "/api/tune", data=body,
                                     headers={"Content-Type": "application/json"} if headers is None else headers)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


@needs_abcjs
def test_a_tune_is_written_in_the_meter_and_key_asked_for(server):
    with urllib.request.urlopen(server + "/api/info", timeout=10) as response:
        info = json.loads(response.read())
    assert info["meters"] == ["4/4", "6/8"] and info["abcjs"] == abcjs.VERSION
    status, answer = _post(server, json.dumps({"meter": "6/8", "key": "A", "seed": 3}).encode())
    assert status == 200, answer
    lines = answer["abc"].splitlines()
    assert lines[:4] == ["X:1", "M:6/8", "L:1/8", "K:A"]  # trained in C, moved to the key asked for
    assert set(answer["checks"]) == {"bars", "bars_keep_meter", "repeats_balanced", "aabb"}
    assert answer["checks"]["bars"] > 0
    again = _post(server, json.dumps({"meter": "6/8", "key": "A", "seed": 3}).encode())[1]
    assert again["abc"] == answer["abc"]
    with urllib.request.urlopen(server + "/abcjs.js", timeout=10) as response:
        assert response.headers["Content-Type"].startswith("text/javascript") and b"ABCJS" in response.read()


@needs_abcjs
@pytest.mark.parametrize("body,headers,status,message", [
    (b'{"meter": "5/4"}', None, 400, "meter 5/4 never occurs in this model's tunes; it knows 4/4 6/8"),
    (b'{"key": "H"}', None, 400, "key H"),
    (b'{"meter": 68}', None, 400, "meter must be a string"),
    (b'{"keep_meter": "yes"}', None, 400, "keep_meter must be true or false"),
    (b'{"temperature": NaN}', None, 400, "temperature must be a finite number"),
    (b'{"seed": "x"}', None, 400, "seed"),
    (b"[1]", None, 400, "must be a JSON object"),
    (b'{"meter": "' + b"x" * 100_000 + b'"}', None, 413, "larger than"),
    (b"{}", {"Content-Type": "text/plain"}, 415, "application/json"),
])
def test_bad_requests_get_one_clear_answer(server, body, headers, status, message):
    got, answer = _post(server, body, headers)
    assert got == status and message in answer["error"], answer


@needs_abcjs
def test_requests_for_another_host_name_are_refused(server):
    request = urllib.request.Request(server + "/api/info", headers={"Host": "evil.example:8000"})
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(request, timeout=10)
    assert e.value.code == 403


def test_without_abcjs_the_app_refuses_to_start_and_says_how_to_install_it(tune_run, tmp_path, cli):
    from rnnkit.music.serve import create_app
    with pytest.raises(UsageError, match="python -m rnnkit.music.abcjs"):
        create_app(tune_run, abcjs_dir=tmp_path)
    (tmp_path / "abcjs-basic-min.js").write_text("alert(1)", encoding="utf-8")
    with pytest.raises(UsageError, match="is not the abcjs script"):
        create_app(tune_run, abcjs_dir=tmp_path)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    status, out, err = cli("music", "serve", tune_run, "--abcjs", tmp_path / "missing", "--port", port)
    assert status == 2 and len(err.strip().splitlines()) == 1 and "rnnkit.music.abcjs" in err


def test_a_download_that_differs_from_the_pinned_release_installs_nothing(tmp_path):
    with pytest.raises(UsageError, match="does not match the registry's sha512"):
        abcjs.unpack(b"\x1f\x8b not the abcjs release", tmp_path / "abcjs")
    assert not (tmp_path / "abcjs").exists()


@needs_abcjs
@pytest.mark.skipif(shutil.which(CHROMIUM) is None, reason="Debian chromium not installed (make test installs it)")
def test_browser_writes_a_tune_draws_the_staff_and_plays_it(server):
    from playwright.sync_api import sync_playwright
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=[*BROWSER_ARGS, "--autoplay-policy=no-user-gesture-required"])
        try:
            page = browser.new_page()
            errors = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(server)
            page.select_option("#tune-meter", "4/4")
            page.fill("#tune-seed", "7")
            page.click("#tune-generate")
            page.wait_for_function("document.getElementById('tune-status').textContent === 'ready'", timeout=20000)
            assert page.inner_text("#tune-abc").splitlines()[1] == "M:4/4"
            # abcjs drew a staff: an SVG with five-line staves and note heads
            assert page.locator("#tune-notation svg .abcjs-staff").count() > 0
            assert page.locator("#tune-notation svg .abcjs-note").count() >= 8
            assert "bars keep the meter" in page.inner_text("#tune-checks")
            page.click("#tune-play")
            page.wait_for_function("document.getElementById('tune-status').textContent.startsWith('playing')",
                                   timeout=5000)
            played = int(page.inner_text("#tune-status").split()[1])
            assert played >= 8 and page.is_enabled("#tune-stop")
            page.click("#tune-stop")
            assert page.inner_text("#tune-status") == "stopped" and not page.is_enabled("#tune-stop")
            assert not errors, errors
        finally:
            browser.close()

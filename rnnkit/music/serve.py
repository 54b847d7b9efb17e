"""`rnnkit music serve`: write a tune in the browser, see it as sheet music and hear it, offline.

Routes (the model and abcjs are read once at start; no route reads or writes a file):
  GET  /            the page
  GET  /abcjs.js    abcjs, the ABC renderer (installed from npm with the environment: music.abcjs)
  GET  /api/info    the model, the meters and keys it knows, the limits
  POST /api/tune    {"meter", "key", "temperature", "seed", "keep_meter"} -> {"abc": one tune as ABC,
                    "checks": {"bars": n, "bars_keep_meter", "repeats_balanced", "aabb"}}

abcjs draws the staff as SVG and lays the notes out in time (its `setUpAudio`); the page plays
them with Web Audio oscillators, so no sound font is fetched from anywhere. Requests follow the
rules of `rnnkit serve` (viz.server): JSON bodies only and capped, settings checked by the one
SamplingConfig, loopback host names only, a bounded number of tunes sampled at once.
"""

from __future__ import annotations

import re
import threading
from pathlib import Path

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from ..errors import UsageError
from ..sampling import SamplingConfig
from ..viz.page import html_head, script_json
from ..viz.server import LocalOnly, RequestError, _error, _json_body, serve_app
from . import abcjs
from .check import bars, bars_ok, is_aabb, repeats_ok
from .model import load

MAX_AT_ONCE = 2  # tunes sampled at the same time over all clients (each holds a CPU core for ~0.3 s)


def checks(tune: list[str]) -> dict:
    """What `rnnkit music check` would say of this one tune."""
    tune_bars = bars(tune)
    return {"bars": len(tune_bars), "bars_keep_meter": bars_ok(tune_bars), "repeats_balanced": repeats_ok(tune),
            "aabb": is_aabb(tune_bars)}


def _field(body: dict, name: str, kind: type, default):
    value = body.get(name, default)
    if value is not None and (not isinstance(value, kind) or isinstance(value, bool) and kind is not bool):
        raise UsageError(f"{name} must be {'true or false' if kind is bool else 'a string'}")
    return value


def create_app(run_dir: str | Path, abcjs_dir: str | Path | None = None, local_only: bool = True,
               which: str = "best", device: str = "auto") -> Starlette:
    script = abcjs.read(abcjs_dir)  # before the model: a missing renderer is one line, at once
    model = load(run_dir, which=which, device=device)
    c = model.module.config
    info = {"run": Path(run_dir).name, "model": f"{c.cell} {c.num_layers} x {c.hidden_size}",
            "meters": model.known("M"), "keys": model.known("K"), "transposed_to": model.transposed_to,
            "abcjs": abcjs.VERSION}
    slots = threading.BoundedSemaphore(MAX_AT_ONCE)

    async def page(request: Request) -> HTMLResponse:
        return HTMLResponse(PAGE.format(head=html_head(f"rnnkit music: {info['run']}", CSS), info=script_json(info)))

    async def abcjs_script(request: Request) -> Response:
        return Response(script, media_type="text/javascript", headers={"Cache-Control": "max-age=86400"})

    async def api_info(request: Request) -> JSONResponse:
        return JSONResponse(info)

    async def api_tune(request: Request) -> Response:
        try:
            body = await _json_body(request)
            meter, key = _field(body, "meter", str, None) or None, _field(body, "key", str, None) or None
            keep_meter = _field(body, "keep_meter", bool, False)
            config = SamplingConfig.from_request({"temperature": body.get("temperature", 1.0),
                                                  "seed": body.get("seed")})
        except RequestError as e:
            return _error(e.status, str(e))
        except UsageError as e:
            return _error(400, str(e))
        if not slots.acquire(blocking=False):
            return _error(503, "the server is busy; try again in a moment")
        try:
            tune = await run_in_threadpool(lambda: model.sample(1, meter=meter, key=key, seed=config.seed,
                                                                temperature=config.temperature,
                                                                keep_meter=keep_meter)[0])
        except UsageError as e:  # a meter or key the model never saw: the message lists the known ones
            return _error(400, re.sub(r"--(meter|key)\b", r"\1", str(e)))
        finally:
            slots.release()
        return JSONResponse({"abc": model.abc([tune]), "checks": checks(tune)})

    app = Starlette(routes=[Route("/", page), Route("/abcjs.js", abcjs_script), Route("/api/info", api_info),
                            Route("/api/tune", api_tune, methods=["POST"])])
    return LocalOnly(app) if local_only else app


def serve(run_dir: str | Path, host: str = "127.0.0.1", port: int = 8000, abcjs_dir: str | Path | None = None,
          which: str = "best", device: str = "auto") -> None:
    serve_app(lambda local: create_app(run_dir, abcjs_dir, local_only=local, which=which, device=device), host, port,
              f"rnnkit music serve: {run_dir}")


CSS = """#tune-notation svg { max-width: 100%; }
#tune-abc { font-family: ui-monospace, monospace; font-size: 13px; white-space: pre-wrap; background: #f6f6f6;
  padding: 0.5em; }
.tune-checks span { margin-right: 1.2em; }
"""

PAGE = """{head}<body>
<h1 id="tune-title"></h1>
<div class="rv-meta" id="tune-meta"></div>
<div class="rv-controls">
<label>meter <select id="tune-meter"><option value="">any</option></select></label>
<label>key <select id="tune-key"><option value="">any</option></select></label>
<label>temperature <input id="tune-temperature" type="number" min="0.05" max="5" step="0.05" value="1"></label>
<label>seed <input id="tune-seed" type="number" step="1" placeholder="random"></label>
<label><input id="tune-keep-meter" type="checkbox"> keep the meter in every bar</label>
<button id="tune-generate">New tune</button>
<button id="tune-play" disabled>Play</button>
<button id="tune-stop" disabled>Stop</button>
<span id="tune-status" class="rv-legend"></span>
</div>
<div class="tune-checks rv-legend" id="tune-checks"></div>
<div id="tune-notation"></div>
<pre id="tune-abc"></pre>
<script id="tune-info" type="application/json">{info}</script>
<script src="/abcjs.js"></script>
<script>
const info = JSON.parse(document.getElementById("tune-info").textContent);
document.getElementById("tune-title").textContent = "rnnkit music: " + info.run;
document.getElementById("tune-meta").textContent = `${{info.model}}; notation by abcjs ${{info.abcjs}}` +
  (info.transposed_to ? `; trained in ${{info.transposed_to}}, written in the key asked for` : "");
for (const [id, values] of [["tune-meter", info.meters], ["tune-key", info.keys]]) {{
  const select = document.getElementById(id);
  for (const value of values) select.add(new Option(value, value));
}}
const status = document.getElementById("tune-status");
const playButton = document.getElementById("tune-play");
const stopButton = document.getElementById("tune-stop");
let visual = null, audio = null;

function say(text, error) {{ status.textContent = text; status.className = error ? "rv-error" : "rv-legend"; }}

async function newTune() {{
  stop();
  const seed = document.getElementById("tune-seed").value;
  const body = {{meter: document.getElementById("tune-meter").value || null,
    key: document.getElementById("tune-key").value || null,
    temperature: Number(document.getElementById("tune-temperature").value),
    seed: seed === "" ? null : Number(seed), keep_meter: document.getElementById("tune-keep-meter").checked}};
  say("writing a tune...");
  try {{
    const response = await fetch("/api/tune", {{method: "POST", body: JSON.stringify(body),
      headers: {{"Content-Type": "application/json"}}}});
    const answer = await response.json();
    if (!response.ok) throw new Error(answer.error || response.statusText);
    document.getElementById("tune-abc").textContent = answer.abc;
    visual = ABCJS.renderAbc("tune-notation", answer.abc, {{responsive: "resize", add_classes: true}})[0];
    const c = answer.checks;
    const checkList = document.getElementById("tune-checks");
    checkList.replaceChildren(...[`${{c.bars}} bars`, `bars keep the meter: ${{c.bars_keep_meter ? "yes" : "no"}}`,
      `repeats balanced: ${{c.repeats_balanced ? "yes" : "no"}}`, `AABB: ${{c.aabb ? "yes" : "no"}}`].map((t) => {{
        const span = document.createElement("span"); span.textContent = t; return span; }}));
    playButton.disabled = false;
    say("ready");
  }} catch (e) {{
    say(e.message, true);
  }}
}}

// abcjs lays the tune out in time (start and length in whole notes); each note is a short
// triangle-wave tone with a soft attack and release, scheduled ahead on the audio clock.
function play() {{
  stop();
  const flat = visual.setUpAudio();
  const meter = visual.getMeterFraction();
  const wholeSeconds = visual.millisecondsPerMeasure(flat.tempo) / 1000 / (meter.den ? meter.num / meter.den : 1);
  const context = new AudioContext();
  const begin = context.currentTime + 0.1;
  let notes = 0, end = begin;
  for (const track of flat.tracks) {{
    for (const event of track) {{
      if (event.cmd !== "note") continue;
      const start = begin + event.start * wholeSeconds;
      const length = Math.max(0.03, ((event.end ?? event.start + event.duration) - event.start) * wholeSeconds);
      const tone = context.createOscillator();
      tone.type = "triangle";
      tone.frequency.value = 440 * Math.pow(2, (event.pitch - 69) / 12);
      const level = context.createGain();
      level.gain.setValueAtTime(0, start);
      level.gain.linearRampToValueAtTime(0.3 * (event.volume ?? 80) / 127, start + 0.01);
      level.gain.setTargetAtTime(0, start + 0.85 * length, 0.02);
      tone.connect(level).connect(context.destination);
      tone.start(start);
      tone.stop(start + length + 0.1);
      notes += 1;
      end = Math.max(end, start + length);
    }}
  }}
  audio = context;
  stopButton.disabled = false;
  say(`playing: ${{notes}} notes, ${{(end - begin).toFixed(1)}} s`);
  setTimeout(() => {{ if (audio === context) stop("played"); }}, (end - begin + 0.3) * 1000);
}}

function stop(message) {{
  if (audio) {{ audio.close(); audio = null; say(typeof message === "string" ? message : "stopped"); }}
  stopButton.disabled = true;
}}

document.getElementById("tune-generate").addEventListener("click", newTune);
playButton.addEventListener("click", play);
stopButton.addEventListener("click", () => stop());
</script>
</body>
</html>
"""

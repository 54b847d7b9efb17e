"""`rnnkit serve`: a local web app over a trained model (Starlette app, uvicorn server).

Routes (no route reads or writes a file; the model is loaded once at start):
  GET  /                 the page
  GET  /api/info         model summary, the units offered in the picker, request limits
  GET  /api/curves.png   training curves from the checkpoint's metrics
  POST /api/generate     {"prompt", "length", "temperature", "top_k", "top_p"} -> a stream of
                         JSON lines, one per character: {"c": char, "top": [[char, p] x 5],
                         "v": [value per offered unit], "prompt": bool}

Requests are bounded: a body cap (413), JSON only (415), prompt and length caps, sampling settings
checked by the one SamplingConfig (400), one generation per client address at a time (429) and
MAX_CONCURRENT in all (503). On a loopback address every request must name a loopback host (403:
no DNS rebinding). Closing the connection (the Stop button) ends the generation at the next
character. The app is for its local user only.
"""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any, Callable

import torch
from starlette.applications import Starlette
from starlette.concurrency import iterate_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from .. import logs, metrics_log
from ..api import Model, load
from ..diagnostics.activations import StepReader, capture, one_thread
from ..diagnostics.units import rank_units, text_properties
from ..errors import UsageError
from ..sampling import SamplingConfig, next_token, seeded_generator
from .page import TOP_PREDICTIONS, asset, html_head, script_json, unit_order

LOOPBACK_NAMES = ("127.0.0.1", "localhost", "[::1]", "::1")
MAX_BODY_BYTES = 64 * 1024
MAX_PROMPT_CHARS = 2000
MAX_LENGTH = 5000
MAX_CONCURRENT = 4  # generations at once over all clients (each holds a CPU core busy)
UNITS_PER_PROPERTY = 5  # the picker offers the finder's best units for each property; their values stream


class Generation:
    """One request's sampling loop: read the prompt, then draw characters one at a time."""

    def __init__(self, model: Model, units: list[int], prompt: list[int], config: SamplingConfig) -> None:
        self.model, self.units, self.prompt, self.config = model, units, prompt, config
        self.generator = seeded_generator(config.seed, model.device)
        self.display = [model.vocab.display(i) for i in range(len(model.vocab))]

    def _line(self, token: int, step, is_prompt: bool) -> str:
        probs = step.probs
        top = torch.topk(probs, min(TOP_PREDICTIONS, probs.numel()))
        values = step.units()[self.units]
        return json.dumps({"c": self.display[token], "prompt": is_prompt,
                           "top": [[self.display[j], round(float(p), 4)] for p, j in zip(top.values, top.indices)],
                           "v": [round(float(v), 4) for v in values]}) + "\n"

    def lines(self):
        with one_thread():
            reader = StepReader(self.model.module)
            step = None
            for token in self.prompt:
                step = reader.read(token)
                yield self._line(token, step, True)
            for _ in range(self.config.length):
                token = int(next_token(step.logits[None], self.config, self.generator)[0])
                step = reader.read(token)
                yield self._line(token, step, False)
                if token == self.model.vocab.end_id:  # a model trained on documents ends its document
                    return


def _offered_units(model: Model) -> tuple[list[int], list[dict]]:
    """The units for the picker: rank all units on validation text (or a sample of the model's
    own writing) and keep the best few for each property."""
    tokens = model.validation_sample(10_000)
    if tokens is None or len(tokens) < 100:
        text = model.generate(length=2000, temperature=1.0, seed=0)
        tokens = model.encode(text, "the sample")
    acts = capture(model.module, tokens, gates=False)
    text = "".join(model.vocab.display(t) for t in tokens.tolist())
    ranked = rank_units(acts.unit_names, acts.units, text_properties(text), top=UNITS_PER_PROPERTY)
    offered = len({unit for entries in ranked.values() for unit, _ in entries})
    order, labels = unit_order(acts.unit_names, ranked)
    order, labels = order[:offered], labels[:offered]
    return order, [{"name": acts.unit_names[j], "label": label} for j, label in zip(order, labels)]


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


class LocalOnly:
    """ASGI middleware: answer 403 to a request whose Host header is not a loopback name. A page on
    another site can make the browser send requests to 127.0.0.1 under its own host name (DNS
    rebinding); the Host header gives it away. Used unless the app is served on another address."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "http":
            host = dict(scope["headers"]).get(b"host", b"").decode("latin-1").lower()
            name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
            if name not in LOOPBACK_NAMES:
                await _error(403, "this app answers requests to 127.0.0.1 or localhost only")(scope, receive, send)
                return
        await self.app(scope, receive, send)


async def _json_body(request: Request) -> dict:
    """The request's JSON object, read up to MAX_BODY_BYTES; a UsageError carries the HTTP status."""
    if request.headers.get("content-type", "").split(";")[0].strip().lower() != "application/json":
        raise RequestError(415, "send the body as JSON with Content-Type: application/json")
    data = bytearray()
    async for chunk in request.stream():
        data += chunk
        if len(data) > MAX_BODY_BYTES:
            raise RequestError(413, f"the body is larger than {MAX_BODY_BYTES:,} bytes")
    try:
        body = json.loads(data.decode("utf-8"))
    except (ValueError, UnicodeDecodeError, RecursionError):  # not JSON, too deep, digits past the int limit
        raise RequestError(400, "the body must be a JSON object") from None
    if not isinstance(body, dict):
        raise RequestError(400, "the body must be a JSON object")
    return body


class RequestError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def create_app(run_dir: str | Path, which: str = "best", local_only: bool = True, device: str = "auto") -> Starlette:
    model = load(run_dir, which=which, device=device)
    unit_index, units = _offered_units(model)
    active: set[str] = set()
    c = model.config
    info = {"run": Path(run_dir).name, "model": f"{c.cell} {c.num_layers} x {c.hidden_size}",
            "vocab_size": len(model.vocab), "step": model.meta["step"], "best_val_bpc": model.info()["best_val_bpc"],
            "units": units, "limits": {"prompt_chars": MAX_PROMPT_CHARS, "length": MAX_LENGTH},
            # the next-character chooser appends a guess to the text: only models of characters have
            # guesses that are text (a byte may be half a character; a word model's tokens are not shown one by one)
            "chooser": model.vocab.kind == "chars"}
    curves = None
    if model.meta["metrics"]:
        from .plots import plot_training
        curves = plot_training(model.meta, steps=metrics_log.read(Path(run_dir)))

    async def page(request: Request) -> HTMLResponse:
        return HTMLResponse(APP_PAGE.format(head=html_head(f"rnnkit: {info['run']}", APP_CSS),
                                            js=asset("viewer.js"), info=script_json(info)))

    async def api_info(request: Request) -> JSONResponse:
        return JSONResponse(info)

    async def api_curves(request: Request) -> Response:
        if curves is None:
            return _error(404, "this run has no validation history yet")
        return Response(curves, media_type="image/png")

    async def api_generate(request: Request) -> Response:
        try:
            job = _parse(model, unit_index, await _json_body(request))
        except RequestError as e:
            return _error(e.status, str(e))
        except UsageError as e:
            return _error(400, str(e))
        # one generation per client address at a time: the connection says who asks, not the body
        client = request.client.host if request.client else "unknown"
        if client in active:
            return _error(429, "this client already has a generation running; stop it first")
        if len(active) >= MAX_CONCURRENT:
            return _error(503, "the server is busy; try again in a moment")
        active.add(client)

        async def stream():
            try:
                async for line in iterate_in_threadpool(job.lines()):
                    yield line
            finally:  # runs on completion and when the client disconnects (Stop)
                active.discard(client)
        return StreamingResponse(stream(), media_type="application/x-ndjson")

    app = Starlette(routes=[Route("/", page), Route("/api/info", api_info), Route("/api/curves.png", api_curves),
                            Route("/api/generate", api_generate, methods=["POST"])])
    return LocalOnly(app) if local_only else app


def _parse(model: Model, unit_index: list[int], body: dict) -> Generation:
    """Validate a generation request; every problem is a UsageError with a clear message."""
    prompt = body.get("prompt", "")
    if not isinstance(prompt, str) or not prompt:
        raise UsageError("prompt must be a non-empty string")
    if len(prompt) > MAX_PROMPT_CHARS:
        raise UsageError(f"prompt is too long: {len(prompt)} characters, at most {MAX_PROMPT_CHARS}")
    length = body.get("length", 300)
    if not isinstance(length, int) or isinstance(length, bool) or not 1 <= length <= MAX_LENGTH:
        raise UsageError(f"length must be an integer in 1..{MAX_LENGTH}")
    config = SamplingConfig.from_request({"length": length, "temperature": body.get("temperature", 1.0),
                                          "top_k": body.get("top_k"), "top_p": body.get("top_p")})
    tokens = model.encode(prompt, "the prompt").tolist()
    if model.vocab.end_id is not None:  # documents mode: the prompt begins a document
        tokens = [model.vocab.end_id, *tokens]
    return Generation(model, unit_index, tokens, config)


APP_CSS = """textarea { width: 100%; font-family: ui-monospace, monospace; font-size: 14px; }
.rv-curves img { max-width: 100%; }
"""


def serve(run_dir: str | Path, host: str = "127.0.0.1", port: int = 8000, which: str = "best",
          device: str = "auto") -> None:
    serve_app(lambda local: create_app(run_dir, which, local_only=local, device=device), host, port,
              f"rnnkit serve: {run_dir}")


def serve_app(make_app: Callable[[bool], Any], host: str, port: int, name: str) -> None:
    """Listen on host:port, build the app (told whether the address is loopback, so it can
    answer local host names only) and serve it until Ctrl-C. Shared by the apps of rnnkit."""
    import uvicorn
    if not 0 < port < 65536:
        raise UsageError(f"--port must be in 1..65535 (got {port})")
    local = host in LOOPBACK_NAMES
    try:  # bound here, so a port in use is one clear line before the model is loaded
        sock = socket.create_server((host.strip("[]"), port), family=socket.AF_INET6 if ":" in host else socket.AF_INET)
    except (OSError, OverflowError) as e:
        raise UsageError(f"cannot listen on {host}:{port} ({getattr(e, 'strerror', None) or e}); "
                         "choose another --port, or stop what is using it") from None
    app = make_app(local)
    where = f"http://{'127.0.0.1' if local else host}:{port}/"
    logs.get(__name__).info(f"{name} at {where} (Ctrl-C stops)"
                            + ("" if local else f"; listening on {host}: reachable from your network"))
    uvicorn.Server(uvicorn.Config(app, log_level="warning")).run(sockets=[sock])


APP_PAGE = """{head}<body>
<h1 id="rv-title"></h1>
<div class="rv-meta" id="rv-meta"></div>
<textarea id="rv-prompt" rows="3" placeholder="Type a prompt"></textarea>
<div class="rv-controls">
<label>temperature <input id="rv-temperature" type="number" min="0.05" max="5" step="0.05" value="0.8"></label>
<label>top-k <input id="rv-topk" type="number" min="0" step="1" value="0" title="0 = off"></label>
<label>length <input id="rv-length" type="number" min="1" step="50" value="400"></label>
<button id="rv-generate">Generate</button>
<button id="rv-stop" disabled>Stop</button>
<span id="rv-status" class="rv-legend"></span>
</div>
<div class="rv-controls">
<label>colour by unit <select id="rv-unit"></select></label>
<span class="rv-legend">red: positive, blue: negative; hover a character for the model's next-character guesses</span>
</div>
<div id="rv-text" class="rv-text"></div>
<div class="rv-controls" id="rv-next" hidden><span class="rv-legend">take the next character:</span></div>
<div id="rv-tip"></div>
<h2>Training curves</h2>
<div class="rv-curves"><img id="rv-curves" alt="training curves"></div>
<script id="rv-info" type="application/json">{info}</script>
<script>
{js}
const info = JSON.parse(document.getElementById("rv-info").textContent);
document.getElementById("rv-title").textContent = "rnnkit: " + info.run;
document.getElementById("rv-meta").textContent =
  `${{info.model}}, ${{info.vocab_size}} symbols, step ${{info.step}}` +
  (info.best_val_bpc ? `, best validation ${{info.best_val_bpc.toFixed(3)}} bits/char` : "");
document.getElementById("rv-prompt").maxLength = info.limits.prompt_chars;
document.getElementById("rv-length").max = info.limits.length;
const viewer = new RnnViewer(document.getElementById("rv-text"), document.getElementById("rv-unit"), info.units);
const curves = document.getElementById("rv-curves");
curves.src = "/api/curves.png";
curves.onerror = () => {{ curves.replaceWith("No validation history yet."); }};
const status = document.getElementById("rv-status");
const generateButton = document.getElementById("rv-generate");
const stopButton = document.getElementById("rv-stop");
let controller = null;

async function generate() {{
  const topK = Number(document.getElementById("rv-topk").value);
  const body = {{prompt: document.getElementById("rv-prompt").value,
    temperature: Number(document.getElementById("rv-temperature").value),
    length: Number(document.getElementById("rv-length").value), top_k: topK > 0 ? topK : null}};
  controller = new AbortController();
  generateButton.disabled = true;
  stopButton.disabled = false;
  status.textContent = "generating...";
  status.className = "rv-legend";
  viewer.clear();
  nextBar.hidden = true;
  let count = 0, text = "", lastTop = null;
  try {{
    // Right after Stop the server may not yet have seen the old stream close (it answers 429):
    // a new generation then retries for up to 3 s instead of failing.
    let response;
    for (let attempt = 0; ; attempt++) {{
      response = await fetch("/api/generate", {{method: "POST", body: JSON.stringify(body),
        headers: {{"Content-Type": "application/json"}}, signal: controller.signal}});
      if (response.status !== 429 || attempt >= 10) break;
      await new Promise((resolve) => setTimeout(resolve, 300));
    }}
    if (!response.ok) {{
      const problem = await response.json();
      throw new Error(problem.error || response.statusText);
    }}
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    let buffer = "";
    for (;;) {{
      const {{value, done}} = await reader.read();
      if (done) break;
      buffer += decoder.decode(value, {{stream: true}});
      let newline;
      while ((newline = buffer.indexOf("\\n")) >= 0) {{
        const item = JSON.parse(buffer.slice(0, newline));
        buffer = buffer.slice(newline + 1);
        viewer.append(item.c, item.top, item.v, item.prompt);
        text += item.c;
        lastTop = item.top;
        if (!item.prompt) count += 1;
      }}
    }}
    status.textContent = `done: ${{count}} characters`;
  }} catch (e) {{
    if (e.name === "AbortError") {{
      status.textContent = `stopped after ${{count}} characters`;
    }} else {{
      status.textContent = e.message;
      status.className = "rv-error";
    }}
  }} finally {{
    generateButton.disabled = false;
    stopButton.disabled = true;
    controller = null;
    showChoices(text, lastTop);
  }}
}}

// The model's five likeliest next characters after the text shown; clicking one takes it: the text
// so far plus that character becomes the prompt and generation goes on from there.
const nextBar = document.getElementById("rv-next");
function showChoices(text, top) {{
  nextBar.querySelectorAll("button").forEach((b) => b.remove());
  if (!info.chooser || !top) return;
  for (const [c, p] of top) {{
    if ([...c].length !== 1 || c === "\\u2403") continue;  // the end of a document is not text to append
    const button = document.createElement("button");
    button.className = "rv-choice";
    button.textContent = `${{c === "\\n" ? "\\u21b5" : c === " " ? "\\u2423" : c}} ${{(100 * p).toFixed(0)}}%`;
    button.addEventListener("click", () => {{
      const prompt = document.getElementById("rv-prompt");
      prompt.value = (text + c).slice(-info.limits.prompt_chars);
      generate();
    }});
    nextBar.appendChild(button);
  }}
  nextBar.hidden = nextBar.querySelectorAll("button").length === 0;
}}
generateButton.addEventListener("click", generate);
stopButton.addEventListener("click", () => {{ if (controller) controller.abort(); }});
</script>
</body>
</html>
"""

"""Screenshots for docs/visualisation.md: the static page of `rnnkit viz` and the `rnnkit serve` app,
taken in headless Chromium (Debian's /usr/bin/chromium, driven by Playwright).

    .venv/bin/python tools/screenshots.py RUN_DIR TEXT_FILE PROMPT OUT_PREFIX [--unit "L1 c 11"]

writes OUT_PREFIX-viz.png and OUT_PREFIX-app.png.
"""

from __future__ import annotations

import argparse
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]


def choose_unit(page, unit: str | None) -> None:
    if unit is None:
        return
    value = page.evaluate("""(unit) => {
        const option = [...document.querySelectorAll('#rv-unit option')]
            .find((o) => o.textContent === unit || o.textContent.startsWith(unit + ':')
                         || o.textContent.includes(': ' + unit + ' ('));
        return option ? option.value : null; }""", unit)
    if value is None:
        sys.exit(f"unit {unit!r} is not in the picker")
    page.select_option("#rv-unit", value)
    page.dispatch_event("#rv-unit", "change")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run_dir")
    parser.add_argument("text_file")
    parser.add_argument("prompt")
    parser.add_argument("out_prefix")
    parser.add_argument("--unit", default=None, help='unit to colour by: a name ("L1 c 11") or a property, for the best '
                             'unit listed for it ("inside double quotes"); default: the first listed')
    parser.add_argument("--chars", type=int, default=1500)
    args = parser.parse_args()

    import uvicorn
    from playwright.sync_api import sync_playwright

    from rnnkit.viz.server import create_app

    with tempfile.TemporaryDirectory() as tmp:
        page_file = Path(tmp) / "page.html"
        subprocess.run([sys.executable, "-m", "rnnkit", "viz", args.run_dir, args.text_file, "-o", str(page_file),
                        "--chars", str(args.chars)], check=True)
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        server = uvicorn.Server(uvicorn.Config(create_app(args.run_dir), host="127.0.0.1", port=port,
                                               log_level="error"))
        threading.Thread(target=server.run, daemon=True).start()
        while not server.started:
            time.sleep(0.05)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1200, "height": 820})
            page.goto(page_file.as_uri())
            choose_unit(page, args.unit)
            page.hover("#rv-text span[data-pos='120']")
            page.screenshot(path=f"{args.out_prefix}-viz.png")

            page.goto(f"http://127.0.0.1:{port}/")
            page.fill("#rv-prompt", args.prompt)
            page.fill("#rv-length", "700")
            choose_unit(page, args.unit)
            page.click("#rv-generate")
            page.wait_for_function("document.getElementById('rv-status').textContent.startsWith('done')",
                                   timeout=120000)
            page.hover(f"#rv-text span[data-pos='{len(args.prompt) + 200}']")
            page.screenshot(path=f"{args.out_prefix}-app.png", full_page=True)
            browser.close()
        server.should_exit = True
    print(f"wrote {args.out_prefix}-viz.png and {args.out_prefix}-app.png")


if __name__ == "__main__":
    main()

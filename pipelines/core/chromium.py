"""Which Chromium the project launches, and with which switches: one home for the crawl's
browser (`pipelines.web.browser`) and the chart stages' (`pipelines.charts.render_html`,
`pipelines.charts.synth_pipeline`).

Chromium's headless shell (Debian's chromium-headless-shell: the build Playwright itself
runs for headless Chromium, the same Blink and V8 without the desktop browser's layers)
when installed, else the full browser in its headless mode. Why: on saved corpus pages
the shell took ~30% less CPU per page (browser process about halved, renderer -25%),
with the same text and the same pixels; a frame whose load was blocked shows blank
rather than the full browser's error icon.
"""

from __future__ import annotations

import os

CHROMIUM_CANDIDATES = ("/usr/lib/chromium/chromium-headless-shell",
                       "/usr/bin/chromium-headless-shell", "/usr/bin/chromium")
CHROMIUM_PATH = next((p for p in CHROMIUM_CANDIDATES if os.access(p, os.X_OK)),
                     CHROMIUM_CANDIDATES[-1])
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run",
                 "--disable-quic", "--disable-dev-shm-usage", "--mute-audio"]

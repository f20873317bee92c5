"""A local web site with every kind of page a crawler meets, for tests, benchmarks and demos.

``serve_site()`` starts an `http.server` on 127.0.0.1 in a thread and returns it with its
base URL. Pages are generated in code: articles that link to each other, a table, an SVG
chart, and the troublemakers (slow, never-answering, redirect loop, robots-disallowed,
endless script, alert storm, 404/500, non-HTML, noai, huge, duplicate content, a flaky 503,
long polling, images from a dead host, a page that shows and leaves cookies and storage,
``/wait-for?path=/P``: an answer held until /P is requested or a time limit passes),
and a photo essay (``/photos``: three pictures between paragraphs, one in a figure with a
caption, one with a good alt text, one with a file-name alt text, plus a 1x1 tracker).
Extra pages (e.g. saved real pages) can be mounted with ``files={"/path": (bytes, type)}``.
"""

from __future__ import annotations

import html
import http.server
import threading
import time
import urllib.parse
from typing import Callable

WORDS = ("data vision language model screen chart table page crawl render token image text "
         "layout column figure result method train sample search ocean mountain river city "
         "market science history music garden window light").split()

SLOW_SECONDS = 30  # longer than any navigation timeout the tests use


def paragraph(seed: int, words: int = 60) -> str:
    """Deterministic pseudo-text, different per seed."""
    return " ".join(WORDS[(seed * 7 + i * i + i * seed) % len(WORDS)] for i in range(words)) + "."


def article(n: int, links: int = 5) -> str:
    paras = "".join(f"<p>{paragraph(n * 10 + i)}</p>" for i in range(4))
    nav = "".join(f'<li><a href="/articles/{(n + k) % 400 + 1}">Article {(n + k) % 400 + 1}</a></li>'
                  for k in range(1, links + 1))
    return (f"<!doctype html><html lang='en'><head><title>Article {n}</title>"
            f"<style>body{{font-family:sans-serif;margin:40px}}</style>"
            f"<script>var tracking = {n};</script></head><body>"
            f"<h1>Article {n}: {paragraph(n, 5)}</h1>{paras}<ul>{nav}</ul>"
            f'<p><a href="/">Home</a> <a href="/docs/report-{n}.pdf">Report (PDF)</a></p>'
            f"</body></html>")


def table_page() -> str:
    rows = "".join(f"<tr><td>City {i}</td><td>{1000 + i * 37}</td><td>{i * 1.5:.1f}</td></tr>"
                   for i in range(12))
    return ("<!doctype html><html lang='en'><head><title>Population table</title></head><body>"
            "<h1>Population by city</h1><table border='1'><thead><tr><th>City</th>"
            f"<th>Population</th><th>Growth %</th></tr></thead><tbody>{rows}</tbody></table>"
            "</body></html>")


def svg_chart_page() -> str:
    values = [3, 7, 5, 9]
    bars = "".join(f'<rect x="{60 + i * 80}" y="{260 - v * 25}" width="50" height="{v * 25}" '
                   f'fill="steelblue"><title>Q{i + 1}: {v}</title></rect>'
                   for i, v in enumerate(values))
    labels = "".join(f'<text x="{85 + i * 80}" y="280" text-anchor="middle">Q{i + 1}</text>'
                     for i in range(len(values)))
    svg = (f'<svg xmlns="http://www.w3.org/2000/svg" width="400" height="300" '
           f'id="sales-chart"><text x="200" y="20" text-anchor="middle">Sales per quarter'
           f'</text>{bars}{labels}<line x1="50" y1="260" x2="380" y2="260" stroke="black"/>'
           f'</svg>')
    return ("<!doctype html><html lang='en'><head><title>Sales chart</title></head><body>"
            f"<h1>Quarterly sales</h1><p>{paragraph(3, 30)}</p>{svg}"
            '<svg width="16" height="16"><circle cx="8" cy="8" r="6"/></svg></body></html>')


STATE_SCRIPT = """
const seen = {cookie: document.cookie, local: JSON.stringify({...localStorage}),
              session: JSON.stringify({...sessionStorage}), name: window.name};
document.getElementById("seen").textContent = "seen:" + JSON.stringify(seen);
document.cookie = "js_cookie=" + location.host + "; path=/";
localStorage.setItem("mark", location.host);
sessionStorage.setItem("mark", location.host);
window.name = "mark-" + location.host;
"""


def state_page(cookie_header: str) -> str:
    """Shows every piece of state an earlier page could have left (the Cookie header it was
    sent, document.cookie, local/session storage, window.name), then leaves its own."""
    return simple_page("State", f"<p>cookie-header:[{html.escape(cookie_header)}]</p>"
                                f'<p id="seen"></p><script>{STATE_SCRIPT}</script>')


def index_page() -> str:
    links = ["/articles/1", "/articles/2", "/articles/4", "/table", "/chart", "/private/secret",
             "/docs/annual.pdf", "http://example.org/elsewhere"]
    items = "".join(f'<li><a href="{html.escape(u)}">{html.escape(u)}</a></li>' for u in links)
    return ("<!doctype html><html lang='en'><head><title>Test site</title></head><body>"
            f"<h1>Test site</h1><ul>{items}</ul></body></html>")


PHOTO_COLOURS = {"harbour": (70, 110, 160), "market": (200, 120, 40), "garden": (60, 150, 70)}


def photo_essay() -> str:
    """An article whose main content holds three pictures between its paragraphs."""
    return ("<!doctype html><html lang='en'><head><title>A day in the city</title></head><body>"
            "<nav><a href='/'>Home</a> <a href='/articles/1'>News</a></nav><article>"
            f"<h1>A day in the city</h1><p>{paragraph(101, 70)}</p>"
            "<figure><img src='/img/harbour.png' alt='harbour.png'>"
            "<figcaption>Fishing boats in the harbour at first light.</figcaption></figure>"
            f"<p>{paragraph(102, 70)}</p>"
            "<img src='/img/market.png' alt='Stalls of fruit and spices at the covered market'>"
            f"<p>{paragraph(103, 70)}</p><img src='/img/garden.png' alt='DSC_0042.JPG'>"
            f"<p>{paragraph(104, 50)}</p><img src='/img/pixel.png' width=1 height=1 alt=''>"
            "</article><footer><p>Copyright the test site</p></footer></body></html>")


def photo_png(name: str, width: int = 360, height: int = 240) -> bytes:
    """A picture for the photo essay: a sky gradient over a coloured block, per name
    (a 1x1 white pixel for ``pixel``)."""
    import io

    from PIL import Image, ImageDraw

    if name == "pixel":
        image = Image.new("RGB", (1, 1), "white")
    else:
        image = Image.new("RGB", (width, height))
        draw = ImageDraw.Draw(image)
        for y in range(height):
            draw.line([(0, y), (width, y)], fill=(150 + y * 100 // height, 190, 230))
        draw.rectangle((width // 5, height // 2, width * 4 // 5, height - 20),
                       fill=PHOTO_COLOURS[name])
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def simple_page(title: str, body: str) -> str:
    return (f"<!doctype html><html lang='en'><head><title>{title}</title></head>"
            f"<body><h1>{title}</h1>{body}</body></html>")


class SiteHandler(http.server.BaseHTTPRequestHandler):
    """Routes of the test site (see the module docstring)."""

    files: dict[str, tuple[bytes, str]] = {}
    hits: dict[str, int] = {}  # requests per path, to check retries
    protocol_version = "HTTP/1.1"

    def log_message(self, *args) -> None:  # keep test output quiet
        pass

    def do_GET(self) -> None:  # noqa: C901 - one flat routing table reads best
        path = self.path.split("?", 1)[0]
        self.hits[path] = self.hits.get(path, 0) + 1
        if path in self.files:
            body, ctype = self.files[path]
            return self.reply(200, body, ctype)
        routes: dict[str, Callable[[], None]] = {
            "/robots.txt": lambda: self.reply(200, b"User-agent: *\nDisallow: /private/\n",
                                              "text/plain"),
            "/": lambda: self.page(index_page()),
            "/table": lambda: self.page(table_page()),
            "/chart": lambda: self.page(svg_chart_page()),
            "/photos": lambda: self.page(photo_essay()),
            "/copy": lambda: self.page(article(7)),  # same content as /articles/7
            "/flaky": self.flaky,
            "/cookie": self.cookie,
            "/state": lambda: self.reply(
                200, state_page(self.headers.get("Cookie", "")).encode(), "text/html",
                {"Set-Cookie": f"server_cookie={self.server.server_port}; Path=/"}),
            "/long-poll": lambda: self.page(simple_page(
                "Live ticker", "<p>Prices update live.</p><iframe src='/hang'></iframe>"
                "<script>fetch('/hang');</script>")),
            "/dead-images": self.dead_images,
            "/script-redirect": lambda: self.page(simple_page(
                "Moving", "<p>Moving on.</p><img src='/hang' width=10 height=10><script>"
                "setTimeout(() => { location.href = '/articles/5'; }, 300)</script>")),
            "/loop": lambda: self.redirect("/loop2"),
            "/loop2": lambda: self.redirect("/loop"),
            "/moved": lambda: self.redirect("/articles/3", 301),
            "/redirect-private": lambda: self.redirect(
                f"http://127.0.0.2:{self.server.server_port}/articles/1"),
            "/private/secret": lambda: self.page(simple_page("Secret", "<p>hidden</p>")),
            "/missing": lambda: self.reply(404, b"<h1>Not found</h1>", "text/html"),
            "/broken": lambda: self.reply(500, b"<h1>Server error</h1>", "text/html"),
            "/data.csv": lambda: self.reply(200, b"a,b\n1,2\n", "text/csv"),
            "/download": lambda: self.reply(200, b"<p>file</p>", "text/html", {
                "Content-Disposition": 'attachment; filename="page.html"'}),
            "/noai": lambda: self.reply(200, simple_page("No AI", "<p>x</p>").encode(),
                                        "text/html", {"X-Robots-Tag": "noai, noimageai"}),
            "/endless": lambda: self.page(simple_page(
                # Spins right after DOMContentLoaded, before any read-out can run.
                "Endless", "<p>spinning</p><script>addEventListener('DOMContentLoaded', "
                "() => setTimeout(() => { while (true) {} }, 0))</script>")),
            "/alerts": lambda: self.page(simple_page(
                "Alerts", "<p>Many alerts</p><script>for (let i = 0; i < 500; i++) alert(i);"
                "window.open('/table');</script>")),
            "/slow-resource": lambda: self.page(simple_page(
                "Slow resource", '<p>The image never arrives.</p><img src="/hang" width=10>')),
            "/hang": self.hang,
            "/wait-for": self.wait_for,
            "/never": self.hang,
            "/huge": lambda: self.page(simple_page(
                "Huge", "".join(f"<p>{paragraph(i, 100)}</p>" for i in range(60)))),
        }
        if path in routes:
            return routes[path]()
        name = path[len("/img/"):-len(".png")] if path.startswith("/img/") else ""
        if path.endswith(".png") and (name in PHOTO_COLOURS or name == "pixel"):
            return self.reply(200, photo_png(name), "image/png")
        if path.startswith("/articles/"):
            try:
                return self.page(article(int(path.rsplit("/", 1)[1])))
            except ValueError:
                pass
        if path.endswith(".pdf"):
            return self.reply(200, b"%PDF-1.4\n%%EOF\n", "application/pdf")
        self.reply(404, b"<h1>Not found</h1>", "text/html")

    def page(self, text: str) -> None:
        self.reply(200, text.encode("utf-8"), "text/html; charset=utf-8")

    def redirect(self, location: str, status: int = 302) -> None:
        self.reply(status, b"", "text/html", {"Location": location})

    def cookie(self) -> None:
        """Sets a cookie and shows the cookies it was sent (a recycled context has none)."""
        shown = html.escape(f"{self.path} cookie:[{self.headers.get('Cookie', '')}]")
        self.reply(200, simple_page("Cookie", f"<p>{shown}</p>").encode(), "text/html",
                   {"Set-Cookie": "visited=yes; Path=/"})

    def dead_images(self) -> None:
        """Images from ``?port=P`` on loopback, where nothing listens."""
        port = int(self.path.split("port=", 1)[1].split("&", 1)[0])
        images = "".join(f'<img src="http://127.0.0.1:{port}/{i}.png" width=20 height=20>'
                         for i in range(6))
        self.page(simple_page("Dead images", f"<p>Images from nowhere.</p>{images}"))

    def flaky(self) -> None:
        """503 on the first request, the page afterwards: a transient failure."""
        if self.hits["/flaky"] == 1:
            return self.reply(503, b"busy", "text/html", {"Retry-After": "0"})
        self.page(simple_page("Flaky", "<p>Second time lucky.</p>"))

    def wait_for(self) -> None:
        """``/wait-for?path=/P[&limit=S]`` answers "seen /P" once /P has been requested (it
        may be already), or "not seen /P" after S seconds (default `SLOW_SECONDS`): a page
        can hold itself until another page has started loading, or show that none did."""
        query = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)
        path = query.get("path", [""])[0]
        deadline = time.monotonic() + float(query.get("limit", [SLOW_SECONDS])[0])
        while not self.hits.get(path) and time.monotonic() < deadline:
            time.sleep(0.05)
        # HTML, so a crawl of it is a page (the words alone: script reads get them too).
        self.reply(200, f"{'seen' if self.hits.get(path) else 'not seen'} {path}".encode(),
                   "text/html")

    def hang(self) -> None:
        time.sleep(SLOW_SECONDS)
        self.reply(200, b"late", "text/plain")

    def reply(self, status: int, body: bytes, ctype: str,
              headers: dict[str, str] | None = None) -> None:
        try:
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the crawler gave up on a slow page; nothing to do


def serve_site(files: dict[str, tuple[bytes, str]] | None = None
               ) -> tuple[http.server.ThreadingHTTPServer, str]:
    """Start the site on a free loopback port; returns (server, base URL without slash)."""
    handler = type("Site", (SiteHandler,), {"files": dict(files or {}), "hits": {}})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True, name="test-site").start()
    return server, f"http://127.0.0.1:{server.server_port}"

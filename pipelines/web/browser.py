"""One Chromium per worker, driven by Playwright's async API on a private event loop.

`PageRenderer` launches Debian's Chromium once (``executable_path``; Playwright's own
browser download is not needed) and renders batches of URLs concurrently, each in a fresh
browser context so no cookie or storage leaks from one page to the next (optionally
recycled for a few pages, see `RenderSettings.pages_per_context`). Every request goes
through a route handler that enforces the safety rules (scheme, non-public addresses, also
for each redirect hop, robots.txt of redirect targets, X-Robots-Tag, non-HTML bodies,
downloads, size), so a refused URL is never fetched by the browser.

Why a thread with its own loop: Beam calls the stage synchronously, one element at a time;
the loop lets one worker keep several pages in flight while Beam's thread just waits.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import hashlib
import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urljoin, urlsplit

from pipelines.core.outcome import Outcome
from pipelines.web.extract import DEFAULT_LIMITS, EXTRACT_JS
from pipelines.web.policy import (
    AddressGuard,
    HostPacer,
    refuse,
    RobotsCache,
    no_ai_refusal,
    scheme_refusal,
)

log = logging.getLogger(__name__)

CHROMIUM_PATH = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run",
                 "--disable-quic", "--disable-dev-shm-usage", "--mute-audio"]
USER_AGENT = ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
              "Chrome/130 Safari/537.36 vlforge-crawler (+https://github.com/vlforge)")
HTML_TYPES = ("text/html", "application/xhtml+xml")
# Page scripts cannot open dialogs or windows: an alert() storm becomes a no-op.
QUIET_PAGE_JS = """
window.alert = () => {}; window.confirm = () => false; window.prompt = () => null;
window.print = () => {}; window.open = () => null;
"""
# Failures worth another attempt after a pause; anything else is final.
TRANSIENT_NET_ERRORS = ("ERR_CONNECTION_RESET", "ERR_CONNECTION_CLOSED", "ERR_EMPTY_RESPONSE",
                        "ERR_NETWORK_CHANGED", "ERR_TIMED_OUT", "ERR_CONNECTION_TIMED_OUT",
                        "ERR_HTTP2_PROTOCOL_ERROR")
TRANSIENT_STATUS = (408, 425, 429, 502, 503, 504)


@dataclass(frozen=True)
class RenderSettings:
    """How pages are rendered and how politely; recorded with every sample.

    viewport_width/height: the viewport screenshot size (CSS px, device scale 1).
    tile: side of the full-page tiles; max_tiles: how far down the page is captured.
    nav_timeout_s: limit for the document to arrive and parse (DOMContentLoaded).
    load_grace_s: extra wait for the load event; pages still loading are captured anyway.
    total_timeout_s: hard limit per attempt (endless scripts end here).
    host_delay_s / host_concurrency: politeness per host within one worker (robots
        Crawl-delay wins when longer).
    concurrency: pages in flight per worker.
    pages_per_context: 1 (default) gives every page a fresh browser context; N > 1
        recycles a context and its tab for up to N pages (cookies and permissions
        cleared between them; same-origin localStorage may persist), which reuses the
        renderer process: ~0.2 instead of ~0.6 CPU-s per small page here.
    retries / backoff_s: extra attempts for transient failures, backoff doubling.
    jitless: run page JavaScript without V8's JIT: less CPU per page (renderer start and
        short scripts), slower heavy scripts.
    max_redirects: redirect hops before a URL counts as a redirect loop.
    max_document_bytes: larger HTML documents are refused ("page_too_large").
    allow_private: True, or a list of addresses/networks that may be crawled even though
        they are private/loopback/link-local.
    """

    viewport_width: int = 1024
    viewport_height: int = 768
    tile: int = 1024
    max_tiles: int = 8
    nav_timeout_s: float = 15.0
    load_grace_s: float = 3.0
    total_timeout_s: float = 45.0
    host_delay_s: float = 1.0
    host_concurrency: int = 2
    concurrency: int = 4
    pages_per_context: int = 1
    jitless: bool = False
    retries: int = 2
    backoff_s: float = 1.0
    max_redirects: int = 10
    max_document_bytes: int = 15_000_000
    allow_private: Any = False
    limits: dict[str, int] = field(default_factory=lambda: dict(DEFAULT_LIMITS))

    def record(self) -> dict[str, Any]:
        """The settings that shape the pixels and text, for ``meta["web"]["render"]``."""
        return {"viewport": [self.viewport_width, self.viewport_height],
                "device_scale_factor": 1, "tile": self.tile, "max_tiles": self.max_tiles,
                "wait_until": "domcontentloaded+load", "nav_timeout_s": self.nav_timeout_s,
                "load_grace_s": self.load_grace_s, "user_agent": USER_AGENT,
                "locale": "en-US", "timezone": "UTC", "color_scheme": "light",
                "javascript": True, "dialogs": "suppressed",
                "pages_per_context": self.pages_per_context, "jitless": self.jitless}

    def launch_args(self) -> list[str]:
        return CHROMIUM_ARGS + (["--js-flags=--jitless"] if self.jitless else [])


@dataclass
class PageResult:
    """A rendered page: what came over the wire, what was extracted, the screenshots."""

    url: str
    final_url: str
    status: int
    content_type: str
    redirects: list[str]
    load_complete: bool
    extracted: dict[str, Any]
    viewport_png: bytes
    full_png: bytes | None
    content_sha256: str
    seconds: float
    attempts: int = 1


@dataclass
class _Visit:
    """What the route handler saw for one page visit."""

    block: Outcome | None = None
    hops: int = 0
    status: int = 0
    content_type: str = ""
    redirects: list[str] = field(default_factory=list)


class PageRenderer:
    """Launch once, `render_many` many times, `close` at the end (thread-safe to call)."""

    def __init__(self, settings: RenderSettings):
        self.settings = settings
        self.browser_version = ""
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True,
                                        name="vlforge-chromium")
        self._thread.start()
        self._call(self._start(), timeout=120)

    # -- lifecycle ---------------------------------------------------------------------
    async def _start(self) -> None:
        from playwright.async_api import async_playwright

        self.guard = AddressGuard(self.settings.allow_private)
        self.robots = RobotsCache(guard=self.guard)
        self.pacer = HostPacer(self.settings.host_delay_s, self.settings.host_concurrency)
        self.pages_in_flight = asyncio.Semaphore(self.settings.concurrency)
        self._idle_contexts: list = []
        self._context_uses: dict[int, int] = {}
        self._playwright = await async_playwright().start()
        self._browser = await self._playwright.chromium.launch(
            executable_path=CHROMIUM_PATH, args=self.settings.launch_args(), headless=True)
        self.browser_version = self._browser.version

    def close(self) -> None:
        async def stop() -> None:
            try:
                await self._browser.close()
            finally:
                await self._playwright.stop()

        try:
            self._call(stop(), timeout=30)
        except Exception as exc:  # closing must not mask the run's real outcome
            log.warning("closing Chromium failed: %s", exc)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)

    def _call(self, coro, timeout: float):
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    # -- rendering ---------------------------------------------------------------------
    def submit(self, url: str) -> concurrent.futures.Future:
        """Start rendering `url` on the browser's loop; the future holds PageResult|Outcome."""
        return asyncio.run_coroutine_threadsafe(self._render(url), self._loop)

    def render_many(self, urls: list[str]) -> list[PageResult | Outcome]:
        """Render `urls` concurrently; one PageResult or Outcome per URL, in order."""
        futures = [self.submit(u) for u in urls]
        return [f.result(timeout=self.result_timeout(len(urls))) for f in futures]

    def result_timeout(self, queued: int = 1) -> float:
        """How long a caller may wait for a page before something is badly wrong."""
        s = self.settings
        per_page = (s.total_timeout_s + s.backoff_s * 2 ** s.retries) * (1 + s.retries)
        return 60 + per_page * max(1, -(-queued // s.concurrency))

    async def _render(self, url: str) -> PageResult | Outcome:
        try:
            if not self._browser.is_connected():  # Chromium crashed: start a new one
                log.warning("Chromium is gone; relaunching")
                self._idle_contexts.clear()
                self._browser = await self._playwright.chromium.launch(
                    executable_path=CHROMIUM_PATH, args=self.settings.launch_args(),
                    headless=True)
            return await self._render_politely(url)
        except Exception as exc:  # keep one odd page from failing its whole batch
            log.warning("rendering %s failed: %s", url, exc)
            return refuse(type(exc).__name__, f"{type(exc).__name__}: {exc}"[:2000], "error")

    async def _render_politely(self, url: str) -> PageResult | Outcome:
        loop = asyncio.get_running_loop()
        refusal = scheme_refusal(url)
        refusal = refusal or await loop.run_in_executor(None, self.guard.check, url)
        refusal = refusal or await loop.run_in_executor(None, self.robots.check, url)
        if refusal:
            return refusal
        host = urlsplit(url).hostname or ""
        s = self.settings
        # Host slot first: pages queued for a busy host must not hold worker-wide slots.
        async with self.pacer.slot(host), self.pages_in_flight:
            for attempt in range(1, s.retries + 2):
                await self.pacer.wait_turn(host, self.robots.delay(url))
                started = time.monotonic()
                try:
                    result = await asyncio.wait_for(self._visit(url), s.total_timeout_s)
                except Exception as exc:
                    # Past the limit, whatever cancelling the page raised means "timed out".
                    if time.monotonic() - started < s.total_timeout_s * 0.99:
                        raise
                    log.info("%s: timed out (%s)", url, type(exc).__name__)
                    result = refuse("page_timeout", f"no result within {s.total_timeout_s:.0f}"
                                     " s (endless script or stalled page)", "error")
                if isinstance(result, PageResult):
                    result.seconds = time.monotonic() - started
                    result.attempts = attempt
                    return result
                if not _transient(result) or attempt > s.retries:
                    return result
                log.info("%s: %s, retrying (attempt %d)", url, result.reason, attempt + 1)
                await asyncio.sleep(s.backoff_s * 2 ** (attempt - 1))
        return result

    async def _visit(self, url: str) -> PageResult | Outcome:
        from playwright.async_api import Error as PlaywrightError
        from playwright.async_api import TimeoutError as PlaywrightTimeoutError

        s = self.settings
        visit = _Visit()
        context, page = await self._take_tab()
        healthy = False
        try:
            await page.route("**/*", lambda route: self._guard_request(route, page, visit))
            try:
                response = await page.goto(url, wait_until="domcontentloaded",
                                           timeout=s.nav_timeout_s * 1000)
            except PlaywrightError as exc:
                return visit.block or _classify_navigation_error(exc)
            if visit.block:
                return visit.block
            status = response.status if response else visit.status
            if status >= 400:
                kind = "error" if status >= 500 or status in TRANSIENT_STATUS else "dropped"
                return refuse(f"http_{status}", f"{url} answered HTTP {status}", kind)
            try:
                result = await self._capture(url, page, status, visit)
            except PlaywrightTimeoutError as exc:
                return refuse("page_timeout", "page stopped responding (endless script?): "
                               + str(exc).split("\n", 1)[0], "error")
            healthy = True
            return result
        finally:
            await self._release_context(context, page, healthy)

    async def _take_tab(self):
        """A fresh context with one page, or (``pages_per_context`` > 1) a recycled one.

        Recycling keeps the tab too: navigating an existing tab reuses its renderer
        process, which is what makes recycling cheaper (~3x less CPU per page here).
        """
        if self._idle_contexts:
            return self._idle_contexts.pop()
        s = self.settings
        context = await self._browser.new_context(
            viewport={"width": s.viewport_width, "height": s.viewport_height},
            device_scale_factor=1, accept_downloads=False, user_agent=USER_AGENT,
            locale="en-US", timezone_id="UTC", color_scheme="light",
            reduced_motion="reduce", service_workers="block")
        await context.add_init_script(QUIET_PAGE_JS)
        self._context_uses[id(context)] = 0
        page = await context.new_page()
        page.on("popup", lambda popup: asyncio.ensure_future(popup.close()))
        page.on("dialog", lambda dialog: asyncio.ensure_future(dialog.dismiss()))
        page.on("download", lambda download: asyncio.ensure_future(download.cancel()))
        return context, page

    async def _release_context(self, context, page, healthy: bool) -> None:
        """Close the context unless it may serve another page (then keep its tab).

        A context is only recycled after a page that ended normally, with its cookies
        and permissions cleared; a stuck page (endless script) takes its context down.
        """
        uses = self._context_uses.get(id(context), 0) + 1
        self._context_uses[id(context)] = uses
        try:
            if page is not None:  # handlers still in flight must not fail the close
                await asyncio.wait_for(page.unroute_all(behavior="ignoreErrors"), 5)
        except Exception as exc:
            log.info("unrouting a page failed: %s", exc)
            healthy = False
        try:
            if healthy and uses < self.settings.pages_per_context:
                await context.clear_cookies()
                await context.clear_permissions()
                self._idle_contexts.append((context, page))
                return
            self._context_uses.pop(id(context), None)
            await asyncio.wait_for(context.close(), 10)
        except Exception as exc:
            log.warning("closing a page/context failed: %s", exc)

    async def _capture(self, url: str, page, status: int, visit: _Visit) -> PageResult | Outcome:
        """Read out and screenshot a page whose document has arrived."""
        from playwright.async_api import Error as PlaywrightError

        s = self.settings
        load_complete = True
        try:
            await page.wait_for_load_state("load", timeout=s.load_grace_s * 1000)
        except PlaywrightError:
            load_complete = False  # e.g. a resource that never finishes: capture anyway
        limits = {**s.limits, "maxY": max(s.viewport_height, s.tile * s.max_tiles)}
        extracted = await page.evaluate(EXTRACT_JS, limits)
        refusal = no_ai_refusal(extracted.get("metaRobots"), "meta robots")
        if refusal:
            return refusal
        viewport_png = await page.screenshot(type="png", timeout=s.nav_timeout_s * 1000)
        full_png = None
        height = min(int(extracted["pageHeight"]), s.tile * s.max_tiles)
        if extracted["pageHeight"] > s.viewport_height:
            full_png = await page.screenshot(
                type="png", full_page=True, timeout=s.nav_timeout_s * 1000,
                clip={"x": 0, "y": 0, "width": s.tile, "height": height})
        digest = hashlib.sha256(extracted["html"].encode("utf-8")).hexdigest()
        return PageResult(url=url, final_url=page.url, status=status,
                          content_type=visit.content_type, redirects=visit.redirects,
                          load_complete=load_complete, extracted=extracted,
                          viewport_png=viewport_png, full_png=full_png,
                          content_sha256=digest, seconds=0.0)

    async def _guard_request(self, route, page, visit: _Visit) -> None:
        """Every request of a page: refuse unsafe ones; vet main-frame documents fully."""
        request = route.request
        url = request.url
        scheme = urlsplit(url).scheme
        if scheme in ("data", "blob", "about"):
            await route.continue_()
            return
        loop = asyncio.get_running_loop()
        refusal = scheme_refusal(url) or await loop.run_in_executor(None, self.guard.check, url)
        main_document = request.is_navigation_request() and request.frame == page.main_frame
        if main_document and not refusal:
            refusal = await self._vet_document(route, page, visit)
            if refusal is None:
                return  # _vet_document fulfilled the request
        if refusal:
            if main_document:
                visit.block = refusal
            await route.abort("blockedbyclient")
            return
        await route.continue_()

    async def _vet_document(self, route, page, visit: _Visit) -> Outcome | None:
        """Fetch a main-frame document ourselves, hop by hop, and decide.

        Redirects are followed here (not by the browser, whose follow-ups a route never
        sees) so each hop's address, scheme and robots.txt are checked before it is
        fetched. A vetted redirect chain is answered with one redirect to its end.
        """
        s = self.settings
        url = current = route.request.url
        loop = asyncio.get_running_loop()
        visit.hops += 1
        if visit.hops > s.max_redirects:  # script/meta-refresh navigations count too
            return refuse("redirect_loop", f"more than {s.max_redirects} navigations", "error")
        response = await route.fetch(max_redirects=0, timeout=s.nav_timeout_s * 1000)
        for _ in range(s.max_redirects + 1):
            location = response.headers.get("location")
            if not (300 <= response.status < 400 and location):
                break
            visit.redirects.append(current)
            current = urljoin(current, location)
            refusal = scheme_refusal(current)
            refusal = refusal or await loop.run_in_executor(None, self.guard.check, current)
            refusal = refusal or await loop.run_in_executor(None, self.robots.check, current)
            if refusal:
                return refusal
            response = await page.context.request.get(
                current, max_redirects=0, timeout=s.nav_timeout_s * 1000)
        else:
            return refuse("redirect_loop", f"more than {s.max_redirects} redirects from {url}",
                           "error")
        headers = response.headers
        status = response.status
        refusal = no_ai_refusal(headers.get("x-robots-tag"))
        if refusal:
            return refusal
        content_type = headers.get("content-type", "").split(";")[0].strip().lower()
        visit.status, visit.content_type = status, content_type
        if "attachment" in headers.get("content-disposition", "").lower():
            return refuse("download_blocked", f"{current} is a download (Content-Disposition)")
        if status < 400 and content_type and content_type not in HTML_TYPES:
            reason = "is_pdf" if content_type == "application/pdf" else "not_html"
            return refuse(reason, f"{current} is {content_type}, not HTML")
        body = await response.body()
        if len(body) > s.max_document_bytes:
            return refuse("page_too_large", f"{current}: document of {len(body)} bytes "
                           f"(limit {s.max_document_bytes})")
        if current != url:
            # The browser follows this one redirect itself, to the URL vetted above.
            await route.fulfill(status=302, headers={"location": current})
        else:
            await route.fulfill(response=response, body=body)
        return None


def _transient(refusal: Outcome) -> bool:
    if refusal.kind != "error":
        return False
    if refusal.reason.startswith("http_"):
        return int(refusal.reason[5:]) in TRANSIENT_STATUS
    return refusal.reason in {e.lower() for e in TRANSIENT_NET_ERRORS}


def _classify_navigation_error(exc: Exception) -> Outcome:
    """Map a Playwright navigation error to a short reason (``net::ERR_X`` -> ``err_x``)."""
    message = str(exc).split("\n", 1)[0]
    if "Timeout" in type(exc).__name__ or "Timeout" in message:
        return refuse("navigation_timeout", message, "error")
    if "ERR_NAME_NOT_RESOLVED" in message:
        return refuse("dns_failure", message, "error")
    if "ERR_TOO_MANY_REDIRECTS" in message:
        return refuse("redirect_loop", message, "error")
    if "Download is starting" in message:
        return refuse("download_blocked", message)
    if "net::" in message:
        code = message.split("net::", 1)[1].split()[0]
        return refuse(code.lower(), message, "error")
    return refuse("navigation_failed", message, "error")

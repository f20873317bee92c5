"""One Chromium per worker, driven by Playwright's async API on a private event loop.

`PageRenderer` launches Debian's Chromium once (``executable_path``; Playwright's own
browser download is not needed) and renders batches of URLs concurrently. A browser
context and its tab serve pages of one origin only (up to
`RenderSettings.pages_per_context` of them, which reuses the renderer process), and after
every page its cookies, permissions, session storage and the storage of every origin the
page touched are cleared, so no page sees another page's state. Every request goes
through a route handler that enforces the safety rules (scheme, non-public addresses, also
for each redirect hop, robots.txt of redirect targets, X-Robots-Tag, non-HTML bodies,
downloads, size), so a refused URL is never fetched by the browser; once a host is
refused for good (no DNS answer, a refused address), Chromium blocks its requests itself
for the tabs of that origin (`PageRenderer._sync_blocks`). The bytes of a page's
candidate images (for interleaved documents and caption pairs) are taken from the
browser's own responses, each checked against robots.txt and X-Robots-Tag: no image is
fetched a second time.

Why a thread with its own loop: Beam calls the stage synchronously, one element at a time;
the loop lets one worker keep several pages in flight while Beam's thread just waits.
"""

from __future__ import annotations

import asyncio
import base64
import collections
import concurrent.futures
import contextlib
import hashlib
import logging
import re
import threading
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote_to_bytes, urljoin, urlsplit

from pipelines.core.chromium import CHROMIUM_ARGS, CHROMIUM_PATH
from pipelines.core.outcome import Outcome
from pipelines.web.extract import (
    DEFAULT_LIMITS,
    EAGER_IMAGES_JS,
    EAGER_IMAGES_WAIT_JS,
    EXTRACT_JS,
    parse_extracted,
)
from pipelines.web.interleave import (
    BODIES_PER_IMAGE,
    DerivedSettings,
    is_chrome_image,
    screen_reason,
)
from pipelines.web.policy import (
    AddressGuard,
    HostPacer,
    HostTurn,
    RobotsCache,
    no_ai_refusal,
    refuse,
    scheme_refusal,
)

log = logging.getLogger(__name__)

USER_AGENT = ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
              "Chrome/130 Safari/537.36 vlforge-crawler (+https://github.com/vlforge)")
HTML_TYPES = ("text/html", "application/xhtml+xml")
# Page scripts cannot open dialogs or windows: an alert() storm becomes a no-op.
QUIET_PAGE_JS = """
window.alert = () => {}; window.confirm = () => false; window.prompt = () => null;
window.print = () => {}; window.open = () => null;
"""
# Run in a tab before it serves the next page of its origin (what cookies and storage
# clearing does not reach).
CLEAR_TAB_JS = "() => { try { sessionStorage.clear(); } catch (e) {} window.name = ''; }"
# What the settle rule watches: finished resources and the size of the DOM.
SETTLE_JS = ("() => [performance.getEntriesByType('resource').length, "
             "document.getElementsByTagName('*').length]")
SETTLE_POLL_S = 0.1
# Host lookups at once per worker (threads that mostly wait on the resolver), and the
# hedge: a lookup unanswered after DNS_HEDGE_S is started again, up to DNS_TRIES at once.
DNS_THREADS = 32
DNS_HEDGE_S = 1.0
DNS_TRIES = 3
# Sub-resource failures that say the host cannot be reached at all.
DEAD_HOST_ERRORS = ("ERR_CONNECTION_REFUSED", "ERR_ADDRESS_UNREACHABLE",
                    "ERR_CONNECTION_TIMED_OUT", "ERR_NAME_NOT_RESOLVED", "ERR_TIMED_OUT",
                    "ERR_NAME_RESOLUTION_FAILED")
# Hosts the address guard refused for good in this worker (the name does not resolve, or
# it resolves to an address the crawl may not reach) are blocked inside Chromium for the
# tabs of every origin whose pages referenced them (`PageRenderer._sync_blocks`), up to
# this many per origin: each pattern is matched against each of the tab's requests.
BLOCKED_HOSTS_PER_ORIGIN = 256
# Host names a URL pattern reads literally (no pattern syntax, no IPv6 brackets); others
# keep going through the route handler, which refuses them just the same.
PLAIN_HOST = re.compile(r"[a-z0-9][a-z0-9.-]*")
# The requestfailed reason of a request Chromium blocked by our patterns.
BLOCKED_IN_BROWSER = "inspector"
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
    host_delay_s / host_concurrency: politeness per host within one worker: seconds
        between page starts (robots Crawl-delay wins when longer) and pages loading at
        once (a page's slot is given back when its loading is over, before the read-out
        and screenshots, which ask the host for nothing).
    concurrency: pages in flight per worker.
    pages_per_context: a browser context and its tab serve up to this many pages, all of
        one origin, with cookies, permissions, session storage, window.name and the
        storage (local, IndexedDB, cache, ...) of every origin the page touched cleared
        after each page; reusing the tab reuses the renderer process (~0.2 instead of
        ~0.6 CPU-s per small page here). 1 gives every page a fresh context.
    settle_quiet_s: the settle rule: a page whose load event has not come (a resource
        that never arrives, a long-polling frame or script) is captured once neither
        its DOM nor its finished resources changed for this long (within
        ``load_grace_s``).
    dead_host_s: a host whose connection failed (refused, unreachable, timed out) gets
        no further sub-resource requests for this long: they fail at once instead of
        each waiting for its own timeout.
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
    pages_per_context: int = 32
    settle_quiet_s: float = 0.5
    dead_host_s: float = 300.0
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
                "pages_per_context": self.pages_per_context, "context_scope": "origin",
                "settle_quiet_s": self.settle_quiet_s, "jitless": self.jitless}

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
    # (top px, content height px, PNG) of each tile x tile square of the page from the
    # top; below the page's end the last one shows the page's own background.
    tiles: list[tuple[int, int, bytes]]
    content_sha256: str
    seconds: float
    attempts: int = 1
    settled: str = "load"  # how the wait for the page ended: load, quiet or grace
    # Bytes of the page's candidate images as the browser loaded them, by src, and the
    # reason for each candidate whose bytes were not taken (`PageRenderer._take_images`).
    image_bodies: dict[str, bytes] = field(default_factory=dict)
    image_refusals: dict[str, str] = field(default_factory=dict)


@dataclass
class _Visit:
    """What the route handler saw for one page visit."""

    block: Outcome | None = None
    hops: int = 0
    status: int = 0
    content_type: str = ""
    redirects: list[str] = field(default_factory=list)
    origins: set[str] = field(default_factory=set)  # every origin the page requested
    images: dict[str, Any] = field(default_factory=dict)  # image URL -> its Response


@dataclass
class _Tab:
    """A browser context with its one page (and a CDP session on it), serving pages of one
    origin; `visit` is the page visit in progress, None between pages."""

    context: Any
    page: Any
    cdp: Any
    origin: str
    uses: int = 0
    visit: _Visit | None = None
    network_enabled: bool = False  # the CDP session's Network domain (for blocking)
    blocks_pushed: int = 0  # how many of its origin's blocked hosts Chromium has


class PageRenderer:
    """Launch once, `render_many` many times, `close` at the end (thread-safe to call).

    With `derived` settings that want images (interleaved documents, caption pairs), the
    bytes of each page's candidate images are taken from the browser's own responses
    (`_take_images`): no image is fetched a second time.
    """

    def __init__(self, settings: RenderSettings, derived: DerivedSettings | None = None):
        self.settings = settings
        self.derived = derived
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
        # Host lookups (`_address_refusal`): a pool of their own, one lookup per host.
        self._dns_pool = concurrent.futures.ThreadPoolExecutor(
            DNS_THREADS, thread_name_prefix="vlforge-dns")
        self._lookups: dict[str, asyncio.Future] = {}
        self.pages_in_flight = asyncio.Semaphore(self.settings.concurrency)
        self._idle_tabs: list[_Tab] = []  # oldest first
        self._dead_hosts: dict[str, float] = {}  # host:port -> monotonic time it may retry
        # origin -> hosts refused for good that its pages referenced (insertion order:
        # dicts as ordered sets), blocked inside Chromium for that origin's tabs.
        self._blocked_hosts: dict[str, dict[str, None]] = {}
        self._pending_syncs: set[asyncio.Future] = set()
        # contexts_opened, tabs_reused, dead_host_aborts, refused_requests (by the route),
        # blocked_in_browser (by the patterns of `_sync_blocks`): how the rules played out.
        self.stats: collections.Counter = collections.Counter()
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
        if hasattr(self, "_dns_pool"):
            self._dns_pool.shutdown(wait=False, cancel_futures=True)

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
                self._idle_tabs.clear()
                self._browser = await self._playwright.chromium.launch(
                    executable_path=CHROMIUM_PATH, args=self.settings.launch_args(),
                    headless=True)
            return await self._render_politely(url)
        except Exception as exc:  # keep one odd page from failing its whole batch
            log.warning("rendering %s failed: %s", url, exc)
            return refuse(type(exc).__name__, f"{type(exc).__name__}: {exc}"[:2000], "error")

    async def _address_refusal(self, url: str) -> Outcome | None:
        """`AddressGuard.check` without blocking the loop: a cached host is checked at
        once; an unknown one is looked up in the DNS pool (`_lookup`), once per host
        however many requests wait for it.

        Why a pool of its own and one lookup per host: page requests used to queue a
        lookup each in the loop's default executor (6 threads), where each page's own
        address and robots.txt checks queued too; a page full of third-party hosts and a
        resolver that drops queries (5 s each) then held the next page's start for 5-10 s
        and another page's head scripts past the navigation timeout.
        """
        host = urlsplit(url).hostname or ""
        if not self.guard.resolved(host):
            lookup = self._lookups.get(host)
            if lookup is None:
                lookup = asyncio.ensure_future(self._lookup(host))
                self._lookups[host] = lookup
                lookup.add_done_callback(lambda _: self._lookups.pop(host, None))
            # Shielded: one waiter given up (its page timed out) must not cancel the
            # lookup for the others.
            await asyncio.shield(lookup)
        return self.guard.check(url)

    async def _lookup(self, host: str) -> None:
        """Resolve `host` into the guard's cache, hedged: a query the resolver dropped
        costs glibc its full timeout (5 s, then again), so after `DNS_HEDGE_S` without an
        answer the same lookup is started again beside it (up to `DNS_TRIES`), and the
        first answer counts (`AddressGuard.resolve` keeps it). The same system resolver
        answers every try, so the answer is what the system would give."""
        loop = asyncio.get_running_loop()
        tries = [loop.run_in_executor(self._dns_pool, self.guard.resolve, host)]
        while True:
            done, _ = await asyncio.wait(tries, timeout=DNS_HEDGE_S,
                                         return_when=asyncio.FIRST_COMPLETED)
            if done:
                return
            if len(tries) < DNS_TRIES:
                self.stats["dns_hedged"] += 1
                tries.append(loop.run_in_executor(self._dns_pool, self.guard.resolve, host))

    async def _robots_refusal(self, url: str) -> Outcome | None:
        """`RobotsCache.check`; only a robots.txt not yet fetched costs a thread hop."""
        if self.robots.cached(url):
            return self.robots.check(url)
        return await asyncio.get_running_loop().run_in_executor(None, self.robots.check, url)

    async def _render_politely(self, url: str) -> PageResult | Outcome:
        refusal = scheme_refusal(url)
        refusal = refusal or await self._address_refusal(url)
        refusal = refusal or await self._robots_refusal(url)
        if refusal:
            return refusal
        host = urlsplit(url).hostname or ""
        s = self.settings
        for attempt in range(1, s.retries + 2):
            # Host slot first: pages queued for a busy host must not hold worker-wide
            # slots. Both are taken per attempt (a retry's backoff holds neither), and the
            # host slot goes back once the page no longer loads from the host (`HostTurn`).
            turn = HostTurn(self.pacer.slot(host))
            async with turn, self.pages_in_flight:
                await self.pacer.wait_turn(host, self.robots.delay(url))
                started = time.monotonic()
                try:
                    result = await asyncio.wait_for(self._visit(url, turn), s.total_timeout_s)
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

    async def _visit(self, url: str, turn: HostTurn) -> PageResult | Outcome:
        tab = await self._take_tab(_origin_of(url))
        result: PageResult | Outcome | None = None
        try:
            result = await self._visit_in(tab, url, turn)
            return result
        finally:
            # A tab is kept after a page or a rule's "no" (404, not HTML, robots...); after
            # a failure or timeout (an endless script may still run in it) it is closed.
            healthy = isinstance(result, PageResult) or (
                result is not None and result.kind == "dropped")
            await self._release_tab(tab, healthy)

    async def _visit_in(self, tab: _Tab, url: str, turn: HostTurn) -> PageResult | Outcome:
        from playwright.async_api import Error as PlaywrightError
        from playwright.async_api import TimeoutError as PlaywrightTimeoutError

        s = self.settings
        visit = _Visit()
        tab.visit, page = visit, tab.page
        await self._sync_blocks(tab)
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
            return await self._capture(url, tab, status, visit, turn)
        except (PlaywrightTimeoutError, TimeoutError) as exc:
            return refuse("page_timeout", "page stopped responding (endless script?): "
                          + str(exc).split("\n", 1)[0], "error")

    async def _take_tab(self, origin: str) -> _Tab:
        """An idle tab that served this origin before, or a fresh context with one tab.

        Tabs never move to another origin: clearing state between pages is the first
        guard against leaks, keeping origins apart the second.
        """
        for index in range(len(self._idle_tabs) - 1, -1, -1):
            if self._idle_tabs[index].origin == origin:
                self.stats["tabs_reused"] += 1
                return self._idle_tabs.pop(index)
        self.stats["contexts_opened"] += 1
        s = self.settings
        context = await self._browser.new_context(
            viewport={"width": s.viewport_width, "height": s.viewport_height},
            device_scale_factor=1, accept_downloads=False, user_agent=USER_AGENT,
            locale="en-US", timezone_id="UTC", color_scheme="light",
            reduced_motion="reduce", service_workers="block")
        await context.add_init_script(QUIET_PAGE_JS)
        page = await context.new_page()
        tab = _Tab(context, page, await context.new_cdp_session(page), origin)
        page.on("popup", lambda popup: asyncio.ensure_future(popup.close()))
        page.on("dialog", lambda dialog: asyncio.ensure_future(dialog.dismiss()))
        page.on("download", lambda download: asyncio.ensure_future(download.cancel()))
        page.on("requestfailed", self._note_failure)
        if self.derived is not None and self.derived.takes_images:
            page.on("response", lambda response: self._note_image(tab, response))
        await page.route("**/*", lambda route: self._guard_request(route, tab))
        return tab

    async def _release_tab(self, tab: _Tab, healthy: bool) -> None:
        """Clear the tab's state and keep it for its origin's next page, or close it.

        A tab is only kept after a page that ended normally and when clearing worked;
        a stuck page (endless script) takes its context down. Idle tabs beyond twice
        ``concurrency`` are closed, oldest first.
        """
        tab.uses += 1
        visit, tab.visit = tab.visit, None
        if healthy and tab.uses < self.settings.pages_per_context:
            try:
                await asyncio.wait_for(self._clear_state(tab, visit), 10)
                self._idle_tabs.append(tab)
                tab = None
                if len(self._idle_tabs) > 2 * self.settings.concurrency:
                    tab = self._idle_tabs.pop(0)
            except Exception as exc:
                log.info("clearing a tab failed, closing it: %s", exc)
        if tab is not None:
            try:
                await asyncio.wait_for(tab.context.close(), 10)
            except Exception as exc:
                log.warning("closing a page/context failed: %s", exc)

    async def _clear_state(self, tab: _Tab, visit: _Visit | None) -> None:
        """Everything a page could leave for the next one in this tab."""
        await tab.page.evaluate(CLEAR_TAB_JS)
        await tab.context.clear_cookies()
        await tab.context.clear_permissions()
        for origin in sorted(visit.origins if visit else ()):
            await tab.cdp.send("Storage.clearDataForOrigin",
                               {"origin": origin, "storageTypes": "all"})

    @staticmethod
    def _note_image(tab: _Tab, response) -> None:
        """Keep the page's image responses by URL (and by every URL that redirected to
        one), for `_take_images`."""
        visit, request = tab.visit, response.request
        if visit is None or request.resource_type != "image" or 300 <= response.status < 400:
            return  # a redirect's own response has no picture: its end is recorded for it
        while request is not None:
            visit.images.setdefault(request.url, response)
            request = request.redirected_from

    async def _take_images(self, visit: _Visit, blocks: list[dict[str, Any]]
                           ) -> tuple[dict[str, bytes], dict[str, str]]:
        """Bytes of the page's candidate images (neither tiny, decorative, unloaded nor
        in navigation/banners), in DOM order, up to ``BODIES_PER_IMAGE * max_images``
        of them, each under the crawl policy: http(s) or a data: URL, robots.txt of the
        image's origin, no noai/noimageai X-Robots-Tag, an OK status, the size limit.
        Returns (bodies by src, refusal reason by src)."""
        derived = self.derived
        bodies: dict[str, bytes] = {}
        refused: dict[str, str] = {}
        budget = BODIES_PER_IMAGE * derived.max_images
        for block in blocks:
            if block["kind"] != "image" or is_chrome_image(block) \
                    or screen_reason(block, derived):
                continue
            src = block["src"]
            if src in bodies or src in refused:
                continue
            if len(bodies) + len(refused) >= budget:
                break
            data = await self._image_body(src, visit)
            if isinstance(data, str):
                refused[src] = data
            else:
                bodies[src] = data
        return bodies, refused

    async def _image_body(self, src: str, visit: _Visit) -> bytes | str:
        """One image's bytes, or the reason it is not used."""
        limit = self.derived.max_image_bytes
        if src.startswith("data:"):
            data = _data_url_bytes(src)
            if data is None:
                return "undecodable"
            return data if len(data) <= limit else "too_large"
        refusal = scheme_refusal(src) or await self._robots_refusal(src)
        if refusal is not None:
            return refusal.reason
        response = visit.images.get(src)
        if response is None:
            return "body_unavailable"
        if response.status >= 400:
            return f"http_{response.status}"
        headers = response.headers
        refusal = no_ai_refusal(headers.get("x-robots-tag"))
        if refusal is not None:
            return refusal.reason
        if int(headers.get("content-length") or 0) > limit:
            return "too_large"
        try:
            data = await asyncio.wait_for(response.body(), self.settings.nav_timeout_s)
        except Exception as exc:  # evicted from the browser's buffer, a closed stream
            log.info("no body for image %s: %s", src[:200], exc)
            return "body_unavailable"
        return data if len(data) <= limit else "too_large"

    def _note_failure(self, request) -> None:
        """Remember hosts that cannot be reached, so their other requests fail at once."""
        failure = request.failure or ""
        if failure == BLOCKED_IN_BROWSER:
            self.stats["blocked_in_browser"] += 1
            return
        if any(code in failure for code in DEAD_HOST_ERRORS):
            parts = urlsplit(request.url)
            self._dead_hosts[parts.netloc] = time.monotonic() + self.settings.dead_host_s

    async def _settle(self, page) -> str:
        """Wait for the load event, at most ``load_grace_s``; stop earlier once the page
        has settled (DOM and finished resources unchanged for ``settle_quiet_s``), which
        a long-polling frame or a resource that never arrives would otherwise prevent.
        Returns how the wait ended: "load", "quiet" or "grace"."""
        from playwright.async_api import Error as PlaywrightError

        s = self.settings
        loop = asyncio.get_running_loop()
        deadline = loop.time() + s.load_grace_s
        load = asyncio.ensure_future(page.wait_for_load_state("load",
                                                              timeout=s.load_grace_s * 1000))
        last, quiet_since = None, loop.time()
        try:
            while True:
                await asyncio.wait([load], timeout=SETTLE_POLL_S)
                if load.done():
                    return "load" if load.exception() is None else "grace"
                now = loop.time()
                if now >= deadline:
                    return "grace"
                try:
                    snapshot = await page.evaluate(SETTLE_JS)
                except PlaywrightError:  # navigating (script redirect): that is activity
                    snapshot = ("navigating", now)
                if snapshot != last:
                    last, quiet_since = snapshot, now
                elif now - quiet_since >= s.settle_quiet_s:
                    return "quiet"
        finally:
            if not load.done():
                load.cancel()
            with contextlib.suppress(BaseException):
                await load

    async def _capture(self, url: str, tab: _Tab, status: int, visit: _Visit,
                       turn: HostTurn | None = None) -> PageResult | Outcome:
        """Read out and screenshot a page whose document has arrived."""
        s, page = self.settings, tab.page
        takes_images = self.derived is not None and self.derived.takes_images
        eager = 0
        if takes_images:
            # Lazy images further down load now, as part of this page load.
            with contextlib.suppress(Exception):
                eager = await page.evaluate(EAGER_IMAGES_JS)
        # A page still loading (a resource that never finishes) is captured anyway.
        settled = await self._settle(page)
        if eager:  # the load event may have come before they were switched
            with contextlib.suppress(Exception):
                await page.evaluate(EAGER_IMAGES_WAIT_JS, s.load_grace_s * 1000)
        # The page's loading is over: what follows (read-out, screenshots, image bytes
        # from the browser's own responses) asks the host for nothing, so the host's
        # slot goes to its next page now rather than after the capture (~40% of a saved
        # corpus page's time).
        if turn is not None:
            turn.release()
        load_complete = settled == "load"
        limits = {**s.limits, "maxY": max(s.viewport_height, s.tile * s.max_tiles)}
        extracted = parse_extracted(await page.evaluate(EXTRACT_JS, limits))
        refusal = no_ai_refusal(extracted.get("metaRobots"), "meta robots")
        if refusal:
            return refusal
        # Screenshots straight from CDP: Playwright's own screenshot costs ~2x the CPU
        # here (it waits for fonts and hides carets first). Tiles come from the browser
        # one by one (no decoding and re-encoding a full-page image in Python), each PNG
        # encoded once, by Chromium, for speed (zlib's fast level: the same pixels).
        viewport_png = await self._screenshot(tab, {"format": "png", "optimizeForSpeed": True})
        tiles = []
        height = min(int(extracted["pageHeight"]), s.tile * s.max_tiles)
        if extracted["pageHeight"] > s.viewport_height:
            tiles = await self._tiles(tab, height)
        bodies, refused = {}, {}
        if takes_images:
            bodies, refused = await self._take_images(visit, extracted["blocks"])
        digest = hashlib.sha256(extracted["html"].encode("utf-8")).hexdigest()
        return PageResult(url=url, final_url=page.url, status=status,
                          content_type=visit.content_type, redirects=visit.redirects,
                          load_complete=load_complete, extracted=extracted,
                          viewport_png=viewport_png, tiles=tiles,
                          content_sha256=digest, seconds=0.0, settled=settled,
                          image_bodies=bodies, image_refusals=refused)

    async def _tiles(self, tab: _Tab, height: int) -> list[tuple[int, int, bytes]]:
        """The page's tiles down to `height`: (top px, content height px, PNG).

        Why the view is resized once rather than each tile captured with
        ``captureBeyondViewport``: Chromium then resizes the view to the whole page and
        back for every single capture (a relayout and repaint each time); one resize to
        the tiles' extent, clipped captures, and one resize back cost ~40% less CPU for
        the tiles (~0.32 -> ~0.19 CPU-s per saved corpus page of ~4.5 tiles). The view
        is put back to the viewport even when a capture fails: the tab serves further
        pages (`tests/pipelines/test_web_tiles.py` checks both).
        """
        s = self.settings
        tops = list(range(0, height, s.tile))
        # The page is laid out at the tiles' extent, but the view keeps its size
        # (``dontSetVisibleSize``): each clipped capture then has Chromium show just its
        # tile, not draw the whole extent again for every tile (the same pixels; ~5% less
        # CPU per saved corpus page, in the GPU process and the renderer).
        await tab.cdp.send("Emulation.setDeviceMetricsOverride", {
            **_metrics(s, max(s.viewport_height, len(tops) * s.tile)),
            "dontSetVisibleSize": True})
        try:
            tiles = []
            for top in tops:
                png = await self._screenshot(tab, {
                    "format": "png", "optimizeForSpeed": True,
                    "clip": {"x": 0, "y": top, "width": s.tile, "height": s.tile, "scale": 1}})
                tiles.append((top, min(s.tile, height - top), png))
            return tiles
        finally:
            await tab.cdp.send("Emulation.setDeviceMetricsOverride",
                               _metrics(s, s.viewport_height))

    async def _screenshot(self, tab: _Tab, params: dict[str, Any]) -> bytes:
        shot = await asyncio.wait_for(tab.cdp.send("Page.captureScreenshot", params),
                                      self.settings.nav_timeout_s)
        return base64.b64decode(shot["data"])

    async def _guard_request(self, route, tab: _Tab) -> None:
        """Every request of a page: refuse unsafe ones, fail those to dead hosts at once;
        vet main-frame documents fully.

        Never raises: the route stays registered for the tab's life, and Playwright would
        hand a handler's exception to whatever call happens to be waiting, on any page.
        A failure while vetting the main document becomes that visit's outcome.
        """
        try:
            await self._guard(route, tab)
        except Exception as exc:
            request, visit = route.request, tab.visit
            if visit is not None and visit.block is None and request.is_navigation_request() \
                    and request.frame == tab.page.main_frame:
                visit.block = _classify_navigation_error(exc)
            with contextlib.suppress(Exception):
                await route.abort("failed")

    async def _guard(self, route, tab: _Tab) -> None:
        request = route.request
        url = request.url
        parts = urlsplit(url)
        if parts.scheme in ("data", "blob", "about"):
            await route.continue_()
            return
        page, visit = tab.page, tab.visit
        if visit is None:  # a straggler of a page already finished
            await route.abort("aborted")
            return
        main_document = request.is_navigation_request() and request.frame == page.main_frame
        if not main_document and self._dead_hosts.get(parts.netloc, 0) > time.monotonic():
            self.stats["dead_host_aborts"] += 1
            await route.abort("addressunreachable")
            return
        refusal = scheme_refusal(url)
        if refusal is None:
            refusal = await self._address_refusal(url)
            if refusal is not None and not main_document:
                self._learn_blocked_host(tab, parts.hostname or "")
            # Only origins a request may reach can hold state to clear after the page (a
            # refused request never leaves the browser): on pages full of unreachable
            # third-party references this spares a Storage.clearDataForOrigin for each.
            visit.origins.add(f"{parts.scheme}://{parts.netloc}")
        if main_document and not refusal:
            refusal = await self._vet_document(route, page, visit)
            if refusal is None:
                return  # _vet_document fulfilled the request
        if refusal:
            if main_document:
                visit.block = refusal
            else:
                self.stats["refused_requests"] += 1
            await route.abort("blockedbyclient")
            return
        await route.continue_()

    def _learn_blocked_host(self, tab: _Tab, host: str) -> None:
        """Note a host the address guard refused (its verdict is cached for the worker's
        life, so every later request to it would be refused the same way) for blocking
        inside Chromium, and push it to this tab now: the page's other requests to it
        are then blocked where they start."""
        hosts = self._blocked_hosts.setdefault(tab.origin, {})
        if host in hosts or len(hosts) >= BLOCKED_HOSTS_PER_ORIGIN \
                or not PLAIN_HOST.fullmatch(host):
            return
        hosts[host] = None
        sync = asyncio.ensure_future(self._sync_blocks(tab))
        self._pending_syncs.add(sync)  # the loop keeps only weak references to tasks
        sync.add_done_callback(self._pending_syncs.discard)

    async def _sync_blocks(self, tab: _Tab) -> None:
        """Give the tab's Chromium the blocked hosts of its origin it does not have yet.

        Why: a request the route handler refuses costs a round trip from Chromium through
        the Playwright driver to this loop and back; a saved corpus page makes ~39
        requests to third-party hosts that do not resolve offline, and a real crawl meets
        dead third-party hosts and hosts on private addresses again on every page of a
        site. Blocked by URL pattern in the renderer, such a request fails where it
        starts (requestfailed says ``inspector``; a page sees a failed load, as before; a
        frame's document is a navigation, which patterns do not stop: the route refuses
        it). Patterns are ``*://HOST:*/*``: the host exactly, any scheme and port, never
        a host named inside another URL's path or query (Chromium's older ``urls``
        wildcards match anywhere in the URL). The Network domain this needs
        sends this session every network event of the tab, so it is enabled only on tabs
        of origins with something to block. Never raises: blocking only saves work, the
        route handler still refuses whatever gets through.
        """
        hosts = self._blocked_hosts.get(tab.origin)
        if not hosts or tab.blocks_pushed >= len(hosts):
            return
        names = list(hosts)
        try:
            if not tab.network_enabled:
                # No bodies kept for this session: Playwright's own session serves them.
                await tab.cdp.send("Network.enable", {"maxTotalBufferSize": 0,
                                                      "maxResourceBufferSize": 0})
                tab.network_enabled = True
            await tab.cdp.send("Network.setBlockedURLs", {"urlPatterns": [
                {"urlPattern": f"*://{name}:*/*", "block": True} for name in names]})
        except Exception as exc:  # a tab closed meanwhile; the route still refuses
            log.debug("blocking %d hosts in a tab failed: %s", len(names), exc)
            return
        tab.blocks_pushed = max(tab.blocks_pushed, len(names))

    async def _vet_document(self, route, page, visit: _Visit) -> Outcome | None:
        """Fetch a main-frame document ourselves, hop by hop, and decide.

        Redirects are followed here (not by the browser, whose follow-ups a route never
        sees) so each hop's address, scheme and robots.txt are checked before it is
        fetched. A vetted redirect chain is answered with one redirect to its end.
        """
        s = self.settings
        url = current = route.request.url
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
            refusal = refusal or await self._address_refusal(current)
            refusal = refusal or await self._robots_refusal(current)
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
            # The browser follows this one redirect itself, to the URL vetted above (a
            # request no route sees: its origin is noted here for the clearing).
            visit.origins.add(_origin_of(current))
            await route.fulfill(status=302, headers={"location": current})
        else:
            await route.fulfill(response=response, body=body)
        return None


def _metrics(s: RenderSettings, height: int) -> dict[str, Any]:
    """CDP device metrics of our viewport at `height` CSS px, with exactly the fields
    Playwright sets for the context's viewport (so the restore leaves no trace: screen
    size, orientation and scale stay what a page saw before)."""
    return {"mobile": False, "width": s.viewport_width, "height": height,
            "screenWidth": s.viewport_width, "screenHeight": s.viewport_height,
            "deviceScaleFactor": 1, "dontSetVisibleSize": False,
            "screenOrientation": {"angle": 0, "type": "landscapePrimary"}}


def _data_url_bytes(url: str) -> bytes | None:
    """The payload of a ``data:`` URL (base64 or percent-encoded), None when malformed."""
    head, sep, payload = url.partition(",")
    if not sep:
        return None
    try:
        if head.endswith(";base64"):
            return base64.b64decode(payload, validate=False)
        return unquote_to_bytes(payload)
    except ValueError:
        return None


def _origin_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


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

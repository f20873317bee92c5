"""What the crawler may fetch and how fast: robots.txt, X-Robots-Tag, address safety, pacing.

All checks answer with an `Outcome` (`refuse`: kind, reason, message) instead of raising,
so the stage can tie them to the URL's item as drop or error records. Caches are per
worker: robots.txt is fetched once per origin, DNS answers once per host.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
import threading
import time
import urllib.error
import urllib.request
from urllib.parse import urlsplit

from protego import Protego

from pipelines.core.outcome import Outcome

log = logging.getLogger(__name__)

USER_AGENT_TOKEN = "vlforge"
ALLOWED_SCHEMES = ("http", "https")
# X-Robots-Tag / <meta name=robots> values that forbid use as AI training data.
NO_AI_TOKENS = {"noai", "noimageai"}


def refuse(reason: str, message: str, kind: str = "dropped") -> Outcome:
    """Why a URL is not fetched, as an `Outcome` the crawl stage ties to the URL's item
    (`Outcome.about`): a machine reason ("robots_disallowed"), a message, and kind
    "dropped" (a rule said no) or "error" (something failed)."""
    return Outcome.of(kind, reason, message)


def scheme_refusal(url: str) -> Outcome | None:
    """file:, chrome:, data:, javascript: ... are never fetched."""
    scheme = urlsplit(url).scheme.lower()
    if scheme not in ALLOWED_SCHEMES:
        return refuse("blocked_scheme", f"scheme {scheme or '(none)'!r} is not crawled")
    return None


def is_public_address(address: str) -> bool:
    """False for private, loopback, link-local, multicast, reserved and unspecified IPs."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    return not (ip.is_private or ip.is_loopback or ip.is_link_local or ip.is_multicast
                or ip.is_reserved or ip.is_unspecified)


class AddressGuard:
    """Resolves hosts (cached) and refuses non-public addresses unless allowed.

    `allow_private`: True allows every address; a list allows those addresses/networks
    only (tests allow ``127.0.0.1``). Checked for the first URL and again for every
    redirect hop and sub-resource, so a public page cannot redirect into the intranet.
    """

    def __init__(self, allow_private: bool | list[str] = False):
        self.allow_all = allow_private is True
        self.allowed = [ipaddress.ip_network(a, strict=False)
                        for a in (allow_private if isinstance(allow_private, list) else [])]
        self._cache: dict[str, list[str] | Outcome] = {}

    def resolved(self, host: str) -> bool:
        """Whether `host` is in the cache (so `check` answers without a DNS lookup)."""
        return host in self._cache

    def resolve(self, host: str) -> list[str] | Outcome:
        """`host`'s addresses (or a dns_failure refusal), looked up on first use. Several
        threads may look one host up at once (a hedged lookup): the first answer is
        kept, so a late try that timed out cannot replace a good answer."""
        if host not in self._cache:
            try:
                infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
                answer: list[str] | Outcome = sorted({info[4][0] for info in infos})
            except (socket.gaierror, UnicodeError) as exc:
                answer = refuse("dns_failure", f"{host}: {exc}", kind="error")
            self._cache.setdefault(host, answer)
        return self._cache[host]

    def check(self, url: str) -> Outcome | None:
        host = urlsplit(url).hostname or ""
        addresses = self.resolve(host)
        if isinstance(addresses, Outcome):
            return addresses
        if self.allow_all:
            return None
        for address in addresses:
            ip = ipaddress.ip_address(address.split("%", 1)[0])
            if not is_public_address(address) and not any(ip in net for net in self.allowed):
                return refuse("private_address",
                               f"{host} resolves to {address}, a non-public address "
                               "(pass --allow-private to crawl it)")
        return None


class RobotsCache:
    """robots.txt per scheme+host, read the RFC 9309 way, fetched once per worker.

    Parsing and matching are protego's (wildcards ``*``, end anchor ``$``, the longest
    match wins, Allow wins a tie, groups of one agent merged, ``*`` only when no group
    names us, percent-encoding normalised). Fetch outcomes follow RFC 9309 section 2.3.1:
    up to five redirects are followed; 4xx ("unavailable", 401/403 included) allows
    everything; 5xx or a network failure ("unreachable") disallows everything, and a host
    whose robots.txt cannot even be connected to is refused at once rather than waited on
    again by the page fetch. Only the first 500 KiB are parsed (the RFC's minimum).
    Crawl-delay and Request-rate (extensions the RFC lets crawlers honour) give `delay`;
    Sitemap lines are kept (`sitemaps`).
    """

    MAX_BYTES = 500 * 1024
    MAX_REDIRECTS = 5

    def __init__(self, user_agent: str = USER_AGENT_TOKEN, timeout: float = 10.0,
                 guard: AddressGuard | None = None):
        self.user_agent = user_agent
        self.timeout = timeout
        self.guard = guard  # vets redirect targets, so robots.txt cannot lead inwards
        self._rules: dict[str, Protego | Outcome | None] = {}
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()

    def _load(self, origin: str) -> Protego | Outcome | None:
        """The parsed rules, None (no rules: allow all) or a refusal for every URL."""
        url = origin + "/robots.txt"
        opener = urllib.request.build_opener(_LimitedRedirects(self.MAX_REDIRECTS, self.guard))
        request = urllib.request.Request(url, headers={"User-Agent": self.user_agent})
        try:
            with opener.open(request, timeout=self.timeout) as response:
                body = response.read(self.MAX_BYTES)
        except urllib.error.HTTPError as exc:
            if 400 <= exc.code < 500:
                return None
            return refuse("robots_unavailable", f"{url}: HTTP {exc.code} (RFC 9309: "
                           "an unreachable robots.txt means complete disallow)", "error")
        except (OSError, ValueError) as exc:
            reason = getattr(exc, "reason", exc)
            log.info("robots.txt unreachable for %s: %s", origin, reason)
            return refuse("host_unreachable", f"{url} could not be fetched ({reason}); "
                           "RFC 9309: an unreachable robots.txt means complete disallow",
                           "error")
        return Protego.parse(body.decode("utf-8", "replace"))

    def rules(self, url: str) -> Protego | Outcome | None:
        """The cached outcome for `url`'s origin (fetched on first use, once per origin
        even when several threads ask at the same time)."""
        origin = _origin(url)
        if origin not in self._rules:
            with self._guard:
                lock = self._locks.setdefault(origin, threading.Lock())
            with lock:
                if origin not in self._rules:
                    self._rules[origin] = self._load(origin)
        return self._rules[origin]

    def cached(self, url: str) -> bool:
        """Whether `check` answers for `url` without fetching (its origin's robots.txt
        was read, or found missing or unreachable, before)."""
        return _origin(url) in self._rules

    def delay(self, url: str) -> float:
        """Seconds between requests the host asks of us (Crawl-delay or Request-rate), 0
        when it asks nothing."""
        rules = self._rules.get(_origin(url))
        if not isinstance(rules, Protego):
            return 0.0
        delay = float(rules.crawl_delay(self.user_agent) or 0)
        rate = rules.request_rate(self.user_agent)
        if rate and rate.requests:
            delay = max(delay, rate.seconds / rate.requests)
        return delay

    def sitemaps(self, url: str) -> list[str]:
        """Sitemap URLs listed in the robots.txt of `url`'s origin (after `check`)."""
        rules = self._rules.get(_origin(url))
        return list(rules.sitemaps) if isinstance(rules, Protego) else []

    def check(self, url: str) -> Outcome | None:
        rules = self.rules(url)
        if isinstance(rules, Outcome):
            return rules
        if rules is not None and not rules.can_fetch(url, self.user_agent):
            return refuse("robots_disallowed", f"robots.txt of {_origin(url)} disallows {url}")
        return None


class _LimitedRedirects(urllib.request.HTTPRedirectHandler):
    """RFC 9309 2.3.1.2: follow five redirects; each target passes the address guard."""

    def __init__(self, limit: int, guard: AddressGuard | None):
        self.max_redirections = limit
        self.guard = guard

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        refusal = scheme_refusal(newurl) or (self.guard.check(newurl) if self.guard else None)
        if refusal:
            raise urllib.error.URLError(f"redirect refused: {refusal.message}")
        return super().redirect_request(req, fp, code, msg, headers, newurl)


def no_ai_refusal(header_value: str | None, source: str = "X-Robots-Tag") -> Outcome | None:
    """A refusal when an X-Robots-Tag (or meta robots) value says noai / noimageai.

    Values look like ``noai, noimageai`` or ``otherbot: noindex``; directives scoped to
    another user agent are ignored.
    """
    for directive in (header_value or "").split("\n"):
        agent, sep, rules = directive.partition(":")
        if sep and agent.strip().lower() not in ("*", USER_AGENT_TOKEN) \
                and " " not in agent.strip() and "," not in agent:
            continue
        tokens = {t.strip().lower() for t in (rules if sep else directive).split(",")}
        found = tokens & NO_AI_TOKENS
        if found:
            return refuse("no_ai", f"{source}: {', '.join(sorted(found))}")
    return None


class HostPacer:
    """Per-host politeness inside one worker: at most `concurrency` pages loading at once
    per host (a page holds its slot through a `HostTurn` until its loading is over) and at
    least `delay` seconds (or the robots Crawl-delay, if longer) between starts."""

    def __init__(self, delay: float = 1.0, concurrency: int = 1):
        self.delay = delay
        self.concurrency = concurrency
        self._slots: dict[str, asyncio.Semaphore] = {}
        self._next_start: dict[str, float] = {}

    def slot(self, host: str) -> asyncio.Semaphore:
        if host not in self._slots:
            self._slots[host] = asyncio.Semaphore(self.concurrency)
        return self._slots[host]

    async def wait_turn(self, host: str, extra_delay: float = 0.0) -> None:
        """Sleep until this host may be fetched again, then book the next start time."""
        now = time.monotonic()
        start = max(now, self._next_start.get(host, 0.0))
        self._next_start[host] = start + max(self.delay, extra_delay)
        if start > now:
            await asyncio.sleep(start - now)


class HostTurn:
    """One page's hold on a slot of its host (`HostPacer.slot`): taken on entering, given
    back by `release` as soon as the page asks the host for nothing more (its load is
    over; reading out and screenshots happen in the browser), or at the latest on exit.

    Why not hold it to the page's end: a slot held through the capture limits pages in
    capture, which load no host, and leaves a worker's cores idle behind politeness.
    """

    def __init__(self, slot: asyncio.Semaphore):
        self.slot = slot
        self.held = False

    async def __aenter__(self) -> "HostTurn":
        await self.slot.acquire()
        self.held = True
        return self

    async def __aexit__(self, *exc) -> None:
        self.release()

    def release(self) -> None:
        """Give the slot back (once; later calls do nothing)."""
        if self.held:
            self.held = False
            self.slot.release()


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"

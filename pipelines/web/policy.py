"""What the crawler may fetch and how fast: robots.txt, X-Robots-Tag, address safety, pacing.

All checks answer with a `Refusal` (reason + message) instead of raising, so the stage can
turn them into drop records. Caches are per worker: robots.txt is fetched once per host,
DNS answers once per host.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
import time
import urllib.error
import urllib.request
import urllib.robotparser
from dataclasses import dataclass
from urllib.parse import urlsplit

log = logging.getLogger(__name__)

USER_AGENT_TOKEN = "vlforge"
ALLOWED_SCHEMES = ("http", "https")
# X-Robots-Tag / <meta name=robots> values that forbid use as AI training data.
NO_AI_TOKENS = {"noai", "noimageai"}


@dataclass(frozen=True)
class Refusal:
    """Why a URL is not fetched: a machine reason ("robots_disallowed") and a message."""

    reason: str
    message: str
    kind: str = "dropped"  # or "error" when something failed rather than a rule said no


def scheme_refusal(url: str) -> Refusal | None:
    """file:, chrome:, data:, javascript: ... are never fetched."""
    scheme = urlsplit(url).scheme.lower()
    if scheme not in ALLOWED_SCHEMES:
        return Refusal("blocked_scheme", f"scheme {scheme or '(none)'!r} is not crawled")
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
        self._cache: dict[str, list[str] | Refusal] = {}

    def resolve(self, host: str) -> list[str] | Refusal:
        if host not in self._cache:
            try:
                infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
                self._cache[host] = sorted({info[4][0] for info in infos})
            except (socket.gaierror, UnicodeError) as exc:
                self._cache[host] = Refusal("dns_failure", f"{host}: {exc}", kind="error")
        return self._cache[host]

    def check(self, url: str) -> Refusal | None:
        host = urlsplit(url).hostname or ""
        addresses = self.resolve(host)
        if isinstance(addresses, Refusal):
            return addresses
        if self.allow_all:
            return None
        for address in addresses:
            ip = ipaddress.ip_address(address.split("%", 1)[0])
            if not is_public_address(address) and not any(ip in net for net in self.allowed):
                return Refusal("private_address",
                               f"{host} resolves to {address}, a non-public address "
                               "(pass --allow-private to crawl it)")
        return None


class RobotsCache:
    """robots.txt per scheme+host, fetched once with a timeout and parsed by urllib.

    A missing robots.txt (4xx) allows everything; 401/403 and 5xx forbid everything for
    that host (the usual conservative reading), an unreachable one is left to the page
    fetch, which will fail with its own reason.
    """

    def __init__(self, user_agent: str = USER_AGENT_TOKEN, timeout: float = 10.0):
        self.user_agent = user_agent
        self.timeout = timeout
        self._parsers: dict[str, urllib.robotparser.RobotFileParser | Refusal | None] = {}

    def _load(self, origin: str) -> urllib.robotparser.RobotFileParser | Refusal | None:
        parser = urllib.robotparser.RobotFileParser(origin + "/robots.txt")
        request = urllib.request.Request(origin + "/robots.txt",
                                         headers={"User-Agent": self.user_agent})
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                parser.parse(response.read(512 * 1024).decode("utf-8", "replace").splitlines())
        except urllib.error.HTTPError as exc:
            if exc.code in (401, 403):
                parser.disallow_all = True
            elif exc.code >= 500:
                return Refusal("robots_unavailable", f"{origin}/robots.txt: HTTP {exc.code}")
            else:
                parser.allow_all = True
        except (OSError, ValueError) as exc:
            log.info("robots.txt unreachable for %s: %s", origin, exc)
            return None
        return parser

    def delay(self, url: str) -> float:
        """The host's Crawl-delay for us, 0 when none."""
        parser = self._parsers.get(_origin(url))
        if isinstance(parser, urllib.robotparser.RobotFileParser):
            return float(parser.crawl_delay(self.user_agent) or 0)
        return 0.0

    def check(self, url: str) -> Refusal | None:
        origin = _origin(url)
        if origin not in self._parsers:
            self._parsers[origin] = self._load(origin)
        parser = self._parsers[origin]
        if parser is None:
            return None
        if isinstance(parser, Refusal):
            return parser
        if not parser.can_fetch(self.user_agent, url):
            return Refusal("robots_disallowed", f"robots.txt of {origin} disallows {url}")
        return None


def no_ai_refusal(header_value: str | None, source: str = "X-Robots-Tag") -> Refusal | None:
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
            return Refusal("no_ai", f"{source}: {', '.join(sorted(found))}")
    return None


class HostPacer:
    """Per-host politeness inside one worker: at most `concurrency` pages at once per host
    and at least `delay` seconds (or the robots Crawl-delay, if longer) between starts."""

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


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"

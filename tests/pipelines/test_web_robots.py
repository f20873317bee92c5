"""robots.txt the RFC 9309 way: the RFC's own examples, then fetch outcomes against a
local server (no network)."""

from __future__ import annotations

import http.server
import socket
import threading

import pytest
from protego import Protego

from pipelines.web.policy import AddressGuard, RobotsCache

# RFC 9309 section 5.1 ("Simple Example"), verbatim.
RFC_SIMPLE = """\
User-Agent: *
Disallow: *.gif$
Disallow: /example/
Allow: /publications/

User-Agent: foobot
Disallow:/
Allow:/example/page.html
Allow:/example/allowed.gif

User-Agent: barbot
User-Agent: bazbot
Disallow: /example/page.html

User-Agent: quxbot

EOF
"""
# RFC 9309 section 5.2 ("Longest Match").
RFC_LONGEST = """\
User-Agent: foobot
Allow: /example/page/
Disallow: /example/page/disallowed.gif
"""


def allowed(robots: str, path: str, agent: str = "vlforge") -> bool:
    return Protego.parse(robots).can_fetch("https://example.com" + path, agent)


@pytest.mark.parametrize("agent,path,expected", [
    # foobot: everything disallowed but the two allowed files.
    ("foobot", "/", False), ("foobot", "/example/page.html", True),
    ("foobot", "/example/allowed.gif", True), ("foobot", "/example/other.html", False),
    ("FooBot/2.1", "/example/page.html", True),  # product token, case-insensitive
    # barbot and bazbot share one group; the "*" group does not apply to them.
    ("barbot", "/example/page.html", False), ("bazbot", "/example/page.html", False),
    ("barbot", "/example/other.gif", True),
    # quxbot's group is empty: everything allowed.
    ("quxbot", "/example/page.html", True), ("quxbot", "/x.gif", True),
    # Everyone else (us): the "*" group; "$" anchors, "*" spans, the longest rule wins.
    ("vlforge", "/x.gif", False), ("vlforge", "/dir/y.gif", False),
    ("vlforge", "/x.gif?size=2", True),           # "$": .gif must end the path
    ("vlforge", "/example/", False), ("vlforge", "/example/a.html", False),
    ("vlforge", "/publications/a.gif", True),     # Allow /publications/ is longer than *.gif$
    ("vlforge", "/other.html", True),
])
def test_rfc_simple_example(agent, path, expected):
    assert allowed(RFC_SIMPLE, path, agent) is expected


def test_rfc_longest_match():
    assert allowed(RFC_LONGEST, "/example/page/", "foobot")
    assert allowed(RFC_LONGEST, "/example/page/other.gif", "foobot")
    assert not allowed(RFC_LONGEST, "/example/page/disallowed.gif", "foobot")


def test_rfc_groups_of_one_agent_are_merged():
    # 2.2.1: the rules of every group naming the agent combine; "*" is then ignored.
    robots = ("user-agent: ExampleBot\ndisallow: /foo\ndisallow: /bar\n\n"
              "user-agent: *\ndisallow: /\n\nuser-agent: ExampleBot\ndisallow: /baz\n")
    assert [allowed(robots, p, "ExampleBot") for p in ("/foo", "/bar", "/baz", "/qux")] == \
        [False, False, False, True]
    assert not allowed(robots, "/qux", "vlforge")


def test_rfc_special_characters_and_ties():
    robots = ("User-agent: *\n"
              "Disallow: /*?sessionid=   # a comment after a rule\n"
              "Disallow: /private*/\n"
              "Allow: /this/path/exactly$\n"
              "Disallow: /this/\n"
              "Allow: /page\n"
              "Disallow: /page\n")
    assert not allowed(robots, "/cart?sessionid=42")
    assert allowed(robots, "/cart?other=1&sessionid=42")  # "/*?sessionid=" needs "?sessionid="
    assert not allowed(robots, "/private-data/x") and not allowed(robots, "/private/x")
    assert allowed(robots, "/private")  # no slash after it
    assert allowed(robots, "/this/path/exactly")
    assert not allowed(robots, "/this/path/exactly/more") and not allowed(robots, "/this/x")
    assert allowed(robots, "/page")  # equivalent Allow and Disallow: Allow wins (2.2.2)
    assert urllib_robotparser_gets_this_wrong(robots)


def urllib_robotparser_gets_this_wrong(robots: str) -> bool:
    """Why we do not use the standard library: it reads '*' literally and applies the
    first matching rule, so the session-id rule above is not honoured."""
    import urllib.robotparser

    parser = urllib.robotparser.RobotFileParser()
    parser.parse(robots.splitlines())
    return parser.can_fetch("vlforge", "https://example.com/cart?sessionid=42")


@pytest.mark.parametrize("rule_path,url_path", [
    ("/foo/bar/ツ", "/foo/bar/%E3%83%84"),            # non-ASCII is percent-encoded
    ("/foo/bar/%E3%83%84", "/foo/bar/%E3%83%84"),
    ("/foo/bar/%62%61%7A", "/foo/bar/baz"),           # encoded unreserved octets decode
    ("/foo/bar/baz", "/foo/bar/%62%61%7A"),
])
def test_rfc_percent_encoding(rule_path, url_path):
    assert not allowed(f"User-agent: *\nDisallow: {rule_path}\n", url_path)


def test_robots_txt_itself_is_always_allowed():
    assert allowed("User-agent: *\nDisallow: /\n", "/robots.txt")


# -- fetching robots.txt ------------------------------------------------------------------
class RobotsHandler(http.server.BaseHTTPRequestHandler):
    """One robots.txt answer per server (each case gets its own port, i.e. origin)."""

    status = 200
    body = b""
    location = ""
    hits = 0

    def log_message(self, *args) -> None:
        pass

    def do_GET(self) -> None:
        type(self).hits += 1
        if self.path != "/robots.txt":
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self.send_response(self.status)
        if self.location:
            self.send_header("Location", self.location)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)


HANDLERS: dict[str, type] = {}


@pytest.fixture
def serve():
    servers = []

    def start(status: int = 200, body: str = "", location: str = "") -> str:
        handler = type("H", (RobotsHandler,), {"status": status, "body": body.encode(),
                                              "location": location, "hits": 0})
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        base = f"http://127.0.0.1:{server.server_port}"
        HANDLERS[base] = handler
        return base

    yield start
    for server in servers:
        server.shutdown()


def test_fetch_outcomes_follow_rfc_section_2_3_1(serve):
    robots = RobotsCache()
    ok = serve(200, "User-agent: *\nDisallow: /*.php$\nCrawl-delay: 2\n"
                    "Sitemap: https://example.com/sitemap.xml\n")
    assert robots.check(ok + "/index.php").reason == "robots_disallowed"
    assert robots.check(ok + "/index.php?x=1") is None
    assert robots.delay(ok + "/") == 2.0
    assert robots.sitemaps(ok + "/") == ["https://example.com/sitemap.xml"]
    for status in (404, 401, 403):  # "unavailable": crawl freely
        assert robots.check(serve(status, "User-agent: *\nDisallow: /\n") + "/a") is None
    unreachable = robots.check(serve(503) + "/a")  # server error: complete disallow
    assert (unreachable.reason, unreachable.kind) == ("robots_unavailable", "error")


def test_unreachable_host_is_refused_at_once():
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    refusal = RobotsCache().check(f"http://127.0.0.1:{port}/page")
    assert (refusal.reason, refusal.kind) == ("host_unreachable", "error")


def test_redirects_are_followed_but_not_into_private_addresses(serve):
    target = serve(200, "User-agent: *\nDisallow: /no/\n")
    hop = serve(301, location=target + "/robots.txt")
    allow_loopback = AddressGuard(["127.0.0.1"])
    assert RobotsCache(guard=allow_loopback).check(hop + "/no/x").reason == "robots_disallowed"
    moved_inwards = serve(301, location="http://127.0.0.2:9/robots.txt")
    refusal = RobotsCache(guard=allow_loopback).check(moved_inwards + "/a")
    assert refusal.reason == "host_unreachable" and "127.0.0.2" in refusal.message


def test_request_rate_sets_the_delay(serve):
    robots = RobotsCache()
    base = serve(200, "User-agent: vlforge\nRequest-rate: 1/5\n\nUser-agent: *\nDisallow: /\n")
    assert robots.check(base + "/a") is None  # our own group, not "*"
    assert robots.delay(base + "/a") == 5.0


def test_one_fetch_per_origin_under_concurrency(serve):
    base = serve(200, "User-agent: *\nDisallow: /x\n")
    robots = RobotsCache()
    threads = [threading.Thread(target=robots.check, args=(base + f"/p{i}",)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert HANDLERS[base].hits == 1
    assert robots.check(base + "/x").reason == "robots_disallowed"

"""Web pages → screenshot samples: ``vlforge crawl URLS --out RUN_DIR``.

One `ScreenshotPagesFn` per Beam worker opens Chromium once and renders each URL in a fresh
browser context (see `pipelines.web.browser`). Each page becomes:

- one sample keyed by its URL (``meta["web"]["kind"] == "page"``): ``image`` = the
  viewport screenshot (1024 wide),
  ``text`` = the page's main content as markdown (title, headings, paragraphs, lists,
  tables; no navigation, ads or footers; see `pipelines.web.main_text`), ``html`` = a
  simplified HTML of the visible DOM (no scripts/styles, size-bounded), ``meta["web"]`` =
  url, final_url, status, title, lang, ``blocks`` (all visible text blocks and images in
  DOM order with page-px boxes and a ``main`` flag: the full visible text with boxes),
  ``lines``/``words`` with boxes normalised to the viewport image, inline ``svgs``
  (markup + box) that lie within it, same-site ``links``, ``pdf_links``, ``tiles`` and the
  render settings;
- one *derived* sample per 1024x1024 tile of the full page (from the top, up to
  ``max_tiles``; only when the page is taller than the viewport), each with its own
  ``lines``/``words``/``svgs`` normalised to the tile. Tiles are derived samples rather than
  extra images so every image carries its own text ground truth, as OCR and grounding
  stages expect (one image per sample, boxes relative to it);
- one derived **interleaved document** (``URL#&interleaved=0``, ``meta["web"]["kind"] ==
  "interleaved"``) when the page's main content holds pictures: ``image`` = the first,
  ``extra_images`` = the rest (PNG, at most ``max_images``), ``text`` = the main-content
  markdown with one ``<image_placeholder>`` at each picture's place in DOM order (see
  `pipelines.web.interleave`). The bytes are those the browser loaded for the page (lazy
  images are made to load with it), taken under the crawl policy (robots.txt of the
  image's origin, X-Robots-Tag noai, size limit); no image is fetched twice;
- one derived **caption pair** (``URL#&caption=N``, kind ``caption``) per main-content picture
  with a usable ``<figcaption>`` (preferred) or ``alt`` text (`pipelines.web.captions`);
- one derived **code pair** (``URL#&code=0``, kind ``code``; ``--no-code-pairs`` turns it
  off): the viewport screenshot with the
  simplified HTML cut to ``code_max_chars`` at a tag boundary and closed
  (`pipelines.web.code_pairs`), as text and html, for screenshot → code pretraining.

Every image of the page gets a verdict: kept, or dropped with a reason (``tiny``:
trackers and icons, ``decorative``: aria-hidden / role=presentation, ``failed_load``,
``not_main``, ``over_limit``, ...), listed and counted in the page's
``meta["web"]["images"]`` (and in the document's meta); every caption dropped by the
caption rule (``empty``, ``file_name``, ``boilerplate``) likewise in
``meta["web"]["captions"]``; Beam counters ``image_dropped_<reason>`` and
``caption_dropped_<reason>`` count them over the run. The page sample lists its derived
samples' keys in ``meta["web"]["derived"]``; like tiles, derived samples are manifest rows
with ``derived_from`` set (counted as "derived" by the audit). Which derived samples are
made, and their limits, are `pipelines.web.interleave.DerivedSettings`
(``WebConfig.derived``; ``vlforge crawl --no-interleaved --no-code-pairs --max-doc-images
...``).

Link following runs in rounds (`crawl`): after a round, same-site links of pages above the
depth limit become new inputs of the same run directory (until the page budget), so the
audit rule holds for discovered URLs too. Links to PDFs are written to ``RUN/pdf_links.txt``
for the PDF pipeline.
"""

from __future__ import annotations

import collections
import concurrent.futures
import dataclasses
import itertools
import json
import logging
from importlib import metadata
from typing import Any, Iterable, Iterator, Mapping

from apache_beam.metrics import Metrics

from pipelines.core.outcome import Outcome
from pipelines.core.run_dir import RunDir
from pipelines.core.runner import input_ref, run_pipeline
from pipelines.core.sample import Sample
from pipelines.core.stage import InFlightStageFn, Record, StageFn
from pipelines.core.worker_cache import freeze_loaded_objects
from pipelines.post_stages import post_stages
from pipelines.web.browser import PageRenderer, PageResult, RenderSettings
from pipelines.web.captions import caption_pairs
from pipelines.web.code_pairs import code_pair
from pipelines.web.config import WebConfig
from pipelines.web.extract import group_lines, lines_in_region
from pipelines.web.interleave import DerivedSettings, interleaved_sample, judge_images
from pipelines.web.main_text import main_text
from pipelines.web.urls import MalformedUrl, canonical_url, looks_like_pdf, same_site

log = logging.getLogger(__name__)

SEEN_FILE = "web_seen.json"
PDF_LINKS_FILE = "pdf_links.txt"
MAX_LINKS_KEPT = 500
# Pages submitted to the renderer per page it runs at once (`ScreenshotPagesFn.process`).
QUEUED_PER_SLOT = 2


@dataclasses.dataclass
class _Entry:
    """One input of `ScreenshotPagesFn` in flight: a page rendering (`future`), records
    ready to leave (`records`), or a record passing in its place (`passing`: a task's end
    marker or an earlier stage's outcome)."""

    seed: Record
    url: str = ""
    future: concurrent.futures.Future | None = None
    records: list[Record] | None = None
    passing: bool = False


class ScreenshotPagesFn(InFlightStageFn):
    """URL seed in, one page sample (+ derived tile samples) or a drop/error out.

    Keeps up to ``concurrency`` pages rendering per worker and as many queued: `process`
    submits a seed and yields whatever pages have finished; a task's end (or
    `finish_bundle`) drains the rest. With `overlap_tasks` a task's end marker waits in
    its place instead (`WebConfig.overlap_tasks`): the next task's pages render while the
    task's last ones finish, and each task's records still leave before its end.
    """

    stage = "ScreenshotPages"

    def __init__(self, render: dict[str, Any] | None = None, seen_path: str | None = None,
                 derived: dict[str, Any] | None = None, overlap_tasks: bool = False):
        self.render = dict(render or {})
        self.seen_path = seen_path
        self.derived = dict(derived or {})
        self.overlap_tasks = overlap_tasks

    # -- resources ---------------------------------------------------------------------
    def open(self) -> None:
        self.settings = RenderSettings(**self.render)
        self.derived_settings = DerivedSettings(**self.derived)
        self.renderer = PageRenderer(self.settings, self.derived_settings)
        freeze_loaded_objects()  # the renderer and Playwright's objects included
        self.render_record = {**self.settings.record(),
                              "chromium": self.renderer.browser_version,
                              "playwright": _version("playwright")}
        self.seen_urls: dict[str, str] = {}     # canonical final URL -> first URL with it
        self.seen_hashes: dict[str, str] = {}   # content sha256 -> first URL with it
        if self.seen_path:
            self._load_seen(self.seen_path)
        self.in_flight: collections.deque = collections.deque()

    def close(self) -> None:
        renderer = getattr(self, "renderer", None)
        if renderer is not None:
            renderer.close()

    def _load_seen(self, path: str) -> None:
        """What earlier rounds of this run already wrote (for dedup across rounds)."""
        import fsspec

        fs, root = fsspec.core.url_to_fs(path)
        if fs.exists(root):
            with fs.open(root, "r") as handle:
                seen = json.load(handle)
            self.seen_urls.update(seen.get("urls", {}))
            self.seen_hashes.update(seen.get("hashes", {}))

    # -- streaming with pages in flight ----------------------------------------------
    def process(self, record: Record) -> Iterator[Record]:
        if not self.overlap_tasks:
            yield from self._finish_task_before(record)
            if isinstance(record, Outcome):
                yield record
                return
        if isinstance(record, Outcome):  # a task's end (or an earlier outcome), in its place
            self.in_flight.append(_Entry(record, records=[record], passing=True))
        else:
            self._submit(record)
        # The renderer runs `concurrency` pages and holds as many more queued, so it starts
        # the next page the moment a slot frees, also while this thread takes a finished
        # page through the post stages and the sink (with `concurrency` submitted, a slot
        # stayed empty for that time, ~0.3 s a page). What may leave goes on without
        # waiting; the wait is for a full queue only.
        while self._leaving() is not None:
            yield from self._finish_one()
        while (sum(e.future is not None for e in self.in_flight)
               >= QUEUED_PER_SLOT * self.settings.concurrency):
            yield from self._finish_one()

    def process_sample(self, sample: Sample) -> Iterable[Record]:
        """One seed alone (the StageFn contract; Beam uses the streaming `process`)."""
        self._submit(sample)
        yield from self._drain()

    def seed_of(self, entry: _Entry) -> Record:
        return entry.seed

    def _submit(self, seed: Sample) -> None:
        """Put the seed's page in flight, or its drop record in its place."""
        ref = seed.lineage.get("input_ref", {})
        raw = ref.get("url", seed.locator)
        try:
            url = canonical_url(raw)
            self.in_flight.append(_Entry(seed, url, self.renderer.submit(url)))
        except MalformedUrl as exc:
            self.in_flight.append(_Entry(seed, records=[
                Outcome.dropped(seed, self.stage, "malformed_url", str(exc))]))
        except Exception as exc:  # one bad seed must never stop the run
            log.warning("%s failed on %s: %s", self.stage, seed.locator, exc)
            self.in_flight.append(_Entry(seed, records=[Outcome.error(seed, self.stage, exc)]))

    def _leaving(self) -> int | None:
        """Where the next record may leave from now: a passing record (a task's end) at
        the head, or a finished entry of the oldest task (those before the first passing
        record), so each task's records leave before its end and no later task's do."""
        for index, entry in enumerate(self.in_flight):
            if entry.passing:
                return 0 if index == 0 else None
            if entry.future is None or entry.future.done():
                return index
        return None

    def _finish_one(self) -> Iterator[Record]:
        index = self._leaving()
        if index is None:  # wait for a page of the oldest task
            oldest = list(itertools.takewhile(lambda e: not e.passing, self.in_flight))
            done, _ = concurrent.futures.wait(
                [e.future for e in oldest],
                timeout=self.renderer.result_timeout(len(oldest)),
                return_when=concurrent.futures.FIRST_COMPLETED)
            if not done:
                entry = oldest[0]
                self.in_flight.remove(entry)
                entry.future.cancel()
                out = Outcome.error(entry.seed, self.stage,
                                    f"{entry.url}: renderer gave no answer", "stalled")
                self._count(out)
                yield out
                return
            index = self._leaving()
        entry = self.in_flight[index]
        del self.in_flight[index]
        if entry.passing:  # not this stage's record: passed on uncounted
            yield from entry.records
        elif entry.future is None:
            for out in entry.records:
                self._count(out)
                yield out
        else:
            result = entry.future.result()
            yield from self._guarded(entry.seed,
                                     lambda s: self._outputs(s, entry.url, result))

    def _guarded(self, seed: Sample, make) -> Iterator[Record]:
        """Count outputs; any exception becomes this seed's error record."""
        try:
            outputs = list(make(seed))
        except Exception as exc:  # one bad page must never stop the run
            log.warning("%s failed on %s: %s", self.stage, seed.locator, exc)
            outputs = [Outcome.error(seed, self.stage, exc)]
        for out in outputs:
            self._count(out)
            yield out

    # -- turning a rendered page into samples ----------------------------------------
    def _outputs(self, seed: Sample, url: str, result: PageResult | Outcome) -> Iterator[Record]:
        if isinstance(result, Outcome):  # refused or failed: the verdict is this seed's
            yield result.about(seed, self.stage)
            return
        final = canonical_url(result.final_url)
        first = self.seen_urls.get(final)
        if first is not None and first != url:
            yield Outcome.dropped(seed, self.stage, "duplicate_url",
                                  f"{url} ends at {final}, already crawled from {first}")
            return
        first = self.seen_hashes.get(result.content_sha256)
        if first is not None and first != url:
            yield Outcome.dropped(seed, self.stage, "duplicate_content",
                                  f"{url} has the same content as {first}")
            return
        self.seen_urls[final] = url
        self.seen_hashes[result.content_sha256] = url
        for out in page_samples(seed, url, result, self.settings, self.render_record,
                                self.derived_settings):
            kind = out.meta["web"].get("kind", "")
            if kind == "page":  # what became of the page's images and captions, counted
                for reason, n in out.meta["web"]["images"]["dropped_by_reason"].items():
                    Metrics.counter(self.stage, f"image_dropped_{reason}").inc(n)
                for reason, n in out.meta["web"]["captions"]["dropped_by_reason"].items():
                    Metrics.counter(self.stage, f"caption_dropped_{reason}").inc(n)
            elif kind != "tile":
                Metrics.counter(self.stage, f"derived_{kind}").inc()
            yield out


def page_samples(seed: Sample, url: str, result: PageResult, settings: RenderSettings,
                 render_record: dict[str, Any], derived: DerivedSettings | None = None
                 ) -> Iterator[Sample]:
    """The page sample and its derived samples: tiles, then the interleaved document, the
    caption pairs and the code pair (as `derived` asks)."""
    derived = derived or DerivedSettings()
    ex = result.extracted
    main, chosen = main_text(ex)
    width, view_h = settings.viewport_width, settings.viewport_height
    lines = group_lines(ex["words"])
    view_lines, view_words = lines_in_region(lines, 0, width, view_h)
    tiles = result.tiles
    svgs_by_image = _place_svgs(ex["svgs"], view_h, settings.tile, len(tiles), width)
    links, pdf_links = _sorted_links(result.final_url, ex["links"])
    depth = int(seed.lineage.get("input_ref", {}).get("depth", 0))
    web = {
        "kind": "page", "url": url, "final_url": result.final_url, "status": result.status,
        "content_type": result.content_type, "redirects": result.redirects,
        "title": ex["title"], "lang": ex["lang"] or None, "depth": depth,
        "image": "viewport", "width": width, "height": view_h,
        "lines": view_lines, "words": view_words, "svgs": svgs_by_image.get("viewport", []),
        "page_width": ex["pageWidth"], "page_height": ex["pageHeight"],
        "words_total": len(ex["words"]), "words_truncated": ex["wordsTruncated"],
        "html_truncated": ex["htmlTruncated"], "load_complete": result.load_complete,
        "blocks": page_blocks(ex["blocks"], chosen), "blocks_truncated": ex["blocksTruncated"],
        "text_source": "main_content",  # what .txt holds (markdown of the main content)
        "content_sha256": result.content_sha256, "links": links, "pdf_links": pdf_links,
        "seconds": round(result.seconds, 3), "attempts": result.attempts,
        "settled": result.settled,
        "render": render_record, "tiles": [],
    }
    tile_samples = []
    for index, (top, content_height, png) in enumerate(tiles):
        t_lines, t_words = lines_in_region(lines, top, width, settings.tile)
        tile = seed.derive(f"{url}#tile={index}", image=png,
                           text="\n".join(line["text"] for line in t_lines))
        tile = tile.with_meta("web", {
            "kind": "tile", "url": url, "final_url": result.final_url, "title": ex["title"],
            "lang": ex["lang"] or None, "image": "tile", "tile": index, "top_px": top,
            "content_height_px": content_height, "width": settings.tile,
            "height": settings.tile, "lines": t_lines, "words": t_words,
            "svgs": svgs_by_image.get(index, []), "render": render_record})
        web["tiles"].append({"index": index, "key": tile.key, "top_px": top,
                             "content_height_px": content_height})
        tile_samples.append(tile)
    images = judge_images(ex["blocks"], chosen, result.image_bodies, result.image_refusals,
                          derived)
    web["images"] = images.summary()
    page = seed.replace(image=result.viewport_png, text=main, html=ex["html"])
    extra: list[Sample] = []
    if derived.interleaved:
        doc = interleaved_sample(page, url, web, ex["blocks"], chosen, images)
        if doc is not None:
            extra.append(doc)
    captions: dict[str, Any] = {"pairs": 0, "dropped_by_reason": {}, "dropped": []}
    if derived.captions:
        pairs, captions = caption_pairs(page, url, web, ex["blocks"], images)
        extra += pairs
    web["captions"] = captions
    if derived.code_pairs:
        code = code_pair(page, url, web, result.viewport_png, ex["html"],
                         derived.code_max_chars, ex["htmlTruncated"])
        if code is not None:
            extra.append(code)
    web["derived"] = {s.meta["web"]["kind"]: [] for s in extra}
    for sample in extra:
        web["derived"][sample.meta["web"]["kind"]].append(sample.key)
    yield page.with_meta("web", web)
    yield from tile_samples
    yield from extra


def page_blocks(blocks: list[dict[str, Any]], chosen: list[bool]) -> list[dict[str, Any]]:
    """The page's visible text blocks and images in DOM order, for ``meta["web"]["blocks"]``:
    ``kind`` (text | image), ``tag``, ``text`` (or ``src`` + ``alt``), ``box`` in page px,
    ``main`` (part of the main text), and the context that is set (``fixed``,
    ``landmark``, list depth ``lists`` + ``ordered``, ``table`` + ``row`` ids)."""
    out = []
    for block, main in zip(blocks, chosen):
        item: dict[str, Any] = {"kind": block["kind"], "tag": block["tag"],
                                "box": [round(v, 1) for v in block["box"]], "main": main}
        if block["kind"] == "image":
            item.update(src=block["src"][:2000], alt=block["alt"],
                        natural=block.get("natural", [0, 0]))
            if block.get("figcaption"):
                item["figcaption"] = block["figcaption"]
        else:
            item["text"] = block["text"]
        if block.get("fixed"):
            item["fixed"] = True
        if block.get("landmark"):
            item["landmark"] = block["landmark"]
        if block["tag"] == "li":
            item.update(lists=block["lists"], ordered=block["ordered"])
        if block.get("table", -1) >= 0:
            item.update(table=block["table"], row=block["row"])
        out.append(item)
    return out


def _place_svgs(svgs: list[dict[str, Any]], view_h: int, tile: int, tiles: int,
                width: int) -> dict[Any, list[dict[str, Any]]]:
    """Each SVG belongs to exactly one image: the viewport if it fits there, else the tile
    holding its top edge. Its box is normalised to that image; ``page_box`` keeps page px."""
    placed: dict[Any, list[dict[str, Any]]] = {}
    for svg in svgs:
        x0, y0, x1, y1 = svg["box"]
        if y1 <= view_h:
            owner, top, height = "viewport", 0, view_h
        elif tiles and y0 < tiles * tile:
            owner = int(max(y0, 0) // tile)
            top, height = owner * tile, tile
        else:
            continue  # below the captured part of the page
        box = [round(min(max(v, 0.0), 1.0), 5) for v in
               (x0 / width, (y0 - top) / height, x1 / width, (y1 - top) / height)]
        placed.setdefault(owner, []).append(
            {"box": box, "page_box": [round(v, 1) for v in svg["box"]], "markup": svg["markup"]})
    return placed


def _sorted_links(page_url: str, hrefs: list[str]) -> tuple[list[str], list[str]]:
    """Same-site page links and PDF links (any site), canonical, deduplicated, in order."""
    links: dict[str, None] = {}
    pdfs: dict[str, None] = {}
    own = _safe_canonical(page_url)
    for href in hrefs:
        url = _safe_canonical(href)
        if url is None or url == own:
            continue
        if looks_like_pdf(url):
            pdfs[url] = None
        elif same_site(page_url, url) and len(links) < MAX_LINKS_KEPT:
            links[url] = None
    return list(links), list(pdfs)


def _safe_canonical(url: str) -> str | None:
    try:
        canon = canonical_url(url)
    except MalformedUrl:
        return None
    return canon if canon.startswith(("http://", "https://")) else None


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return ""


# -- the pipeline ---------------------------------------------------------------------
def build_stages(config: WebConfig | Mapping[str, Any]) -> list[StageFn]:
    """ScreenshotPages, then the shared post stages (OCR, charts, labeling) as configured."""
    config = WebConfig.coerce(config)
    return [ScreenshotPagesFn(dataclasses.asdict(config.render), seen_path=config.seen_path,
                              derived=dataclasses.asdict(config.derived),
                              overlap_tasks=config.overlap_tasks is True),
            *post_stages(config)]


def web_refs(urls: Iterable[str], depth: int = 0, **fields: Any) -> tuple[list[dict], int]:
    """Input refs keyed by canonical URL; malformed URLs stay inputs (to be dropped with a
    reason). Returns (refs, number of duplicates collapsed)."""
    refs: dict[str, dict[str, Any]] = {}
    duplicates = 0
    for raw in urls:
        try:
            url = canonical_url(raw)
        except MalformedUrl:
            url = raw
        ref = input_ref("web", url, url=url, depth=depth, **fields)
        if ref["input_id"] in refs:
            duplicates += 1
            continue
        refs[ref["input_id"]] = ref
    return list(refs.values()), duplicates


def crawl(urls: list[str], out: str, config: WebConfig | Mapping[str, Any], *, depth: int = 0,
          max_pages: int = 1000, beam_args: list[str] | tuple = (), task_size: int = 8,
          overwrite: bool = False, progress: bool = False, **bounds: Any) -> dict[str, Any]:
    """Crawl `urls`, then follow same-site links round by round; returns stats + crawl info.

    Each round is one `run_pipeline` call on the same run directory; the URLs a round
    discovers are appended to the run's inputs first, so `audit` accounts for them.
    Re-running a killed crawl continues where it stopped.
    """
    run = RunDir(out)
    config = WebConfig.coerce(config)
    config = dataclasses.replace(config, seen_path=f"{run.url}/{SEEN_FILE}")
    seeds, duplicates = web_refs(urls)
    if overwrite:
        run.remove()
    refs = seeds
    previous = run.input_refs()
    if previous:
        known = {r["input_id"] for r in previous}
        missing = [r["url"] for r in seeds if r["input_id"] not in known]
        if missing:
            raise ValueError(f"{out} already holds a crawl of other URLs (e.g. {missing[0]}); "
                             "use a new --out or pass --overwrite")
        refs = previous
    rounds = 0
    while True:
        rounds += 1
        stats = run_pipeline("web", refs, config, out, beam_args, task_size=task_size,
                             **bounds)
        pages = list(scan_pages(run, follow_below=depth))
        _write_seen(run, pages)
        new = discover(pages, refs, depth, max_pages)
        if progress:
            print(f"round {rounds}: {stats['inputs']} URLs so far, {stats['written']} pages "
                  f"written, {len(new)} new links to follow", flush=True)
        if not new:
            break
        run.add_inputs(new, task_size)
        refs = refs + new
    pdfs = write_pdf_links(run, pages)
    return {**stats, "rounds": rounds, "duplicate_urls_in_list": duplicates,
            "pdf_links": len(pdfs)}


CRAWL_FIELDS = ("url", "final_url", "content_sha256", "depth", "pdf_links")


def scan_pages(run: RunDir, follow_below: int = 0) -> Iterator[dict[str, Any]]:
    """What the crawl loop needs of every written page sample (tiles skipped), reading only
    the JSON members of the shards (no images): `CRAWL_FIELDS` of ``meta["web"]``, plus
    its ``links`` where the page's depth is below `follow_below` (the pages `discover`
    follows). A page's whole ``meta["web"]`` (words, lines, blocks, SVGs: tens of KB) is
    not kept, so a crawl's driver holds a few hundred bytes per page, not the run."""
    if not run.finalized:
        return
    for sample in run.iter_samples(payloads=False):
        if sample.lineage.get("derived_from") or "web" not in sample.meta:
            continue
        web = sample.meta["web"]
        page = {name: web.get(name) for name in CRAWL_FIELDS}
        page["depth"] = page["depth"] or 0
        page["pdf_links"] = page["pdf_links"] or []
        page["links"] = web.get("links", []) if page["depth"] < follow_below else []
        yield page


def discover(pages: list[dict[str, Any]], refs: list[dict[str, Any]], depth: int,
             max_pages: int) -> list[dict[str, Any]]:
    """New input refs for same-site links of pages below `depth`, within the page budget."""
    known = {r["input_id"] for r in refs}
    budget = max_pages - len(refs)
    new: list[dict[str, Any]] = []
    for page in sorted(pages, key=lambda p: (p.get("depth", 0), p["url"])):
        if page.get("depth", 0) >= depth:
            continue
        for link in page.get("links", []):
            if len(new) >= budget:
                return new
            ref = input_ref("web", link, url=link, depth=page.get("depth", 0) + 1,
                            found_on=page["url"])
            if ref["input_id"] not in known:
                known.add(ref["input_id"])
                new.append(ref)
    return new


def _write_seen(run: RunDir, pages: list[dict[str, Any]]) -> None:
    seen = {"urls": {}, "hashes": {}}
    for page in pages:
        seen["urls"][_safe_canonical(page["final_url"]) or page["final_url"]] = page["url"]
        seen["hashes"][page["content_sha256"]] = page["url"]
    run.write_json(seen, SEEN_FILE)


def write_pdf_links(run: RunDir, pages: list[dict[str, Any]]) -> list[str]:
    """Every PDF link found (and every input URL that turned out to be a PDF), one a line."""
    pdfs = {link for page in pages for link in page.get("pdf_links", [])}
    pdfs |= {o.input_ref.get("url", "") for o in run.outcomes() if o.reason == "is_pdf"}
    pdfs.discard("")
    run.write_text("".join(f"{url}\n" for url in sorted(pdfs)), PDF_LINKS_FILE)
    return sorted(pdfs)

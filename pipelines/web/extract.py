"""What is read out of a rendered page: visible words with boxes, lines, visible text
blocks and images (DOM order, boxes, layout context: the input of `main_text`), inline
SVGs, links, a simplified HTML of the visible DOM and a reader HTML for the main-text
extractor.

`EXTRACT_JS` runs once in the page and returns everything in page pixels (CSS px at
device scale 1, so page px = screenshot px). The Python side groups words into lines and
normalises boxes to whichever image (viewport shot or tile) they belong to.

`EAGER_IMAGES_JS` runs right after the document arrives: lazy images (``loading=lazy``)
are loaded like any other, so the bytes of an article's images further down come from the
browser's own page load (no second fetch, see `pipelines.web.browser`).
"""

from __future__ import annotations

import json
from typing import Any

# Returns how many images were switched; they are kept for `EAGER_IMAGES_WAIT_JS`.
EAGER_IMAGES_JS = """() => {
  const lazy = Array.from(document.querySelectorAll('img[loading="lazy" i]'));
  for (const img of lazy) img.loading = "eager";
  window.__vlforgeEagerImages = lazy.filter((img) => !img.complete);
  return window.__vlforgeEagerImages.length; }"""
# Waits (at most `ms`) until the switched images have loaded or failed; returns how many
# are still loading.
EAGER_IMAGES_WAIT_JS = """(ms) => new Promise((resolve) => {
  const waiting = (window.__vlforgeEagerImages || []).filter((img) => !img.complete);
  delete window.__vlforgeEagerImages;
  let left = waiting.length;
  if (!left) { resolve(0); return; }
  const done = () => { if (--left === 0) resolve(0); };
  for (const img of waiting) {
    img.addEventListener("load", done, {once: true});
    img.addEventListener("error", done, {once: true});
  }
  setTimeout(() => resolve(left), ms); })"""

# One pass over the live DOM. Limits keep a huge page from costing unbounded time/memory.
EXTRACT_JS = r"""
(limits) => {
  const SKIP = new Set(["SCRIPT","STYLE","NOSCRIPT","TEMPLATE","IFRAME","OBJECT","EMBED",
                        "HEAD","META","LINK","CANVAS","VIDEO","AUDIO"]);
  const KEEP_ATTRS = ["href","src","alt","title","type","name","value","placeholder","role",
                      "aria-label","colspan","rowspan","lang","for","action","method"];
  const VOID = new Set(["AREA","BASE","BR","COL","HR","IMG","INPUT","SOURCE","TRACK","WBR"]);
  const sx = window.scrollX, sy = window.scrollY;
  const visible = (el) => !el.checkVisibility || el.checkVisibility(
      {checkOpacity: true, checkVisibilityCSS: true});
  const box = (r) => [r.left + sx, r.top + sy, r.right + sx, r.bottom + sy];
  const root = document.body || document.documentElement;

  // Words with boxes, in document order; `b` numbers the parent element so lines
  // never join words of two different blocks side by side.
  const words = [];
  let blockIds = new Map(), nextBlock = 0, wordsTruncated = false;
  const walker = document.createTreeWalker(root, NodeFilter.SHOW_TEXT);
  const range = document.createRange();
  let node, below = 0;
  while ((node = walker.nextNode())) {
    if (words.length >= limits.maxWords || below > 500) { wordsTruncated = true; break; }
    const parent = node.parentElement;
    if (!parent || SKIP.has(parent.tagName) || parent.closest("svg")) continue;
    if (!node.data.trim() || !visible(parent)) continue;
    if (!blockIds.has(parent)) blockIds.set(parent, nextBlock++);
    const re = /\S+/g; let m;
    while ((m = re.exec(node.data))) {
      range.setStart(node, m.index); range.setEnd(node, m.index + m[0].length);
      const rects = range.getClientRects();
      if (!rects.length) continue;
      const r = rects[0];
      if (r.width < 1 || r.height < 1) continue;
      // Below the captured part of the page: no image shows it, so no box is needed.
      if (r.top + sy > limits.maxY) { below++; continue; }
      words.push([m[0], ...box(r), blockIds.get(parent)]);
      if (words.length >= limits.maxWords) break;
    }
  }

  // Inline SVGs big enough to be charts (not icons), outermost only.
  const svgs = [];
  for (const svg of document.querySelectorAll("svg")) {
    if (svg.parentElement && svg.parentElement.closest("svg")) continue;
    const r = svg.getBoundingClientRect();
    if (r.width < limits.minSvgSide || r.height < limits.minSvgSide || !visible(svg)) continue;
    const markup = svg.outerHTML;
    if (markup.length > limits.maxSvgChars) continue;
    svgs.push({markup: markup, box: box(r)});
    if (svgs.length >= limits.maxSvgs) break;
  }

  const links = [];
  for (const a of document.querySelectorAll("a[href]")) {
    const href = a.href;
    if (href.startsWith("http://") || href.startsWith("https://")) links.push(href);
    if (links.length >= limits.maxLinks) break;
  }

  // Blocks: the visible text cut where the layout starts a new block, plus visible
  // images, in DOM order, each with its page box and the layout facts a main-text choice
  // needs (fixed position, landmark, link share, list/table/heading context, ancestors).
  const LANDMARK_TAGS = {NAV: "nav", HEADER: "header", FOOTER: "footer", ASIDE: "aside",
                         FORM: "form", BUTTON: "button", SELECT: "form", DIALOG: "dialog",
                         MENU: "nav"};
  const LANDMARK_ROLES = new Set(["navigation", "banner", "contentinfo", "complementary",
                                  "search", "dialog", "alertdialog", "menu", "menubar",
                                  "toolbar", "button", "tablist"]);
  const SEMANTIC = new Set(["H1","H2","H3","H4","H5","H6","LI","TD","TH","PRE","BLOCKQUOTE",
                            "FIGCAPTION","DT","DD","CAPTION"]);
  const infos = new Map();
  const viewArea = window.innerWidth * window.innerHeight;
  let nextId = 0;
  const infoOf = (el) => {
    let inf = infos.get(el);
    if (inf) return inf;
    const parent = el.parentElement;
    const up = parent ? infoOf(parent) : null;
    const cs = getComputedStyle(el);
    const tag = el.tagName;
    const role = (el.getAttribute("role") || "").toLowerCase();
    const display = cs.display;
    const isBlock = !up || !(display.startsWith("inline") || display === "contents");
    inf = {id: nextId++, el: el, up: up};
    infos.set(el, inf);
    inf.block = isBlock ? inf : up.block;
    // Fixed boxes smaller than half the viewport are banners, bars and pop-ups (a
    // page-sized one is an app shell, whose content is the page; sticky boxes are left
    // alone: table headers stick too).
    inf.overlay = cs.position === "fixed" &&
                  ((r) => r.width * r.height < viewArea / 2)(el.getBoundingClientRect());
    inf.fixed = (up && up.fixed) || inf.overlay;
    // visibility is inherited (so the computed value says it all), opacity is not.
    inf.transparent = (up && up.transparent) || cs.opacity === "0";
    inf.hidden = cs.visibility !== "visible" || inf.transparent;
    inf.landmark = LANDMARK_TAGS[tag] || (LANDMARK_ROLES.has(role) ? role : "") ||
                   (up ? up.landmark : "");
    inf.link = tag === "A" || (up ? up.link : false);
    inf.sem = SEMANTIC.has(tag) ? inf : (up ? up.sem : null);
    inf.lists = (up ? up.lists : 0) + (tag === "UL" || tag === "OL" ? 1 : 0);
    inf.ordered = tag === "OL" ? true : (tag === "UL" ? false : (up ? up.ordered : false));
    inf.row = tag === "TR" ? inf.id : (up ? up.row : -1);
    inf.table = tag === "TABLE" ? inf.id : (up ? up.table : -1);
    inf.pre = cs.whiteSpace.startsWith("pre") || cs.whiteSpace === "break-spaces";
    return inf;
  };
  const ancestors = (inf) => { const ids = []; for (let i = inf; i; i = i.up) ids.push(i.id);
                               return ids.reverse(); };
  const blocks = [];
  let current = null, pendingImages = [], blockChars = 0, blocksTruncated = false;
  const closeBlock = () => {
    if (current) {
      const text = current.pre ? current.text.replace(/^\n+|\s+$/g, "")
                               : current.text.replace(/[ \t\r\f]+/g, " ").replace(/ *\n */g, "\n").trim();
      const [x0, y0, x1, y1] = current.box;
      if (text && x1 - x0 >= 1 && y1 - y0 >= 1 && x1 > 0 && y1 > 0) {
        const inf = current.inf, sem = inf.sem;
        blocks.push({kind: "text", tag: sem ? sem.el.tagName.toLowerCase()
                                              : inf.el.tagName.toLowerCase(),
                     text: text, box: current.box, fixed: inf.fixed, landmark: inf.landmark,
                     linkChars: current.linkChars, lists: inf.lists, ordered: inf.ordered,
                     table: inf.table, row: inf.row, ancestors: ancestors(inf)});
        blockChars += text.length;
      }
    }
    current = null;
    for (const img of pendingImages) blocks.push(img);
    pendingImages = [];
  };
  const blockWalker = document.createTreeWalker(
      root, NodeFilter.SHOW_ELEMENT | NodeFilter.SHOW_TEXT, {acceptNode: (n) => {
        if (n.nodeType === 3) return NodeFilter.FILTER_ACCEPT;
        if (SKIP.has(n.tagName) || n.tagName === "svg" || n.tagName === "SVG")
          return NodeFilter.FILTER_REJECT;
        return n.checkVisibility && !n.checkVisibility() ? NodeFilter.FILTER_REJECT
                                                         : NodeFilter.FILTER_ACCEPT; }});
  while ((node = blockWalker.nextNode())) {
    if (blocks.length >= limits.maxBlocks || blockChars >= limits.maxTextChars) {
      blocksTruncated = true; break;
    }
    if (node.nodeType === 1) {
      if (node.tagName === "BR" && current) current.text += "\n";
      if (node.tagName !== "IMG") continue;
      const inf = infoOf(node);
      if (inf.hidden) continue;
      // Every visible image, tiny ones too: which are content (and why the others are
      // not: tracker, icon, decorative, failed load) is decided in Python, with a reason.
      const r = node.getBoundingClientRect();
      const fig = node.closest("figure");
      const cap = fig ? fig.querySelector("figcaption") : null;
      const role = (node.getAttribute("role") || "").toLowerCase();
      pendingImages.push({kind: "image", tag: "img", src: node.currentSrc || node.src || "",
                          alt: node.alt || "", box: box(r),
                          natural: [node.naturalWidth, node.naturalHeight],
                          complete: node.complete,
                          decorative: node.closest('[aria-hidden="true"]') ? "aria_hidden" :
                                      (role === "presentation" || role === "none") ? "presentation" : "",
                          figure: fig ? infoOf(fig).id : -1,
                          figcaption: cap ? (cap.innerText || "").trim().slice(0, 2000) : "",
                          fixed: inf.fixed, landmark: inf.landmark, ancestors: ancestors(inf)});
      if (!current) closeBlock();
      continue;
    }
    if (!node.data.trim() && !(current && current.pre)) {
      if (current && node.data) current.text += " ";
      continue;
    }
    const parent = node.parentElement;
    if (!parent) continue;
    const inf = infoOf(parent);
    if (inf.hidden) continue;
    range.selectNodeContents(node);
    const r = range.getBoundingClientRect();
    if (r.width < 1 || r.height < 1) continue;  // collapsed or clipped away
    if (!current || current.inf !== inf.block) {
      closeBlock();
      current = {inf: inf.block, text: "", box: box(r), linkChars: 0, pre: inf.pre};
    }
    current.text += inf.pre ? node.data : node.data.replace(/\s+/g, " ");
    if (inf.link) current.linkChars += node.data.trim().length;
    const b = box(r), c = current.box;
    current.box = [Math.min(c[0], b[0]), Math.min(c[1], b[1]),
                   Math.max(c[2], b[2]), Math.max(c[3], b[3])];
  }
  closeBlock();

  // Simplified HTML: visible elements only, no scripts/styles, a few attributes kept.
  // The same walk also writes `readerHtml` for the main-text extractor: the same visible
  // elements with the id/class/role hints its boilerplate rules read.
  const READER_ATTRS = ["id", "class", "role", "itemprop", "itemtype", "aria-hidden"];
  let out = [], size = 0, htmlTruncated = false;
  let reader = [], readerSize = 0, readerTruncated = false;
  const esc = (s) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
  const attr = (s) => esc(s).replace(/"/g, "&quot;");
  const emit = (s) => { if (htmlTruncated || size + s.length > limits.maxHtmlChars) {
                          htmlTruncated = true; return; } out.push(s); size += s.length; };
  const readerEmit = (s) => { if (readerTruncated || readerSize + s.length > limits.maxReaderChars) {
                                readerTruncated = true; return; }
                              reader.push(s); readerSize += s.length; };
  const overlay = (el) => infoOf(el).overlay;  // styles computed once, shared with blocks
  const walk = (el) => {
    for (const child of el.childNodes) {
      if (htmlTruncated && readerTruncated) return;
      if (child.nodeType === 3) {
        const t = child.data.replace(/\s+/g, " ");
        if (t.trim()) { emit(esc(t)); readerEmit(esc(t)); }
      } else if (child.nodeType === 1) {
        const tag = child.tagName;
        if (SKIP.has(tag) || !visible(child)) continue;
        const name = tag.toLowerCase();
        if (name === "svg") { emit("<svg></svg>"); readerEmit("<svg></svg>"); continue; }
        let open = "<" + name;
        for (const a of KEEP_ATTRS) {
          const v = child.getAttribute(a);
          if (v !== null && !v.startsWith("data:") && !v.startsWith("javascript:"))
            open += " " + a + '="' + attr(v.slice(0, 300)) + '"';
        }
        let hints = "";
        for (const a of READER_ATTRS) {
          const v = child.getAttribute(a);
          if (v) hints += " " + a + '="' + attr(v.slice(0, 200)) + '"';
        }
        const forReader = !readerTruncated && !overlay(child);
        emit(open + ">");
        if (forReader) readerEmit(open + hints + ">");
        if (VOID.has(tag)) continue;
        if (forReader) { walk(child); }
        else { const keep = readerTruncated; readerTruncated = true; walk(child);
               readerTruncated = keep; }
        emit("</" + name + ">");
        if (forReader) readerEmit("</" + name + ">");
      }
    }
  };
  walk(root);
  const metaRobots = Array.from(document.querySelectorAll('meta[name="robots" i]'))
      .map((m) => m.content || "").join(", ");
  const doc = document.documentElement;
  return asJson({
    title: document.title || "",
    lang: doc.lang || "",
    metaRobots: metaRobots,
    words: words, wordsTruncated: wordsTruncated,
    svgs: svgs, links: links,
    html: "<html" + (doc.lang ? ' lang="' + attr(doc.lang) + '"' : "") + "><body>" +
          out.join("") + "</body></html>",
    htmlTruncated: htmlTruncated,
    blocks: blocks, blocksTruncated: blocksTruncated,
    readerHtml: "<html><head><title>" + esc(document.title || "") + "</title></head><body>" +
                reader.join("") + "</body></html>",
    pageWidth: Math.max(doc.scrollWidth, root.scrollWidth || 0),
    pageHeight: Math.max(doc.scrollHeight, root.scrollHeight || 0),
  });
}
"""
# Hands a page's extraction over as one JSON string (`EXTRACT_JS` ends with it; Python
# reads it with `parse_extracted`). Why not the object itself: Playwright serialises a
# returned object value by value in page JS and then checks every nested value against
# its protocol schema in Python, ~0.15 CPU-s per saved article page (words and blocks
# with boxes); a string crosses as is. toJSON hooks a page may have added (old Prototype.js
# puts one on Array.prototype, which turns arrays into strings) are set aside meanwhile;
# undefined becomes null as Playwright made it None (NaN/Infinity would become null too;
# no box or size here holds one). A page that replaced JSON.stringify gets the object path.
AS_JSON_JS = r"""
const asJson = (value) => {
  if (!/\{\s*\[native code\]\s*\}/.test(Function.prototype.toString.call(JSON.stringify)))
    return value;
  const owners = [Object.prototype, Array.prototype, String.prototype, Number.prototype,
                  Boolean.prototype];
  const hooks = owners.map((o) => Object.getOwnPropertyDescriptor(o, "toJSON"));
  owners.forEach((o, i) => { if (hooks[i]) delete o.toJSON; });
  try {
    return JSON.stringify(value, (k, v) => (v === undefined ? null : v));
  } finally {
    owners.forEach((o, i) => { if (hooks[i]) Object.defineProperty(o, "toJSON", hooks[i]); });
  }
};
"""
EXTRACT_JS = "(limits) => {\n" + AS_JSON_JS + "return (" + EXTRACT_JS.strip() + ")(limits);\n}"


def parse_extracted(value: Any) -> dict[str, Any]:
    """What `EXTRACT_JS` returned: its JSON string parsed (or the object itself, on a page
    that replaced JSON.stringify)."""
    return json.loads(value) if isinstance(value, str) else value


DEFAULT_LIMITS = {"maxWords": 8000, "maxY": 8192, "maxSvgs": 20, "maxSvgChars": 300_000, "minSvgSide": 80,
                  "maxLinks": 2000, "maxHtmlChars": 200_000, "maxTextChars": 500_000,
                  "maxReaderChars": 2_000_000, "maxBlocks": 8000}


def group_lines(words: list[list[Any]]) -> list[dict[str, Any]]:
    """Join words (document order, page px) into lines: same block, same baseline band,
    left to right without a column-sized gap."""
    lines: list[dict[str, Any]] = []
    current: dict[str, Any] | None = None
    for text, x0, y0, x1, y1, block in words:
        height = max(y1 - y0, 1.0)
        if current is not None:
            cx0, cy0, cx1, cy1 = current["box"]
            same_band = abs((y0 + y1) / 2 - (cy0 + cy1) / 2) < 0.5 * max(height, cy1 - cy0)
            gap = x0 - cx1
            if current["block"] == block and same_band and -2 <= gap <= 3 * height:
                current["text"] += " " + text
                current["box"] = [min(cx0, x0), min(cy0, y0), max(cx1, x1), max(cy1, y1)]
                current["words"].append([text, x0, y0, x1, y1])
                continue
        current = {"text": text, "box": [x0, y0, x1, y1], "block": block,
                   "words": [[text, x0, y0, x1, y1]]}
        lines.append(current)
    return lines


def lines_in_region(lines: list[dict[str, Any]], top: float, width: float,
                    height: float) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Lines (and their words) whose vertical centre lies in [top, top+height), with boxes
    normalised to that region (0..1, clipped)."""
    out_lines, out_words = [], []
    bottom = top + height
    for line in lines:
        x0, y0, x1, y1 = line["box"]
        if not top <= (y0 + y1) / 2 < bottom or x0 >= width:
            continue
        out_lines.append({"box": normalise_box(line["box"], top, width, height),
                          "text": line["text"]})
        # Inlined `normalise_box` (the same arithmetic): ~1,200 words a page, each in the
        # viewport and one tile, made this the page stage's costliest Python loop.
        for text, wx0, wy0, wx1, wy1 in line["words"]:
            if wx0 < width:
                out_words.append({"box": [_unit(wx0 / width), _unit((wy0 - top) / height),
                                          _unit(wx1 / width), _unit((wy1 - top) / height)],
                                  "text": text})
    return out_lines, out_words


def normalise_box(box: list[float], top: float, width: float, height: float) -> list[float]:
    x0, y0, x1, y1 = box
    return [_unit(x0 / width), _unit((y0 - top) / height), _unit(x1 / width),
            _unit((y1 - top) / height)]


def _unit(value: float) -> float:
    """`value` clipped to 0..1 and rounded to 5 places (as ``round(min(max(v, 0.0), 1.0),
    5)``, NaN and -0.0 included)."""
    # Comparisons rather than min/max calls: this runs ~2,500 times a page.
    return round(0.0 if value < 0.0 else 1.0 if value > 1.0 else value, 5)  # noqa: FURB136

"""Caption pairs from a crawled page: each main-content picture with its ``<figcaption>``
or, failing that, its ``alt`` text.

Only pictures that made it through `pipelines.web.interleave.judge_images` (main content,
real bytes, not tiny or decorative) are paired. A figure's caption describes its picture
only when the figure holds that one picture; a caption shared by several pictures is not
used for any of them (their alt texts still may be). Each candidate text goes through the
one caption rule (`pipelines.core.caption_quality.caption_problem`): empty, file-name-like
(``IMG_1234.jpg``) and boilerplate (``image``, ``click to enlarge``) text is dropped with
its reason, recorded in the page's ``meta["web"]["captions"]`` and counted.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from typing import Any

from pipelines.core.caption_quality import EMPTY, caption_problem, normalise
from pipelines.core.sample import Sample
from pipelines.web.interleave import ImageVerdict, PageImages, derived_locator

MAX_CAPTION_CHARS = 2000


def choose_caption(verdict: ImageVerdict, figure_images: Mapping[int, int]
                   ) -> tuple[str, str, str]:
    """(caption, source, problem) of one picture: the figure's caption when it is usable
    and the figure's own, else the alt text; `problem` names why neither is usable."""
    block = verdict.block
    problems = []
    figure = block.get("figure", -1)
    figcaption = normalise(block.get("figcaption", ""))
    if figcaption and figure_images.get(figure, 0) == 1:
        problem = caption_problem(figcaption)
        if problem is None:
            return figcaption[:MAX_CAPTION_CHARS], "figcaption", ""
        problems.append(problem)
    alt = normalise(block.get("alt", ""))
    problem = caption_problem(alt)
    if problem is None:
        return alt[:MAX_CAPTION_CHARS], "alt", ""
    # The alt's problem says most (a figcaption problem only when there is no alt at all).
    return "", "", problem if problem != EMPTY or not problems else problems[0]


def caption_pairs(page: Sample, url: str, web: Mapping[str, Any],
                  blocks: list[Mapping[str, Any]], images: PageImages
                  ) -> tuple[list[Sample], dict[str, Any]]:
    """The page's caption samples and what ``meta["web"]["captions"]`` records of them
    (pairs made, and each picture's dropped caption with its reason)."""
    figure_images = Counter(b.get("figure", -1) for b in blocks if b["kind"] == "image")
    samples, dropped = [], []
    for verdict in images.usable:
        caption, source, problem = choose_caption(verdict, figure_images)
        if problem:
            dropped.append({"block": verdict.index, "src": verdict.block.get("src", "")[:500],
                            "alt": verdict.block.get("alt", ""), "reason": problem})
            continue
        pair = page.derive(derived_locator(url, "caption", verdict.index), image=verdict.png,
                           text=caption)
        samples.append(pair.with_meta("web", {
            "kind": "caption", "url": url, "final_url": web.get("final_url", url),
            "title": web.get("title", ""), "lang": web.get("lang"), "caption": caption,
            "caption_source": source, **verdict.record(), "render": web.get("render", {})}))
    record = {"pairs": len(samples),
              "dropped_by_reason": dict(sorted(Counter(d["reason"] for d in dropped).items())),
              "dropped": dropped}
    return samples, record

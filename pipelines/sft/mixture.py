"""The SFT mixture: target weights per taxonomy node, sampling to them, and the report.

A mixture file (YAML) names target shares for taxonomy nodes at any level, plus two
special buckets: ``text_only`` (conversations without an image, e.g. imported text
dialogues) and ``unlabeled``::

    name: default
    total: null          # conversations to build; null = as many as there are candidates;
                         # "proportional" = the most the caps allow at exactly these shares
    max_repeat: 3        # an under-represented candidate is repeated at most this often
    seed: 0
    weights:
      text_only: 0.479
      analysis.data_chart_analysis: 0.041
      recognition.ocr_transcription: 0.15

Each candidate (one source sample × one template family, or a pair) falls in the most
specific bucket whose node is its leaf or an ancestor of it. Weights are normalised over the
buckets that have candidates; each bucket's target is ``share × total``. Over-represented
buckets are down-sampled (a seeded hash order, so the choice is stable); under-represented
ones are up-sampled by repeating candidates with different phrasings (``variant`` 1, 2...)
up to ``max_repeat`` and the number of distinct phrasings; what is still missing is reported
as a shortfall. With ``total: proportional`` the total is instead the largest one at which
every bucket can meet its share within the caps, so the built mix has the target shares
exactly (smaller, no shortfall). `mixture_report` gives before/after counts, `plot_mixture` the figure.
"""

from __future__ import annotations

import difflib
import logging
import os
from collections import Counter, defaultdict
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Mapping, Sequence

import yaml

from pipelines.sft.templates import UNLABELED, choice_hash

log = logging.getLogger(__name__)

TEXT_ONLY = "text_only"
PROPORTIONAL = "proportional"
SPECIAL_BUCKETS = (TEXT_ONLY, UNLABELED)
DEFAULT_MIXTURE = os.path.join(os.path.dirname(__file__), "mixtures", "default.yaml")


class MixtureError(ValueError):
    """A mixture file that cannot be used; the message lists every problem."""


# -- the taxonomy, as far as the mixture needs it -------------------------------------------
def load_tree(path: str | None = None):
    """The validated taxonomy (`taxonomy.tree.Taxonomy`), or None when it cannot be loaded
    (then buckets fall back to id prefixes and labels carry no path)."""
    try:
        from taxonomy.tree import load_taxonomy

        return load_taxonomy(path)
    except (ImportError, OSError, ValueError) as exc:
        log.warning("taxonomy not loaded (%s): mixture buckets fall back to id prefixes", exc)
        return None


def node_chain(tree, node: str) -> list[str]:
    """`node` (after ``replaced_by``) and its ancestors, nearest first; parent links, not id
    prefixes, so buckets stay right after a node moves."""
    if tree is None:
        return _prefix_chain(node)
    resolved = tree.resolve(node) or node
    return [n.id for n in reversed(tree.ancestors(resolved))] or [node]


def node_path(tree, node: str) -> list[str]:
    """Display names from the main category down to `node`."""
    return tree.path(tree.resolve(node) or node)


def tree_version(tree) -> int:
    return tree.version


def load_labeler(threshold: float | None = None) -> Callable[[str, int], dict[str, Any]]:
    """A function (prompt, image count) → ``meta["taxonomy"]`` dict, from the taxonomy
    labeler (keyword rules + MiniLM embeddings, offline).

    When the labeler cannot be loaded, every prompt is 'unlabeled' with the reason why
    (an import still succeeds; `vlforge label` can label the run later).
    """
    try:
        from taxonomy.labeler import Labeler

        labeler = Labeler(threshold=threshold).open()
    except (ImportError, RuntimeError, OSError) as exc:
        log.warning("taxonomy labeler unavailable (%s): imported prompts stay unlabeled", exc)
        why = f"labeler unavailable: {exc}"  # `exc` is unbound once the except block ends
        return lambda text, images=1: {"leaf": UNLABELED, "confidence": 0.0, "reason": why}

    def label(text: str, images: int = 1) -> dict[str, Any]:
        return labeler.label_prompt(text, images=images).as_meta()

    return label


# -- the mixture file ------------------------------------------------------------------------
@dataclass(frozen=True)
class Mixture:
    """Target shares per bucket (node id or special bucket) and the sampling settings."""

    name: str
    weights: Mapping[str, float]
    total: int | str | None = None  # an int, None (= candidates) or "proportional"
    max_repeat: int = 3
    seed: int = 0
    path: str = ""


def load_mixture(path: str, tree=None) -> Mixture:
    """Read and validate a mixture YAML; raises `MixtureError` listing every problem."""
    try:
        with open(path, encoding="utf-8") as handle:
            data = yaml.safe_load(handle) or {}
    except OSError as exc:
        raise MixtureError(f"{path}: cannot read mixture file: {exc}") from exc
    except yaml.YAMLError as exc:
        raise MixtureError(f"{path}: not valid YAML: {exc}") from exc
    problems = []
    weights = data.get("weights")
    if not isinstance(weights, Mapping) or not weights:
        problems.append("'weights' must map taxonomy node ids (or text_only/unlabeled) to numbers")
        weights = {}
    clean: dict[str, float] = {}
    known = set(tree.nodes) if tree else set()
    for node, weight in weights.items():
        if not isinstance(weight, (int, float)) or isinstance(weight, bool) or weight < 0:
            problems.append(f"weight of {node!r} must be a number >= 0, got {weight!r}")
            continue
        if tree and node not in known and node not in SPECIAL_BUCKETS:
            close = difflib.get_close_matches(str(node), sorted(known), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            problems.append(f"unknown taxonomy node {node!r}{hint}")
            continue
        clean[str(node)] = float(weight)
    if weights and not any(clean.values()) and not problems:
        problems.append("all weights are 0")
    total = data.get("total")
    if total is not None and total != PROPORTIONAL and (
            not isinstance(total, int) or isinstance(total, bool) or total <= 0):
        problems.append(f"'total' must be a positive integer, null or {PROPORTIONAL!r}, "
                        f"got {total!r}")
    max_repeat = data.get("max_repeat", 3)
    if not isinstance(max_repeat, int) or max_repeat < 1:
        problems.append(f"'max_repeat' must be an integer >= 1, got {max_repeat!r}")
    unknown_keys = set(data) - {"name", "weights", "total", "max_repeat", "seed", "description"}
    if unknown_keys:
        problems.append(f"unknown keys: {', '.join(sorted(unknown_keys))} (expected name, "
                        "description, weights, total, max_repeat, seed)")
    if problems:
        raise MixtureError(f"{path}: " + "; ".join(problems))
    return Mixture(name=str(data.get("name") or os.path.splitext(os.path.basename(path))[0]),
                   weights=clean, total=total, max_repeat=max_repeat,
                   seed=int(data.get("seed", 0)), path=os.path.abspath(path))


# -- candidates and sampling -----------------------------------------------------------------
@dataclass(frozen=True)
class Candidate:
    """One conversation the sources can give: a family applied to one (or two) samples.

    sources: ``({"run", "shard", "key"}, ...)``; repeat_cap: how many distinct renderings
    exist (1 for copied conversations).
    """

    family: str
    leaf: str
    has_image: bool
    sources: tuple[Mapping[str, str], ...]
    repeat_cap: int = 1

    @property
    def uid(self) -> str:
        return "+".join(f"{s['run']}#{s['key']}" for s in self.sources) + "|" + self.family


def bucket_of(candidate: Candidate, buckets: Iterable[str], tree=None) -> str | None:
    """The most specific bucket that holds the candidate, or None."""
    buckets = set(buckets)
    if not candidate.has_image and TEXT_ONLY in buckets:
        return TEXT_ONLY
    if candidate.leaf in (UNLABELED, "", None):
        return UNLABELED if UNLABELED in buckets else None
    return next((node for node in node_chain(tree, candidate.leaf) if node in buckets), None)


def _prefix_chain(leaf: str) -> list[str]:
    parts = leaf.split(".")
    return [".".join(parts[:i]) for i in range(len(parts), 0, -1)]


@dataclass
class Selection:
    """What the sampler chose: (candidate, variant) pairs, and the numbers behind it."""

    chosen: list[tuple[Candidate, int]]
    buckets: dict[str, dict[str, Any]]
    before_by_leaf: dict[str, int]
    after_by_leaf: dict[str, int]
    not_in_mixture: int
    total_target: int


def select(candidates: Sequence[Candidate], mixture: Mixture, tree=None) -> Selection:
    """Sample `candidates` to the mixture's shares (see the module docstring)."""
    grouped: dict[str, list[Candidate]] = defaultdict(list)
    outside = 0
    for candidate in candidates:
        bucket = bucket_of(candidate, (b for b, w in mixture.weights.items() if w > 0), tree)
        if bucket is None:
            outside += 1
        else:
            grouped[bucket].append(candidate)
    present = {b: w for b, w in mixture.weights.items() if w > 0 and grouped.get(b)}
    weight_sum = sum(present.values())
    if mixture.total == PROPORTIONAL:
        # The bucket with the least room (candidates x allowed repeats, per unit of share)
        # decides how many conversations the exact shares allow.
        total = min((int(sum(min(mixture.max_repeat, c.repeat_cap) for c in grouped[b])
                         * weight_sum / w) for b, w in present.items()), default=0)
    else:
        total = mixture.total or sum(len(v) for v in grouped.values())
    targets = _apportion(total, present)
    chosen: list[tuple[Candidate, int]] = []
    report: dict[str, dict[str, Any]] = {}
    for bucket, weight in sorted(mixture.weights.items()):
        pool = sorted(grouped.get(bucket, []),
                      key=lambda c: choice_hash(mixture.seed, c.uid))
        share = weight / weight_sum if bucket in present else 0.0
        target = targets.get(bucket, 0)
        picked = _fill(pool, target, mixture.max_repeat)
        chosen.extend(picked)
        report[bucket] = {"weight": weight, "share": share, "target": target,
                          "available": len(pool), "selected": len(picked),
                          "repeats": sum(1 for _, v in picked if v > 0),
                          "shortfall": max(0, target - len(picked))}
        if weight > 0 and not pool:
            log.info("mixture bucket %s has weight %s but no candidates", bucket, weight)
    return Selection(
        chosen=chosen, buckets=report,
        before_by_leaf=dict(sorted(Counter(c.leaf or UNLABELED for c in candidates).items())),
        after_by_leaf=dict(sorted(Counter(c.leaf or UNLABELED for c, _ in chosen).items())),
        not_in_mixture=outside, total_target=total)


def _apportion(total: int, weights: Mapping[str, float]) -> dict[str, int]:
    """Integer targets summing to `total` in proportion to `weights` (largest remainders)."""
    weight_sum = sum(weights.values())
    if not weight_sum:
        return {}
    exact = {b: total * w / weight_sum for b, w in weights.items()}
    targets = {b: int(v) for b, v in exact.items()}
    by_remainder = sorted(exact, key=lambda b: (targets[b] - exact[b], b))
    for bucket in by_remainder[:total - sum(targets.values())]:
        targets[bucket] += 1
    return targets


def _fill(pool: list[Candidate], target: int, max_repeat: int) -> list[tuple[Candidate, int]]:
    """The first `target` of `pool`, or every one plus repeats round by round up to the caps."""
    if target <= len(pool):
        return [(c, 0) for c in pool[:target]]
    picked = [(c, 0) for c in pool]
    variant = 1
    while len(picked) < target:
        round_ = [(c, variant) for c in pool if variant < min(max_repeat, c.repeat_cap)]
        if not round_:
            break
        picked.extend(round_[:target - len(picked)])
        variant += 1
    return picked


# -- report and plot -------------------------------------------------------------------------
def mixture_report(selection: Selection, mixture: Mixture,
                   written_by_leaf: Mapping[str, int] | None = None) -> dict[str, Any]:
    """The JSON-able before/after account of one build."""
    def by_bucket(field_: str) -> dict[str, int]:
        return {b: r[field_] for b, r in selection.buckets.items()}

    report = {
        "mixture": mixture.name, "mixture_path": mixture.path, "seed": mixture.seed,
        "max_repeat": mixture.max_repeat, "total_target": selection.total_target,
        "candidates": sum(selection.before_by_leaf.values()),
        "selected": len(selection.chosen), "not_in_mixture": selection.not_in_mixture,
        "before_by_bucket": by_bucket("available"), "target_by_bucket": by_bucket("target"),
        "after_by_bucket": by_bucket("selected"), "buckets": selection.buckets,
        "before_by_leaf": selection.before_by_leaf, "after_by_leaf": selection.after_by_leaf,
        "empty_buckets": sorted(b for b, r in selection.buckets.items()
                                if r["weight"] > 0 and not r["available"]),
    }
    if written_by_leaf is not None:
        report["written_by_leaf"] = dict(sorted(written_by_leaf.items()))
        report["written"] = sum(written_by_leaf.values())
    return report


def plot_mixture(report: Mapping[str, Any], path: str) -> None:
    """A bar chart of each bucket's share before (candidates), target and after (selected)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    buckets = [b for b in report["buckets"]
               if report["before_by_bucket"][b] or report["after_by_bucket"][b]
               or report["target_by_bucket"][b]]
    series = [("before (candidates)", report["before_by_bucket"]),
              ("target", report["target_by_bucket"]),
              ("after (selected)", report["after_by_bucket"])]
    fig, ax = plt.subplots(figsize=(11, 0.45 * len(buckets) + 1.8))
    height = 0.27
    for i, (label, counts) in enumerate(series):
        total = sum(counts[b] for b in buckets) or 1
        shares = [100 * counts[b] / total for b in buckets]
        bars = ax.barh([y + (i - 1) * height for y in range(len(buckets))], shares, height,
                       label=label)
        for bar, b in zip(bars, buckets):
            ax.text(bar.get_width() + 0.3, bar.get_y() + height / 2, str(counts[b]),
                    va="center", fontsize=7)
    ax.set_yticks(range(len(buckets)), buckets, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("share of conversations (%), counts at bar ends")
    ax.set_title(f"SFT mixture '{report['mixture']}': {report['candidates']} candidates → "
                 f"{report['selected']} selected")
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)

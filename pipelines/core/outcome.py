"""What happened to an item that did not (only) become a written sample.

`Outcome` is the one type for "this item did not (only) become a sample" that crosses module
boundaries: stages yield it, the PDF renderer returns it for a page or document it cannot
render, the crawl policy and the browser return it for a URL they refuse. Code that raises
internally converts to an Outcome in one place (`StageFn.process` for any exception).

Every input item ends as exactly one of: a written `Sample`, an `Outcome` of kind
``dropped`` (a filter said no, with a reason), ``error`` (something failed, with the error
type and message, and enough of the input to retry it) or ``expanded`` (it fanned out into
``parts`` child items, e.g. a document into pages, each of which is accounted for in turn).
`vlforge audit` checks that rule over a whole run.
"""

from __future__ import annotations

import dataclasses
import json
import traceback
from dataclasses import dataclass, field
from typing import Any, Mapping

from pipelines.core.sample import Sample

KINDS = ("dropped", "error", "expanded")


@dataclass(frozen=True)
class Outcome:
    """A drop, an error or an expansion, keyed by the item it answers for.

    kind: "dropped" | "error" | "expanded".
    stage: the stage that decided (e.g. "RenderPdfPages").
    reason: a short machine-readable reason ("blank_page", "Timeout", "robots_disallowed").
    message: the human explanation (the exception text for errors).
    input_id: the root input this item descends from.
    item_id: the accounting unit (a page id, a URL id).
    parent_item: for a child item (a page), the item it was expanded from.
    key: the sample key, when one was known.
    input_ref: JSON-able description of the input sufficient to retry this item alone.
    parts: for "expanded", how many child items it fanned out into.
    task: the task (resumable unit of work) that produced it.
    """

    kind: str
    stage: str
    reason: str
    message: str = ""
    input_id: str = ""
    item_id: str = ""
    parent_item: str = ""
    key: str = ""
    input_ref: Mapping[str, Any] = field(default_factory=dict)
    parts: int = 0
    task: str = ""

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"Outcome kind must be one of {KINDS}, got {self.kind!r}")

    # -- constructors ------------------------------------------------------------------
    @classmethod
    def dropped(cls, sample: Sample, stage: str, reason: str, message: str = "") -> "Outcome":
        return cls._for_sample("dropped", sample, stage, reason, message)

    @classmethod
    def error(cls, sample: Sample, stage: str, exc: BaseException | str,
              reason: str | None = None) -> "Outcome":
        message, error_type = _describe(exc)
        return cls._for_sample("error", sample, stage, reason or error_type, message)

    @classmethod
    def expanded(cls, sample: Sample, stage: str, parts: int, message: str = "") -> "Outcome":
        out = cls._for_sample("expanded", sample, stage, "expanded", message)
        return dataclasses.replace(out, parts=parts)

    @classmethod
    def of(cls, kind: str, reason: str, message: str = "") -> "Outcome":
        """A verdict not yet tied to an item: what a renderer, a crawl policy or a page
        check returns (picklable, so it also crosses the PDF renderer's process boundary).
        The stage that receives it ties it to the item with `about`."""
        return cls(kind=kind, stage="", reason=reason, message=message)

    def about(self, sample: Sample, stage: str) -> "Outcome":
        """This verdict for `sample` (its key, item, input ref and task) decided in `stage`."""
        out = self._for_sample(self.kind, sample, stage, self.reason, self.message)
        return dataclasses.replace(out, parts=self.parts)

    @classmethod
    def _for_sample(cls, kind: str, sample: Sample, stage: str, reason: str,
                    message: str) -> "Outcome":
        lineage = sample.lineage
        return cls(kind=kind, stage=stage, reason=reason, message=message,
                   input_id=lineage.get("input_id", ""), item_id=sample.item_id,
                   parent_item=lineage.get("parent_item", ""),
                   key=sample.key, input_ref=dict(lineage.get("input_ref", {})),
                   task=lineage.get("task", ""))

    # -- serialisation -----------------------------------------------------------------
    def to_row(self) -> dict[str, Any]:
        row = dataclasses.asdict(self)
        row["input_ref"] = json.dumps(self.input_ref, sort_keys=True, default=str)
        return row

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> "Outcome":
        values = dict(row)
        ref = values.get("input_ref") or "{}"
        values["input_ref"] = json.loads(ref) if isinstance(ref, str) else dict(ref)
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in names})


def _describe(exc: BaseException | str) -> tuple[str, str]:
    if isinstance(exc, str):
        return exc, "Error"
    text = f"{type(exc).__name__}: {exc}".strip()
    tail = traceback.format_exception(type(exc), exc, exc.__traceback__)[-3:]
    return (text + "\n" + "".join(tail)).strip()[:4000], type(exc).__name__

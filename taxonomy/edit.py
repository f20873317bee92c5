"""Edit the taxonomy YAML in place without breaking the data labeled with it.

Every edit works on the ruamel.yaml round-trip document (comments, key order and flow
style survive), is validated before anything is written, bumps ``version`` by one and
appends a migration entry ``{version, op, ...}`` that `pipelines.label.migrate` and
``vlforge taxonomy diff`` read. Ids are stable: a node is never deleted, only deprecated
with ``replaced_by``, so every label ever written can still be resolved.

Operations: `add`, `rename` (display name, or the id via a deprecating copy), `move`
(new parent), `merge` (SRC into DST: children move, examples/keywords join DST, SRC is
deprecated) and `deprecate` (with a replacement).
"""

from __future__ import annotations

import copy
import io
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from ruamel.yaml.comments import CommentedMap, CommentedSeq

from taxonomy.tree import (
    DEFAULT_PATH,
    ID_PATTERN,
    Taxonomy,
    TaxonomyError,
    check,
    parse_text,
    round_trip_yaml,
)


class EditError(ValueError):
    """An edit that cannot be applied; the message says why and what to do instead."""


@dataclass
class TaxonomyDocument:
    """A taxonomy file opened for editing (the ruamel document plus where it came from)."""

    path: Path
    data: Any

    @classmethod
    def open(cls, path: str | Path | None = None) -> "TaxonomyDocument":
        path = Path(path) if path else DEFAULT_PATH
        data = parse_text(path.read_text(encoding="utf-8"), str(path))
        problems, _ = check(data, str(path))
        if problems:
            raise TaxonomyError(str(path), problems)
        return cls(path, data)

    # -- lookups -----------------------------------------------------------------------
    @property
    def nodes(self) -> CommentedSeq:
        return self.data["nodes"]

    def index(self, node_id: str) -> int:
        for i, node in enumerate(self.nodes):
            if node.get("id") == node_id:
                return i
        raise EditError(f"no node with id {node_id!r}" + _did_you_mean(node_id, self.ids()))

    def node(self, node_id: str) -> CommentedMap:
        return self.nodes[self.index(node_id)]

    def ids(self) -> list[str]:
        return [n.get("id") for n in self.nodes]

    def active(self, node_id: str) -> CommentedMap:
        node = self.node(node_id)
        if node.get("deprecated"):
            raise EditError(f"{node_id} is deprecated (replaced by {node.get('replaced_by')}); "
                            "edit the replacement instead")
        return node

    def children(self, node_id: str) -> list[CommentedMap]:
        return [n for n in self.nodes if n.get("parent") == node_id]

    def subtree_ids(self, node_id: str) -> set[str]:
        out, stack = set(), [node_id]
        while stack:
            current = stack.pop()
            out.add(current)
            stack.extend(c["id"] for c in self.children(current))
        return out

    @property
    def version(self) -> int:
        return int(self.data["version"])

    # -- writing -----------------------------------------------------------------------
    def text(self) -> str:
        buffer = io.StringIO()
        round_trip_yaml().dump(self.data, buffer)
        return buffer.getvalue()

    def commit(self, op: str, **fields: Any) -> dict[str, Any]:
        """Bump the version, log the migration, validate, then write atomically."""
        self.data["version"] = self.version + 1
        entry = CommentedMap([("version", self.version), ("op", op)])
        for key, value in fields.items():
            if value is not None:
                entry[key] = value
        entry["date"] = time.strftime("%Y-%m-%d", time.gmtime())
        migrations = self.data.get("migrations")
        if not isinstance(migrations, CommentedSeq):
            migrations = CommentedSeq(migrations or [])
            self.data["migrations"] = migrations
        migrations.fa.set_block_style()  # `migrations: []` would otherwise stay a flow list
        migrations.append(entry)
        text = self.text()
        problems, _ = check(parse_text(text, str(self.path)), str(self.path))
        if problems:  # an edit must never leave an invalid file behind
            raise TaxonomyError(f"{self.path} (after {op}, not written)", problems)
        tmp = self.path.with_name(f".{self.path.name}.tmp")
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, self.path)
        return dict(entry)


# -- operations ------------------------------------------------------------------------
def add_node(doc: TaxonomyDocument, node_id: str, name: str, parent: str | None,
             description: str, keywords: Sequence[str] = (),
             examples: Sequence[str] = ()) -> dict[str, Any]:
    """Add a node under `parent` (None: a new main category), placed after its siblings."""
    if not ID_PATTERN.match(node_id):
        raise EditError(f"invalid id {node_id!r}: use lowercase words joined by '.', "
                        f"e.g. {(parent + '.' if parent else '')}my_category")
    if node_id in doc.ids():
        raise EditError(f"id {node_id!r} already exists (ids are never reused, even deprecated "
                        "ones); pick another id")
    if not description.strip():
        raise EditError("a description is required: the labeler matches prompts against it")
    if parent is not None:
        doc.active(parent)
    node = CommentedMap([("id", node_id), ("name", name), ("parent", parent),
                         ("description", description)])
    node["keywords"] = _flow(keywords)
    node["examples"] = CommentedSeq(list(examples))
    # Insert after the parent's subtree so that the file still reads top-down.
    subtree = doc.subtree_ids(parent) if parent else set(doc.ids())
    position = max((i for i, n in enumerate(doc.nodes) if n["id"] in subtree), default=-1) + 1
    if position > 0:
        _move_trailing_comment(doc.nodes[position - 1], node)
    doc.nodes.insert(position, node)
    return doc.commit("add", id=node_id, parent=parent)


def _trailing_comment(container: Any) -> tuple[Any, Any, int] | None:
    """Where ruamel keeps the comment lines that follow a node: (container, key, slot).

    ruamel hangs a comment block (like the ``# ---- Conversion`` header) on the *last*
    scalar before it, deep inside the previous node. Without moving it, a node inserted
    after that one would print below the next section's header.
    """
    if isinstance(container, CommentedMap) and container:
        key, slot = list(container.keys())[-1], 2
    elif isinstance(container, CommentedSeq) and container:
        key, slot = len(container) - 1, 0
    else:
        return None
    value = container[key]
    if isinstance(value, (CommentedMap, CommentedSeq)):
        inner = _trailing_comment(value)
        if inner is not None:
            return inner
    entry = container.ca.items.get(key)
    if entry and len(entry) > slot and entry[slot] is not None:
        return container, key, slot
    return None


def _move_trailing_comment(previous: CommentedMap, node: CommentedMap) -> None:
    """Hand the comment after `previous` to `node`, which will be inserted after it."""
    where = _trailing_comment(previous)
    if where is None:
        return
    container, key, slot = where
    token = container.ca.items[key][slot]
    container.ca.items[key][slot] = None
    examples = node["examples"]
    if len(examples):
        examples.ca.items[len(examples) - 1] = [token, None]
    else:
        node.ca.items["examples"] = [None, None, token, None]


def rename_node(doc: TaxonomyDocument, node_id: str, new_name: str | None = None,
                new_id: str | None = None) -> dict[str, Any]:
    """Change the display name, and/or the id (the old id stays, deprecated, pointing at it)."""
    node = doc.active(node_id)
    if not new_name and not new_id:
        raise EditError("nothing to rename: give a new name and/or --new-id")
    old_name = node["name"]
    if new_id and new_id != node_id:
        if new_id in doc.ids():
            raise EditError(f"id {new_id!r} already exists; pick another id")
        if not ID_PATTERN.match(new_id):
            raise EditError(f"invalid id {new_id!r}: lowercase words joined by '.'")
        fresh = copy.deepcopy(node)
        fresh["id"] = new_id
        if new_name:
            fresh["name"] = new_name
        doc.nodes.insert(doc.index(node_id) + 1, fresh)
        for child in doc.children(node_id):
            child["parent"] = new_id
        _retire(node, new_id)  # the old id keeps resolving for labels already written
    else:
        new_id = None
        node["name"] = new_name
    return doc.commit("rename", id=node_id, new_id=new_id, old_name=old_name,
                      name=new_name or old_name)


def move_node(doc: TaxonomyDocument, node_id: str, new_parent: str | None) -> dict[str, Any]:
    """Give a node (and its subtree) a new parent; its id stays the same."""
    node = doc.active(node_id)
    if new_parent is not None:
        doc.active(new_parent)
        if new_parent in doc.subtree_ids(node_id):
            raise EditError(f"cannot move {node_id} under {new_parent}: that is inside its own "
                            "subtree (it would make a cycle)")
    old_parent = node.get("parent")
    if old_parent == new_parent:
        raise EditError(f"{node_id} is already under {new_parent}")
    node["parent"] = new_parent
    return doc.commit("move", id=node_id, old_parent=old_parent, parent=new_parent)


def merge_nodes(doc: TaxonomyDocument, source: str, target: str) -> dict[str, Any]:
    """Merge `source` into `target`: children move, examples and keywords join, source retires."""
    src, dst = doc.active(source), doc.active(target)
    if source == target:
        raise EditError("cannot merge a node into itself")
    if target in doc.subtree_ids(source):
        raise EditError(f"cannot merge {source} into its own descendant {target}; "
                        f"move {target} out first")
    moved = []
    for child in doc.children(source):
        if not child.get("deprecated"):
            child["parent"] = target
            moved.append(child["id"])
    for key in ("keywords", "examples"):
        have = dst.get(key)
        if have is None:
            have = dst[key] = CommentedSeq()
        for value in src.get(key) or []:
            if value not in have:
                have.append(value)
    _retire(src, target)
    return doc.commit("merge", id=source, into=target, moved_children=moved or None)


def deprecate_node(doc: TaxonomyDocument, node_id: str, replaced_by: str) -> dict[str, Any]:
    """Retire a node; its samples migrate to `replaced_by`."""
    node = doc.active(node_id)
    doc.active(replaced_by)
    if replaced_by in doc.subtree_ids(node_id):
        raise EditError(f"{replaced_by} is inside {node_id}'s subtree and would be retired too")
    kids = [c["id"] for c in doc.children(node_id) if not c.get("deprecated")]
    if kids:
        raise EditError(f"{node_id} still has active children ({', '.join(kids)}); move them "
                        f"first (vlforge taxonomy move CHILD NEW_PARENT) or merge {node_id} "
                        f"into {replaced_by} (vlforge taxonomy merge {node_id} {replaced_by})")
    _retire(node, replaced_by)
    return doc.commit("deprecate", id=node_id, replaced_by=replaced_by)


def _retire(node: CommentedMap, replaced_by: str) -> None:
    node["deprecated"] = True
    node["replaced_by"] = replaced_by


def _flow(values: Sequence[str]) -> CommentedSeq:
    seq = CommentedSeq(list(values))
    seq.fa.set_flow_style()
    return seq


def _did_you_mean(wrong: str, ids: list[str]) -> str:
    import difflib

    close = difflib.get_close_matches(wrong, ids, n=1)
    return f"; did you mean {close[0]!r}?" if close else "; see 'vlforge taxonomy show'"


# -- diff ------------------------------------------------------------------------------
def diff_taxonomies(old: Taxonomy, new: Taxonomy) -> dict[str, Any]:
    """What changed between two versions: added, renamed, moved, deprecated, text changes."""
    out: dict[str, Any] = {"from_version": old.version, "to_version": new.version,
                           "added": [], "removed": [], "renamed": [], "moved": [],
                           "deprecated": [], "edited": []}
    for node_id, node in new.nodes.items():
        before = old.nodes.get(node_id)
        if before is None:
            out["added"].append({"id": node_id, "path": new.path(node_id)})
            continue
        if before.name != node.name:
            out["renamed"].append({"id": node_id, "from": before.name, "to": node.name})
        if before.parent != node.parent:
            out["moved"].append({"id": node_id, "from": before.parent, "to": node.parent})
        if node.deprecated and not before.deprecated:
            out["deprecated"].append({"id": node_id, "replaced_by": node.replaced_by})
        changed = [f for f in ("description", "keywords", "examples")
                   if getattr(before, f) != getattr(node, f)]
        if changed:
            out["edited"].append({"id": node_id, "fields": changed})
    out["removed"] = [{"id": i, "fix": "ids must never be deleted; restore it and deprecate "
                                       "it with replaced_by instead"}
                      for i in old.nodes if i not in new.nodes]
    out["migrations"] = [m for m in new.migrations if int(m.get("version", 0)) > old.version]
    return out

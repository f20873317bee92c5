"""Load and validate the use-case taxonomy YAML (``taxonomy/taxonomy.yaml`` by default).

The file is a flat list of nodes, each naming its ``parent`` (null for a main category), so
that edits are one-line changes and a cycle or a dangling parent is a checkable mistake.
`load_taxonomy` returns a `Taxonomy` or raises `TaxonomyError` listing *every* problem,
each with the line it is on and how to fix it (ruamel.yaml keeps the line numbers).
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Mapping

from ruamel.yaml import YAML
from ruamel.yaml.error import MarkedYAMLError

DEFAULT_PATH = Path(__file__).with_name("taxonomy.yaml")
ID_PATTERN = re.compile(r"^[a-z0-9_]+(\.[a-z0-9_]+)*$")
NODE_FIELDS = {"id", "name", "parent", "description", "keywords", "examples", "deprecated",
               "replaced_by"}
TOP_FIELDS = {"version", "name", "migrations", "nodes"}
UNLABELED = "unlabeled"


@dataclass(frozen=True)
class Problem:
    """One validation finding: where (1-based line, 0 when unknown), what, and the fix."""

    line: int
    message: str
    fix: str = ""

    def __str__(self) -> str:
        where = f"line {self.line}: " if self.line else ""
        return f"{where}{self.message}" + (f" (fix: {self.fix})" if self.fix else "")


class TaxonomyError(ValueError):
    """A taxonomy file that does not parse or does not validate."""

    def __init__(self, source: str, problems: list[Problem]):
        self.source = source
        self.problems = problems
        lines = "\n".join(f"  {source}:{p.line}: {p.message}"
                           + (f" (fix: {p.fix})" if p.fix else "")
                           if p.line else f"  {source}: {p}" for p in problems)
        super().__init__(f"{source}: {len(problems)} problem(s)\n{lines}")


@dataclass(frozen=True)
class Node:
    """One category. `line` is where it starts in the file (1-based)."""

    id: str
    name: str
    parent: str | None
    description: str = ""
    keywords: tuple[str, ...] = ()
    examples: tuple[str, ...] = ()
    deprecated: bool = False
    replaced_by: str | None = None
    line: int = 0


@dataclass
class Taxonomy:
    """The validated tree: nodes by id, in file order, plus version and migration log."""

    version: int
    nodes: dict[str, Node]
    name: str = ""
    migrations: list[dict[str, Any]] = field(default_factory=list)
    source: str = ""

    # -- structure ---------------------------------------------------------------------
    def children(self, node_id: str | None, include_deprecated: bool = False) -> list[Node]:
        return [n for n in self.nodes.values() if n.parent == node_id
                and (include_deprecated or not n.deprecated)]

    @property
    def roots(self) -> list[Node]:
        """The main categories."""
        return self.children(None)

    def is_leaf(self, node_id: str) -> bool:
        return not self.children(node_id)

    def leaves(self) -> list[Node]:
        """Active nodes without active children: what samples are labeled with."""
        return [n for n in self.nodes.values() if not n.deprecated and self.is_leaf(n.id)]

    def ancestors(self, node_id: str) -> list[Node]:
        """From the main category down to `node_id` (inclusive)."""
        chain: list[Node] = []
        current: str | None = node_id
        while current is not None and current in self.nodes and len(chain) <= len(self.nodes):
            chain.append(self.nodes[current])
            current = self.nodes[current].parent
        return chain[::-1]

    def path(self, node_id: str) -> list[str]:
        """Display names from the main category down, e.g. ["Recognition", ..., "Printed Text"]."""
        return [n.name for n in self.ancestors(node_id)]

    def main_category(self, node_id: str) -> str:
        chain = self.ancestors(node_id)
        return chain[0].id if chain else UNLABELED

    def resolve(self, node_id: str) -> str | None:
        """Follow ``replaced_by`` from a (deprecated) id to an active one; None if unknown."""
        seen = set()
        while node_id in self.nodes and self.nodes[node_id].deprecated:
            if node_id in seen:
                return None
            seen.add(node_id)
            node_id = self.nodes[node_id].replaced_by or ""
        return node_id if node_id in self.nodes else None

    def descendants(self, node_id: str) -> Iterator[Node]:
        for child in self.children(node_id, include_deprecated=True):
            yield child
            yield from self.descendants(child.id)

    def walk(self, include_deprecated: bool = False) -> Iterator[tuple[int, Node]]:
        """Depth-first (depth, node) in file order, main categories at depth 0."""
        def visit(node: Node, depth: int) -> Iterator[tuple[int, Node]]:
            yield depth, node
            for child in self.children(node.id, include_deprecated):
                yield from visit(child, depth + 1)
        for root in self.children(None, include_deprecated):
            yield from visit(root, 0)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form (for ``vlforge taxonomy show --json``)."""
        def visit(node: Node) -> dict[str, Any]:
            out = {"id": node.id, "name": node.name, "description": node.description}
            if node.deprecated:
                out.update(deprecated=True, replaced_by=node.replaced_by)
            kids = self.children(node.id, include_deprecated=True)
            if kids:
                out["children"] = [visit(k) for k in kids]
            else:
                out.update(keywords=list(node.keywords), examples=list(node.examples))
            return out
        return {"name": self.name, "version": self.version, "source": self.source,
                "main_categories": [visit(r) for r in self.children(None, True)],
                "leaves": len(self.leaves()), "migrations": self.migrations}


# -- loading ---------------------------------------------------------------------------
def round_trip_yaml() -> YAML:
    """The YAML reader/writer that keeps comments, order and flow style (used by edits too)."""
    yaml = YAML()
    yaml.preserve_quotes = True
    yaml.width = 4096  # never re-wrap long descriptions
    # Write `parent: null` explicitly (ruamel's default leaves an empty value).
    yaml.representer.add_representer(
        type(None), lambda rep, _: rep.represent_scalar("tag:yaml.org,2002:null", "null"))
    return yaml


def parse_text(text: str, source: str = "<taxonomy>") -> Any:
    """Parse YAML text round-trip, turning syntax errors into a `TaxonomyError` with a line."""
    try:
        return round_trip_yaml().load(io.StringIO(text))
    except MarkedYAMLError as exc:
        # The context mark is where the broken construct starts (an unclosed quote's
        # opening line), which is where the fix goes; the problem mark is where it broke.
        mark = exc.context_mark or exc.problem_mark
        line = mark.line + 1 if mark is not None else 0
        message = " ".join(str(part) for part in (exc.context, exc.problem) if part)
        if exc.context_mark is not None and exc.problem_mark is not None \
                and exc.problem_mark.line != exc.context_mark.line:
            message += f" (noticed on line {exc.problem_mark.line + 1})"
        raise TaxonomyError(source, [Problem(line, f"YAML syntax error: {message}",
                                             "check indentation and quoting on that line; "
                                             "a text with ': ' or '#' needs quotes")]) from exc


def load_taxonomy(path: str | Path | None = None) -> Taxonomy:
    """Read, parse and validate a taxonomy file (the shipped one by default)."""
    path = Path(path) if path else DEFAULT_PATH
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise TaxonomyError(str(path), [Problem(0, f"cannot read the file: {exc}",
                                                "pass an existing file with --file")]) from exc
    return taxonomy_from_text(text, str(path))


def taxonomy_from_text(text: str, source: str = "<taxonomy>") -> Taxonomy:
    data = parse_text(text, source)
    problems, taxonomy = check(data, source)
    if problems:
        raise TaxonomyError(source, problems)
    return taxonomy


def _line(container: Any, key: Any = None) -> int:
    """1-based line of a mapping key / sequence item in a ruamel container (0 if unknown)."""
    try:
        if key is None:
            return container.lc.line + 1
        return container.lc.key(key)[0] + 1 if isinstance(key, str) else \
            container.lc.item(key)[0] + 1
    except (AttributeError, KeyError, TypeError, IndexError):
        return 0


def check(data: Any, source: str = "<taxonomy>") -> tuple[list[Problem], Taxonomy]:
    """Validate parsed YAML; returns every problem found and the (partial) taxonomy."""
    problems: list[Problem] = []
    empty = Taxonomy(version=0, nodes={}, source=source)
    if not isinstance(data, Mapping):
        return [Problem(1, "the file must be a mapping with 'version' and 'nodes'",
                        "start from taxonomy/taxonomy.yaml")], empty
    for key in data:
        if key not in TOP_FIELDS:
            problems.append(Problem(_line(data, key), f"unknown top-level field {key!r}",
                                    f"use only {sorted(TOP_FIELDS)}"))
    version = data.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        problems.append(Problem(_line(data, "version") or 1,
                                f"'version' must be a positive integer, got {version!r}",
                                "write e.g. 'version: 1'"))
        version = 0
    raw_nodes = data.get("nodes")
    if not isinstance(raw_nodes, list) or not raw_nodes:
        problems.append(Problem(_line(data, "nodes") or 1, "'nodes' must be a non-empty list",
                                "list the categories under 'nodes:'"))
        return problems, empty
    migrations = data.get("migrations") or []
    if not isinstance(migrations, list):
        problems.append(Problem(_line(data, "migrations"), "'migrations' must be a list",
                                "write 'migrations: []'"))
        migrations = []

    nodes: dict[str, Node] = {}
    for index, raw in enumerate(raw_nodes):
        line = _line(raw_nodes, index)
        node = _parse_node(raw, line, problems)
        if node is None:
            continue
        if node.id in nodes:
            problems.append(Problem(line, f"duplicate id {node.id!r} (first on line "
                                          f"{nodes[node.id].line})",
                                    "give one of them a new id, or merge them with "
                                    "'vlforge taxonomy merge'"))
            continue
        nodes[node.id] = node
    taxonomy = Taxonomy(version=version, nodes=nodes, name=str(data.get("name") or ""),
                        migrations=[dict(m) for m in migrations if isinstance(m, Mapping)],
                        source=source)
    problems.extend(_check_structure(taxonomy))
    return sorted(problems, key=lambda p: p.line), taxonomy


def _parse_node(raw: Any, line: int, problems: list[Problem]) -> Node | None:
    if not isinstance(raw, Mapping):
        problems.append(Problem(line, "a node must be a mapping (id, name, parent, ...)",
                                "start the item with '- id: ...'"))
        return None
    for key in raw:
        if key not in NODE_FIELDS:
            problems.append(Problem(_line(raw, key) or line, f"unknown node field {key!r}",
                                    _suggest(key, dict.fromkeys(NODE_FIELDS),
                                             f"use only {sorted(NODE_FIELDS)}")))
    node_id = raw.get("id")
    if not isinstance(node_id, str) or not ID_PATTERN.match(node_id):
        problems.append(Problem(line, f"invalid or missing id {node_id!r}",
                                "ids are lowercase words joined by '.', e.g. "
                                "'recognition.ocr_transcription.printed_text'"))
        return None
    if "parent" not in raw:
        problems.append(Problem(line, f"node {node_id!r} has no 'parent' field",
                                "add 'parent: null' for a main category or the parent's id"))
    name = raw.get("name")
    if not isinstance(name, str) or not name.strip():
        problems.append(Problem(line, f"node {node_id!r} has no name", "add 'name: ...'"))
        name = node_id
    lists = {}
    for key in ("keywords", "examples"):
        value = raw.get(key) or []
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            problems.append(Problem(_line(raw, key) or line,
                                    f"{node_id}: '{key}' must be a list of strings",
                                    f"write '{key}: [a, b]' or one '- item' per line"))
            value = []
        lists[key] = tuple(value)
    parent = raw.get("parent")
    if parent is not None and not isinstance(parent, str):
        problems.append(Problem(_line(raw, "parent") or line,
                                f"{node_id}: parent must be an id or null", "fix the parent"))
        parent = None
    return Node(id=node_id, name=name.strip(), parent=parent,
                description=str(raw.get("description") or "").strip(),
                keywords=lists["keywords"], examples=lists["examples"],
                deprecated=bool(raw.get("deprecated", False)),
                replaced_by=raw.get("replaced_by"), line=line)


def _check_structure(taxonomy: Taxonomy) -> list[Problem]:
    problems: list[Problem] = []
    nodes = taxonomy.nodes
    for node in nodes.values():
        if node.parent is not None and node.parent not in nodes:
            problems.append(Problem(node.line, f"{node.id}: parent {node.parent!r} does not exist",
                                    _suggest(node.parent, nodes, "set 'parent' to an existing id")))
        if node.parent == node.id:
            problems.append(Problem(node.line, f"{node.id} is its own parent",
                                    "point 'parent' at another node"))
    # Cycles: walk each parent chain; a chain longer than the node count loops.
    reported: set[frozenset[str]] = set()
    for node in nodes.values():
        chain, current = [], node.id
        while current in nodes and current not in chain:
            chain.append(current)
            current = nodes[current].parent
        if current in chain and current is not None:
            loop = frozenset(chain[chain.index(current):])
            if loop not in reported and len(loop) > 1:
                reported.add(loop)
                problems.append(Problem(nodes[current].line,
                                        "parent cycle: " + " -> ".join(sorted(loop)),
                                        "one of these must point at a node outside the loop"))
    for node in nodes.values():
        if node.deprecated:
            target = node.replaced_by
            if not target:
                problems.append(Problem(node.line, f"deprecated node {node.id} has no replaced_by",
                                        "add 'replaced_by: <active id>' so its samples "
                                        "can be migrated"))
            elif target not in nodes:
                problems.append(Problem(node.line, f"{node.id}: replaced_by {target!r} does not "
                                                   "exist", _suggest(target, nodes, "")))
            elif taxonomy.resolve(node.id) is None:
                problems.append(Problem(node.line, f"{node.id}: replaced_by chain loops",
                                        "point replaced_by at an active node"))
            active_kids = taxonomy.children(node.id)
            if active_kids:
                problems.append(Problem(node.line,
                                        f"deprecated node {node.id} still has active children "
                                        f"({', '.join(k.id for k in active_kids)})",
                                        "move them first: vlforge taxonomy move CHILD NEW_PARENT"))
        elif node.replaced_by:
            problems.append(Problem(node.line, f"{node.id} has replaced_by but is not deprecated",
                                    "add 'deprecated: true' or remove replaced_by"))
    # Reachability: every active node must hang from an active main category.
    for node in nodes.values():
        if node.deprecated:
            continue
        chain = taxonomy.ancestors(node.id)
        if chain and chain[0].parent is None and any(a.deprecated for a in chain):
            bad = next(a for a in chain if a.deprecated)
            problems.append(Problem(node.line, f"{node.id} is unreachable: ancestor {bad.id} "
                                               "is deprecated",
                                    f"move {node.id} under an active node"))
    if not problems:
        for leaf in taxonomy.leaves():
            if not leaf.description:
                problems.append(Problem(leaf.line, f"leaf {leaf.id} has no description",
                                        "describe what requests in this category ask for; "
                                        "the labeler matches prompts against it"))
    return problems


def _suggest(wrong: str, nodes: Mapping[str, Any], default: str) -> str:
    import difflib

    wrong = str(wrong)
    # A truncated id is the commonest slip; difflib alone would prefer a short parent.
    longer = sorted((n for n in nodes if n.startswith(wrong)), key=len)
    close = longer[:1] or difflib.get_close_matches(wrong, list(nodes), n=1)
    return f"did you mean {close[0]!r}?" if close else default

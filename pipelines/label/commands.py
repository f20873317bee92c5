"""``vlforge label``: label the samples of runs, or prompts typed on the command line.

    vlforge label RUN_DIR [RUN_DIR...] --out RUN_DIR2     relabel runs into a new run (Beam)
    vlforge label --text "Describe this chart" [--text ...] [--json]
    vlforge label --text-file prompts.txt --json          one prompt a line
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from pipelines.core.cli_options import (
    add_run_arguments,
    print_run_summary,
    run_settings,
)
from pipelines.core.config import validate_all
from pipelines.core.runner import run_pipeline
from pipelines.label.config import LabelConfig
from taxonomy.tree import TaxonomyError, load_taxonomy


def add_label_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Label samples with a leaf of the use-case taxonomy: task rules first (text layer → "
        "OCR, chart data → graph interpretation, screenshot+HTML → UI to code, SFT template "
        "→ its leaf), then the offline MiniLM embedding classifier for prompts. Labels below "
        "the threshold stay 'unlabeled' and are counted.")
    parser.add_argument("runs", nargs="*", metavar="RUN_DIR",
                        help="finished runs whose samples to relabel into --out")
    parser.add_argument("--text", action="append", default=[], metavar="PROMPT",
                        help="a prompt to classify (repeatable); prints its leaf")
    parser.add_argument("--text-file", metavar="FILE",
                        help="classify every non-empty line of FILE ('-' for stdin)")
    parser.add_argument("--images", type=int, default=1,
                        help="images that come with each --text prompt (default 1; "
                             ">=2 favours multi-graph leaves)")
    parser.add_argument("--threshold", type=float, default=LabelConfig.threshold,
                        help="confidence below which a label is 'unlabeled' (default 0.40)")
    parser.add_argument("--float", dest="quantize", action="store_false",
                        help="embed with the float MiniLM instead of the dynamic-int8 one "
                             "(about 3x slower, labels nearly identical)")
    parser.add_argument("--file", dest="taxonomy_file", metavar="TAXONOMY_YAML",
                        help="taxonomy file to label with (default: the shipped one)")
    add_run_arguments(parser)
    for action in parser._actions:  # --out is only needed when relabeling runs
        if action.dest == "out":
            action.required = False
            action.default = None


def label_command(args: argparse.Namespace, beam_args: list[str]) -> int:
    prompts = list(args.text)
    if args.text_file:
        handle = sys.stdin if args.text_file == "-" else open(args.text_file, encoding="utf-8")
        with handle:
            prompts += [line.strip() for line in handle if line.strip()]
    if prompts:
        if args.runs:
            raise ValueError("give either RUN_DIRs or --text/--text-file, not both")
        return _label_prompts(prompts, args)
    if not args.runs or not args.out:
        raise ValueError("nothing to label: give RUN_DIR... --out RUN_DIR2, or --text PROMPT")
    from pipelines.label.pipeline import iter_label_refs

    config = LabelConfig(threshold=args.threshold, taxonomy_file=args.taxonomy_file,
                         quantize=args.quantize, source_runs=list(args.runs))
    settings = run_settings(args)
    validate_all(config, settings)  # every flag problem at once, before listing samples
    refs = iter_label_refs(args.runs)  # streamed into planning, checked now
    stats = run_pipeline("label", refs, config, args.out, beam_args,
                         task_size=settings.task_size, overwrite=args.overwrite,
                         **settings.shard_bounds)
    print_run_summary(stats, args.out, args.json)
    if not args.json:
        leaves = stats.get("samples_by_taxonomy_leaf", {})
        print(f"  unlabeled {leaves.get('unlabeled', 0)} of {sum(leaves.values())} samples")
        for leaf, count in sorted(leaves.items(), key=lambda kv: -kv[1])[:15]:
            print(f"    {count:6d}  {leaf}")
    return 0


def _label_prompts(prompts: list[str], args: argparse.Namespace) -> int:
    from taxonomy.labeler import Labeler
    from taxonomy.tree import load_taxonomy

    labeler = Labeler(load_taxonomy(args.taxonomy_file), threshold=args.threshold,
                      quantize=args.quantize).open()
    labels = labeler.label_prompts(prompts, [args.images] * len(prompts))
    rows: list[dict[str, Any]] = [{"text": p, **label.as_meta()}
                                  for p, label in zip(prompts, labels)]
    if args.json:
        print(json.dumps(rows, indent=2, ensure_ascii=False))
        return 0
    for row in rows:
        path = " › ".join(row["path"]) or "unlabeled"
        print(f"{row['confidence']:.2f}  {path}  [{row['leaf']}]\n      {row['text']}\n"
              f"      reason: {row['reason']}")
    unlabeled = sum(1 for r in rows if r["leaf"] == "unlabeled")
    if len(rows) > 1:
        print(f"{len(rows) - unlabeled} labeled, {unlabeled} unlabeled")
    return 0


# -- vlforge taxonomy ------------------------------------------------------------
TAXONOMY_HELP = """``vlforge taxonomy``: validate, show and edit the use-case taxonomy; migrate runs.

    vlforge taxonomy validate [--file F] [--json]
    vlforge taxonomy show [NODE] [--examples] [--deprecated] [--json]
    vlforge taxonomy add ID --name NAME --parent PARENT --description TEXT
                         [--keyword K]... [--example E]...
    vlforge taxonomy rename ID [NEW_NAME] [--new-id NEW_ID]
    vlforge taxonomy move ID NEW_PARENT          (NEW_PARENT 'root' makes a main category)
    vlforge taxonomy merge SRC DST
    vlforge taxonomy deprecate ID --replaced-by OTHER
    vlforge taxonomy diff OLD.yaml [NEW.yaml]
    vlforge taxonomy migrate RUN_DIR [--dry-run]

Edits rewrite the YAML in place (comments and order kept), bump its version and log a
migration entry; an edit that would leave an invalid file writes nothing.
"""


def add_taxonomy_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = TAXONOMY_HELP.split("\n\n")[0] + "\n\n" + TAXONOMY_HELP.split("\n\n")[2]
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--file", help="taxonomy YAML to use (default: the shipped "
                                       "taxonomy/taxonomy.yaml)")
    common.add_argument("--json", action="store_true", help="machine-readable output")
    sub = parser.add_subparsers(dest="action", required=True, metavar="ACTION")

    _action(sub, "validate", parents=[common], help="check the file; list every problem "
                                                     "with its line and fix")
    p = _action(sub, "show", parents=[common], help="print the tree (or one subtree)")
    p.add_argument("node", nargs="?", help="only this node's subtree")
    p.add_argument("--examples", action="store_true", help="also print example prompts")
    p.add_argument("--deprecated", action="store_true", help="also print deprecated nodes")

    p = _action(sub, "add", parents=[common], help="add a category")
    p.add_argument("id", help="new stable id, e.g. recognition.ocr_transcription.math_text")
    p.add_argument("--name", required=True, help="display name")
    p.add_argument("--parent", required=True, help="parent id, or 'root' for a main category")
    p.add_argument("--description", required=True,
                   help="what requests in this category ask for (the labeler reads it)")
    p.add_argument("--keyword", action="append", default=[], help="keyword rule (repeatable)")
    p.add_argument("--example", action="append", default=[], help="example prompt (repeatable)")

    p = _action(sub, "rename", parents=[common], help="change a display name and/or id")
    p.add_argument("id")
    p.add_argument("name", nargs="?", help="new display name")
    p.add_argument("--new-id", help="new id; the old id stays, deprecated, pointing at it")

    p = _action(sub, "move", parents=[common], help="give a node a new parent")
    p.add_argument("id")
    p.add_argument("parent", help="new parent id, or 'root'")

    p = _action(sub, "merge", parents=[common],
                       help="merge SRC into DST (children, examples, keywords; SRC retires)")
    p.add_argument("source")
    p.add_argument("target")

    p = _action(sub, "deprecate", parents=[common], help="retire a node")
    p.add_argument("id")
    p.add_argument("--replaced-by", required=True, help="active node its samples move to")

    p = _action(sub, "diff", parents=[common], help="what changed between two files")
    p.add_argument("old", help="the older taxonomy YAML")
    p.add_argument("new", nargs="?", help="the newer one (default: --file or the shipped one)")

    p = _action(sub, "migrate", parents=[common],
                       help="relabel a run to this taxonomy version from its manifest: "
                            "follows replaced_by for every label, rewrites the manifest and "
                            "taxonomy_labels.parquet (old labels kept in its history "
                            "column), never the shards")
    p.add_argument("run", metavar="RUN_DIR")
    p.add_argument("--dry-run", action="store_true", help="report, change nothing")


def _action(sub, name: str, **kwargs) -> argparse.ArgumentParser:
    """A subcommand whose one-line help doubles as its --help description."""
    return sub.add_parser(name, description=kwargs.get("help"), **kwargs)


def taxonomy_command(args: argparse.Namespace, extra: list[str]) -> int:
    action = args.action
    if action == "validate":
        return _validate(args)
    if action == "show":
        return _show(args)
    if action == "diff":
        from taxonomy.edit import diff_taxonomies

        result = diff_taxonomies(load_taxonomy(args.old), load_taxonomy(args.new or args.file))
        _print(result, args.json, _format_diff)
        return 0
    if action == "migrate":
        from pipelines.label.migrate import migrate_run

        report = migrate_run(args.run, load_taxonomy(args.file), dry_run=args.dry_run)
        _print(report, args.json, _format_migration)
        return 0
    return _edit(args)


def _validate(args: argparse.Namespace) -> int:
    try:
        taxonomy = load_taxonomy(args.file)
    except TaxonomyError as exc:
        if args.json:
            print(json.dumps({"valid": False, "source": exc.source, "problems": [
                {"line": p.line, "message": p.message, "fix": p.fix} for p in exc.problems]},
                indent=2))
        else:
            print(exc)
        return 1
    summary = {"valid": True, "source": taxonomy.source, "version": taxonomy.version,
               "main_categories": len(taxonomy.roots), "nodes": len(taxonomy.nodes),
               "leaves": len(taxonomy.leaves()),
               "deprecated": sum(n.deprecated for n in taxonomy.nodes.values())}
    _print(summary, args.json, lambda s: (
        f"{s['source']}: valid, version {s['version']}: {s['main_categories']} main categories,"
        f" {s['leaves']} leaves, {s['nodes']} nodes ({s['deprecated']} deprecated)"))
    return 0


def _show(args: argparse.Namespace) -> int:
    taxonomy = load_taxonomy(args.file)
    if args.node and args.node not in taxonomy.nodes:
        raise ValueError(f"no node {args.node!r}; see 'vlforge taxonomy show'")
    if args.json:
        data = taxonomy.to_dict()
        if args.node:
            node = taxonomy.nodes[args.node]
            data = {"id": node.id, "path": taxonomy.path(node.id), "description":
                    node.description, "keywords": list(node.keywords),
                    "examples": list(node.examples), "leaf": taxonomy.is_leaf(node.id),
                    "children": [c.id for c in taxonomy.children(node.id, True)]}
        print(json.dumps(data, indent=2, ensure_ascii=False))
        return 0
    print(f"{taxonomy.name} v{taxonomy.version} ({len(taxonomy.leaves())} leaves)")
    base = 0
    for depth, node in taxonomy.walk(include_deprecated=args.deprecated):
        if args.node:
            chain = [a.id for a in taxonomy.ancestors(node.id)]
            if args.node not in chain:
                continue
            base = len(taxonomy.ancestors(args.node)) - 1
        flag = f"  (deprecated → {node.replaced_by})" if node.deprecated else ""
        print(f"{'  ' * (depth - base)}{node.name}  [{node.id}]{flag}")
        if args.examples and taxonomy.is_leaf(node.id):
            for example in node.examples:
                print(f"{'  ' * (depth - base + 2)}e.g. {example}")
    return 0


def _edit(args: argparse.Namespace) -> int:
    from taxonomy import edit

    doc = edit.TaxonomyDocument.open(args.file)
    if args.action == "add":
        parent = None if args.parent == "root" else args.parent
        entry = edit.add_node(doc, args.id, args.name, parent, args.description,
                              args.keyword, args.example)
    elif args.action == "rename":
        entry = edit.rename_node(doc, args.id, args.name, args.new_id)
    elif args.action == "move":
        entry = edit.move_node(doc, args.id, None if args.parent == "root" else args.parent)
    elif args.action == "merge":
        entry = edit.merge_nodes(doc, args.source, args.target)
    elif args.action == "deprecate":
        entry = edit.deprecate_node(doc, args.id, args.replaced_by)
    else:  # pragma: no cover - argparse restricts the choices
        raise ValueError(f"unknown action {args.action}")
    _print({"file": str(doc.path), **entry}, args.json, lambda e: (
        f"{e['file']}: {e['op']} {e['id']} → version {e['version']}; migrate runs with "
        f"'vlforge taxonomy migrate RUN_DIR'"))
    return 0


def _print(value: Any, as_json: bool, formatter) -> None:
    print(json.dumps(value, indent=2, ensure_ascii=False, default=str) if as_json
          else formatter(value))


def _format_diff(d: dict[str, Any]) -> str:
    lines = [f"taxonomy v{d['from_version']} → v{d['to_version']}"]
    for item in d["added"]:
        lines.append(f"  + {item['id']}  ({' › '.join(item['path'])})")
    for item in d["removed"]:
        lines.append(f"  - {item['id']}  !! {item['fix']}")
    for item in d["renamed"]:
        lines.append(f"  ~ {item['id']}: name {item['from']!r} → {item['to']!r}")
    for item in d["moved"]:
        lines.append(f"  > {item['id']}: parent {item['from']} → {item['to']}")
    for item in d["deprecated"]:
        lines.append(f"  x {item['id']} → {item['replaced_by']}")
    for item in d["edited"]:
        lines.append(f"  * {item['id']}: {', '.join(item['fields'])}")
    return "\n".join(lines)


def _format_migration(r: dict[str, Any]) -> str:
    verb = "would relabel" if r["dry_run"] else "relabeled"
    lines = [f"{r['run']}: {verb} {r['relabeled']} of {r['labeled']} labeled samples to "
             f"taxonomy v{r['to_version']} (from versions {r['from_versions']})"]
    lines += [f"  {count:6d}  {change}" for change, count in r["changes"].items()]
    lines += [f"  unknown leaf kept: {leaf} ({count})" for leaf, count in
              r["unknown_leaves"].items()]
    return "\n".join(lines)


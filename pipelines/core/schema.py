"""The on-disk shape of a sample: the members of its WebDataset group and its JSON member.

Every sample of every run is written with the same members and the same JSON keys with
the same types, so a reader that infers a schema from the first few samples (HF
``datasets.load_dataset("webdataset", ...)`` infers it from the first 5 samples of the
first shard, pyarrow from the first rows) types every later sample correctly, whatever
mix of pipelines made the shards.

Why absent values are ``""`` / ``0`` / ``false`` / ``"[]"`` rather than ``null``: a schema
inferred from samples that all hold ``null`` (or ``[]``) has the type *null*, and the first
later sample with a value fails the cast (``Couldn't cast array of type struct<...> to
null``). So no field is ever null, and everything with a free-form shape (the stages'
``meta`` sub-dicts, lists of members, text layers) is stored as JSON text: one string
column that ``json.loads`` (or HF's ``Json`` feature, see `hf_features`) turns back into
objects. `pipelines.core.sample.Sample.from_wds` does that for our own readers.

Members of a group ``KEY.*``:

=============  =======================================================================
member         content
=============  =======================================================================
``png``        the main image (none for text-only samples). Pipelines store PNG (the images
               pipeline re-encodes JPEG & co.), so every run has the same image member; a
               non-PNG image still gets its own extension (``jpg``...) from its magic bytes
``N.png``      further images (multi-image conversations), N = 1, 2, ...
``txt``        the text, UTF-8 — always written; empty unless ``has_text``
``md``         the markdown — always written; empty unless ``has_markdown``
``html``       the HTML — always written; empty unless ``has_html``
``json``       the JSON member below
=============  =======================================================================

The text members are always present because ``datasets`` keeps only the member columns
it saw in the first samples (a web page's ``html`` written after five PDF pages without
one would be silently dropped) and refuses a load whose first five samples differ in their
members. Image members cannot be made uniform that way: a text-only sample has none, a
conversation may have several. Runs of text-only or multi-image samples (SFT) therefore
load with ``features=hf_features(("png", "1.png", ...))``, which skips that inference;
`pipelines.core.export.hf_features_for(runs)` builds it from the runs' manifests.

The JSON member, schema 2 (`FIELDS` is the authoritative list; tests check every written
sample against it):
"""

from __future__ import annotations

import json
from typing import Any, Mapping

SCHEMA_VERSION = 2
TEXT_MEMBERS = {"text": "txt", "markdown": "md", "html": "html"}  # Sample attribute → member
TEXT_FLAGS = {"text": "has_text", "markdown": "has_markdown", "html": "has_html"}

# (name, type, meaning). Types: str, int, float, bool, "json" (JSON text in a str).
FIELDS: tuple[tuple[str, str, str], ...] = (
    ("schema", "int", "version of this shape: 2 (1 = the old nested shape, still read)"),
    ("key", "str", "stable sample id, sha256(source + locator)[:32]; the group's key"),
    ("source", "str", 'pipeline that made it: "pdf", "web", "images", "sft", ...'),
    ("locator", "str", "where exactly it came from: URL, sha256:<file>#page=3, ..."),
    ("created", "str", 'UTC time the sample was made, ISO 8601 with "Z"; "" if unknown'),
    ("input_id", "str", 'root input it descends from (lineage); ""'),
    ("item_id", "str", "accounting unit it answers for (defaults to key)"),
    ("parent_item", "str", 'item it was expanded from (a page\'s document); ""'),
    ("derived_from", "str", 'key of the sample it was cut out of (a figure\'s page); ""'),
    ("task", "str", 'resumable unit of work that produced it; ""'),
    ("images", "json", 'image member names in order, e.g. ["png", "1.png"]; "[]"'),
    ("num_images", "int", "number of images"),
    ("width", "int", "main image width in px; 0 without an image"),
    ("height", "int", "main image height in px; 0 without an image"),
    ("has_text", "bool", "the txt member holds the text (else it is empty: no text)"),
    ("has_markdown", "bool", "the md member holds markdown"),
    ("has_html", "bool", "the html member holds HTML"),
    ("taxonomy_leaf", "str", 'taxonomy leaf id from labeling; "" when not labeled'),
    ("taxonomy_version", "str", 'taxonomy version of that label; ""'),
    ("taxonomy_method", "str", 'how it was labeled ("rule:...", "embedding", ...); ""'),
    ("taxonomy_confidence", "float", "label confidence 0..1; 0.0 when not labeled"),
    ("trusted_text", "str", 'text of the most trustworthy layer (core.text.trusted_text); ""'),
    ("trusted_origin", "str", 'its origin: "pdf_text", "dom", "ocr"; "" when none'),
    ("trusted_trust", "str", 'its trust: "exact", "recognised"; "" when none'),
    ("text_layers", "json", "every text layer (origin, trust, text, width, height, lines "
                            "with box [x0, y0, x1, y1] in image px or null); \"[]\""),
    ("meta", "json", "the whole meta dict: one sub-dict per stage (pdf, web, ocr, chart, "
                     "image, sft, taxonomy, lineage, ...); units in pipelines.core.text"),
)
FIELD_NAMES = tuple(name for name, _, _ in FIELDS)
_PY_TYPES = {"str": str, "int": int, "float": float, "bool": bool, "json": str}

if __doc__:  # None under python -OO
    __doc__ += "\n".join(f"- ``{name}`` ({kind}): {meaning}" for name, kind, meaning in FIELDS)


def encode_header(sample: Any, image_members: list[str]) -> dict[str, Any]:
    """The JSON member of `sample` (a `Sample`), every field of `FIELDS` set and typed."""
    from pipelines.core.text import image_dimensions, text_layers, trusted_text

    lineage = sample.lineage
    taxonomy = sample.meta.get("taxonomy") or {}
    size = image_dimensions(sample.image) if sample.image else None
    layers = text_layers(sample, image_size=size)
    trusted = trusted_text(layers=layers)
    header = {
        "schema": SCHEMA_VERSION,
        "key": sample.key,
        "source": sample.source,
        "locator": sample.locator,
        "created": _str(lineage.get("created")),
        "input_id": _str(lineage.get("input_id")),
        "item_id": _str(sample.item_id),
        "parent_item": _str(lineage.get("parent_item")),
        "derived_from": _str(lineage.get("derived_from")),
        "task": _str(lineage.get("task")),
        "images": dumps(image_members),
        "num_images": len(image_members),
        "width": int(size[0]) if size else 0,
        "height": int(size[1]) if size else 0,
        **{flag: getattr(sample, attr) is not None for attr, flag in TEXT_FLAGS.items()},
        "taxonomy_leaf": _str(taxonomy.get("leaf")),
        "taxonomy_version": _str(taxonomy.get("version")),
        "taxonomy_method": _str(taxonomy.get("method")),
        "taxonomy_confidence": _float(taxonomy.get("confidence")),
        "trusted_text": trusted.text if trusted else "",
        "trusted_origin": trusted.origin if trusted else "",
        "trusted_trust": trusted.trust if trusted else "",
        "text_layers": dumps([layer.to_dict() for layer in layers]),
        "meta": dumps(sample.meta),
    }
    return header


def decode_header(header: Mapping[str, Any] | bytes) -> dict[str, Any]:
    """``{"key", "source", "locator", "meta", "images", "texts"}`` from a JSON member of
    any schema (1: nested meta, every text member present is real; 2: this module's)."""
    if isinstance(header, (bytes, bytearray, str)):
        header = json.loads(header)
    if int(header.get("schema", 1)) < 2:
        return {"key": header["key"], "source": header["source"], "locator": header["locator"],
                "meta": header.get("meta") or {}, "images": list(header.get("images") or []),
                "texts": None}
    return {"key": header["key"], "source": header["source"], "locator": header["locator"],
            "meta": _loads(header["meta"], {}), "images": list(_loads(header["images"], [])),
            "texts": {attr for attr, flag in TEXT_FLAGS.items() if header.get(flag)}}


def check_header(header: Mapping[str, Any]) -> list[str]:
    """Every way `header` departs from `FIELDS` (missing/extra keys, wrong types, nulls)."""
    problems = []
    expected = set(FIELD_NAMES)
    for name in sorted(set(header) - expected):
        problems.append(f"unexpected key {name!r}")
    for name, kind, _ in FIELDS:
        if name not in header:
            problems.append(f"missing key {name!r}")
            continue
        value = header[name]
        want = _PY_TYPES[kind]
        # bool is an int in Python: keep the two apart, they are different Arrow types
        if not isinstance(value, want) or (want is int and isinstance(value, bool)):
            problems.append(f"{name}: expected {kind}, got {type(value).__name__}")
        elif kind == "json":
            try:
                json.loads(value)
            except ValueError as exc:
                problems.append(f"{name}: not JSON text ({exc})")
    return problems


def arrow_schema():
    """The JSON member as a pyarrow schema (what pyarrow infers from any written sample)."""
    import pyarrow as pa

    types = {"str": pa.string(), "int": pa.int64(), "float": pa.float64(), "bool": pa.bool_(),
             "json": pa.string()}
    return pa.schema([(name, types[kind]) for name, kind, _ in FIELDS])


def hf_features(image_members: tuple[str, ...] = ("png",)):
    """`datasets.Features` for ``load_dataset("webdataset", ..., features=...)``: decodes
    the JSON-text fields into objects (``Json``) and reads the given image members (add
    ``"jpg"`` or ``"1.png"``... for runs with JPEG or multi-image samples)."""
    import datasets

    values = {"str": datasets.Value("string"), "int": datasets.Value("int64"),
              "float": datasets.Value("float64"), "bool": datasets.Value("bool")}
    header = datasets.Features({name: datasets.Json() if kind == "json" else values[kind]
                                for name, kind, _ in FIELDS})
    features = {name: datasets.Image() for name in image_members}
    features.update({"txt": datasets.Value("string"), "md": datasets.Value("binary"),
                     "html": datasets.Value("binary"), "json": header,
                     "__key__": datasets.Value("string"), "__url__": datasets.Value("string")})
    return datasets.Features(features)


def dumps(value: Any) -> str:
    """Compact, deterministic JSON text (sets/tuples as lists, numpy scalars as numbers)."""
    # No cycle check: metadata is plain data, and the check's bookkeeping for every list
    # and dict cost ~12% of encoding a page's meta (thousands of word and path boxes);
    # a cycle still fails, with RecursionError instead of ValueError.
    return json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"),
                      default=_json_default, check_circular=False)


def _loads(value: Any, empty: Any) -> Any:
    if isinstance(value, (str, bytes, bytearray)):
        return json.loads(value) if value else empty
    return value if value is not None else empty  # already decoded (HF's Json feature)


def _str(value: Any) -> str:
    return "" if value is None else str(value)


def _float(value: Any) -> float:
    try:
        return float(value) if value is not None else 0.0
    except (TypeError, ValueError):
        return 0.0


def _json_default(value: Any) -> Any:
    if isinstance(value, (set, tuple, frozenset)):
        return list(value)
    if isinstance(value, bytes):
        return value.hex()
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    if hasattr(value, "tolist"):
        return value.tolist()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")

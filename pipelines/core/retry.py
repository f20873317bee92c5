"""`vlforge retry RUN_DIR`: re-run only the items that ended in an error, and merge them in.

Each error record keeps the input reference of its item (a URL, a single PDF page), so a
retry after, say, a network outage redoes exactly those items, not whole shards. What now
succeeds is written to new shards and replaces the error; what fails again stays an error.
"""

from __future__ import annotations



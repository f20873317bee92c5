"""The DirectRunner as vlforge runs it: Beam's own, without its first try of Prism.

Since Beam 2.6x the DirectRunner (`SwitchingDirectRunner`) first tries the Prism runner
for any pipeline Prism supports (every vlforge pipeline): it downloads Prism's binary from
GitHub at the start of every run, then runs the pipeline on that separate engine, and only
where that fails falls back to the in-process FnApiRunner. Offline, each vlforge run paid
the failed download (a DNS lookup: from milliseconds up to a resolver timeout, 10 s seen
here); online, runs would have moved to Prism, an engine vlforge does not test on (the
pdf and web stages' renderer children, overlapped tasks and bundle-end records are built
and measured on the FnApiRunner). `FnApiDirectRunner` keeps every other choice of Beam's
DirectRunner (the FnApiRunner for batch pipelines, in-process or with
``--direct_num_workers``/``--direct_running_mode``; the BundleBasedDirectRunner where the
FnApiRunner cannot run a pipeline) and skips Prism; `pipelines.core.engines` runs
``--runner=DirectRunner`` (the default) on it.
"""

from __future__ import annotations

from apache_beam.runners.direct.direct_runner import SwitchingDirectRunner


class FnApiDirectRunner(SwitchingDirectRunner):
    """Beam's DirectRunner that never tries the Prism runner (see the module)."""

    def run_pipeline(self, pipeline, options):
        # SwitchingDirectRunner leaves Prism out for an interactive run ("Prism does not
        # support interactive mode"), its only use of the flag (Beam 2.77): the one switch
        # it offers, short of copying its choice between the other two runners
        self._is_interactive = True
        return super().run_pipeline(pipeline, options)

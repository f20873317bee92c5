"""Render documents in a child process, so a renderer crash, hang or memory blow-up costs
one document, never the run.

`IsolatedRenderer` (the parent side) keeps one long-lived child per pipeline worker
(``python -m pipelines.pdf.isolation``) and sends it one request per document. The child
streams back ``("doc", info)``, ``("page", index, result | Outcome)``... ``("end",)`` or
``("rejected", Outcome)`` (see `pipelines.pdf.render.iter_document`).
The parent waits at most `page_timeout` seconds for each message and `doc_timeout` for the
whole document; when the child dies (a segfault, the kernel's OOM killer, its own address
space limit) or runs out of time, the parent kills it, reports what is missing as errors
and starts a fresh child for the next document. Keeping the child alive between documents
costs one interpreter start per worker instead of one per document.

A child outlives the stage that started it: `IsolatedRenderer.stop` parks an idle, healthy
child in the worker process's `IdleChildren` (a `pipelines.core.worker_cache` resource,
ended at process exit) and the next `start` in that process takes it. Beam's Dask runner
sets a stage up and tears it down once per *partition*; without parking, every partition
started fresh children, and a fresh child's first documents cost far more than its import
(fonts, MuPDF's caches). Measured on the 172 corpus pages on Dask, 2 workers, 8 partitions:
7 children and 15.8 renderer CPU-s; parked, 2 children and 11.8 (the 1-worker run's one
child: 11.5).

Wire format: each message is an 8-byte big-endian length followed by a pickle, on a pipe
the child duplicates away from fd 1 (libraries that print to stdout can't corrupt it).
"""

from __future__ import annotations

import collections
import gc
import logging
import os
import pickle
import queue
import select
import signal
import struct
import subprocess
import sys
import threading
import time
from typing import Any, Iterator

from pipelines.core.collector import paused
from pipelines.core.outcome import Outcome
from pipelines.core.worker_cache import worker_resource

log = logging.getLogger(__name__)

HEADER = struct.Struct(">Q")
MAX_IDLE_CHILDREN = 4  # parked per process and memory cap; more are ended


class IdleChildren:
    """Idle renderer children of one worker process, handed from a stopped
    `IsolatedRenderer` to the next one that starts (thread-safe; bounded)."""

    def __init__(self, limit: int = MAX_IDLE_CHILDREN):
        self.limit = limit
        self.lock = threading.Lock()
        self.procs: list[subprocess.Popen] = []

    def take(self) -> subprocess.Popen | None:
        """A parked child that is still alive, else None."""
        with self.lock:
            while self.procs:
                proc = self.procs.pop()
                if proc.poll() is None:
                    return proc
                _reap(proc)
        return None

    def park(self, proc: subprocess.Popen) -> None:
        """Keep `proc` (alive, between documents) for the next renderer, or end it."""
        with self.lock:
            if len(self.procs) < self.limit:
                self.procs.append(proc)
                return
        _end(proc)

    def close(self) -> None:
        """End every parked child (eviction from the worker cache; process exit)."""
        with self.lock:
            procs, self.procs = self.procs, []
        for proc in procs:  # all at once: each child ends on its own end of input
            try:
                proc.stdin.close()
            except OSError:
                pass
        for proc in procs:
            _end(proc)


def idle_children(max_memory_mb: int) -> IdleChildren:
    """This process's parked children started with `max_memory_mb` (their only setting)."""
    return worker_resource("pdf-renderer-children",
                           {"max_memory_mb": max_memory_mb, "python": sys.executable},
                           IdleChildren, per_thread=False)


def _end(proc: subprocess.Popen) -> None:
    """End a child politely (closing its stdin ends its loop), then by force."""
    try:
        proc.stdin.close()
        proc.wait(timeout=5)
    except Exception:
        proc.kill()
        proc.wait()
    finally:
        proc.stdout.close()


def _reap(proc: subprocess.Popen) -> None:
    proc.wait()
    proc.stdout.close()
    proc.stdin.close()


class RendererFailure(Exception):
    """The child did not answer: `reason` is "timeout" or "renderer_crashed".

    Raised out of `IsolatedRenderer.render`; the render stage turns it into error
    `Outcome`s (`outcome`) in one place."""

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason, self.message = reason, message

    @property
    def outcome(self) -> Outcome:
        return Outcome.of("error", self.reason, self.message)


def spawn_child(max_memory_mb: int) -> subprocess.Popen:
    """A fresh renderer child (``python -m pipelines.pdf.isolation``), not yet asked anything."""
    package_root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH")) if p)
    # A child renders one page at a time (the children are the parallelism): numpy's
    # OpenBLAS would start a thread per core at import, whose spin cost 0.14 CPU-s a
    # child start; the renderer does no linear algebra that threads would speed up.
    env.setdefault("OPENBLAS_NUM_THREADS", "1")
    proc = subprocess.Popen([sys.executable, "-m", "pipelines.pdf.isolation", str(max_memory_mb)],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env, bufsize=0)
    _widen_pipe(proc.stdout.fileno())
    return proc


def start_ahead(count: int, max_memory_mb: int) -> int:
    """Start `count` renderer children now, parked for this process's render stage (which
    takes parked children first); returns how many were started.

    A child's interpreter start and imports (~0.5 CPU-s) then run beside the driver's own
    start-up (Apache Beam's import, planning, the runner's start) on another core, instead
    of after it, when the stage asks for its first document. Only for a stage that runs in
    this process (the in-process DirectRunner); a child nobody takes is ended at exit."""
    parked = idle_children(max_memory_mb)
    started = 0
    for _ in range(min(count, parked.limit)):
        parked.park(spawn_child(max_memory_mb))
        started += 1
    return started


class IsolatedRenderer:
    """Parent side: sends documents to a child renderer and yields its messages."""

    def __init__(self, settings: dict[str, Any], page_timeout: float = 60.0,
                 doc_timeout: float = 900.0, max_memory_mb: int = 4096):
        self.settings = settings
        self.page_timeout = page_timeout
        self.doc_timeout = doc_timeout
        self.max_memory_mb = max_memory_mb
        self.proc: subprocess.Popen | None = None
        self.restarts = 0
        self.busy = False  # a document was sent and not yet answered to its end

    def start(self) -> None:
        """Take a parked child of this process, else start one."""
        self.busy = False
        self.proc = idle_children(self.max_memory_mb).take() or spawn_child(self.max_memory_mb)

    def stop(self) -> None:
        """Let go of the child: parked for the next renderer of this process when it is
        alive and between documents, else ended."""
        proc, self.proc = self.proc, None
        if proc is None:
            return
        if not self.busy and proc.poll() is None:
            idle_children(self.max_memory_mb).park(proc)
        else:
            _end(proc)

    def _kill(self) -> None:
        proc, self.proc = self.proc, None
        self.busy = False
        if proc is not None:
            proc.kill()
            _reap(proc)
            self.restarts += 1

    def render(self, path: str, pages: list[int] | None = None) -> Iterator[tuple]:
        """Yield the child's messages for one document; raise `RendererFailure` on a
        timeout or crash (after killing the child, so the next call starts a fresh one)."""
        if self.proc is not None and self.proc.poll() is not None:  # died while idle
            _reap(self.proc)
            self.proc = None
        if self.proc is None:
            self.start()
        self.busy = True
        try:
            _write_frame(self.proc.stdin.fileno(),
                         {"path": path, "pages": pages, "settings": self.settings})
        except (BrokenPipeError, OSError) as exc:
            self._kill()
            raise RendererFailure("renderer_crashed", f"renderer not accepting work: {exc}")
        doc_deadline = time.monotonic() + self.doc_timeout
        answered = False
        try:
            while True:
                deadline = min(doc_deadline, time.monotonic() + self.page_timeout)
                try:
                    message = _read_frame(self.proc.stdout.fileno(), deadline)
                except TimeoutError:
                    which = ("document" if deadline == doc_deadline else "page")
                    limit = self.doc_timeout if which == "document" else self.page_timeout
                    self._kill()
                    raise RendererFailure("timeout", f"{path}: no result within the {which} "
                                          f"time limit ({limit:g} s); renderer killed")
                except EOFError:
                    code = self.proc.wait()
                    self._kill()
                    raise RendererFailure("renderer_crashed",
                                          f"{path}: renderer died ({_describe_exit(code)})")
                answered = message[0] in ("end", "rejected")
                if answered:
                    self.busy = False
                # The time limits are the renderer's: time the caller spends on a message
                # (or, for a `RenderJob`, waiting for its consumer) is not charged to it.
                paused = time.monotonic()
                yield message
                doc_deadline += time.monotonic() - paused
                if answered:
                    return
        finally:
            # Abandoned mid-document (the caller stopped iterating): the child is still
            # writing this document's messages, which the next request would read as its
            # own. A fresh child is cheaper than draining them.
            if not answered and self.proc is not None:
                self._kill()


class RenderJob:
    """One document of a `RendererPool`, read by a background thread, so several
    renderers work at once while the caller consumes one document's messages at a time.

    The job waits for the pool to run it on whichever renderer is free first
    (`RendererPool.submit`). The reader holds at most `buffer` messages (page images
    included): a consumer that falls behind stops it, whose renderer then blocks on its
    pipe, so memory stays bounded. `messages` yields what `IsolatedRenderer.render`
    would, in order, and raises its `RendererFailure`; `close` ends the job, killing the
    child if it is still on this document.
    """

    _END = object()

    def __init__(self, pool: RendererPool, path: str, pages: list[int] | None = None,
                 buffer: int = 8):
        self.pool, self.path, self.pages = pool, path, pages
        self.renderer: IsolatedRenderer | None = None
        self.queue: queue.Queue = queue.Queue(maxsize=buffer)
        self.stopped = threading.Event()
        self.finished = threading.Event()  # the reader let go of its renderer (or never ran)
        self.lock = threading.Lock()  # between the reader letting go and `close` killing
        self.released = False
        self.answered = False
        self.done = False  # the renderer is through the document: no more waiting on it

    def run_on(self, renderer: IsolatedRenderer) -> None:
        """Render the document on `renderer`, in the calling thread, into `queue`."""
        with self.lock:
            self.renderer = renderer
        try:
            if not self.stopped.is_set():
                self._pump(renderer)
        finally:
            with self.lock:
                self.released = True
            self.finished.set()

    def _pump(self, renderer: IsolatedRenderer) -> None:
        stream = renderer.render(self.path, self.pages)
        try:
            for message in stream:
                if not self._put(message):
                    return  # closed early: leaving `stream` kills the child (see render)
            self.done = True
            self._put(self._END)
        except BaseException as exc:  # handed to the consumer, raised there
            self.done = True
            self._put(exc)
        finally:
            stream.close()

    def _put(self, item: Any) -> bool:
        while not self.stopped.is_set():
            try:
                self.queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def messages(self) -> Iterator[tuple]:
        """The document's messages, in the order the renderer sent them."""
        while True:
            item = self.queue.get()
            if item is self._END or isinstance(item, BaseException):
                self.answered = True  # the renderer finished (or was already killed)
                if item is self._END:
                    return
                raise item
            if item[0] in ("end", "rejected"):  # its last message: the child is idle
                self.answered = True
            yield item

    def close(self) -> None:
        """Stop the reader and wait until it let go of its renderer (which is free then)."""
        self.stopped.set()
        if self.pool.cancel(self):
            return  # never started
        with self.lock:
            proc = self.renderer.proc if self.renderer is not None else None
            if not self.released and not self.answered and proc is not None:
                # abandoned mid-document: unblock a reader waiting on the child's next page
                proc.kill()
        self.finished.wait()


class RendererPool:
    """Documents for several `IsolatedRenderer`s: each renderer takes the next waiting
    document as soon as it is done with one, whatever the order the caller reads them in.

    A caller that reads documents in submission order (the render stage keeps records in
    seed order) would otherwise leave a renderer idle behind a long document at the head
    of the line. A document is given to the first idle renderer (in list order), else
    queued; a busy renderer's thread runs queued documents until none is left.
    """

    def __init__(self, renderers: list[IsolatedRenderer], buffer: int = 8):
        self.renderers, self.buffer = renderers, buffer
        self.lock = threading.Lock()
        self.waiting: collections.deque[RenderJob] = collections.deque()
        self.idle = list(renderers)
        self.threads: list[threading.Thread] = []

    def submit(self, path: str, pages: list[int] | None = None) -> RenderJob:
        """A job for the document; it starts now on an idle renderer, else when one frees."""
        job = RenderJob(self, path, pages, buffer=self.buffer)
        with self.lock:
            if not self.idle:
                self.waiting.append(job)
                return job
            renderer = self.idle.pop(0)
            self.threads = [t for t in self.threads if t.is_alive()]
            thread = threading.Thread(target=self._serve, args=(renderer, job), daemon=True,
                                      name="pdf-render-job")
            self.threads.append(thread)
        thread.start()
        return job

    def cancel(self, job: RenderJob) -> bool:
        """Take `job` out of the queue; False when a renderer has it already."""
        with self.lock:
            try:
                self.waiting.remove(job)
            except ValueError:
                return False
        job.finished.set()
        return True

    def _serve(self, renderer: IsolatedRenderer, job: RenderJob | None) -> None:
        while job is not None:
            try:
                job.run_on(renderer)
            except Exception as exc:  # the job has its outcome; the renderer serves on
                log.warning("renderer job for %s ended badly: %s", job.path, exc)
            with self.lock:
                job = self.waiting.popleft() if self.waiting else None
                if job is None:  # back in list order, so assignment stays predictable
                    self.idle.append(renderer)
                    self.idle.sort(key=self.renderers.index)

    def close(self) -> None:
        """Drop queued documents and wait for the renderers' threads (callers close the
        jobs they hold first, so no thread is left waiting on a consumer)."""
        with self.lock:
            waiting, self.waiting = list(self.waiting), collections.deque()
            threads = list(self.threads)
        for job in waiting:
            job.stopped.set()
            job.finished.set()
        for thread in threads:
            thread.join()


PIPE_BYTES = 1 << 20  # Linux's default cap for an unprivileged pipe (fs.pipe-max-size)


def _widen_pipe(fd: int) -> None:
    """Let the child's answers pipe hold a whole page (`PIPE_BYTES`) instead of 64 KB.

    A page message (PNG + meta) is some hundred KB: with the default buffer the child
    waits, mid-message, for the parent's reader thread, which needs the Beam process's
    GIL for every 64 KB. Where the size cannot be raised, the pipe stays as it was."""
    try:
        import fcntl

        fcntl.fcntl(fd, fcntl.F_SETPIPE_SZ, PIPE_BYTES)
    except (ImportError, AttributeError, OSError) as exc:
        log.debug("pipe size left as it is: %s", exc)


def _describe_exit(code: int) -> str:
    if code < 0:
        try:
            return f"signal {signal.Signals(-code).name}"
        except ValueError:
            return f"signal {-code}"
    return f"exit status {code}"


def _write_frame(fd: int, value: Any) -> None:
    data = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
    view = memoryview(HEADER.pack(len(data)) + data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def _read_exact(fd: int, size: int, deadline: float | None) -> bytes:
    chunks, remaining = [], size
    while remaining:
        if deadline is not None:
            wait = deadline - time.monotonic()
            if wait <= 0 or not select.select([fd], [], [], wait)[0]:
                raise TimeoutError
        chunk = os.read(fd, min(remaining, 1 << 20))
        if not chunk:
            raise EOFError
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)


def _read_frame(fd: int, deadline: float | None = None) -> Any:
    (size,) = HEADER.unpack(_read_exact(fd, HEADER.size, deadline))
    data = _read_exact(fd, size, deadline)
    # A page message unpickles into thousands of small lists and dicts (words, lines,
    # drawings) with no cycles among them: collections set off by their allocation would
    # walk them again and again (~0.6 ms a page in the Beam process), for nothing. The
    # render stage's reader threads unpickle at once: the pause is counted across them.
    with paused():
        return pickle.loads(data)


# -- child side ------------------------------------------------------------------------------
def serve(max_memory_mb: int) -> None:
    """The child's loop: read a request, stream its messages, until stdin closes."""
    out_fd = os.dup(1)
    os.dup2(2, 1)  # anything a library prints goes to stderr, not into the message pipe
    if max_memory_mb > 0:
        import resource

        limit = max_memory_mb * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    # `import pymupdf` also imports its layout package, which loads the ONNX runtime
    # (1.3 s and ~60 MB per process) and switches the layout model on for every table
    # search. It is loaded only for a request whose settings ask for it
    # (`render.use_layout_model`).
    sys.modules.setdefault("pymupdf.layout", None)
    # `import pymupdf` also tries pymupdf4llm (its optional to_markdown), which pulls in
    # its own layout helpers and tqdm: 0.2 CPU-s and memory per renderer for nothing, as
    # markdown is written from our own extraction (`pipelines.pdf.markdown`).
    sys.modules.setdefault("pymupdf4llm", None)
    from pipelines.pdf import render as pdf_render

    pdf_render.quiet_mupdf()
    # The modules live as long as the child: out of the collector's sight, the
    # collections that each page's dicts trigger stop walking them again.
    gc.freeze()
    while True:
        try:
            request = _read_frame(0)
        except EOFError:
            # Nothing to flush or release (answers go out unbuffered): skip the interpreter's
            # teardown, 0.1 s a child, paid at the end of every run.
            sys.stderr.flush()
            os._exit(0)
        settings = pdf_render.PdfRenderSettings(**request["settings"])
        try:
            for message in pdf_render.iter_document(request["path"], request["pages"], settings):
                _write_frame(out_fd, message)
        except MemoryError:
            # The address-space cap hit outside a page (opening the document): report it
            # as a rejection so the parent moves on; the child stays usable.
            _write_frame(out_fd, ("rejected", Outcome.of(
                "error", "out_of_memory", f"{request['path']}: over the {max_memory_mb} MB cap")))


if __name__ == "__main__":
    serve(int(sys.argv[1]) if len(sys.argv) > 1 else 0)

"""The web app: Starlette routes over `pages.Site`, and the server that `tierbench view` starts.

Every route only reads. Live pages hold an EventSource on `/events`, which refreshes the viewed
experiments (a journal tail by byte offset, see data.py) twice a second and sends an event when
anything shown has changed; the page then re-fetches its live region with htmx.
"""

from __future__ import annotations

import asyncio
import json
import signal
import socket
import sys
import threading
from pathlib import Path
from typing import Any, AsyncIterator

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import (FileResponse, HTMLResponse, PlainTextResponse, RedirectResponse, Response,
                                 StreamingResponse)
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from tierbench.exitcodes import EXIT_INTERRUPTED
from tierbench.models import RunKey
from tierbench.view.data import NotFound, Source, check_key
from tierbench.view.pages import HERE, RAW_FILES, Site, pygments_css

EVENT_POLL_SECONDS = 0.5
KEEPALIVE_SECONDS = 15.0
# Untrusted content never runs: no inline script is needed by any page, so none is allowed.
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
                               "object-src 'none'; base-uri 'none'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


def _html(text: str, status: int = 200) -> HTMLResponse:
    return HTMLResponse(text, status_code=status, headers=SECURITY_HEADERS)


def create_app(source: Source) -> Starlette:
    site = Site(source)

    def experiment_of(request: Request) -> Any:
        return source.experiment(request.path_params["exp"])

    def key_of(request: Request) -> RunKey:
        p = request.path_params
        return check_key(p["tier"], p["subtest"], p["run"])

    def attempt_of(request: Request) -> str | None:
        return request.query_params.get("attempt") or None

    def index(request: Request) -> Response:
        if source.kind == "experiment":
            return RedirectResponse(site.links.exp(source.root.name))
        return _html(site.index())

    def experiment(request: Request) -> Response:
        return _html(site.experiment(experiment_of(request)))

    def tier(request: Request) -> Response:
        return _html(site.tier(experiment_of(request), _tier(request.path_params["tier"])))

    def subtest(request: Request) -> Response:
        p = request.path_params
        return _html(site.subtest(experiment_of(request), _tier(p["tier"]), p["subtest"]))

    def runs(request: Request) -> Response:
        q = request.query_params
        filters = {name: q.get(name, "") for name in ("outcome", "tier", "subtest", "agent", "tool")}
        try:
            page = int(q.get("page", "1"))
        except ValueError:
            page = 1
        return _html(site.runs(experiment_of(request), filters, page, sort=q.get("sort", "")))

    def run(request: Request) -> Response:
        return _html(site.run(experiment_of(request), key_of(request), attempt_of(request)))

    def transcript(request: Request) -> Response:
        try:
            first = max(0, int(request.query_params.get("first", "0")))
        except ValueError:
            first = 0
        standalone = "HX-Request" not in request.headers
        return _html(site.transcript_fragment(experiment_of(request), key_of(request), first, attempt_of(request),
                                              standalone=standalone))

    def raw(request: Request) -> Response:
        rel = request.path_params["rel"]
        exp, key = experiment_of(request), key_of(request)
        base = exp.run_dir(key, attempt_of(request))
        check_log = rel.startswith("judge/checks/") and rel.endswith(".log") and "/" not in rel[len("judge/checks/"):]
        if rel not in RAW_FILES and not check_log:
            raise NotFound(f"not a file the viewer serves: {rel}")
        path = (base / rel).resolve()
        if not path.is_relative_to(exp.root.resolve()) or not path.is_file():
            raise NotFound(f"{exp.name}: {key}: no {rel}")
        # Plain text, never sniffed as HTML: an agent's file cannot become a page.
        return FileResponse(path, media_type="text/plain; charset=utf-8", headers=SECURITY_HEADERS)

    def compare(request: Request) -> Response:
        q = request.query_params
        try:
            a, b = RunKey.parse(q.get("a", "")), RunKey.parse(q.get("b", ""))
        except ValueError as exc:
            raise NotFound(f"compare needs two run keys like ?a=T0/00/run_01&b=T1/00/run_01 ({exc})") from None
        return _html(site.compare(experiment_of(request), a, b))

    def pygments(request: Request) -> Response:
        return PlainTextResponse(pygments_css(), media_type="text/css")

    async def events(request: Request) -> Response:
        name = request.query_params.get("exp")

        def current() -> str:
            if name:
                return site.version(source.experiment(name))
            return site.version()

        async def stream() -> AsyncIterator[str]:
            last = None
            quiet = 0.0
            yield "retry: 2000\n\n"
            while not await request.is_disconnected():
                try:
                    version = await run_in_threadpool(current)
                except NotFound:
                    version = "gone"
                if version != last:
                    last = version
                    quiet = 0.0
                    yield f"event: change\ndata: {json.dumps({'version': version})}\n\n"
                elif quiet >= KEEPALIVE_SECONDS:
                    quiet = 0.0
                    yield ": keepalive\n\n"
                await asyncio.sleep(EVENT_POLL_SECONDS)
                quiet += EVENT_POLL_SECONDS

        return StreamingResponse(stream(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})

    async def not_found(request: Request, exc: Exception) -> Response:
        message = str(exc.detail) if isinstance(exc, HTTPException) else str(exc)
        return _html(await run_in_threadpool(site.not_found, message), status=404)

    routes = [
        Route("/", index),
        Route("/events", events),
        Route("/static/pygments.css", pygments),
        Mount("/static", StaticFiles(directory=str(HERE / "static")), name="static"),
        Route("/e/{exp}/", experiment),
        Route("/e/{exp}/runs", runs),
        Route("/e/{exp}/compare", compare),
        Route("/e/{exp}/t/{tier}/", tier),
        Route("/e/{exp}/t/{tier}/{subtest}/", subtest),
        Route("/e/{exp}/r/{tier}/{subtest}/{run}", run),
        Route("/e/{exp}/r/{tier}/{subtest}/{run}/transcript", transcript),
        Route("/e/{exp}/r/{tier}/{subtest}/{run}/raw/{rel:path}", raw),
    ]
    return Starlette(routes=routes, exception_handlers={NotFound: not_found, 404: not_found})


def _tier(tier: str) -> str:
    if tier not in ("T0", "T1", "T2", "T3", "T4", "T5", "T6"):
        raise NotFound(f"not a tier: {tier}")
    return tier


def _warm(source: Source) -> None:
    try:
        source.experiments()
    except Exception:  # a request will meet the same problem and show it
        pass


def serve(path: Path, host: str = "127.0.0.1", port: int = 8765) -> int:
    """Serve PATH until SIGINT/SIGTERM (then exit 130); prints the URL first (port 0 picks a free port)."""
    import uvicorn

    source = Source(path)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise OSError(exc.errno, f"cannot listen on {host}:{port}: {exc.strerror}. Pick another --port "
                                 "(0 picks a free one)") from None
    sock.listen(128)
    bound_port = sock.getsockname()[1]
    shown_host = f"[{host}]" if family == socket.AF_INET6 else host
    print(f"tierbench view: serving {source.root} ({source.kind}) read-only at http://{shown_host}:{bound_port}/",
          flush=True)
    if host not in ("127.0.0.1", "localhost", "::1"):
        print(f"tierbench: note: {host} is not loopback; anyone who can reach it can read these results",
              file=sys.stderr, flush=True)
    # Build the run indexes now, while the user opens the browser, not on the first request.
    threading.Thread(target=_warm, args=(source,), name="tierbench-view-warm", daemon=True).start()
    config = uvicorn.Config(create_app(source), log_level="warning", access_log=False,
                            timeout_graceful_shutdown=1, lifespan="off")
    server = uvicorn.Server(config)
    # uvicorn re-raises the signal that stopped it once it has shut down; SIGTERM then takes the
    # same path as Ctrl+C, so both end with the interrupted exit code, like every other command.
    previous = signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        server.run(sockets=[sock])
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
        sock.close()
    print("tierbench view: stopped", file=sys.stderr, flush=True)
    return EXIT_INTERRUPTED


def _raise_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt

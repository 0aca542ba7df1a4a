"""`tierbench view PATH [--port N] [--host H] [--export DIR]`: what the command does."""

from __future__ import annotations

import argparse
import importlib.util
from pathlib import Path

from tierbench.exitcodes import EXIT_ERROR, EXIT_OK, print_error

MISSING_EXTRA = ("tierbench view needs the web extra ({name} is not installed). Fix: pip install 'tierbench[view]' "
                 "(or: make dev)")


def port_number(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError("must be a port number from 0 to 65535 (0 picks a free one)")
    return value


def add_view_parser(sub: argparse._SubParsersAction) -> None:
    view = sub.add_parser("view", help="browse an experiment or batch directory in a web browser (read-only)")
    view.add_argument("path", type=Path, help="an experiment directory or a batch results directory")
    view.add_argument("--port", type=port_number, default=8765, help="port to listen on (default 8765; 0 picks a free one)")
    view.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1, loopback only)")
    view.add_argument("--export", type=Path, default=None, metavar="DIR",
                      help="write a self-contained static copy into DIR instead of serving")


def cmd_view(args: argparse.Namespace) -> int:
    needed = ("starlette", "jinja2", "pygments") + (() if args.export is not None else ("uvicorn",))
    missing = [name for name in needed if importlib.util.find_spec(name) is None]
    if missing:
        print_error(MISSING_EXTRA.format(name=", ".join(missing)))
        return EXIT_ERROR
    # A ViewError is a TierbenchError: cli.main prints it on one line and exits 1.
    if args.export is not None:
        from tierbench.view.export import export_site

        index, written = export_site(args.path, args.export)
        print(f"wrote {written} files; open {index}")
        return EXIT_OK
    from tierbench.view.app import serve

    return serve(args.path, host=args.host, port=args.port)

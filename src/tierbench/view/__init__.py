"""`tierbench view`: a read-only web viewer over experiment and batch directories.

    data.py         what PATH holds: experiments, their run index (kept current by tailing the
                    journal by byte offset), a run's files; never writes
    transcript.py   a transcript paged by line, through an index of line offsets built by streaming
    app.py          the Starlette application: pages, fragments, server-sent events
    export.py       `--export DIR`: the same pages as a self-contained static copy
    templates/      Jinja2 (autoescaped); static/ holds the vendored htmx and the style sheet
"""

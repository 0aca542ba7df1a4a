"""`tierbench batch`: run many tests, each as its own `tierbench run` child, on N worker threads.

Every test is an ordinary experiment in `<results-dir>/<test id>`, so everything `run` promises
(resume, rate-limit pauses, no run lost or run twice) holds per test; the batch adds scheduling and
one crash-safe `batch_summary.json` (see `summary`).

- Scheduling: tests are assigned longest `task.timeout_seconds` first, each to the worker with the
  least total timeout so far; a worker runs its tests one after another.
- Resume (the default): tests whose entry is pass/fail are skipped, `error` ones too unless
  `--retry-errors`; rate_limited and interrupted tests (and tests without an entry) are run again,
  and their child `run` resumes the experiment directory. The saved batch options win over the
  command line. `--fresh` moves the summary, the thread logs and the experiment dirs aside first.
- pass / fail: the child exited 0 and its report.json says that the best tier had at least one
  passing run (`n_passed > 0` for `best_tier`, i.e. a pass rate above zero; a run passes when its
  score reaches the rubric's pass threshold) -> `pass`; otherwise `fail`.
- Exit codes: 130 interrupted, else 2 if rate limited (rerunning later resumes), else 1 if any
  selected test is an `error`, else 0.

Modules, one topic each: `selection` (which tests, on which worker), `children` (the `tierbench run`
child processes), `runner` (worker threads, the launch gate for rate limits, each test's entry),
`summary` (batch_summary.json and what its entries say), `view` (the live view, a ProgressSink)
and `command` (`tierbench batch` itself).
"""

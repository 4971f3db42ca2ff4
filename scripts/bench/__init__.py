"""The benchmarks behind docs/benchmarks.md, run as modules from the checkout's root.

`make bench` runs them all (`run_all`). One by hand, with the backend on the path for
celery_live and the demo host:

    PYTHONPATH=backend .venv/bin/python -m scripts.bench.fanout --duration 3

Every module has one job: one per benchmark (competitors, latency, overhead, fanout,
history, slow_viewers), run_all and report; the processes the benchmarks start (viewers,
with viewer_pool on the runner's side; publisher; history_ops; bench_venv); and what they
share (common, paths, stats, usage).
"""

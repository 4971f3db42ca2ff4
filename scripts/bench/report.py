"""Write docs/benchmarks.md and its plots from the raw figures in docs/benchmarks/raw/*.json.

Runs under .bench-venv (it has matplotlib) as `python -m scripts.bench.report`; run_all.py
(what `make bench` runs) calls it after the measurements. Every table states what was
measured and the targets, and says where we lose.
"""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import matplotlib.ticker

from .paths import RAW, ROOT

DOCS = ROOT / "docs"
PLOTS = DOCS / "benchmarks"


def load(name: str) -> dict | None:
    path = RAW / f"{name}.json"
    return json.loads(path.read_text()) if path.exists() else None


def fmt(value: float | None, digits: int = 2) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def verdict(ok: bool) -> str:
    return "met" if ok else "**missed**"


def cdf(ax, values: list[float], label: str) -> None:
    ordered = sorted(v for v in values if v > 0)
    if not ordered:
        return
    ys = [(i + 1) / len(ordered) for i in range(len(ordered))]
    ax.plot(ordered, ys, label=f"{label} (n={len(ordered)})")


def latency_section(comp: dict) -> tuple[list[str], list[str]]:
    ours = comp["celery_live"]
    frame, dom = ours["event_to_ws_frame"], ours["progress_to_dom"]
    flower, progress = comp["flower"], comp["celery_progress"]
    every = progress["every_iteration_to_dom"]
    rows = [
        ("celery-live: event → JSON frame on `/ws/events/`", frame, "0 of " + str(frame["n"])),
        (
            "celery-live: progress event → its iteration in Chromium's DOM",
            dom,
            f"{dom['total'] - dom['shown']} of {dom['total']}",
        ),
        (
            f"Flower {comp['versions']['flower']}: state change → `GET /api/task/info` reports it "
            f"(polled {flower['polls_per_second']:.0f}×/s)",
            flower,
            f"{flower['state_changes_never_seen']} of {flower['n']}",
        ),
        (
            f"celery-progress {comp['versions']['celery_progress']}: every `set_progress` → the page shows it or a "
            f"later one (polls every {progress['poll_interval_ms']} ms)",
            every,
            f"{progress['dropped']} of {progress['total']} never shown",
        ),
    ]
    lines = [
        "| path | n | p50 ms | p90 ms | p99 ms | max ms | updates never shown |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, r, dropped in rows:
        lines.append(
            f"| {name} | {r['n']} | {fmt(r['p50_ms'])} | {fmt(r['p90_ms'])} | {fmt(r['p99_ms'])} | "
            f"{fmt(r['max_ms'])} | {dropped} |"
        )
    ratio_flower = flower["p50_ms"] / dom["p50_ms"] if dom["p50_ms"] else None
    ratio_frame = flower["p50_ms"] / frame["p50_ms"] if frame["p50_ms"] else None
    ratio_progress = every["p50_ms"] / dom["p50_ms"] if dom["p50_ms"] else None
    lines += [
        "",
        f"Ratios (p50): Flower's API ÷ our DOM = **{fmt(ratio_flower)}×**, Flower's API ÷ our frame = "
        f"**{fmt(ratio_frame)}×**, celery-progress ÷ our DOM = **{fmt(ratio_progress, 0)}×**. "
        f"Flower only gets that close when a client polls it ~{flower['polls_per_second']:.0f} times a second "
        "per task; its pages do not update by themselves.",
        "",
        "![latency CDF](benchmarks/latency_cdf.png)",
    ]
    checks = [
        f"event→DOM p50 ≤ Flower's event→API p50: {fmt(dom['p50_ms'])} vs {fmt(flower['p50_ms'])} ms — "
        f"{verdict(dom['p50_ms'] <= flower['p50_ms'])}"
    ]
    fig, ax = plt.subplots(figsize=(8, 4.5))
    cdf(ax, frame["latencies_ms"], "celery-live event→frame")
    cdf(ax, dom["latencies_ms"], "celery-live event→DOM")
    cdf(ax, flower["latencies_ms"], "Flower event→API (polled)")
    cdf(ax, every["latencies_ms"], "celery-progress set_progress→DOM")
    ax.set_xscale("log")
    ax.set_xlabel("latency (ms, log scale)")
    ax.set_ylabel("share of updates")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(PLOTS / "latency_cdf.png", dpi=110)
    plt.close(fig)
    return lines, checks


def overhead_section(over: dict) -> tuple[list[str], list[str]]:
    med = over["median_tasks_per_s"]
    labels = {k: v["label"] for k, v in over["variants"].items()}
    lines = ["| worker | median no-op tasks/s | vs plain Celery |", "|---|---|---|"]
    for key in ("b", "a", "c"):
        lines.append(f"| {labels[key]} | {med[key]:.0f} | {med[key] / med['b']:.3f} |")
    ours, events = over["overhead_celery_live"], over["overhead_celery_events"]
    lines += [
        "",
        f"{len(over['rounds'])} alternating rounds of {over['tasks']} no-op tasks "
        f"(prefork, -c 1); overhead = 1 − variant ÷ plain: celery-live **{ours * 100:.1f} %**, "
        f"Celery events (what Flower needs) **{events * 100:.1f} %**.",
    ]
    checks = [f"worker overhead ≤ 5 %: {ours * 100:.1f} % — {verdict(ours <= 0.05)}"]
    return lines, checks


def fanout_section(fan: dict) -> tuple[list[str], list[str]]:
    client = {"lean": "minimal RFC 6455 clients (`LeanProtocol`)", "library": "the `websockets` library"}
    recorder = {
        "process": "the recorder in its own process, as `make run` has it",
        "thread": "the recorder as a thread inside Daphne",
        "off": "no recorder",
    }
    lines = [
        f"Viewers: {client.get(fan.get('client', 'library'))} in separate processes on the same cores; "
        f"{recorder.get(fan.get('recorder', 'thread'))}. CPU is % of one core.",
        "",
        "Steady scenarios ran several times on a fresh stack each: the row is the run with the median "
        "p99, and the last column has every run's p99.",
        "",
        "| scenario | published | dropped | p50 ms | p90 ms | p99 ms | max ms | Daphne RSS/viewer "
        "| Daphne CPU | clients CPU | p99 of each run |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    checks, points = [], []
    for s in fan["scenarios"]:
        lat = s["latency_ms"]
        lines.append(
            f"| {s['scenario']} | {s['published']} | {s['dropped_total']} | {fmt(lat['p50'])} | "
            f"{fmt(lat['p90'])} | {fmt(lat['p99'])} | {fmt(lat['max'])} | {s['kb_per_viewer']:.0f} KB | "
            f"{s['cpu_pct']['daphne']:.0f} % | {s['cpu_pct'].get('clients', float('nan')):.0f} % | "
            f"{' / '.join(fmt(p) for p in s.get('p99_runs_ms', [lat['p99']]))} |"
        )
        if s.get("rate_per_s"):
            points.append((s["viewers"], s["rate_per_s"], lat["p50"], lat["p99"]))
        if s["viewers"] == 100 and s.get("rate_per_s") == 200:
            checks.append(
                f"100 viewers × 200/s p99 ≤ 10 ms: {fmt(lat['p99'])} ms — {verdict(lat['p99'] <= 10)}"
            )
        if s["viewers"] == 1000:
            checks.append(
                f"1000 viewers × 20/s p99 ≤ 100 ms: {fmt(lat['p99'])} ms — {verdict(lat['p99'] <= 100)}"
            )
        checks.append(f"{s['scenario']}: 0 dropped — {verdict(s['dropped_total'] == 0)}")
        if "burst" in s:
            b = s["burst"]
            lines.append("")
            lines.append(
                f"Burst: {b['events']} events made by the workers in {b['produce_s']:.1f} s "
                f"({b['produced_per_s']:.0f}/s); every one of {s['viewers']} viewers had all of them "
                f"{b['first_event_to_all_viewers_s']:.1f} s after the first "
                f"({b['delivered_per_s']:.0f} events/s per viewer)."
            )
    lines += ["", "![fan-out](benchmarks/fanout.png)"]
    fig, ax = plt.subplots(figsize=(7, 4))
    labels = [f"{v} × {r:.0f}/s" for v, r, _, _ in points]
    xs = range(len(points))
    ax.bar([x - 0.2 for x in xs], [p50 for *_, p50, _ in points], width=0.4, label="p50")
    ax.bar([x + 0.2 for x in xs], [p99 for *_, p99 in points], width=0.4, label="p99")
    targets = {(100, 200.0): 10.0, (1000, 20.0): 100.0}  # the p99 targets
    for x, (viewers, rate, *_) in zip(xs, points, strict=True):
        if (viewers, rate) in targets:
            ax.hlines(targets[(viewers, rate)], x - 0.4, x + 0.4, colors="red", linestyles="--")
    ax.plot([], [], "r--", label="p99 target")
    ax.set_xticks(list(xs), labels)
    ax.set_yscale("log")
    ax.yaxis.set_major_formatter(matplotlib.ticker.ScalarFormatter())
    ax.yaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    ax.set_ylabel("event → frame latency (ms, log scale)")
    ax.set_xlabel("viewers × events per second, one Daphne process")
    ax.grid(True, axis="y", which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(PLOTS / "fanout.png", dpi=110)
    plt.close(fig)
    return lines, checks


def history_section(hist: dict) -> list[str]:
    lines = []
    for path, r in hist["catch_up"].items():
        lines.append(
            f"- catch-up of {hist['events']} missed events {path.replace('_', ' ')}: "
            f"{r['seconds'] * 1000:.0f} ms ({r['events_per_s']:.0f} events/s); all received, in order, "
            f"no duplicates: {r['in_order_no_duplicates']}"
        )
    listing = hist["list"]
    if "skipped" in listing:
        lines.append(f"- list: skipped ({listing['skipped']})")
        return lines
    lines += [
        "",
        f"List with {listing['runs']} runs in PostgreSQL:",
        "",
        "| request | p50 ms | p95 ms |",
        "|---|---|---|",
    ]
    for name, r in listing.items():
        if isinstance(r, dict):
            lines.append(f"| {name} | {fmt(r['p50_ms'], 1)} | {fmt(r['p95_ms'], 1)} |")
    return lines


def bridge_section(bridge: dict) -> list[str]:
    rate, bridged, signal = bridge["throughput"], bridge["bridged"], bridge["signal"]
    return [
        f"- throughput: {rate['events']} Celery events sent at {rate['send_per_s']}/s (one dispatcher, "
        f"its limit); {rate['arrived']} in the log, at {rate['landed_per_s']}/s; bridge reconnects: "
        f"{rate['reconnects']}",
        f"- the bridge's CPU: {fmt(rate['bridge_cpu_ms_per_1000'], 1)} ms per 1000 events "
        f"(~{rate['capacity_per_cpu_s']} events per CPU-second)",
        f"- Celery event → `/ws/events/` frame: p50 {fmt(bridged['p50_ms'])} ms, p99 {fmt(bridged['p99_ms'])} ms "
        f"(n={bridged['n']}); our signal's event → frame, same run: p50 {fmt(signal['p50_ms'])} ms, "
        f"p99 {fmt(signal['p99_ms'])} ms (n={signal['n']})",
    ]


def main() -> None:
    comp, over, fan, hist = load("competitors"), load("overhead"), load("fanout"), load("history")
    bridge = load("bridge")
    machine = (comp or {}).get("machine", {})
    out = [
        "# Benchmarks",
        "",
        f"Measured {machine.get('measured_at') or f'{datetime.now(UTC):%Y-%m-%d %H:%M}'} UTC by `make bench` (`scripts/bench/run_all.py`), all in "
        f"one run on one machine: {machine.get('node', '?')}, {machine.get('cores', '?')} cores, "
        f"{machine.get('platform', '')}, Python {machine.get('python', '?')}; Redis, Daphne, the workers, the "
        "clients and Chromium all share those cores. The machines are shared and noisy: read the ratios "
        "more than the absolute times. Raw figures: `docs/benchmarks/raw/*.json`.",
        "",
    ]
    checks: list[str] = []
    if comp:
        lines, c = latency_section(comp)
        out += ["## 1. Latency: a change → what a person or program sees", ""] + lines + [""]
        checks += c
    if over:
        lines, c = overhead_section(over)
        out += ["## 2. Worker overhead", ""] + lines + [""]
        checks += c
    if fan:
        lines, c = fanout_section(fan)
        out += ["## 3. Fan-out and burst (`/ws/events/`, one Daphne process)", ""] + lines + [""]
        checks += c
    if hist:
        out += ["## 4. History", ""] + history_section(hist) + [""]
    if bridge:
        out += ["## 5. The bridge (`bridge_events`: Celery's own events → the log)", ""]
        out += bridge_section(bridge) + [""]
    out += ["## Targets", ""] + [f"- {c}" for c in checks] + [""]
    notes = DOCS / "benchmarks" / "notes.md"
    if notes.exists():
        out += [notes.read_text().strip(), ""]
    (DOCS / "benchmarks.md").write_text("\n".join(out))
    print("\n".join(f"- {c}" for c in checks))
    print(f"wrote {DOCS / 'benchmarks.md'}")


if __name__ == "__main__":
    sys.exit(main())

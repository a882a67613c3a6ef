"""Run every benchmark and print the ratios: `python -m bench` (or `python bench/run.py`).

Writes bench/results.json and bench/results.png; bench/RESULTS.md explains them."""
from __future__ import annotations

import argparse
import faulthandler
import json
import signal
import sys
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    __package__ = "bench"

from bench import growth, pipeline, sms, tickets  # noqa: E402
from bench.harness import (  # noqa: E402
    ADMIN_PASSWORD,
    RecordingGateway,
    database,
    machine,
    process_tree_rss_mb,
    running_platform,
    vhost,
)
from motcua_platform.simulate import print_summary, simulate  # noqa: E402

HERE = Path(__file__).resolve().parent


def plot(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    names = ["vé (ticket/s)", "sự kiện (event/s)", "relay only (event/s)"]
    ours = [results["tickets"]["platform"]["per_s"], results["pipeline"]["pipeline_per_s"], results["pipeline"]["relay_only_per_s"]]
    base = [results["tickets"]["minimal"]["per_s"], results["pipeline"]["raw_pika_per_s"], results["pipeline"]["raw_pika_per_s"]]
    x = range(len(names))
    left.bar([i - 0.2 for i in x], base, 0.4, label="baseline (same run)")
    left.bar([i + 0.2 for i in x], ours, 0.4, label="Một Cửa")
    left.set_xticks(list(x), names)
    left.set_yscale("log")
    left.set_title("Throughput vs baselines")
    left.legend()
    steps = [f"{g['wards']} phường\n{g['citizens'] // 1000}k công dân" for g in results["growth"]]
    for name in results["growth"][0]["queries"]:
        right.plot(steps, [g["queries"][name]["ms"] for g in results["growth"]], marker="o", label=name)
    right.set_xlabel("data size")
    right.set_ylabel("ms per query")
    right.set_title("Hot queries as data grows (all IXSCAN)")
    right.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


PARTS = ("pipeline", "growth", "tickets", "sms", "simulation")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument("--seconds", type=float, default=20, help="length of each timed load")
    parser.add_argument("--events", type=int, default=2000)
    parser.add_argument("--growth-citizens", type=int, default=100_000,
                        help="citizens at the largest growth step (500 wards); 1000000 loads for ~6 min here")
    parser.add_argument("--sim-wards", type=int, default=4)
    parser.add_argument("--sim-minutes", type=float, default=2)
    parser.add_argument("--only", action="append", choices=PARTS,
                        help="run only this part (repeatable); the others keep their figures in results.json")
    args = parser.parse_args(argv)
    faulthandler.register(signal.SIGUSR1)  # `kill -USR1 <pid>`: where every thread is, on stderr
    parts = set(args.only or PARTS)
    previous = json.loads((HERE / "results.json").read_text()) if (HERE / "results.json").exists() else {}
    results: dict = {**previous, "machine": machine(), "at": time.strftime("%Y-%m-%d %H:%M:%S")}
    with database() as db, vhost() as amqp_url, RecordingGateway() as gateway:
        if "pipeline" in parts:
            print("(2) event pipeline …", file=sys.stderr)
            results["pipeline"] = pipeline.run(db.url, amqp_url, args.events)
            print(json.dumps(results["pipeline"]), file=sys.stderr)
        if "growth" in parts:
            print("(4) growth …", file=sys.stderr)
            results["growth"] = growth.run(db.url, growth.sizes(args.growth_citizens))
        if parts & {"tickets", "sms", "simulation"}:
            with running_platform(db.url, amqp_url, gateway.url) as (base, proc):
                time.sleep(10)
                results["idle_memory_mib"] = round(process_tree_rss_mb(proc.pid) + process_tree_rss_mb(db.process.pid), 1)
                if "tickets" in parts:
                    print("(1) tickets …", file=sys.stderr)
                    results["tickets"] = tickets.run(base, db.url, seconds=args.seconds)
                if "sms" in parts:
                    print("(3) dossier → SMS …", file=sys.stderr)
                    results["sms"] = sms.run(base, gateway, per_second=10, seconds=args.seconds)
                if "simulation" in parts:
                    print(f"simulated day, {args.sim_wards} wards …", file=sys.stderr)
                    # Wards beyond the demo's are created through the admin API (the harness's password).
                    results["simulation"] = simulate(base, args.sim_wards, args.sim_minutes, gateway=gateway, seed=1,
                                                     admin_password=ADMIN_PASSWORD)
    (HERE / "results.json").write_text(json.dumps(results, ensure_ascii=False, indent=2))
    report(results)
    return 0


def report(results: dict) -> None:
    if all(k in results for k in ("tickets", "pipeline", "growth")):
        plot(results, HERE / "results.png")
    t, p, s = results.get("tickets"), results.get("pipeline"), results.get("sms")
    if t:
        print(f"tickets, {t['kiosks']} kiosks: {t['ratio']:.2f} × the minimal endpoint "
              f"(p50 {t['platform']['p50_ms']} ms, p99 {t['platform']['p99_ms']} ms; minimal p99 {t['minimal']['p99_ms']} ms)")
    if p:
        print(f"event pipeline outbox → consumer store: {p['ratio']:.3f} × raw pika"
              + (f", {p['ratio_confirmed']:.3f} × raw pika with the same guarantees" if "ratio_confirmed" in p else "")
              + (f", {p['ratio_stored']:.3f} × raw pika storing each event in the same database"
                 if "ratio_stored" in p else "")
              + f"; relay alone {p['relay_ratio']:.3f} ×")
    if s:
        print(f"dossier → SMS at {s['rate_per_s']}/s: p50 {s['p50_ms']} ms, p99 {s['p99_ms']} ms, lost {s['lost']}")
    if "idle_memory_mib" in results:
        print(f"motcua up idle: {results['idle_memory_mib']} MiB (process tree + embedded database)")
    for g in results.get("growth", []):
        worst = max(q["ms"] for q in g["queries"].values())
        scans = [n for n, q in g["queries"].items() if q["collection_scan"]]
        print(f"{g['wards']} wards, {g['citizens']} citizens: slowest hot query {worst} ms; collection scans: {scans or 'none'}")
    if "simulation" in results:
        print_summary(results["simulation"])


if __name__ == "__main__":
    raise SystemExit(main())

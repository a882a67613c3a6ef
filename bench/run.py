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

from bench import edge, embedded, growth, pipeline, sms, tickets  # noqa: E402
from bench.harness import (  # noqa: E402
    ADMIN_PASSWORD,
    RecordingGateway,
    database,
    machine,
    process_tree_rss_mb,
    running_platform,
    vhost,
)
from motcua_platform.simulate import OPEN_HOURS, print_summary, simulate  # noqa: E402

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


PARTS = ("pipeline", "growth", "tickets", "sms", "simulation", "edge", "embedded")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument("--seconds", type=float, default=20, help="length of each timed load")
    parser.add_argument("--events", type=int, default=2000)
    parser.add_argument("--growth-citizens", type=int, default=100_000,
                        help="citizens at the largest growth step (500 wards); 1000000 loads for ~6 min here")
    parser.add_argument("--sim-wards", type=int, default=4)
    parser.add_argument("--sim-minutes", type=float, default=2)
    parser.add_argument("--api-processes", default="1,2,4",
                        help="API process counts the tickets benchmark compares, each on a fresh platform "
                             "against the minimal endpoint with as many processes")
    parser.add_argument("--processes", type=int, default=2,
                        help="API processes of the platform the other parts (and the headline ticket ratio) use")
    parser.add_argument("--province", action="store_true",
                        help="the simulated day is Hà Nội's 126 communes and wards at ten times real time "
                             "(about an hour here; --sim-wards and --sim-minutes are then ignored)")
    parser.add_argument("--only", action="append", choices=PARTS,
                        help="run only this part (repeatable); the others keep their figures in results.json")
    args = parser.parse_args(argv)
    faulthandler.register(signal.SIGUSR1)  # `kill -USR1 <pid>`: where every thread is, on stderr
    parts = set(args.only or PARTS)
    previous = json.loads((HERE / "results.json").read_text()) if (HERE / "results.json").exists() else {}
    results: dict = {**previous, "machine": machine(), "at": time.strftime("%Y-%m-%d %H:%M:%S")}
    if "edge" in parts:
        # First, on a machine not yet warmed by the other parts: a ward office's box starts
        # cold. It brings its own broker node and embedded database (bench/edge.py).
        print("(5) ward office, motcua up --profile edge …", file=sys.stderr)
        results["edge"] = edge.run()
        print(json.dumps(results["edge"], ensure_ascii=False), file=sys.stderr)
    if "embedded" in parts:
        # On fresh servers of its own: what bounds the other parts on the embedded database.
        print("(6) the embedded database's costs …", file=sys.stderr)
        results["embedded"] = embedded.run()
        print(json.dumps(results["embedded"], ensure_ascii=False), file=sys.stderr)
    if parts - {"edge", "embedded"}:
        run_on_centre(args, parts, results)
    (HERE / "results.json").write_text(json.dumps(results, ensure_ascii=False, indent=2))
    report(results)
    return 0


def run_on_centre(args: argparse.Namespace, parts: set[str], results: dict) -> None:
    """The parts that share one database, broker vhost and SMS gateway."""
    with database() as db, vhost() as amqp_url, RecordingGateway() as gateway:
        if "pipeline" in parts:
            print("(2) event pipeline …", file=sys.stderr)
            results["pipeline"] = pipeline.run(db.url, amqp_url, args.events)
            print(json.dumps(results["pipeline"]), file=sys.stderr)
        if "growth" in parts:
            print("(4) growth …", file=sys.stderr)
            results["growth"] = growth.run(db.url, growth.sizes(args.growth_citizens))
        if "tickets" in parts:
            # One fresh platform per process count, each against the minimal endpoint served by
            # as many processes, interleaved (tickets.run): the machine's other work weighs on both.
            by_processes = []
            for count in sorted({int(n) for n in args.api_processes.split(",") if n.strip()}):
                with running_platform(db.url, amqp_url, gateway.url, {"MOTCUA_API_PROCESSES": str(count)}) as (base, _):
                    time.sleep(5)
                    print(f"(1) tickets, {count} API process(es) …", file=sys.stderr)
                    by_processes.append(tickets.run(base, db.url, seconds=args.seconds, processes=count))
                    print(json.dumps(by_processes[-1]), file=sys.stderr)
            results["tickets_by_processes"] = by_processes
            results["tickets"] = next((t for t in by_processes if t["processes"] == args.processes), by_processes[-1])
        if parts & {"sms", "simulation"}:
            with running_platform(db.url, amqp_url, gateway.url, {"MOTCUA_API_PROCESSES": str(args.processes)}) as (base, proc):
                time.sleep(10)
                results["idle_memory_mib"] = round(process_tree_rss_mb(proc.pid) + process_tree_rss_mb(db.process.pid), 1)
                if "sms" in parts:
                    print("(3) dossier → SMS …", file=sys.stderr)
                    results["sms"] = sms.run(base, gateway, per_second=10, seconds=args.seconds)
                if "simulation" in parts and args.province:
                    print("the province's day: Hà Nội, 126 communes and wards, ten times real time …", file=sys.stderr)
                    results["province_day"] = simulate(base, 0, OPEN_HOURS * 60 / 10, gateway=gateway, seed=1,
                                                       admin_password=ADMIN_PASSWORD, province=1)
                elif "simulation" in parts:
                    print(f"simulated day, {args.sim_wards} wards …", file=sys.stderr)
                    # Wards beyond the demo's are created through the admin API (the harness's password).
                    results["simulation"] = simulate(base, args.sim_wards, args.sim_minutes, gateway=gateway, seed=1,
                                                     admin_password=ADMIN_PASSWORD)


def report(results: dict) -> None:
    if all(k in results for k in ("tickets", "pipeline", "growth")):
        try:
            plot(results, HERE / "results.png")
        except ImportError:  # matplotlib comes with the bench extra; the figures print anyway
            print("(results.png not redrawn: pip install -e '.[bench]' for matplotlib)", file=sys.stderr)
    t, p, s = results.get("tickets"), results.get("pipeline"), results.get("sms")
    for byp in results.get("tickets_by_processes", []):
        print(f"tickets, {byp['processes']} API process(es): {byp['platform']['per_s']}/s, {byp['ratio']:.2f} × the minimal "
              f"endpoint on as many ({byp['minimal']['per_s']}/s); p99 {byp['platform']['p99_ms']} ms")
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
    if results.get("embedded"):
        print("\n".join(embedded.report(results["embedded"])))
    e = results.get("edge")
    if e:
        target = e["targets"]
        print(f"ward office (--profile edge): ready in {e['ready_seconds']} s (target < {target['ready_seconds']} s), "
              f"idle {e['idle_rss_mib']} MiB (target < {target['idle_rss_mib']} MiB)")
        print(f"  {e['process_count']} processes; {e['idle_pss_mib']} MiB with shared pages counted once (PSS); "
              f"the office's RabbitMQ node {e['broker_rss_mib']} MiB besides; "
              f"1-min load {e['load_at_start']} at start, {e['load_at_measure']} at the measurement")
        # Where the memory goes: processes of one command together, largest first.
        by_name: dict[str, list[float]] = {}
        for p in e["processes"]:
            by_name.setdefault(p["name"], []).append(p["rss_mib"])
        print("  " + ", ".join(f"{name} {sum(rss):.1f}" + (f" ({len(rss)}×)" if len(rss) > 1 else "")
                               for name, rss in sorted(by_name.items(), key=lambda kv: -sum(kv[1]))))
    for g in results.get("growth", []):
        worst = max(q["ms"] for q in g["queries"].values())
        scans = [n for n, q in g["queries"].items() if q["collection_scan"]]
        print(f"{g['wards']} wards, {g['citizens']} citizens: slowest hot query {worst} ms; collection scans: {scans or 'none'}")
    if "simulation" in results:
        print_summary(results["simulation"])
    if "province_day" in results:
        print("Hà Nội's day (126 communes and wards, ten times real time):")
        print_summary(results["province_day"])
    print("\n".join(targets(results)))


def targets(results: dict) -> list[str]:
    """Issue 23's targets against the figures at hand, each met or not (or not measured)."""
    def line(name: str, value, goal: str, met: bool | None) -> str:
        verdict = "not measured" if met is None else ("met" if met else "NOT met")
        return f"  {name}: {value} (target {goal}): {verdict}"

    t, p, e, day = results.get("tickets"), results.get("pipeline"), results.get("edge"), results.get("province_day")
    lines = ["targets:",
             line("tickets × the minimal ticket", t and t["ratio"], "≥ 0.6", t and t["ratio"] >= 0.6),
             line("pipeline × raw pika storing each event", p and p.get("ratio_stored"), "≥ 0.7",
                  p and "ratio_stored" in p and p["ratio_stored"] >= 0.7)]
    if day:
        peak = day.get("morning_peak") or {}
        worst = max((op["p99_ms"] for op in peak.values()), default=None)
        lost = sum(day.get("lost_events", {}).values())
        errors = sum(day.get("errors", {}).values())
        lines.append(line("Hà Nội's day, morning peak p99 of a ticket, a call, a serve", f"{worst} ms", "≤ 1000 ms",
                          worst is not None and worst <= 1000))
        lines.append(line("Hà Nội's day, errors and lost events", f"{errors} errors, {lost} lost", "0 and 0",
                          errors == 0 and lost == 0))
    else:
        lines.append(line("Hà Nội's day", None, "p99 ≤ 1000 ms at the morning peak, 0 errors, 0 lost", None))
    lines.append(line("ward office ready", e and f"{e['ready_seconds']} s", "< 20 s", e and e["ready_seconds"] < 20))
    lines.append(line("ward office idle", e and f"{e['idle_rss_mib']} MiB", "< 600 MiB", e and e["idle_rss_mib"] < 600))
    return lines


if __name__ == "__main__":
    raise SystemExit(main())

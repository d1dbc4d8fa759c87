#!/usr/bin/python3
"""Markdown tables from one bench run's results.json (what docs/BENCHMARKS.md shows).

    report.py bench-results/results.json
"""

import json
import sys


def gbit(row):
    return f"{row['mbps'] / 1000:.2f} Gbit/s"


def mbit(value):
    return f"{value:.1f} Mbit/s"


def main():
    r = json.load(open(sys.argv[1]))
    m = r["machine"]
    print(f"Run: {m['date']}, {m['cores']} cores ({m['cpu']}), Linux {m['kernel']}, {m['weft']}, "
          f"{r['seconds']:.0f} s in all.\n")

    if "loopback" in r:
        rows = r["loopback"]
        stunnel = next(x for x in rows if x["label"].startswith("stunnel"))
        print("### Loopback, one stream\n")
        print("| path | goodput | × stunnel pair | CPU of the relays (s) |")
        print("|---|---:|---:|---:|")
        for row in rows:
            cpu = " + ".join(f"{v:.1f}" for v in row["node_cpu_seconds"].values()) or "—"
            print(f"| {row['label']} | {gbit(row)} | {row['mbps'] / stunnel['mbps']:.2f} | {cpu} |")
        if "idle_rss_mib" in r:
            idle = r["idle_rss_mib"]
            start = r.get("startup_rss_mib")
            print(f"\nIdle node (linked, no stream), settled: RSS {idle['site a']:.1f} MiB and {idle['site b']:.1f} MiB"
                  + (f" (2 s after start, before it gives back its startup pages: {start['site a']:.1f} and "
                     f"{start['site b']:.1f} MiB)." if start else "."))
        print()

    if "aggregation" in r:
        print("### Aggregation on shaped links\n")
        print("| links | each alone | sum | kernel MPTCP | weft | weft / sum | weft / fastest | weft / MPTCP |")
        print("|---|---|---:|---:|---:|---:|---:|---:|")
        for case in r["aggregation"]:
            alone = ", ".join(f"{x['mbps']:.1f}" for x in case["alone"])
            fastest = max(x["mbps"] for x in case["alone"])
            w, mp, total = case["weft"]["mbps"], case["mptcp"]["mbps"], case["sum_mbps"]
            print(f"| {' + '.join(case['rates'])} | {alone} | {mbit(total)} | {mbit(mp)} ({mp / total * 100:.1f} %) "
                  f"| {mbit(w)} | {w / total * 100:.1f} % | {w / fastest:.2f} | {w / mp:.2f} |")
        print()

    if "failover" in r:
        print("### Failover: link 1 of 2 × 100 Mbit/s cut 3 s into the transfer\n")
        print("| path | received | bytes lost | longest stall | after the cut |")
        print("|---|---:|---|---:|---:|")
        for row in r["failover"]:
            lost = "none (every byte checked)" if row["mismatch_at"] is None and not row["error"] else (
                row["error"] or f"broken at {row['mismatch_at']}")
            print(f"| {row['label']} | {row['bytes'] / 1e6:.1f} MB | {lost} | {row['longest_gap'] * 1000:.0f} ms "
                  f"| {mbit(row['after_cut_mbps'])} |")
        print()

    if "loss" in r:
        print("### Loss on link 1 of 2 × 100 Mbit/s\n")
        print("| loss | link 1 alone | kernel MPTCP | weft | weft / MPTCP |")
        print("|---|---:|---:|---:|---:|")
        for case in r["loss"]:
            print(f"| {case['percent']} % | {mbit(case['alone']['mbps'])} | {mbit(case['mptcp']['mbps'])} "
                  f"| {mbit(case['weft']['mbps'])} | {case['weft']['mbps'] / case['mptcp']['mbps']:.2f} |")
        print()

    if "latency" in r:
        print("### Latency: redis-benchmark (SET and GET) on loopback\n")
        rows = r["latency"]
        paths = list(dict.fromkeys(x["path"] for x in rows))
        print("| clients | test | " + " | ".join(f"{p} p50 / p99" for p in paths) + " | requests/s "
              + ", ".join(paths) + " |")
        print("|---:|---|" + "---|" * len(paths) + "---|")
        for clients in sorted({x["clients"] for x in rows}):
            for test in ("SET", "GET"):
                pick = {x["path"]: x for x in rows if x["clients"] == clients and x["test"] == test}
                cell = lambda x: f"{x['p50_ms']:.3f} / {x['p99_ms']:.3f} ms" if x else "—"  # noqa: E731
                print(f"| {clients} | {test} | " + " | ".join(cell(pick.get(p)) for p in paths) + " | "
                      + ", ".join(f"{pick[p]['rps']:.0f}" if p in pick else "—" for p in paths) + " |")
        print()

    if "pingpong" in r:
        print("### Interactive: 1-byte ping-pong over one connection (loopback)\n")
        print("| path | round trips/s | p50 | p99 |")
        print("|---|---:|---:|---:|")
        for row in r["pingpong"]:
            print(f"| {row['path']} | {row['per_second']:.0f} | {row['p50_us']:.1f} µs | {row['p99_us']:.1f} µs |")
        print()

    if "scale" in r:
        print("### Scale: concurrent streams through one tunnel (echo app, loopback)\n")
        print("| streams | open | opens/s direct | opens/s weft | p99 open | RSS per node, idle → all open "
              "| per stream | node CPU to open all |")
        print("|---:|---:|---:|---:|---:|---|---:|---|")
        for case in r["scale"]:
            w, d = case["weft"], case["direct"]
            idle, full = w["idle_rss_mib"], w["rss_mib"]
            per = ((full["site a"] - idle["site a"]) + (full["site b"] - idle["site b"])) / 2 * 1024 / case["count"]
            print(f"| {case['count']:,} | {w['open']:,} | {d['opens_per_second']:.0f} | {w['opens_per_second']:.0f} "
                  f"| {w['p99_open_ms']:.0f} ms | {idle['site a']:.0f} → {full['site a']:.0f} MiB, "
                  f"{idle['site b']:.0f} → {full['site b']:.0f} MiB | {per:.1f} KiB "
                  f"| {w['cpu_seconds']['site a']:.2f} s + {w['cpu_seconds']['site b']:.2f} s |")
        print()


if __name__ == "__main__":
    main()

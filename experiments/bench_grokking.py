"""Grokking speed benchmark: steps-to-grok and wall time of the reference configuration, plain AdamW vs a better schedule.

Reference configuration (Nanda et al. 2023 style): tokens `<bos> a b =`, 50% of all pairs for training (split seed 0),
the rest held out; 2 layers, d_model 128, 4 heads, d_mlp 512, ReLU, LayerNorm, learned positions; AdamW lr 1e-3,
weight decay 1.0, betas (0.9, 0.98), full batch. Steps-to-grok = first evaluated step with held-out accuracy >= 99%
(each run stops there; a run that has not grokked by --max-steps is reported as not grokked).

Tasks: add_mod_97, mul_mod_97, s5_compose. Several runs share the GPU as separate processes (--jobs, spawn).

    PYTHONPATH=. python experiments/bench_grokking.py --out reports/benchmarks/grokking.json
    PYTHONPATH=. python experiments/bench_grokking.py --smoke          # tiny CPU version, < 1 minute
    PYTHONPATH=. python experiments/bench_grokking.py --schedules all  # explore every candidate schedule
"""
from __future__ import annotations
import argparse, datetime, json, math, multiprocessing as mp, os, platform, statistics, sys, time
from pathlib import Path

os.environ.setdefault("WANDB_MODE", "disabled")
from algocircuits.model import model_preset

# attn_backend="math": for 4-token sequences the plain matmul attention is faster on the GPU than the fused SDPA kernels,
# whose 64-wide tiles are mostly padding here; it is the same arithmetic.
REFERENCE_MODEL = model_preset("reference", attn="mha", attn_backend="math")
REFERENCE_TRAIN = dict(lr=1e-3, weight_decay=1.0, betas=(0.9, 0.98), batch_size=None, train_frac=0.5, val_frac=0.5, split_seed=0)
# Candidate schedules: overrides of the reference TrainConfig. "plain" is the reference itself.
SCHEDULES = {
    "plain": {},
    "warmup": dict(warmup_steps=100),
    "lr2x_warmup": dict(lr=2e-3, warmup_steps=100),
    "lr3x_warmup": dict(lr=3e-3, warmup_steps=100),
    "lr3x_warmup_cosine": dict(lr=3e-3, warmup_steps=100, schedule="cosine", min_lr_ratio=0.1),
    "wd_init": dict(wd_target="init"),
    "lr3x_warmup_wd_init": dict(lr=3e-3, warmup_steps=100, wd_target="init"),
    "grokfast": dict(grokfast_lamb=2.0, grokfast_alpha=0.98),           # Lee et al. 2024 setting for modular arithmetic
    "grokfast_weak": dict(grokfast_lamb=0.5, grokfast_alpha=0.9),
    "lr3x_warmup_grokfast_weak": dict(lr=3e-3, warmup_steps=100, grokfast_lamb=0.5, grokfast_alpha=0.9),
}
# Picked from an exploration run (reports/benchmarks/grokking_explore.json: 8 candidates x 3 tasks x 2 seeds on one H100):
# lr 3e-3 after a 100-step linear warmup grokked 6/6 runs with median steps-to-grok 250 (add), 300 (mul), 750 (S5) vs
# 500, 600, 2250 for plain AdamW. Grokfast-EMA (lamb 2 / 0.5) and weight decay towards the init were slower here.
BEST = "lr3x_warmup"
TASKS = ["add_mod_97", "mul_mod_97", "s5_compose"]
SMOKE_TASKS = ["add_mod_11", "mul_mod_11", "s3_compose"]


class _Deadline(Exception): pass


def run_one(spec: dict) -> dict:
    "Train one (task, schedule, seed) in this process; return its result row (no model)."
    import torch
    torch.set_num_threads(spec.get("threads", 1))
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = spec.get("tf32", False)
    from algocircuits.train import TrainConfig, train
    deadline = spec["deadline"]
    if time.time() > deadline:  # the time budget is spent: do not start
        return dict(task=spec["task"], schedule=spec["schedule"], seed=spec["seed"], grokked=False, steps_to_grok=None,
                    steps_run=0, status="skipped", wall_s=0.0)
    def stop_at_deadline(step, row, model):
        if time.time() > deadline: raise _Deadline(step)
    cfg = TrainConfig(**{**REFERENCE_TRAIN, **SCHEDULES[spec["schedule"]], **spec.get("train_overrides", {})},
                      steps=spec["max_steps"], eval_every=spec["eval_every"], seed=spec["seed"], device=spec["device"],
                      early_stop_acc=0.99, early_stop_patience=1, wandb=False, cuda_graph=spec["device"].startswith("cuda"))
    t0 = time.perf_counter(); out = dict(task=spec["task"], schedule=spec["schedule"], seed=spec["seed"])
    try:
        res = train(spec["task"], {**REFERENCE_MODEL, **spec.get("model_overrides", {})}, cfg)
    except _Deadline as e:
        return {**out, "grokked": False, "steps_to_grok": None, "steps_run": int(e.args[0]), "status": "deadline",
                "wall_s": time.perf_counter() - t0}
    g = res.grokking
    m = res.metrics.drop(columns=[c for c in res.metrics if c.endswith("_class_acc")])
    m = m.assign(task=spec["task"], schedule=spec["schedule"], seed=spec["seed"])
    return {**out, "grokked": g.generalization_step is not None, "steps_to_grok": g.generalization_step,
            "memorization_step": g.memorization_step, "delay": g.delay, "double_descent": g.double_descent,
            "steps_run": res.steps, "status": "grokked" if g.generalization_step is not None else "max_steps",
            "wall_s": res.wall_time_s, "process_wall_s": time.perf_counter() - t0, "final_train_acc": res.final["train_acc"], "final_val_acc": res.final["val_acc"],
            "metrics": m.to_dict("list")}


def env_info() -> dict:
    "Code and package versions, computed in a worker (which has already imported the package)."
    from algocircuits.train import code_version, package_versions
    return dict(code=code_version(), packages=package_versions())


def summarize(runs: list[dict]) -> list[dict]:
    "Per (task, schedule): medians over seeds; a run that did not grok counts as +inf steps (median None if most did not)."
    out = []
    for key in sorted({(r["task"], r["schedule"]) for r in runs}):
        rs = [r for r in runs if (r["task"], r["schedule"]) == key]
        done = [r for r in rs if r["status"] != "skipped"]
        steps = [r["steps_to_grok"] if r["grokked"] else math.inf for r in done] or [math.inf]
        med = statistics.median(steps)
        walls = [r["wall_s"] for r in done]
        out.append(dict(task=key[0], schedule=key[1], n_seeds=len(done), n_skipped=len(rs) - len(done), n_grokked=sum(r["grokked"] for r in rs),
                        median_steps_to_grok=None if math.isinf(med) else med,
                        median_wall_s=statistics.median(walls) if walls else None,
                        median_wall_s_grokked=statistics.median([r["wall_s"] for r in rs if r["grokked"]]) if any(r["grokked"] for r in rs) else None,
                        steps_to_grok=[r["steps_to_grok"] for r in sorted(rs, key=lambda r: r["seed"])]))
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=None, help="JSON file to write (default reports/benchmarks/grokking.json, or grokking_smoke.json with --smoke)")
    ap.add_argument("--jobs", type=int, default=8, help="concurrent runs (processes)")
    ap.add_argument("--seeds", type=int, default=5, help="seeds per (task, schedule)")
    ap.add_argument("--max-steps", type=int, default=20000, help="cap per run")
    ap.add_argument("--eval-every", type=int, default=100)
    ap.add_argument("--tasks", default=",".join(TASKS))
    ap.add_argument("--schedules", default=f"plain,{BEST}", help=f"comma list of {list(SCHEDULES)} or 'all'")
    ap.add_argument("--device", default=None, help="default cuda if available else cpu")
    ap.add_argument("--time-budget", type=float, default=450.0, help="seconds; runs still going then are stopped and reported")
    ap.add_argument("--tf32", action=argparse.BooleanOptionalAction, default=True, help="TF32 matmuls on CUDA (default on)")
    ap.add_argument("--smoke", action="store_true", help="tiny CPU version (< 1 minute)")
    a = ap.parse_args(argv)
    import torch
    model_over = {}
    if a.smoke:
        a.device, a.tasks, a.seeds, a.max_steps, a.eval_every = "cpu", ",".join(SMOKE_TASKS), 1, 200, 25
        a.jobs, a.time_budget = min(a.jobs, 2), min(a.time_budget, 50.0)
        model_over = dict(n_layers=1, d_model=32, n_heads=2, d_mlp=64)
    device = a.device or ("cuda" if torch.cuda.is_available() else "cpu")
    out = Path(a.out or ("reports/benchmarks/grokking_smoke.json" if a.smoke else "reports/benchmarks/grokking.json"))
    schedules = list(SCHEDULES) if a.schedules == "all" else a.schedules.split(",")
    bad = [s for s in schedules if s not in SCHEDULES]
    if bad: ap.error(f"--schedules: unknown {bad}; choose from {list(SCHEDULES)}")
    tasks = a.tasks.split(",")
    t_start = time.time(); deadline = t_start + a.time_budget
    specs = [dict(task=t, schedule=s, seed=seed, max_steps=a.max_steps, eval_every=a.eval_every, device=device,
                  deadline=deadline, model_overrides=model_over, tf32=a.tf32, threads=1 if device != "cpu" else max(1, (os.cpu_count() or 2) // a.jobs))
             for t in tasks for s in schedules for seed in range(a.seeds)]
    specs.sort(key=lambda s: (s["task"] != tasks[-1], s["schedule"] != "plain"))  # likely slowest first
    print(f"[bench] {len(specs)} runs on {device} with {a.jobs} processes; tasks={tasks} schedules={schedules} "
          f"seeds={a.seeds} max_steps={a.max_steps} eval_every={a.eval_every}", flush=True)
    runs, metrics = [], []
    with mp.get_context("spawn").Pool(a.jobs) as pool:
        results = pool.imap_unordered(run_one, specs)
        env = pool.apply_async(env_info)
        for r in results:
            m = r.pop("metrics", None)
            if m is not None: metrics.append(m)
            runs.append(r)
            print(f"[bench {time.time() - t_start:6.1f}s] {len(runs)}/{len(specs)} {r['task']:>11} {r['schedule']:>16} seed {r['seed']}: "
                  f"{r['status']}, steps_to_grok={r['steps_to_grok']}, run wall {r['wall_s']:.1f}s", flush=True)
        env = env.get()
    summary = summarize(runs)
    best = {}
    for t in tasks:
        rows = [s for s in summary if s["task"] == t]
        key = lambda s: (s["median_steps_to_grok"] is None, s["median_steps_to_grok"] or 0,
                         math.inf if s["median_wall_s"] is None else s["median_wall_s"])
        best[t] = min(rows, key=key)["schedule"] if rows else None
    report = dict(benchmark="grokking", date=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
                  device=device, device_name=torch.cuda.get_device_name(0) if device.startswith("cuda") else platform.processor() or platform.machine(),
                  torch=torch.__version__, python=platform.python_version(), **env,
                  args=vars(a), reference_model=REFERENCE_MODEL, reference_train=REFERENCE_TRAIN,
                  schedules={s: SCHEDULES[s] for s in schedules}, total_wall_s=time.time() - t_start,
                  medians=summary, best_schedule=best, runs=sorted(runs, key=lambda r: (r["task"], r["schedule"], r["seed"])))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=1, default=str))
    if metrics:
        import pandas as pd
        df = pd.concat([pd.DataFrame(m) for m in metrics], ignore_index=True)
        try:
            import pyarrow  # noqa: F401
            df.to_parquet(out.with_name(out.stem + "_metrics.parquet"), index=False)
        except ImportError:
            df.to_csv(out.with_name(out.stem + "_metrics.csv"), index=False)
    print(f"[bench] done in {time.time() - t_start:.1f}s -> {out}")
    for s in summary:
        print(f"  {s['task']:>11} {s['schedule']:>16}: grokked {s['n_grokked']}/{s['n_seeds']}, median steps-to-grok "
              f"{s['median_steps_to_grok']}, median wall {s['median_wall_s'] or 0:.1f}s  {s['steps_to_grok']}")
    return report


if __name__ == "__main__":
    main()

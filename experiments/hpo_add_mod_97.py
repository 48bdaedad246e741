"""Hyperparameter search on add_mod_97: an Optuna study for the schedule that groks fastest, then the best schedule
against the default (plain AdamW lr 1e-3, weight decay 1, betas (0.9, 0.98)) on >= 5 seeds each.

Model and data as in bench_grokking.py: tokens `<bos> a b =`, 50% of all pairs for training (split seed 0), the rest
held out; 2 layers, d_model 128, 4 heads, d_mlp 512, full batch. Objective: steps-to-grok = first evaluated step with
held-out accuracy >= 99%; a trial that never gets there counts as 2 x max_steps.

Search space: lr (log 3e-4..1e-2), weight decay (log 0.1..10), beta1 (0.8..0.95), beta2 (0.98, 0.99, 0.999),
warmup steps (0..300), schedule (constant, cosine), Grokfast lamb (0..5). Batch size stays full batch (the reference
setting; it also keeps each round one population). The model has no dropout, so there is none to search.
The default configuration is enqueued as the study's first trial.

Trials are evaluated a population at a time (algocircuits.sweep.train_population: ask a batch, train together, tell
each) when algocircuits.sweep is importable, else one at a time with median pruning. Search rounds continue while the
time budget allows; the comparison then trains default and best on seeds 0..N-1 together.

    PYTHONPATH=. python experiments/hpo_add_mod_97.py                 # one GPU, < 8 minutes; writes reports/benchmarks/hpo.json
    PYTHONPATH=. python experiments/hpo_add_mod_97.py --smoke         # tiny CPU run (add_mod_23, small model), ~1-2 minutes

Needs optuna (with sqlalchemy, alembic, Mako, colorlog for the SQLite storage); wandb is not used.
"""
from __future__ import annotations
import argparse, datetime, json, math, os, platform, statistics, sys, time
from algocircuits.model import model_preset
from pathlib import Path

os.environ.setdefault("WANDB_MODE", "disabled")

REFERENCE_MODEL = model_preset("reference", attn="mha")
DEFAULT_TRAIN = dict(lr=1e-3, weight_decay=1.0, betas=(0.9, 0.98), warmup_steps=0, schedule="constant", grokfast_lamb=0.0)
FIXED_TRAIN = dict(batch_size=None, train_frac=0.5, val_frac=0.5, split_seed=0, wandb=False)
DEFAULT_PARAMS = dict(lr=1e-3, weight_decay=1.0, beta1=0.9, beta2=0.98, warmup_steps=0, schedule="constant", grokfast_lamb=0.0)


def search_space():
    import optuna
    D = optuna.distributions
    return dict(lr=D.FloatDistribution(3e-4, 1e-2, log=True), weight_decay=D.FloatDistribution(0.1, 10.0, log=True),
                beta1=D.FloatDistribution(0.8, 0.95), beta2=D.CategoricalDistribution([0.98, 0.99, 0.999]),
                warmup_steps=D.IntDistribution(0, 300), schedule=D.CategoricalDistribution(["constant", "cosine"]),
                grokfast_lamb=D.FloatDistribution(0.0, 5.0))


def median_steps(steps: list):
    "Median steps-to-grok; runs that never grokked count as +inf (median None when most did not)."
    v = statistics.median([s if s is not None else math.inf for s in steps])
    return None if math.isinf(v) else v


def compare(task, model, params_by_name: dict, seeds: int, base: dict, device: str, use_population: bool, deadline: float) -> dict:
    "Train every named configuration on seeds 0..seeds-1 (one population when possible); steps-to-grok per seed."
    from algocircuits.train import TrainConfig, train
    from algocircuits.experiments import params_to_train, ResourceMeter
    out, t0 = {}, time.perf_counter()
    cfgs = [(name, s, TrainConfig(**{**base, **params_to_train(p), "seed": s, "device": device}))
            for name, p in params_by_name.items() for s in range(seeds)]
    if use_population:
        from algocircuits.sweep import train_population
        with ResourceMeter(device) as meter:
            res = train_population(task, model, [c for _, _, c in cfgs], stop_when_all_generalized=True)
        for (name, s, c), r in zip(cfgs, res.reports):
            out.setdefault(name, dict(params=params_by_name[name], steps_to_grok=[], memorization_step=[]))
            out[name]["steps_to_grok"].append(r.generalization_step); out[name]["memorization_step"].append(r.memorization_step)
        resources = dict(meter.result, population_size=len(cfgs), steps_done=res.steps_done)
    else:
        walls = []
        for name, s, c in cfgs:
            out.setdefault(name, dict(params=params_by_name[name], steps_to_grok=[], memorization_step=[]))
            if time.time() > deadline:
                out[name]["steps_to_grok"].append(None); out[name]["memorization_step"].append(None); continue
            c.early_stop_acc = c.acc_threshold
            r = train(task, model, c)
            out[name]["steps_to_grok"].append(r.grokking.generalization_step); out[name]["memorization_step"].append(r.grokking.memorization_step)
            walls.append(r.wall_time_s)
        resources = dict(wall_s=time.perf_counter() - t0, runs=len(walls))
    for name, d in out.items():
        d["n_grokked"] = sum(s is not None for s in d["steps_to_grok"])
        d["median_steps_to_grok"] = median_steps(d["steps_to_grok"])
    return dict(configs=out, resources=resources, seconds=time.perf_counter() - t0)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=None, help="JSON to write (default reports/benchmarks/hpo.json, hpo_smoke.json with --smoke)")
    ap.add_argument("--storage", default="sqlite:///reports/optuna.db", help="Optuna storage URL (sqlite:///..., postgresql://...)")
    ap.add_argument("--study", default=None, help="study name (default add_mod_97.steps_to_grok.hpo-<UTC time>)")
    ap.add_argument("--task", default="add_mod_97")
    ap.add_argument("--mode", choices=("auto", "population", "sequential"), default="auto")
    ap.add_argument("--population", type=int, default=32, help="trials per population (search rounds)")
    ap.add_argument("--max-steps", type=int, default=2000, help="step budget per trial")
    ap.add_argument("--compare-steps", type=int, default=3000, help="step budget per run in the default-vs-best comparison")
    ap.add_argument("--eval-every", type=int, default=50)
    ap.add_argument("--seeds", type=int, default=5, help="seeds per configuration in the comparison")
    ap.add_argument("--max-trials", type=int, default=256)
    ap.add_argument("--time-budget", type=float, default=420.0, help="seconds for search + comparison (startup not included)")
    ap.add_argument("--compare-reserve", type=float, default=120.0, help="seconds kept for the comparison")
    ap.add_argument("--device", default=None, help="default cuda if available else cpu")
    ap.add_argument("--compile", choices=("auto", "on", "off"), default="auto", help="torch.compile the population step (auto: on CUDA)")
    ap.add_argument("--smoke", action="store_true", help="tiny CPU run: add_mod_23, 1-layer d_model 32 model, short budgets")
    a = ap.parse_args(argv)
    t_start = time.time()
    try:
        import optuna  # noqa: F401
    except ImportError:
        sys.exit("hpo_add_mod_97.py needs optuna: carry the wheels optuna, sqlalchemy, alembic, Mako, colorlog (e.g. .whl/hpo/) and pip install them")
    import torch
    from algocircuits.experiments import (create_study, optimize_population, optimize_sequential, study_trials, params_to_train,
                                          provenance, _sweep_module, plot_study)
    model = dict(REFERENCE_MODEL)
    if a.smoke:
        a.task = "add_mod_23" if a.task == "add_mod_97" else a.task
        a.device, a.population, a.max_steps, a.compare_steps, a.eval_every, a.seeds = "cpu", 4, 300, 300, 25, 2
        a.time_budget, a.compare_reserve, a.max_trials = min(a.time_budget, 60.0), min(a.compare_reserve, 25.0), 8
        model = dict(n_layers=1, d_model=32, n_heads=2, d_mlp=64)
        torch.set_num_threads(1)
    device = a.device or ("cuda" if torch.cuda.is_available() else "cpu")
    use_population = a.mode == "population" or (a.mode == "auto" and _sweep_module() is not None)
    if use_population and _sweep_module() is None: sys.exit("--mode population needs algocircuits.sweep")
    out = Path(a.out or ("reports/benchmarks/hpo_smoke.json" if a.smoke else "reports/benchmarks/hpo.json"))
    name = a.study or f"{a.task}.steps_to_grok.hpo-{'smoke-' if a.smoke else ''}{datetime.datetime.now(datetime.timezone.utc):%Y%m%d-%H%M%S}"
    pop_kw = {} if a.compile == "auto" else dict(compile=a.compile == "on")
    base = dict(FIXED_TRAIN, steps=a.max_steps, eval_every=a.eval_every, device=device)
    study = create_study(name, a.storage, objective="steps_to_grok", seed=0)
    study.enqueue_trial(DEFAULT_PARAMS, user_attrs=dict(note="default: plain AdamW lr 1e-3 wd 1 betas (0.9, 0.98)"))
    space = search_space()
    t0 = time.time(); search_deadline = t0 + a.time_budget - a.compare_reserve
    print(f"[hpo] study {name} in {a.storage}; {'population' if use_population else 'sequential'} path on {device}; "
          f"task {a.task}; max_steps {a.max_steps}; search budget {a.time_budget - a.compare_reserve:.0f}s", flush=True)
    rounds = []
    while len(study.trials) < a.max_trials:
        r0 = time.time()
        n = min(a.population if use_population else 1, a.max_trials - len(study.trials))
        if use_population:
            optimize_population(study, a.task, n, population_size=n, space=space, model=model, base=base, max_steps=a.max_steps,
                                out_dir="reports/experiments/hpo", population_kw=pop_kw)
        else:
            optimize_sequential(study, a.task, n, space=space, model=model, base=base, max_steps=a.max_steps, out_dir="reports/experiments/hpo")
        rounds.append(time.time() - r0)
        done = [t for t in study.trials if t.value is not None]
        print(f"[hpo {time.time() - t_start:6.1f}s] {len(study.trials)} trials, round {rounds[-1]:.1f}s, "
              f"best {study.best_value if done else None}", flush=True)
        if time.time() + max(rounds[-1], rounds[0] if len(rounds) > 1 else 0) > search_deadline: break
    search_s = time.time() - t0
    best = dict(study.best_params)
    print(f"[hpo] search done in {search_s:.1f}s: {len(study.trials)} trials; best value {study.best_value} with {best}", flush=True)

    cbase = dict(base, steps=a.compare_steps)
    comparison = compare(a.task, model, {"default": DEFAULT_PARAMS, "best": best}, a.seeds, cbase, device, use_population,
                         deadline=t0 + a.time_budget)
    trials = study_trials(study)
    keep = [c for c in trials.columns if c in ("number", "value", "state") or c.startswith("params_")
            or c in ("user_attrs_wall_s", "user_attrs_population_size", "user_attrs_generalization_step", "user_attrs_memorization_step")]
    prov = provenance()
    report = dict(benchmark="hpo", task=a.task, date=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
                  device=device, device_name=torch.cuda.get_device_name(0) if device.startswith("cuda") else platform.processor() or platform.machine(),
                  torch=torch.__version__, python=platform.python_version(), code=prov["code"], packages=prov["packages"], args=vars(a),
                  path="population" if use_population else "sequential", study=name, storage=a.storage, model=model,
                  fixed_train=dict(FIXED_TRAIN, eval_every=a.eval_every, max_steps=a.max_steps), default_params=DEFAULT_PARAMS,
                  search_space={k: repr(v) for k, v in space.items()}, n_trials=len(study.trials), search_rounds_s=rounds,
                  best_params=best, best_train_config=params_to_train(best), best_value=study.best_value,
                  median_steps_to_grok=dict(default=comparison["configs"]["default"]["median_steps_to_grok"],
                                            best=comparison["configs"]["best"]["median_steps_to_grok"]),
                  comparison=comparison, search_s=search_s, total_wall_s=time.time() - t_start,
                  trials=json.loads(trials[keep].to_json(orient="records")))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=1, default=str))
    plot_study(trials, out.with_name(out.stem + "_study.png"), title=name)
    print(f"[hpo] done in {report['total_wall_s']:.1f}s -> {out}")
    for k in ("default", "best"):
        c = comparison["configs"][k]
        print(f"  {k:>7}: grokked {c['n_grokked']}/{a.seeds}, median steps-to-grok {c['median_steps_to_grok']}, per seed {c['steps_to_grok']}")
    return report


if __name__ == "__main__":
    main()

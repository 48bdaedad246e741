"""Hyperparameter search on add_mod_97: TPE against random search at the same trial budget, each on 3 study seeds, in
rounds of populations with pruning; then the best schedule each study found against the default (plain AdamW lr 1e-3,
weight decay 1, betas (0.9, 0.98)) on training seeds none of the studies saw.

Model and data as in bench_grokking.py: tokens `<bos> a b =`, 50% of all pairs for training (split seed 0), the rest
held out; 2 layers, d_model 128, 4 heads, d_mlp 512, full batch. Objective: steps-to-grok = first evaluated step with
held-out accuracy >= 99%; a trial that never gets there counts as 2 x max_steps.

Search space: lr (log 3e-4..1e-2), weight decay (log 0.1..10), beta1 (0.8..0.95), beta2 (0.98, 0.99, 0.999),
warmup steps (0..300), schedule (constant, cosine), Grokfast lamb (0..5). Batch size stays full batch (the reference
setting; it also keeps each round one population). The default configuration is every study's first trial.

Every round, each study (TPE multivariate with a constant liar, n_startup_trials = one round; random search) asks
`--population` trials; all of them train as one population (algocircuits.hpo.optimize_population), each member
reports its held-out error every few evaluations, and the median pruner stops members that trail (lr 0). Rounds go on
to `--rounds` or the time budget.

    PYTHONPATH=. python experiments/hpo_add_mod_97.py                 # one GPU, ~6 minutes; writes reports/benchmarks/hpo.json
    PYTHONPATH=. python experiments/hpo_add_mod_97.py --smoke         # tiny CPU run (add_mod_23, small model), ~1 minute
    optuna-dashboard sqlite:///reports/optuna.db                      # browse the studies

Needs optuna (with sqlalchemy, alembic, Mako, colorlog for the SQLite storage).
"""
from __future__ import annotations
import argparse, datetime, json, math, os, platform, statistics, sys, time
from pathlib import Path
from algocircuits.model import model_preset

os.environ.setdefault("WANDB_MODE", "offline")

REFERENCE_MODEL = model_preset("reference", attn="mha")
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


def compare(task, model, params_by_name: dict, seeds: list, base: dict, pop_kw: dict) -> dict:
    "Train every named configuration on the given training seeds, all in one population; steps-to-grok per seed."
    from algocircuits.train import TrainConfig
    from algocircuits.experiments import ResourceMeter
    from algocircuits.hpo import params_to_train
    from algocircuits.sweep import train_population
    cfgs = [(name, s, TrainConfig(**{**base, **params_to_train(p), "seed": s})) for name, p in params_by_name.items() for s in seeds]
    with ResourceMeter(base["device"]) as meter:
        res = train_population(task, model, [c for _, _, c in cfgs], stop_when_all_generalized=True, **pop_kw)
    out = {}
    for (name, s, c), r in zip(cfgs, res.reports):
        d = out.setdefault(name, dict(params=params_by_name[name], seeds=list(seeds), steps_to_grok=[], memorization_step=[]))
        d["steps_to_grok"].append(r.generalization_step); d["memorization_step"].append(r.memorization_step)
    for d in out.values():
        d["n_grokked"] = sum(s is not None for s in d["steps_to_grok"]); d["median_steps_to_grok"] = median_steps(d["steps_to_grok"])
    return dict(configs=out, resources=dict(meter.result, population_size=len(cfgs), steps_done=res.steps_done))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=None, help="JSON to write (default reports/benchmarks/hpo.json, hpo_smoke.json with --smoke)")
    ap.add_argument("--storage", default="sqlite:///reports/optuna.db", help="Optuna storage URL (sqlite:///..., postgresql://...)")
    ap.add_argument("--task", default="add_mod_97")
    ap.add_argument("--samplers", default="tpe,random", help="samplers compared (algocircuits.hpo.SAMPLERS)")
    ap.add_argument("--study-seeds", type=int, default=3, help="studies per sampler (sampler seeds 0..n-1)")
    ap.add_argument("--population", type=int, default=12, help="trials per round per study")
    ap.add_argument("--rounds", type=int, default=4, help="search rounds (each a population of population x studies members)")
    ap.add_argument("--max-steps", type=int, default=2000, help="step budget per trial")
    ap.add_argument("--compare-steps", type=int, default=3000, help="step budget per run in the comparison")
    ap.add_argument("--compare-seeds", type=int, default=4, help="fresh training seeds per configuration in the comparison")
    ap.add_argument("--eval-every", type=int, default=50)
    ap.add_argument("--time-budget", type=float, default=420.0, help="seconds for the search rounds (the comparison runs after)")
    ap.add_argument("--device", default=None, help="default cuda if available else cpu")
    ap.add_argument("--compile", choices=("auto", "on", "off"), default="auto", help="torch.compile the population step (auto: on CUDA)")
    ap.add_argument("--records", default="reports/experiments/hpo", help="folder for each population's record (one subfolder per study)")
    ap.add_argument("--smoke", action="store_true", help="tiny CPU run: add_mod_23, 1-layer d_model 32 model, short budgets")
    a = ap.parse_args(argv)
    t_start = time.time()
    try:
        import optuna  # noqa: F401
    except ImportError:
        sys.exit("hpo_add_mod_97.py needs optuna: carry the wheels optuna, sqlalchemy, alembic, Mako, colorlog (e.g. .whl/hpo/) and pip install them")
    import torch
    from algocircuits.experiments import provenance
    from algocircuits.hpo import create_study, optimize_population, study_trials, params_to_train, plot_study
    model = dict(REFERENCE_MODEL)
    if a.smoke:
        a.task = "add_mod_23" if a.task == "add_mod_97" else a.task
        a.device, a.population, a.rounds, a.max_steps, a.compare_steps, a.eval_every = "cpu", 3, 3, 300, 300, 25
        a.study_seeds, a.compare_seeds, a.time_budget = min(a.study_seeds, 2), 2, min(a.time_budget, 60.0)
        if a.storage == ap.get_default("storage"): a.storage = "sqlite:///reports/optuna_smoke.db"
        model = dict(n_layers=1, d_model=32, n_heads=2, d_mlp=64)
        torch.set_num_threads(1)
    device = a.device or ("cuda" if torch.cuda.is_available() else "cpu")
    out = Path(a.out or ("reports/benchmarks/hpo_smoke.json" if a.smoke else "reports/benchmarks/hpo.json"))
    stamp = f"{datetime.datetime.now(datetime.timezone.utc):%Y%m%d-%H%M%S}"
    pop_kw = {} if a.compile == "auto" else dict(compile=a.compile == "on")
    base = dict(FIXED_TRAIN, steps=a.max_steps, eval_every=a.eval_every, device=device)
    samplers = a.samplers.split(",")
    studies = {}
    for sampler in samplers:
        for seed in range(a.study_seeds):
            s = create_study(f"{a.task}.steps_to_grok.{sampler}-s{seed}-{'smoke-' if a.smoke else ''}{stamp}", a.storage, sampler=sampler,
                             seed=seed, n_startup_trials=a.population)
            s.enqueue_trial(DEFAULT_PARAMS, user_attrs=dict(note="default: plain AdamW lr 1e-3 wd 1 betas (0.9, 0.98)"))
            studies[(sampler, seed)] = s
    space = search_space()
    print(f"[hpo] {len(studies)} studies ({samplers} x {a.study_seeds} seeds) in {a.storage} on {device}; task {a.task}; "
          f"{a.rounds} rounds of {a.population} trials each; max_steps {a.max_steps}", flush=True)
    rounds, best_by_round = [], {f"{k[0]}-s{k[1]}": [] for k in studies}
    t0 = time.time()
    for r in range(a.rounds):
        r0 = time.time()
        optimize_population(list(studies.values()), a.task, a.population, population_size=a.population, space=space, model=model, base=base,
                            max_steps=a.max_steps, out_dir=a.records, population_kw=pop_kw, wandb=True)
        rounds.append(time.time() - r0)
        for (sampler, seed), s in studies.items():
            done = [t.value for t in s.trials if t.state.name == "COMPLETE"]   # a pruned trial's value is its last report: not a result
            best_by_round[f"{sampler}-s{seed}"].append(min(done) if done else None)
        print(f"[hpo {time.time() - t_start:6.1f}s] round {r + 1}: {rounds[-1]:.1f}s; best so far "
              + ", ".join(f"{k} {v[-1]}" for k, v in best_by_round.items()), flush=True)
        if r + 1 < a.rounds and time.time() + rounds[-1] > t0 + a.time_budget: print("[hpo] time budget reached"); break
    search_s = time.time() - t0

    best = {f"{k[0]}-s{k[1]}": dict(s.best_params) for k, s in studies.items()}
    seeds = list(range(100, 100 + a.compare_seeds))   # training seeds no study trained on
    comparison = compare(a.task, model, {"default": DEFAULT_PARAMS, **best}, seeds, dict(base, steps=a.compare_steps), pop_kw)
    C = comparison["configs"]
    by_sampler = {}
    for sampler in samplers:
        ks = [f"{sampler}-s{seed}" for seed in range(a.study_seeds)]
        meds = [C[k]["median_steps_to_grok"] for k in ks]
        by_sampler[sampler] = dict(studies=ks, best_value=[best_by_round[k][-1] for k in ks],
                                   best_value_by_round=[best_by_round[k] for k in ks],
                                   fresh_seed_median_steps_to_grok=meds,
                                   mean_fresh_seed_median=statistics.mean(m for m in meds if m is not None) if any(m is not None for m in meds) else None,
                                   trials=sum(len(studies[(sampler, s)].trials) for s in range(a.study_seeds)),
                                   pruned=sum(t.state.name == "PRUNED" for s in range(a.study_seeds) for t in studies[(sampler, s)].trials))
    prov = provenance()
    report = dict(benchmark="hpo", task=a.task, date=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
                  device=device, device_name=torch.cuda.get_device_name(0) if device.startswith("cuda") else platform.processor() or platform.machine(),
                  torch=torch.__version__, python=platform.python_version(), code=prov["code"], packages=prov["packages"], args=vars(a),
                  storage=a.storage, model=model, fixed_train=dict(FIXED_TRAIN, eval_every=a.eval_every, max_steps=a.max_steps),
                  default_params=DEFAULT_PARAMS, search_space={k: repr(v) for k, v in space.items()},
                  pruner="MedianPruner(n_startup_trials=4, n_warmup_steps=1)", rounds_s=rounds, search_s=search_s,
                  by_sampler=by_sampler, default=C["default"], best_params=best,
                  best_train_config={k: params_to_train(v) for k, v in best.items()}, comparison=comparison,
                  studies={f"{k[0]}-s{k[1]}": s.study_name for k, s in studies.items()}, total_wall_s=time.time() - t_start,
                  trials={f"{k[0]}-s{k[1]}": json.loads(study_trials(s)[["number", "value", "state"]].to_json(orient="records"))
                          for k, s in studies.items()})
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=1, default=str))
    first = studies[(samplers[0], 0)]
    plot_study(study_trials(first), out.with_name(out.stem + "_study.png"), title=first.study_name)
    print(f"[hpo] done in {report['total_wall_s']:.1f}s -> {out}")
    print(f"  default: median steps-to-grok {C['default']['median_steps_to_grok']} on seeds {seeds} {C['default']['steps_to_grok']}")
    for sampler, d in by_sampler.items():
        print(f"  {sampler:>7}: best search value per study {d['best_value']}; fresh-seed median of its best {d['fresh_seed_median_steps_to_grok']}; "
              f"{d['pruned']}/{d['trials']} trials pruned")
    return report


if __name__ == "__main__":
    main()

"""Circuit-informed training decisions (issue 11): a stopping rule and a sampling rule driven by circuit signals on the
model's own units (algocircuits.dynamics: CircuitStopRule, CircuitReweighter), against a fixed budget and validation-
based early stopping, on several tasks x seeds.

Per (task, seed) two runs of the same fixed budget:
  uniform     the plain run, watched by CircuitStopRule(observe=True). Every stopping rule is read off this one
              trajectory (stopping at step s gives exactly the model the run had at s): fixed budget, val_target
              (val acc >= 0.99 for 3 evaluations), val_loss_patience (10 evaluations without a new best val loss),
              circuit (the rule; training examples only). Scored by TEST accuracy at the stop step (no rule reads test).
  reweighted  the same run with CircuitReweighter(strength) setting per-example loss weights: steps until test
              accuracy >= 0.99, against the uniform run's.
The circuit rule's thresholds are calibrated on the calibration seeds only (--calib-seeds, default 0): among GRID, the
setting that saves the most compute while every calibration run it stops still has test accuracy >= 0.99. It is then
scored on the other seeds; the sensitivity table re-reads those seeds' recorded signals with every GRID setting.
Writes JSON with device, versions, date and command; --reanalyse re-reads a written JSON (no training).

    PYTHONPATH=. python experiments/early_stopping.py --device cuda --workers 8 --out reports/benchmarks/early_stopping.json
    PYTHONPATH=. python experiments/early_stopping.py --smoke      # tiny CPU run
"""
from __future__ import annotations
import argparse, datetime, json, os, platform, sys, time, warnings
from algocircuits.model import model_preset
from pathlib import Path
os.environ.setdefault("WANDB_MODE", "disabled")
warnings.filterwarnings("ignore")

COVERAGE = 0.9
GRID = [dict(similarity=s, k=k, faithfulness=f, fit=0.99, compact=c) for s in (0.8, 0.9, 0.95) for k in (2, 3, 5)
        for f in (0.95, 0.99) for c in (None, 0.9, 0.8, 0.7)]
TASKS = {"add_mod_47": 0.4, "sub_mod_47": 0.4, "mul_mod_47": 0.4, "div_mod_47": 0.4, "s4_compose": 0.6}   # task: train fraction
MODEL = model_preset("cpu-small")


def one_run(job):
    import torch, numpy as np, pandas as pd
    torch.set_num_threads(1)
    from algocircuits.tasks import get_task
    from algocircuits.train import train, TrainConfig
    from algocircuits.dynamics import CircuitStopRule, CircuitReweighter
    task, seed, mode, a = job["task"], job["seed"], job["mode"], job["args"]
    tf = a["train_frac"].get(task, 0.4)
    ds = get_task(task).dataset(train_frac=tf, val_frac=(1 - tf) / 2, seed=seed)
    x, y = ds.tensors("train")
    probe_idx = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))[: min(a["n_probes"], len(x))]
    cfg = TrainConfig(steps=a["steps"], lr=a["lr"], weight_decay=a["weight_decay"], warmup_steps=50, grad_clip=a["grad_clip"],
                      eval_every=a["eval_every"], seed=seed, device=a["device"], wandb=False)
    watch = CircuitStopRule(x[probe_idx], y[probe_idx, 0], observe=True, coverage=COVERAGE)   # records; thresholds applied later
    cbs, weights, rw = [watch], None, None
    if mode == "reweighted":
        rw = CircuitReweighter(x, y, probe_idx, strength=a["strength"], coverage=COVERAGE, device=a["device"])
        cbs, weights = [rw, watch], rw.weights
    t0 = time.perf_counter()
    res = train(ds, a["model"], cfg, callbacks=cbs, example_weights=weights)
    wall = time.perf_counter() - t0
    m = res.metrics[["step", "train_acc", "val_acc", "test_acc", "train_loss", "val_loss", "test_loss"]]
    return dict(task=task, seed=seed, mode=mode, train_frac=tf, n_train=len(x), wall_s=wall, signal_s=watch.seconds,
                reweight_s=rw.seconds if rw else 0.0, fired_at=watch.fired_at, metrics=m.to_dict("list"),
                signals=watch.table().to_dict("list"), reweights=rw.history if rw else None)


def first_step(m, col, thr):
    for s, v in zip(m["step"], m[col]):
        if v >= thr: return int(s)
    return None


def _key(th): return tuple(th[k] if th[k] is not None else -1 for k in ("similarity", "k", "faithfulness", "compact"))


def calibrate(runs, calib_seeds, steps):
    "The GRID setting with the most compute saved on the calibration runs, among those that never stop a run below 0.99 test accuracy."
    import pandas as pd
    from algocircuits.dynamics import circuit_fired_at
    cal = [r for r in runs if r["mode"] == "uniform" and r["seed"] in calib_seeds]
    if not cal: raise ValueError(f"calibrate: no uniform runs with seeds {calib_seeds}")
    rows = []
    for th in GRID:
        saved, safe = [], True
        for r in cal:
            f = circuit_fired_at(pd.DataFrame(r["signals"]), **th); s_eff = steps if f is None else f
            acc = dict(zip(r["metrics"]["step"], r["metrics"]["test_acc"]))[s_eff]
            safe &= acc >= 0.99 or f is None
            saved.append(1 - s_eff / steps)
        rows.append(dict(**th, safe=safe, mean_saved=sum(saved) / len(saved)))
    t = pd.DataFrame(rows)
    ok = t[t.safe]
    best = ok.sort_values(["mean_saved", "similarity", "k"], ascending=[False, False, False]).iloc[0] if len(ok) else None
    th = None if best is None else {k: (None if k == "compact" and pd.isna(best[k]) else float(best[k])) for k in ("similarity", "k", "faithfulness", "fit", "compact")}
    if th is not None: th["k"] = int(th["k"])
    return th, t


def analyse(runs, steps, calib_seeds):
    import numpy as np, pandas as pd
    from algocircuits.dynamics import stopping_points, circuit_fired_at
    chosen, cal_table = calibrate(runs, calib_seeds, steps)
    rows, sens, samp = [], [], []
    by = {(r["task"], r["seed"], r["mode"]): r for r in runs}
    for (task, seed, mode), r in sorted(by.items()):
        if mode != "uniform" or seed in calib_seeds: continue
        m = pd.DataFrame(r["metrics"]); sig = pd.DataFrame(r["signals"])
        sp = stopping_points(m, circuit_fired_at(sig, **chosen) if chosen else None)
        overhead = r["signal_s"] / max(r["wall_s"] - r["signal_s"], 1e-9)   # signal time per unit of training time
        for t in sp.to_dict("records"):
            rows.append(dict(task=task, seed=seed, **t, signal_overhead=overhead if t["rule"] == "circuit" else 0.0))
        for th in GRID:
            f = circuit_fired_at(sig, **th); s_eff = steps if f is None else f
            sens.append(dict(task=task, seed=seed, **{k: (-1 if v is None else v) for k, v in th.items()}, fired=f is not None, stop_step=s_eff,
                             saved=1 - s_eff / steps, test_acc=float(m.set_index("step").test_acc[s_eff])))
    for (task, seed, mode), r in sorted(by.items()):
        rw = by.get((task, seed, "reweighted"))
        if mode != "uniform" or rw is None: continue
        mu, mr = r["metrics"], rw["metrics"]
        samp.append(dict(task=task, seed=seed, uniform_step=first_step(mu, "test_acc", 0.99), reweighted_step=first_step(mr, "test_acc", 0.99),
                         uniform_final=mu["test_acc"][-1], reweighted_final=mr["test_acc"][-1],
                         uniform_wall_s=r["wall_s"] - r["signal_s"], reweighted_wall_s=rw["wall_s"] - rw["signal_s"], reweight_s=rw["reweight_s"]))
    per = pd.DataFrame(rows)
    summ = per.groupby("rule", sort=False).agg(runs=("stop_step", "size"), fired=("fired", "sum"), mean_stop=("stop_step", "mean"),
                                               mean_saved=("saved", "mean"), mean_test_acc=("test_acc", "mean"),
                                               min_test_acc=("test_acc", "min"), runs_test_ge_99=("test_acc", lambda v: int((v >= 0.99).sum())),
                                               signal_overhead=("signal_overhead", "mean")).reset_index()
    per_task = per.pivot_table(index="task", columns="rule", values=["saved", "test_acc"], aggfunc="mean")
    per_task.columns = [f"{a}_{b}" for a, b in per_task.columns]
    s = pd.DataFrame(sens)
    sens_summ = s.groupby(["similarity", "k", "faithfulness", "compact"]).agg(fired=("fired", "sum"), mean_saved=("saved", "mean"), mean_test_acc=("test_acc", "mean"),
                                                                             runs_test_ge_99=("test_acc", lambda v: int((v >= 0.99).sum()))).reset_index()
    return chosen, cal_table, per, summ, per_task.reset_index(), sens_summ, pd.DataFrame(samp)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--tasks", default=",".join(TASKS))
    p.add_argument("--seeds", default="0,1,2,3")
    p.add_argument("--calib-seeds", default="0", help="seeds whose runs calibrate the circuit rule's thresholds (not scored)")
    p.add_argument("--reanalyse", default=None, help="re-read this JSON's runs (no training) and rewrite --out")
    p.add_argument("--steps", type=int, default=8000)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--weight-decay", type=float, default=1.0)
    p.add_argument("--grad-clip", type=float, default=1.0)
    p.add_argument("--eval-every", type=int, default=50)
    p.add_argument("--n-probes", type=int, default=256)
    p.add_argument("--strength", type=float, default=0.5, help="CircuitReweighter strength")
    p.add_argument("--modes", default="uniform,reweighted")
    p.add_argument("--device", default="cpu")
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--smoke", action="store_true", help="add_mod_23 and s3... tiny: checks the script end to end on CPU")
    p.add_argument("--out", default=None)
    a = p.parse_args(argv)
    import torch, pandas as pd
    from algocircuits.train import code_version, package_versions, device_name, resolve_device
    model = dict(MODEL)
    if a.smoke:
        a.tasks, a.seeds, a.steps, a.eval_every, a.n_probes = "add_mod_23", "0,1", 400, 50, 64
        model = dict(n_layers=1, d_model=32, n_heads=4, d_mlp=64)
    args = dict(steps=a.steps, lr=a.lr, weight_decay=a.weight_decay, grad_clip=a.grad_clip, eval_every=a.eval_every, n_probes=a.n_probes,
                strength=a.strength, device=a.device, model=model, train_frac=dict(TASKS, add_mod_23=0.6))
    jobs = [dict(task=t, seed=int(s), mode=m, args=args) for t in a.tasks.split(",") for s in a.seeds.split(",") for m in a.modes.split(",")]
    t0 = time.time()
    calib = [int(s) for s in a.calib_seeds.split(",")]
    if a.reanalyse:
        old = json.loads(Path(a.reanalyse).read_text()); runs = old["runs"]; a.steps = old["config"]["steps"]
    elif a.workers > 1:
        import multiprocessing as mp
        with mp.get_context("spawn").Pool(a.workers) as pool:
            runs = []
            for r in pool.imap_unordered(one_run, jobs):
                runs.append(r); print(f"[{time.time() - t0:6.0f}s] {r['task']} s{r['seed']} {r['mode']}: fired {r['fired_at']}, final test {r['metrics']['test_acc'][-1]:.3f}, {r['wall_s']:.0f}s", flush=True)
    else:
        runs = []
        for j in jobs:
            r = one_run(j); runs.append(r)
            print(f"[{time.time() - t0:6.0f}s] {r['task']} s{r['seed']} {r['mode']}: fired {r['fired_at']}, final test {r['metrics']['test_acc'][-1]:.3f}, {r['wall_s']:.0f}s", flush=True)
    chosen, cal_table, per, summ, per_task, sens, samp = analyse(runs, a.steps, calib)
    pd.set_option("display.width", 200)
    print(f"\ncircuit rule calibrated on seeds {calib}: {chosen}")
    print("\nstopping rules (mean over runs):\n" + summ.round(4).to_string(index=False))
    print("\nper task (mean over seeds):\n" + per_task.round(3).to_string(index=False))
    print("\ncircuit rule sensitivity:\n" + sens.round(3).to_string(index=False))
    if len(samp): print("\nsampling rule (steps to test acc >= 0.99):\n" + samp.round(3).to_string(index=False))
    dev = resolve_device(a.device)
    out = dict(experiment="early_stopping", date=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
               command="PYTHONPATH=. python experiments/early_stopping.py " + " ".join(sys.argv[1:] if argv is None else argv),
               device=device_name(dev), workers=a.workers, torch=torch.__version__, platform=platform.platform(), code=code_version(),
               packages=package_versions(), config=dict(args, coverage=COVERAGE, grid=GRID, tasks=a.tasks.split(","), seeds=a.seeds.split(","), calib_seeds=calib),
               chosen_rule=chosen, calibration=cal_table.to_dict("records"),
               wall_s=time.time() - t0, summary=summ.to_dict("records"), per_task=per_task.to_dict("records"), per_run=per.to_dict("records"),
               sensitivity=sens.to_dict("records"), sampling=samp.to_dict("records"), runs=runs)
    if a.reanalyse: out.update({k: old[k] for k in ("date", "command", "device", "workers", "torch", "platform", "code", "packages", "wall_s")}, reanalysed=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"))
    if a.out:
        Path(a.out).parent.mkdir(parents=True, exist_ok=True)
        Path(a.out).write_text(json.dumps(out, indent=1, default=float)); print("wrote", a.out)
    return out


if __name__ == "__main__":
    main()

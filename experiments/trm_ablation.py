"""The tiny recursive model (issue 10): ablations on generated grid families, test-time training, ARC through the harness.

    python experiments/trm_ablation.py --device cuda                    # the reported size (GPU)
    python experiments/trm_ablation.py --small --out /tmp/trm.json      # CPU toy size

Sections: ablation (one model per configuration, trained on every generator family of the grid DSL that fits the
canvas, held-out exact-grid accuracy per family: with / without deep supervision, recursion depth, width),
ttt (novel generated tasks drawn with the held-out seed, before and after test-time training at a stated step budget),
arc (ARC-AGI-1 evaluation split through nbs/12_arc_eval's harness: the network alone, program search alone, search
then network). Writes reports/benchmarks/trm_ablation.json with config, device, versions and date.
"""
import argparse, datetime, json, platform, time
from pathlib import Path
import numpy as np, torch
from algocircuits import grid_dsl as dsl
from algocircuits.recursive import (TRMConfig, TRMTrainConfig, train_trm, grid_accuracy, family_pairs, trm_solver, combined_solver)
from algocircuits.arc_eval import generate_tasks, load_arc, evaluate, summarize, HELDOUT_SEED
from algocircuits.train import code_version, package_versions


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sections", default="ablation,ttt,arc")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--small", action="store_true", help="CPU toy size")
    ap.add_argument("--steps", type=int, default=None)
    ap.add_argument("--ttt-steps", type=int, default=32)
    ap.add_argument("--arc-limit", type=int, default=None)
    ap.add_argument("--out", default="reports/benchmarks/trm_ablation.json")
    a = ap.parse_args()
    size, d, n_per, steps = (6, 64, 150, a.steps or 600) if a.small else (10, 256, 2000, a.steps or 20000)
    fams = dsl.list_grid_tasks()
    train = family_pairs(fams, n_per, size, seed=0); test = family_pairs(fams, max(20, n_per // 10), size, seed=1)
    fams = sorted({f for f, _, _ in train})
    out = dict(benchmark="trm_ablation", device=torch.cuda.get_device_name() if a.device.startswith("cuda") else platform.processor() or "cpu",
               date=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"), code=code_version(), packages=package_versions(),
               config=dict(vars(a), size=size, d_model=d, n_per_family=n_per, steps=steps, families=fams), results={})
    def save():
        Path(a.out).parent.mkdir(parents=True, exist_ok=True); Path(a.out).write_text(json.dumps(out, indent=1, default=str))
    pairs = [(i, o) for _, i, o in train]
    configs = {"deep supervision (n_sup 4, T 2, n 3)": TRMConfig(size=size, d_model=d, n_sup=4, n_cycles=2, n_latent=3),
               "no deep supervision (n_sup 1)": TRMConfig(size=size, d_model=d, n_sup=1, n_cycles=2, n_latent=3),
               "shallow recursion (T 1, n 1)": TRMConfig(size=size, d_model=d, n_sup=4, n_cycles=1, n_latent=1),
               "deeper recursion (T 3, n 4)": TRMConfig(size=size, d_model=d, n_sup=4, n_cycles=3, n_latent=4),
               f"width {2 * d}": TRMConfig(size=size, d_model=2 * d, n_sup=4, n_cycles=2, n_latent=3)}
    models = {}
    if "ablation" in a.sections:
        for name, cfg in configs.items():
            t = time.time()
            m, hist = train_trm(pairs, cfg, TRMTrainConfig(steps=steps, batch_size=64, lr=1e-3, device=a.device))
            per = {f: grid_accuracy(m, [(i, o) for g, i, o in test if g == f], device=a.device) for f in fams}
            out["results"].setdefault("ablation", {})[name] = dict(config=cfg.__dict__, mean_exact=float(np.mean(list(per.values()))), per_family=per,
                                                                   cells=grid_accuracy(m, [(i, o) for _, i, o in test], device=a.device, per_cell=True),
                                                                   final_loss=float(np.mean(hist[-1])), seconds=round(time.time() - t, 1))
            print(name, json.dumps({k: v for k, v in out["results"]["ablation"][name].items() if k != "per_family"}), flush=True); save()
            models[name] = m
    base = models.get(next(iter(configs))) or train_trm(pairs, configs[next(iter(configs))], TRMTrainConfig(steps=steps, device=a.device))[0]
    if "ttt" in a.sections:
        novel = [t for t in generate_tasks(60 if a.small else 200, seed=HELDOUT_SEED, h=(3, size), w=(3, size))
                 if all(max(len(g), len(g[0])) <= size for p in t["train"] for g in p) and max(len(t["test_inputs"][0]), len(t["test_inputs"][0][0])) <= size
                 and max(len(t["test_outputs"][0]), len(t["test_outputs"][0][0])) <= size]
        for name, k in (("before (no test-time training)", 0), (f"after {a.ttt_steps} test-time steps", a.ttt_steps)):
            r = evaluate(novel, solver=trm_solver(base, ttt_steps=k, device=a.device))
            out["results"].setdefault("ttt", {})[name] = summarize(r); print(name, out["results"]["ttt"][name], flush=True); save()
    if "arc" in a.sections:
        ev = load_arc("evaluation")[:a.arc_limit] if a.arc_limit else load_arc("evaluation")
        for name, solver in (("network (with test-time training)", trm_solver(base, ttt_steps=a.ttt_steps, device=a.device)),
                             ("search then network", combined_solver(trm_solver(base, ttt_steps=a.ttt_steps, device=a.device), time_limit=10.0))):
            r = evaluate(ev, solver=solver)
            out["results"].setdefault("arc_evaluation", {})[name] = summarize(r); print(name, out["results"]["arc_evaluation"][name], flush=True); save()
    save(); print("wrote", a.out)


if __name__ == "__main__":
    main()

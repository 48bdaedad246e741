"""The tiny recursive model (issue 10): ablations on generated grid families, test-time training, ARC through the harness.

    python experiments/trm_ablation.py --device cuda --sections ablation,ttt --save-model $OUT/trm.pt     # GPU
    python experiments/trm_ablation.py --device cuda --sections arc --load-model trm.pt                   # GPU, later
    python experiments/trm_ablation.py --small --out /tmp/trm.json                                        # CPU toy size

Sections:
  ablation  one model per configuration, trained on every generator family of the grid DSL that fits the canvas, each
            family (and each of its 8 dihedral transforms) with its own task embedding; held-out exact-grid accuracy per
            family: with / without deep supervision, recursion depth, width, and without task embeddings. All
            configurations train the same number of optimizer steps, chosen so they fit --time-budget (measured per
            configuration on a short probe).
  ttt       novel generated tasks (compositions of two primitives, the held-out seed) solved by the first model with
            test-time training: new task slots at the mean embedding and no training ("before"), then after each budget
            in --ttt-steps ("after"), all weights trained, predictions voted over 8 fixed augmentations.
  combine   only the "search then network" row again, from the network run stored in --out and a newer search run
            (--search-results): no model needed.
  arc       ARC-AGI-1 evaluation split through nbs/12_arc_eval's harness: the network alone (tasks whose grids exceed the
            canvas count as unsolved); and "search then network" combined with the program-search results of the same
            split stored in reports/benchmarks/arc_eval_tasks.parquet (search first; the network only where search found
            no program that reproduces the demonstrations) — the search is not re-run here (it is CPU-bound, 10 s/task).
Writes the JSON with config, device, versions and date.
"""
import argparse, datetime, json, platform, time
from pathlib import Path
import numpy as np, pandas as pd, torch
from algocircuits import grid_tasks
from algocircuits.recursive import (TRMConfig, TRMTrainConfig, TinyRecursiveModel, train_trm, grid_accuracy, family_pairs, trm_solver,
                                    SLOTS_PER_TASK)
from algocircuits.arc_eval import generate_tasks, load_arc, evaluate, summarize, HELDOUT_SEED
from algocircuits.train import code_version, package_versions, save_state, load_state


def fits(t, size):
    grids = [g for p in t["train"] for g in p] + list(t["test_inputs"]) + list(t.get("test_outputs") or [])
    return all(len(g) <= size and len(g[0]) <= size for g in grids)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sections", default="ablation,ttt,arc")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--small", action="store_true", help="CPU toy size")
    ap.add_argument("--steps", type=int, default=None, help="optimizer steps per configuration (alone: exactly this; with --time-budget: at most)")
    ap.add_argument("--configs", default=None, help="comma-separated indices of the ablation configurations to run (default all; "
                    "split a long ablation over several runs with the same --steps and --out)")
    ap.add_argument("--time-budget", type=float, default=None, help="seconds for all ablation trainings together")
    ap.add_argument("--ttt-steps", default="64", help="comma-separated test-time training budgets (optimizer steps)")
    ap.add_argument("--ttt-tasks", type=int, default=None)
    ap.add_argument("--arc-limit", type=int, default=None)
    ap.add_argument("--save-model", default=None)
    ap.add_argument("--load-model", default=None)
    ap.add_argument("--search-results", default="reports/benchmarks/arc_eval_tasks.parquet")
    ap.add_argument("--out", default="reports/benchmarks/trm_ablation.json")
    a = ap.parse_args()
    if a.sections == "combine":   # re-pair the network run stored in --out with a newer program-search run
        out = json.loads(Path(a.out).read_text())
        net = out.get("results", {}).get("arc_evaluation", {}).get("network (with test-time training)")
        if net is None: raise SystemExit(f"combine: no network run of the ARC evaluation split in {a.out}")
        if not Path(a.search_results).exists(): raise SystemExit(f"combine: no search results at {a.search_results}")
        combine(out, set(net["solved_ids"]), [t["id"] for t in load_arc("evaluation")], Path(a.search_results))
        out.setdefault("recombined", []).append(dict(date=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
                                                     code=code_version(), search_results=a.search_results))
        Path(a.out).write_text(json.dumps(out, indent=1, default=str)); print("wrote", a.out); return
    size, d, n_per, max_steps, budget = (6, 64, 150, a.steps or 600, a.time_budget or 300) if a.small else (10, 256, 2000, a.steps or 20000, a.time_budget or 420)
    fams = grid_tasks.list_grid_tasks()
    train = family_pairs(fams, n_per, size, seed=0); test = family_pairs(fams, max(20, n_per // 10), size, seed=1)
    fams = sorted({f for f, _, _ in train}); fid = {f: i for i, f in enumerate(fams)}
    n_tasks = SLOTS_PER_TASK * len(fams)
    out = dict(benchmark="trm_ablation", device=torch.cuda.get_device_name() if a.device.startswith("cuda") else platform.processor() or "cpu",
               date=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"), code=code_version(), packages=package_versions(),
               config=dict(vars(a), size=size, d_model=d, n_per_family=n_per, families=fams, n_train_pairs=len(train), n_test_pairs=len(test)),
               results={})
    if Path(a.out).exists():   # a later section run adds to the same file
        old = json.loads(Path(a.out).read_text())
        if old.get("config", {}).get("size") == size: out["results"] = old.get("results", {}); out["earlier_runs"] = old.get("earlier_runs", []) + [
            {k: old.get(k) for k in ("date", "code", "config")}]
    def save():
        Path(a.out).parent.mkdir(parents=True, exist_ok=True); Path(a.out).write_text(json.dumps(out, indent=1, default=str))
    cond = [(fid[f], i, o) for f, i, o in train]; plain = [(i, o) for _, i, o in train]
    test_c = {f: [(fid[g], i, o) for g, i, o in test if g == f] for f in fams}
    configs = {"deep supervision (n_sup 4, T 2, n 3)": TRMConfig(size=size, d_model=d, n_sup=4, n_cycles=2, n_latent=3, n_tasks=n_tasks),
               "no deep supervision (n_sup 1)": TRMConfig(size=size, d_model=d, n_sup=1, n_cycles=2, n_latent=3, n_tasks=n_tasks),
               "shallow recursion (T 1, n 1)": TRMConfig(size=size, d_model=d, n_sup=4, n_cycles=1, n_latent=1, n_tasks=n_tasks),
               "deeper recursion (T 3, n 4)": TRMConfig(size=size, d_model=d, n_sup=4, n_cycles=3, n_latent=4, n_tasks=n_tasks),
               f"width {2 * d}": TRMConfig(size=size, d_model=2 * d, n_sup=4, n_cycles=2, n_latent=3, n_tasks=n_tasks),
               "no task embedding": TRMConfig(size=size, d_model=d, n_sup=4, n_cycles=2, n_latent=3, n_tasks=0)}
    first = next(iter(configs)); base = None
    batch = 64 if a.small else 512   # a GPU step is launch-bound at this size: a larger batch costs little more time
    tc = lambda steps: TRMTrainConfig(steps=steps, batch_size=batch, lr=1e-3, warmup=min(100, steps // 10), grad_clip=1.0, device=a.device,
                                      ema=0.999 if steps > 2000 else 0.99)
    run_cfgs = {k: v for i, (k, v) in enumerate(configs.items()) if a.configs is None or str(i) in a.configs.split(",")}
    if "ablation" in a.sections and a.steps and not a.time_budget:
        steps = a.steps; out["config"]["ablation_steps"] = steps
    elif "ablation" in a.sections:
        probe = {}
        for name, cfg in run_cfgs.items():   # seconds per optimizer step of each configuration
            data = cond if cfg.n_tasks else plain
            train_trm(data, cfg, tc(4 * cfg.n_sup))
            if a.device.startswith("cuda"): torch.cuda.synchronize()
            t = time.time(); train_trm(data, cfg, tc(8 * cfg.n_sup))
            if a.device.startswith("cuda"): torch.cuda.synchronize()
            probe[name] = (time.time() - t) / (8 * cfg.n_sup)
        steps = int(min(max_steps, budget / sum(probe.values())))
        steps = max(8, steps - steps % 4)
        out["config"]["ablation_steps"] = steps; out["config"]["seconds_per_step_probe"] = probe
        print("steps per configuration", steps, {k: round(v * 1000, 2) for k, v in probe.items()}, "ms/step", flush=True)
    if "ablation" in a.sections:
        out["config"]["train_config"] = dict(tc(steps).__dict__)
        for name, cfg in run_cfgs.items():
            t = time.time()
            m, hist = train_trm(cond if cfg.n_tasks else plain, cfg, tc(steps))
            tt = test_c if cfg.n_tasks else {f: [(i, o) for _, i, o in v] for f, v in test_c.items()}
            allp = [p for v in tt.values() for p in v]
            per = {f: grid_accuracy(m, v, device=a.device) for f, v in tt.items()}
            row = dict(config={k: v for k, v in cfg.__dict__.items()}, steps=steps, mean_exact=float(np.mean(list(per.values()))), per_family=per,
                       cells=grid_accuracy(m, allp, device=a.device, per_cell=True), final_loss=float(np.mean(hist[-1])),
                       first_loss=float(np.mean(hist[0])), seconds=round(time.time() - t, 1))
            if cfg.n_sup > 1: row["exact_by_supervision_step"] = [grid_accuracy(m, allp, n_sup=k, device=a.device) for k in range(1, cfg.n_sup + 1)]
            out["results"].setdefault("ablation", {})[name] = row
            print(name, json.dumps({k: v for k, v in row.items() if k not in ("per_family", "config")}), flush=True); save()
            if name == first:
                base = m
                if a.save_model: Path(a.save_model).parent.mkdir(parents=True, exist_ok=True); save_state(dict(cfg=cfg.__dict__, state=m.state_dict()), Path(a.save_model).with_suffix(""))
    if base is None and a.load_model:
        ck = load_state(Path(a.load_model).with_suffix("")); base = TinyRecursiveModel(TRMConfig(**ck["cfg"])).to(a.device)
        base.load_state_dict(ck["state"]); base.eval()
    if base is None and ("ttt" in a.sections or "arc" in a.sections):
        base = train_trm(cond, configs[first], tc(max_steps))[0]
    if "ttt" in a.sections:
        novel = [t for t in generate_tasks(a.ttt_tasks or (60 if a.small else 100), seed=HELDOUT_SEED, h=(3, size), w=(3, size)) if fits(t, size)]
        out["config"]["ttt_tasks"] = len(novel)
        for k in [0] + [int(s) for s in a.ttt_steps.split(",")]:
            name = "before (new task slots, no test-time training)" if k == 0 else f"after {k} test-time steps"
            t = time.time()
            r = evaluate(novel, solver=trm_solver(base, ttt_steps=k, device=a.device))
            out["results"].setdefault("ttt", {})[name] = dict(summarize(r), wall_s=round(time.time() - t, 1))
            print(name, out["results"]["ttt"][name], flush=True); save()
    if "arc" in a.sections:
        ev = load_arc("evaluation"); ev = ev[:a.arc_limit] if a.arc_limit else ev
        k = int(a.ttt_steps.split(",")[-1])
        fit = [t for t in ev if fits({**t, "test_outputs": []}, size)]
        t = time.time()
        r = evaluate(fit, solver=trm_solver(base, ttt_steps=k, device=a.device))
        solved_net = set(r.id[r.solved])
        res = dict(tasks=len(ev), fitting_canvas=len(fit), ttt_steps=k, solved=len(solved_net), solved_fraction=len(solved_net) / len(ev),
                   solved_ids=sorted(solved_net), wall_s=round(time.time() - t, 1))
        out["results"].setdefault("arc_evaluation", {})["network (with test-time training)"] = res; print("network", res, flush=True)
        if Path(a.search_results).exists(): combine(out, solved_net, [t["id"] for t in ev], Path(a.search_results))
    save(); print("wrote", a.out)


def combine(out, solved_net, ev_ids, sp):
    "Program search first, the network only where search found no program: the combined solved set, from stored runs."
    s = pd.read_parquet(sp); s = s[s.section == "arcagi1_evaluation"].set_index("id")
    s = s.loc[[i for i in ev_ids if i in s.index]]
    search_solved = set(s.index[s.solved]); no_program = set(s.index[~s.found])
    combined = search_solved | (solved_net & no_program)
    r = out["results"]["arc_evaluation"]
    r["program search (stored run)"] = dict(tasks=len(s), solved=len(search_solved), solved_fraction=len(search_solved) / len(s),
                                            source=str(sp), found_program=int(s.found.sum()))
    r["search then network"] = dict(tasks=len(s), solved=len(combined), solved_fraction=len(combined) / len(s),
                                    added_by_network=sorted(combined - search_solved),
                                    network_solved_but_search_answered=sorted(solved_net & (set(s.index) - no_program) - search_solved))
    print("search then network", r["search then network"], flush=True)


if __name__ == "__main__":
    main()

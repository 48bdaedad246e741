"""The two-constraint fine-tuning study: pre-train a small transformer on the synthetic corpus of
algocircuits.studies.finetune, fine-tune it on word->concept and spatial/relational prompts with checkpoints at 0, 25,
50, 75 and 100% of the steps, and at every checkpoint measure, on fixed held-out test prompts per type, accuracy,
logit difference, the attribution-patching circuit (80% of |attribution|), its overlap with the final circuit and,
at the end, mean-ablation faithfulness. Several seeds; writes a JSON report and a figure, prints the tables.

    PYTHONPATH=. python experiments/finetune_study.py --seeds 0 1 2
"""
import argparse, datetime, json, platform, shlex, sys, tempfile, time
from dataclasses import asdict, fields, replace
from pathlib import Path
import numpy as np, pandas as pd, torch

from algocircuits.studies.finetune import (StudyConfig, first_reach, pretrain_model, run_seed, summarize, summarize_trace, formation_speed, plot_study,
                                         load_hub_lm)
from algocircuits.train import code_version, package_versions

PACKAGES = ("torch", "numpy", "pandas", "safetensors", "matplotlib", "transformer-lens", "algocircuits")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="model seeds (init and minibatch order)")
    ap.add_argument("--out", default="reports/finetune_study/study.json")
    ap.add_argument("--fig", default="reports/figures/finetune_study.png")
    ap.add_argument("--run-root", default=None, help="where checkpoints go (default: a temporary directory, deleted)")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (1 is fastest for these tiny models on a shared CPU)")
    ap.add_argument("--variant-spatial-train", type=int, nargs="*", default=[],
                    help="also run these spatial training-set sizes from the same pre-trained models (a data-size control)")
    ap.add_argument("--hub-model", default=None,
                    help="only load this TransformerLens model from local weights (e.g. google/gemma-2-2b) and report; "
                         "fails with a clear message when the weights are not cached")
    for f in fields(StudyConfig):  # every StudyConfig field as --name (fractions as a list)
        if f.name == "seed": continue
        if f.name == "fractions": ap.add_argument("--fractions", type=float, nargs="+", default=list(f.default)); continue
        ap.add_argument("--" + f.name.replace("_", "-"), type=type(f.default), default=f.default)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    if a.hub_model:
        try: ht = load_hub_lm(a.hub_model)
        except (FileNotFoundError, ValueError) as e: sys.exit(str(e))
        print(f"loaded {a.hub_model}: {ht.cfg.n_layers} layers, d_model {ht.cfg.d_model}"); return
    base = {f.name: getattr(a, f.name) for f in fields(StudyConfig) if f.name != "seed"}
    base["fractions"] = tuple(a.fractions)
    t0 = time.time()
    conditions = {"main": {}} | ({f"n_spatial_train={n}": dict(n_spatial_train=n) for n in a.variant_spatial_train})
    runs = {c: [] for c in conditions}
    root_ctx = tempfile.TemporaryDirectory() if a.run_root is None else None
    root = Path(root_ctx.name if root_ctx else a.run_root)
    for s in a.seeds:
        cfg = StudyConfig(**base, seed=s)
        pre = pretrain_model(cfg)
        print(f"== seed {s}: pre-trained in {pre[1]['seconds']} s, loss {pre[1]['final_loss']:.3f}, known-noun concept acc "
              f"{pre[1]['known_noun_concept']['acc']:.3f}")
        for c, over in conditions.items():
            r = run_seed(replace(cfg, **over), root / c.replace("=", "_") / f"seed_{s}", pretrained=pre)
            runs[c].append(r)
            t = pd.DataFrame(r["table"])
            print(f"-- {c}, seed {s} ({r['seconds']})")
            print(t[["kind", "fraction", "train_acc", "test_acc", "test_logit_diff", "circuit_size", "overlap_final"]].to_string(index=False, float_format="%.3f"))
            for k, f in r["faithfulness"].items():
                print(f"   faithfulness {k}: circuit {f['circuit_size']}/{f['n_nodes']} nodes; logit diff {f['logit_diff']:.3f} -> "
                      f"{f['circuit_only_logit_diff']:.3f} with only the circuit (faithfulness {f['faithfulness']:.2f}, all ablated {f['all_ablated_logit_diff']:.3f}; acc {f['acc']:.3f} -> "
                      f"{f['circuit_only_acc']:.3f}); circuit ablated: {f['circuit_ablated_logit_diff']:.3f} (acc {f['circuit_ablated_acc']:.3f})")
            sys.stdout.flush()
    if root_ctx: root_ctx.cleanup()
    wall = time.time() - t0
    results = {}
    for c, rs in runs.items():
        print(f"\n######## condition {c}")
        results[c] = summarize_runs(rs, base | conditions[c], a.seeds)
        fig_path = a.fig if c == "main" else str(Path(a.fig).with_name(Path(a.fig).stem + "_" + c.replace("=", "") + ".png"))
        plot_study(pd.DataFrame(results[c]["summary"]), fig_path, trace=pd.DataFrame(results[c]["trace_summary"]),
                   title=f"two-constraint fine-tuning study ({c}), {len(a.seeds)} seeds (mean ± sd)")
        results[c]["figure"] = fig_path
    out = dict(command="PYTHONPATH=. python " + " ".join(shlex.quote(x) for x in sys.argv),
               date=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
               device=f"cpu ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)", wall_seconds=round(wall, 1),
               code=code_version(), versions=package_versions(PACKAGES), config=asdict(StudyConfig(**base, seed=a.seeds[0])), seeds=a.seeds,
               conditions={c: dict(overrides=conditions[c], **results[c], runs=runs[c]) for c in conditions})
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps(out, indent=1, default=_json_default))
    print(f"\nwall {wall:.1f} s; wrote {a.out} and {a.fig}")


def _json_default(o):
    if isinstance(o, (np.integer,)): return int(o)
    if isinstance(o, (np.floating,)): return float(o)
    return str(o)


def summarize_runs(rs, cfg, seeds):
    tables = [pd.DataFrame(r["table"]) for r in rs]
    summary = summarize(tables)
    trace = summarize_trace([r["trace"] for r in rs])
    speed = pd.concat([formation_speed(t).assign(seed=r["seed"]) for t, r in zip(tables, rs)])
    dense = []   # the same measures on the dense test-accuracy curve (every eval_every steps)
    for r in rs:
        t = pd.DataFrame(r["trace"]); t = t[t.split == "test"]
        for k, tk in t.sort_values("fraction").groupby("kind"):
            f, acc = tk.fraction.to_numpy(), tk.acc.to_numpy()
            dense.append(dict(kind=k, seed=r["seed"], dense_acc_auc=float(np.trapezoid(acc, f)), dense_acc_reach=first_reach(f, acc, 0.9 * acc[-1]),
                              dense_acc_reach_abs=first_reach(f, acc, 0.5 * (acc[0] + acc[-1]))))
    dense = pd.DataFrame(dense)
    speed = speed.merge(dense, on=["kind", "seed"])
    speed_summary = speed.groupby("kind").agg(acc_auc_mean=("acc_auc", "mean"), acc_auc_sd=("acc_auc", lambda v: float(np.std(v))),
                                              acc_reach=("acc_reach", list), overlap_reach=("overlap_reach", list),
                                              dense_acc_auc_mean=("dense_acc_auc", "mean"), dense_acc_auc_sd=("dense_acc_auc", lambda v: float(np.std(v))),
                                              dense_acc_reach=("dense_acc_reach", list), dense_half_way=("dense_acc_reach_abs", list)).reset_index()
    faith = pd.DataFrame([dict(kind=k, seed=r["seed"], **f) for r in rs for k, f in r["faithfulness"].items()])
    cols = ["circuit_size", "faithfulness", "retained", "acc", "circuit_only_acc", "circuit_ablated_acc", "logit_diff", "circuit_only_logit_diff", "all_ablated_logit_diff", "circuit_ablated_logit_diff"]
    fs = faith.groupby("kind")[cols]
    faith_summary = fs.mean().add_suffix("_mean").join(fs.std(ddof=0).add_suffix("_sd")).reset_index()
    between = [r["final_circuit_overlap_between_types"] for r in rs]
    bd = pd.DataFrame([dict(fraction=float(f), **v) for r in rs for f, v in r["spatial_breakdown"].items()])
    g = bd.groupby("fraction"); breakdown = g.mean().add_suffix("_mean").join(g.std(ddof=0).add_suffix("_sd")).reset_index()
    print("== mean (sd) over seeds", seeds)
    show = ["kind", "fraction"] + [f"{c}_{s}" for c in ("test_acc", "test_logit_diff", "train_acc", "circuit_size", "overlap_final") for s in ("mean", "sd")]
    print(summary[show].to_string(index=False, float_format="%.3f"))
    print("== formation speed (acc_auc: area under the checkpoints' test accuracy vs progress; acc_reach: first checkpoint from which "
          "acc >= 0.9 x final; overlap_reach: first from which overlap with final >= 0.5; "
          "dense_*: the same on the test accuracy measured every eval_every steps, dense_half_way: first fraction from which acc stays above "
          "half-way between its start and final values; per seed)")
    print(speed_summary.to_string(index=False, float_format="%.3f"))
    print("== faithfulness at the final checkpoint (mean, sd over seeds)")
    print(faith_summary.to_string(index=False, float_format="%.3f"))
    print(f"== final circuits, concept vs spatial overlap: {np.mean(between):.3f} ± {np.std(between):.3f}")
    print("== spatial test accuracy by form / query order, and predictions on the right axis (mean, sd over seeds)")
    print(breakdown.to_string(index=False, float_format="%.3f"))
    return dict(summary=summary.to_dict("records"), trace_summary=trace.to_dict("records"), formation_speed=speed.to_dict("records"),
                formation_speed_summary=speed_summary.to_dict("records"), faithfulness=faith.to_dict("records"),
                faithfulness_summary=faith_summary.to_dict("records"), final_overlap_between_types=between,
                spatial_breakdown=breakdown.to_dict("records"))


if __name__ == "__main__":
    main()

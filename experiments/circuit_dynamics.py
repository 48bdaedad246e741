"""Circuits over training time: train a small transformer on an algorithmic task with log-spaced checkpoints, then for
every checkpoint (on a fixed set of probe prompts) measure accuracy, circuit size, faithfulness, similarity to the
previous checkpoint's circuits and, for mod-p add/sub, Nanda et al.'s Fourier progress measures
(algocircuits.dynamics.circuit_timeline). Decides whether the circuit stabilizes before, with or after validation
accuracy rises. Writes reports/dynamics/<task>.json and reports/figures/dynamics_<task>.png; prints the figures.

    PYTHONPATH=. python experiments/circuit_dynamics.py --task add_mod_31
"""
import argparse, datetime, json, platform, sys, time
from dataclasses import asdict
from pathlib import Path
import numpy as np, pandas as pd, torch

from algocircuits.train import train, TrainConfig, read_metrics, detect_grokking, code_version, package_versions, list_checkpoints
from algocircuits.transcoders import TranscoderConfig, train_transcoders, transcoder_metrics
from algocircuits.model import load_model
from algocircuits.dynamics import circuit_timeline, compare_to_grokking, plot_timeline, match_features

# k=None: similar to the next checkpoint for the rest of the run. (The first version used k=3, fixed before any run; on
# add_mod_47 it declared the untrained checkpoints 1-3 "stable", which barely move: reports/dynamics/add_mod_47_warm.json.)
PRIMARY = dict(measure="edge_weighted", threshold=0.5, k=None)
SENSITIVITY = [(m, th, k) for m in ("edge_weighted", "node_weighted", "node_jaccard", "edge_jaccard", "feature_cosine")
               for th in (0.5, 0.7, 0.9) for k in (None, 3)]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--task", default="add_mod_31")
    ap.add_argument("--train-frac", type=float, default=0.5)
    ap.add_argument("--steps", type=int, default=4000)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--weight-decay", type=float, default=1.0)
    ap.add_argument("--warmup", type=int, default=50)
    ap.add_argument("--batch-size", type=int, default=None, help="minibatch size (default full batch)")
    ap.add_argument("--n-layers", type=int, default=1)
    ap.add_argument("--d-model", type=int, default=64)
    ap.add_argument("--n-heads", type=int, default=4)
    ap.add_argument("--d-mlp", type=int, default=256)
    ap.add_argument("--n-ckpt", type=int, default=14, help="log-spaced checkpoints in [1, steps]")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--n-probes", type=int, default=8)
    ap.add_argument("--tc-features", type=int, default=256)
    ap.add_argument("--tc-steps", type=int, default=2000, help="transcoder steps at the first checkpoint")
    ap.add_argument("--finetune-steps", type=int, default=500, help="warm-start steps at every later checkpoint")
    ap.add_argument("--transcoders", choices=("warm", "fresh"), default="fresh",
                    help="fresh: train per checkpoint, match features; warm: fine-tune the previous checkpoint's (writes <task>_warm.*)")
    ap.add_argument("--node-threshold", type=float, default=0.99)
    ap.add_argument("--edge-threshold", type=float, default=0.98)
    ap.add_argument("--acc-threshold", type=float, default=0.99)
    ap.add_argument("--run-root", default="/tmp/algocircuits_dynamics", help="where the training run (checkpoints) goes")
    ap.add_argument("--out-dir", default="reports/dynamics")
    ap.add_argument("--fig-dir", default="reports/figures")
    ap.add_argument("--device", default="cpu", help="training device (the checkpoint analysis runs on the CPU)")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (1 is fastest for these tiny models on a shared CPU)")
    ap.add_argument("--replot", action="store_true", help="only redraw the figure from the task's written JSON")
    ap.add_argument("--ceiling", action="store_true",
                    help="only add to the task's JSON the fit-noise ceiling: circuit similarity between two fresh transcoder fits (seeds) of the same checkpoint")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    name = a.task + (f"_s{a.seed}" if a.seed else "") + ("_warm" if a.transcoders == "warm" else "")
    if a.replot: return replot(Path(a.out_dir) / f"{name}.json", Path(a.fig_dir) / f"dynamics_{name}.png")
    if a.ceiling: return ceiling(Path(a.out_dir) / f"{name}.json", a)
    t_all = time.time()

    model_cfg = dict(n_layers=a.n_layers, d_model=a.d_model, n_heads=a.n_heads, d_mlp=a.d_mlp)
    train_cfg = TrainConfig(steps=a.steps, lr=a.lr, weight_decay=a.weight_decay, warmup_steps=a.warmup, batch_size=a.batch_size,
                            train_frac=a.train_frac, val_frac=1 - a.train_frac, eval_every=25, seed=a.seed, split_seed=a.seed,
                            checkpoint_schedule=f"log:{a.n_ckpt}", device=a.device, wandb=False)
    run_dir = Path(a.run_root) / f"{a.task}_s{a.seed}"
    t0 = time.time()
    res = train(a.task, model_cfg, train_cfg, run_dir=run_dir)
    train_s = time.time() - t0
    metrics = read_metrics(run_dir)
    g = detect_grokking(metrics, a.acc_threshold)
    print(f"{a.task}: trained {res.steps} steps in {train_s:.0f}s; memorized @ {g.memorization_step}, generalized @ {g.generalization_step}, "
          f"final val acc {res.final['val_acc']:.4f}; checkpoints {[int(c.name[5:]) for c in list_checkpoints(run_dir)]}", flush=True)

    tc_cfg = TranscoderConfig(d_transcoder=a.tc_features, steps=a.tc_steps, seed=a.seed)
    store = {}
    t0 = time.time()
    tl = circuit_timeline(run_dir, n_probes=a.n_probes, seed=a.seed, tc_cfg=tc_cfg, finetune_steps=a.finetune_steps,
                          node_threshold=a.node_threshold, edge_threshold=a.edge_threshold, verbose=True, store=store,
                          warm_start=a.transcoders == "warm")
    timeline_s = time.time() - t0

    # the warm-start check: fresh transcoders on the final checkpoint vs the warm-started chain's
    last = int(tl.step.iloc[-1])
    final_model = load_model(list_checkpoints(run_dir)[-1]).float().eval()
    _, ds, _ = __import__("algocircuits.train", fromlist=["load_run"]).load_run(run_dir)
    fresh = train_transcoders(final_model, ds, tc_cfg)
    warm = store[last][0]
    fm, wm = transcoder_metrics(final_model, fresh, ds), transcoder_metrics(final_model, warm, ds)
    mt = match_features(warm, fresh)
    warm_vs_fresh = dict(step=last, fresh_fve=fm["fve"], warm_fve=wm["fve"], fresh_l0=fm["l0"], warm_l0=wm["l0"],
                         fresh_dead=fm["dead_frac"], warm_dead=wm["dead_frac"], fresh_replacement_acc=fm["replacement_accuracy"],
                         warm_replacement_acc=wm["replacement_accuracy"], matched_cosine_mean=float(mt.cosine.mean()),
                         matched_cosine_median=float(mt.cosine.median()), share_matched_above_0_9=float((mt.cosine > 0.9).mean()))

    primary = compare_to_grokking(tl, **PRIMARY, acc_threshold=a.acc_threshold, metrics=metrics)
    comps = [primary] + [compare_to_grokking(tl, m, th, k, a.acc_threshold, metrics) for m, th, k in SENSITIVITY
                         if (m, th, k) != (PRIMARY["measure"], PRIMARY["threshold"], PRIMARY["k"])]
    rise = compare_to_grokking(tl, **PRIMARY, acc_threshold=0.9, metrics=metrics)

    fig_path = Path(a.fig_dir) / f"dynamics_{name}.png"
    plot_timeline(tl, metrics, primary, path=fig_path, title=f"{name}: {a.transcoders} transcoders; stabilizes {primary['verdict'] or 'undetermined'}"
                  f" vs generalization ({PRIMARY['measure']} >= {PRIMARY['threshold']}, k={PRIMARY['k']})")
    cols = [c for c in ("step", "train_acc", "val_acc", "tc_fve", "nodes", "features", "faithfulness_median", "node_weighted", "edge_weighted",
                        "node_jaccard", "feature_cosine", "feature_identity", "restricted_loss", "excluded_loss", "loss_train", "seconds") if c in tl]
    print(tl[cols].round(3).to_string(index=False))
    print(f"key frequencies: {tl.attrs.get('key_frequencies')}")
    for c in comps: print(f"{c['measure']:>14} >= {c['threshold']} (k={c['k']}): stabilized @ {c['stabilization_step']}, "
                          f"val acc >= {c['acc_threshold']} @ checkpoint {c['generalization_checkpoint']} (eval step {c['generalization_step_fine']}) -> {c['verdict']}")
    print(f"with val acc >= 0.9 instead: {rise['verdict']} (stabilized @ {rise['stabilization_step']}, val acc >= 0.9 @ {rise['generalization_checkpoint']})")
    print("warm vs fresh transcoders at the final checkpoint:", json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in warm_vs_fresh.items()}))

    m = metrics[["step"] + [c for c in metrics.columns if c.endswith(("_acc", "_loss")) and not c.endswith("class_acc")]]
    out = dict(experiment="circuit_dynamics", task=a.task, date=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
               command="PYTHONPATH=. python " + " ".join([sys.argv[0]] + sys.argv[1:]), seed=a.seed,
               config=dict(model=model_cfg, train=train_cfg.to_dict(), transcoders=asdict(tc_cfg), finetune_steps=a.finetune_steps,
                           transcoders_over_time=a.transcoders, n_probes=a.n_probes, node_threshold=a.node_threshold, edge_threshold=a.edge_threshold, acc_threshold=a.acc_threshold,
                           primary=PRIMARY),
               device="cpu", training_device=a.device, machine=platform.processor() or platform.machine(), threads=a.threads, torch=torch.__version__,
               code=code_version(), packages=package_versions(("torch", "numpy", "pandas", "scipy", "circuit-tracer", "transformer-lens", "algocircuits")),
               training=dict(steps=res.steps, wall_s=round(res.wall_time_s, 1), this_call_s=round(train_s, 1), memorization_step=g.memorization_step, generalization_step=g.generalization_step,
                             final_val_acc=float(res.final["val_acc"]), final_train_acc=float(res.final["train_acc"])),
               key_frequencies=tl.attrs.get("key_frequencies"), primary=primary, comparisons=comps, comparison_val_acc_0_9=rise,
               warm_vs_fresh=warm_vs_fresh, timeline=json.loads(tl.to_json(orient="records")), metrics=json.loads(m.to_json(orient="records")),
               figure=str(fig_path), timeline_wall_s=round(timeline_s, 1), total_wall_s=round(time.time() - t_all, 1))
    out_path = Path(a.out_dir) / f"{name}.json"
    out_path.parent.mkdir(parents=True, exist_ok=True); out_path.write_text(json.dumps(out, indent=1, default=float))
    print(f"wrote {out_path} and {fig_path} ({time.time() - t_all:.0f}s)")


def ceiling(json_path: Path, a):
    "Similarity of the probe circuits from two fresh transcoder fits (seed and seed+1) of the same checkpoint: what 'unchanged' scores."
    from algocircuits.train import load_run
    from algocircuits.dynamics import probe_set, checkpoint_circuits, graph_similarity
    rep = json.loads(json_path.read_text())
    run_dir = Path(a.run_root) / f"{a.task}_s{a.seed}"
    cfg, t0, rows = rep["config"], time.time(), []
    steps = [int(s) for s in pd.DataFrame(rep["timeline"]).step]
    for step in sorted({steps[len(steps) // 2 + 2], steps[-1]}):
        model, ds, _ = load_run(run_dir, step=step); model = model.float().eval()
        xp, yp = probe_set(ds, cfg["n_probes"], "val", rep["seed"])
        tcs = [train_transcoders(model, ds, TranscoderConfig(**dict(cfg["transcoders"], seed=rep["seed"] + i))) for i in (0, 1)]
        circs = [checkpoint_circuits(model, tc, ds, xp, yp, cfg["node_threshold"], cfg["edge_threshold"])[0] for tc in tcs]
        m = match_features(tcs[0], tcs[1])
        fmap = {(int(l), int(fa)): int(fb) for l, fa, fb in zip(m.layer, m.feature_a, m.feature_b)}
        sims = pd.DataFrame([graph_similarity(c0, c1, fmap) for c0, c1 in zip(*circs)]).mean().to_dict()
        rows.append(dict(step=step, **sims, feature_cosine=float(m.cosine.mean())))
        print(json.dumps({k: round(v, 3) for k, v in rows[-1].items()}), flush=True)
    rep["fit_noise_ceiling"] = dict(command="PYTHONPATH=. python " + " ".join([sys.argv[0]] + sys.argv[1:]), seeds=[rep["seed"], rep["seed"] + 1],
                                    rows=rows, wall_s=round(time.time() - t0, 1))
    json_path.write_text(json.dumps(rep, indent=1, default=float)); print(f"added fit_noise_ceiling to {json_path}")


def replot(json_path: Path, fig_path: Path):
    "Redraw the figure of a finished run from its JSON (timeline, metrics, primary comparison)."
    rep = json.loads(json_path.read_text())
    tl = pd.DataFrame(rep["timeline"]); tl.attrs.update(task=rep["task"], key_frequencies=rep["key_frequencies"])
    plot_timeline(tl, pd.DataFrame(rep["metrics"]), rep["primary"], path=fig_path)
    print(f"redrew {fig_path} from {json_path}")


if __name__ == "__main__":
    main()

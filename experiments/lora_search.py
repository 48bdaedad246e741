"""LoRA adaptation search (issue 5): which target weights, rank and learning rate let an adapter of <= 1% of the
parameters carry a grokked base model to >= 99% held-out accuracy on a related task, and in how many steps compared
with training the target from scratch.

The base models and tasks are those of bench_compress.py (reference configuration, 50% split, seed 0): add_mod_97 ->
sub_mod_97, mul_mod_97; s5_compose (a∘b) -> s5_compose_rev (b∘a), s5_conjugate (a∘b∘a⁻¹). Candidates are tried in
the order listed (the likeliest first) until --time-budget is spent. The rank of each target set is the largest whose
adapter stays <= 1% of the model unless a rank is given.

    PYTHONPATH=. python experiments/lora_search.py --out reports/benchmarks/lora_search.json        # GPU
    PYTHONPATH=. python experiments/lora_search.py --smoke                                         # tiny CPU run
"""
from __future__ import annotations
import argparse, datetime, json, os, platform, sys, time, warnings
from pathlib import Path

os.environ.setdefault("WANDB_MODE", "disabled")
warnings.filterwarnings("ignore")
sys.path.insert(0, str(Path(__file__).parent))
from bench_compress import REFERENCE_MODEL, REFERENCE_TRAIN, BASE_TRAIN, get_any_task   # one definition of the reference setup

TARGET_SETS = {
    "pos": ["pos_embed.W_pos"],
    "attn_QK_L0+pos": ["blocks.0.attn.W_Q", "blocks.0.attn.W_K", "pos_embed.W_pos"],
    "attn_all_L0+pos": ["blocks.0.attn.W_Q", "blocks.0.attn.W_K", "blocks.0.attn.W_V", "blocks.0.attn.W_O", "pos_embed.W_pos"],
    "attn_VO+pos": ["attn.W_V", "attn.W_O", "pos_embed.W_pos"],
    "attn_VO": ["attn.W_V", "attn.W_O"],
    "mlp": ["mlp.W_in", "mlp.W_out"],
    "mlp_L0": ["blocks.0.mlp.W_in", "blocks.0.mlp.W_out"],
    "mlp_L1": ["blocks.1.mlp.W_in", "blocks.1.mlp.W_out"],
    "embed_pos_unembed": ["embed.W_E", "pos_embed.W_pos", "unembed.W_U"],
}
# (base task, target task, target set, rank or None for the largest within 1%, lr), likeliest first
CANDIDATES = [
    ("s5_compose", "s5_compose_rev", "pos", 1, 3e-2),
    ("s5_compose", "s5_compose_rev", "attn_QK_L0+pos", None, 1e-2),
    ("add_mod_97", "sub_mod_97", "mlp_L0", None, 1e-2),
    ("add_mod_97", "sub_mod_97", "attn_VO", None, 1e-2),
    ("s5_compose", "s5_conjugate", "attn_VO+pos", None, 1e-2),
    ("add_mod_97", "mul_mod_97", "mlp_L0", None, 1e-2),
    ("s5_compose", "s5_compose_rev", "attn_all_L0+pos", None, 1e-2),
    ("add_mod_97", "sub_mod_97", "mlp", None, 3e-2),
    ("s5_compose", "s5_conjugate", "mlp_L1", None, 1e-2),
    ("add_mod_97", "mul_mod_97", "embed_pos_unembed", None, 3e-2),
]
SMOKE = [("add_mod_11", "sub_mod_11", "mlp_L0", None, 1e-2), ("s3_compose", "s3_compose_rev", "pos", 1, 3e-2)]


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default=None)
    p.add_argument("--smoke", action="store_true")
    p.add_argument("--device", default=None)
    p.add_argument("--steps", type=int, default=3000, help="LoRA steps at most (stops at 99%% held-out)")
    p.add_argument("--time-budget", type=float, default=420.0)
    p.add_argument("--candidates", default=None, help="run these instead of the built-in list: comma-separated "
                   "base:target:target_set:rank:lr (rank 0 = the largest within 1%%), e.g. s5_compose:s5_compose_rev:pos:4:0.01")
    p.add_argument("--model", default=None, help="override the reference architecture: comma-separated key=value, e.g. n_layers=1 "
                   "(in a one-layer model a rank-1 change of W_pos that swaps positions 1 and 2 computes b∘a from a base trained on a∘b exactly)")
    p.add_argument("--base-steps", type=int, default=None, help="base-model training steps (default 2000)")
    p.add_argument("--scratch-steps", type=int, default=None, help="from-scratch training steps at most (default 3000)")
    p.add_argument("--batch-size", type=int, default=None, help="minibatch size of base, scratch and LoRA training (default full batch)")
    a = p.parse_args(argv)
    import torch, peft
    from algocircuits.train import TrainConfig, train, evaluate, resolve_device, code_version, package_versions, device_name
    from algocircuits import compress as C
    dev = resolve_device(a.device or ("cpu" if a.smoke else None))
    if dev.type == "cpu": torch.set_num_threads(1)
    S = a.smoke
    model_cfg = {**REFERENCE_MODEL, **(dict(n_layers=2, d_model=32, d_mlp=64) if S else {})}
    for kv in (a.model.split(",") if a.model else []):
        k, v = kv.split("=")
        if k not in REFERENCE_MODEL: raise SystemExit(f"--model: unknown field {k!r} (fields: {sorted(REFERENCE_MODEL)})")
        model_cfg[k] = int(v) if v.isdigit() else v
    base_steps, scratch_steps, steps = (300, 300, 200) if S else (2000, 3000, a.steps)
    base_steps, scratch_steps = a.base_steps or base_steps, a.scratch_steps or scratch_steps
    t0 = time.perf_counter()
    def log(m): print(f"[{time.perf_counter() - t0:6.1f}s] {m}", flush=True)
    def tcfg(**kw): return TrainConfig(**{**REFERENCE_TRAIN, "device": str(dev), "wandb": False, "eval_every": 25 if S else 50,
                                          **({"batch_size": a.batch_size} if a.batch_size else {}), **kw})
    data = {}
    def dataset(name):
        if name not in data: data[name] = get_any_task(name).dataset(train_frac=0.5, val_frac=0.5, seed=0)
        return data[name]
    def val_acc(m, name):
        x, y = (t.to(dev) for t in dataset(name).tensors("val")); return evaluate(m, x, y)["acc"]
    bases, scratch, rows = {}, {}, []
    report = dict(benchmark="lora_search", date=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
                  device=str(dev), device_name=device_name(dev), torch=torch.__version__, peft=peft.__version__,
                  python=platform.python_version(), code=code_version(), packages=package_versions(), smoke=S,
                  model=model_cfg, train=REFERENCE_TRAIN, settings=dict(vars(a), base_steps=base_steps, scratch_steps=scratch_steps),
                  bases={}, scratch={}, runs=rows)
    out = Path(a.out or ("reports/benchmarks/lora_search_smoke.json" if S else "reports/benchmarks/lora_search.json"))
    def save(): out.parent.mkdir(parents=True, exist_ok=True); out.write_text(json.dumps(report, indent=1, default=str))
    cands = SMOKE if S else CANDIDATES
    if a.candidates:
        cands = []
        for c in a.candidates.split(","):
            f = c.split(":")
            if len(f) != 5 or f[2] not in TARGET_SETS: raise SystemExit(f"--candidates: {c!r} is not base:target:target_set:rank:lr with a target set in {sorted(TARGET_SETS)}")
            cands.append((f[0], f[1], f[2], int(f[3]) or None, float(f[4])))
    for base_name, target, set_name, r, lr in cands:
        if time.perf_counter() - t0 > a.time_budget: log(f"time budget spent; skipping {base_name}->{target} {set_name}"); continue
        if base_name not in bases:
            t = time.perf_counter()
            res = train(dataset(base_name), model_cfg, tcfg(steps=base_steps, **BASE_TRAIN))
            bases[base_name] = res.model.eval()
            report["bases"][base_name] = dict(val_acc=val_acc(bases[base_name], base_name), steps=res.steps,
                                              steps_to_generalize=res.grokking.generalization_step, wall_s=time.perf_counter() - t,
                                              n_params=C.count_parameters(bases[base_name]))
            log(f"base {base_name}: {report['bases'][base_name]}")
        if target not in scratch:
            t = time.perf_counter()
            res = train(dataset(target), model_cfg, tcfg(steps=scratch_steps, early_stop_acc=0.99))
            scratch[target] = report["scratch"][target] = dict(steps_to_99=res.grokking.generalization_step, val_acc=val_acc(res.model, target),
                                                               wall_s=time.perf_counter() - t)
            log(f"scratch {target}: {scratch[target]}")
        base = bases[base_name]; n = C.count_parameters(base); tg = TARGET_SETS[set_name]
        if r is None:
            limit = min(min(p.shape[-2:]) for nm, p in base.named_parameters() if nm in C.lora_targets(base, tg))
            r = max([k for k in range(1, limit + 1) if C.lora_parameter_count(base, tg, k) <= 0.01 * n] or [0])
            if r == 0: log(f"{set_name}: even rank 1 is over 1%"); continue
        t = time.perf_counter()
        pm = C.apply_lora(base, tg, r=r)
        res = C.finetune(pm, dataset(target), tcfg(steps=steps, lr=lr, warmup_steps=0, weight_decay=0.0, early_stop_acc=0.99))
        merged = C.merge_lora(pm); st = C.parameter_stats(pm)
        row = dict(base=base_name, target=target, targets=set_name, r=r, lr=lr, trainable=st["trainable"], trainable_frac=st["trainable"] / n,
                   base_acc_on_target=val_acc(base, target), val_acc=val_acc(pm, target), merged_val_acc=val_acc(merged, target),
                   steps_to_99=res.grokking.generalization_step, steps=res.steps, scratch_steps_to_99=scratch[target]["steps_to_99"],
                   wall_s=time.perf_counter() - t)
        rows.append(row); save()
        log(f"{base_name}->{target} {set_name} r={r} lr={lr}: {row['trainable']} params ({100 * row['trainable_frac']:.2f}%), "
            f"val {row['val_acc']:.4f} (merged {row['merged_val_acc']:.4f}), 99% at {row['steps_to_99']} vs scratch {row['scratch_steps_to_99']}")
    report["total_wall_s"] = time.perf_counter() - t0
    report["reaching_99"] = [dict((k, r_[k]) for k in ("base", "target", "targets", "r", "trainable_frac", "steps_to_99", "scratch_steps_to_99"))
                             for r_ in rows if r_["steps_to_99"] is not None]
    save(); log(f"wrote {out}")


if __name__ == "__main__":
    main()

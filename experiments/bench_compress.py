"""Compression benchmark: pruning (one-shot, retrained, iterative with rewinding, gradual, structured + export) and LoRA
adaptation on the reference grokking models, with GPU inference latency of the dense, pruned-exported and LoRA models.

Reference configuration (as bench_grokking.py): tokens `<bos> a b =`, 50% of all pairs for training (split seed 0),
the rest held out (the "val" split every accuracy below is measured on); 2 layers, d_model 128, 4 heads, d_mlp 512,
ReLU, LayerNorm, learned positions; AdamW lr 3e-3 with 100 warmup steps, weight decay 1.0, betas (0.9, 0.98), full batch.
Base models train 2000 steps with a cosine decay to 10% (so they end stable), the weights at step 100 kept for rewinding.

Per base task (add_mod_97, s5_compose), in this order (a section is skipped once the task's share of
--time-budget is spent; each task gets half):
  curve      global magnitude pruning to each sparsity: one-shot, and each copy retrained with the mask fixed
             (lr 1e-3, <= 300 steps, until within half a point of the base); largest sparsity within 1 point
  structured 25% of the heads and 75% of the MLP neurons removed by importance, retrained, exported with `compact`;
             then the residual stream sliced to 99.9% of its variance, retrained; exports checked against the
             masked/projected models (max logit difference)
  lora       adapters (<= 1% of the parameters) to related tasks: add -> sub, mul; s5 a∘b -> b∘a, a∘b∘a⁻¹;
             steps to 99% held-out accuracy vs training the target from scratch
  imp        iterative magnitude pruning, 30% of the remaining weights per round, survivors rewound to step 100
  gradual    training from scratch with the cubic gradual-pruning schedule to 90% (steps 200 -> 1000)
  latency    median forward time over the whole held-out set (fp32, TF32 off): dense, pruned (masked and permanent),
             compact, sliced, LoRA adapter (unmerged) and merged

    PYTHONPATH=. python experiments/bench_compress.py --out reports/benchmarks/compress.json
    PYTHONPATH=. python experiments/bench_compress.py --smoke          # tiny CPU version (writes compress_smoke.json)

Needs transformer-lens (algocircuits.model imports it) and peft >= 0.17 on the GPU machine.
"""
from __future__ import annotations
import argparse, datetime, json, math, os, platform, sys, time, warnings
from algocircuits.model import model_preset
from pathlib import Path

os.environ.setdefault("WANDB_MODE", "disabled")
warnings.filterwarnings("ignore")

REFERENCE_MODEL = model_preset("reference", attn="mha")
REFERENCE_TRAIN = dict(lr=3e-3, warmup_steps=100, weight_decay=1.0, betas=(0.9, 0.98), batch_size=None, train_frac=0.5, val_frac=0.5, split_seed=0)
SPARSITIES = [0.3, 0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.93, 0.95, 0.97]
BASE_TRAIN = dict(schedule="cosine", min_lr_ratio=0.1)   # the base models anneal, so they end stable (no late spikes)
# LoRA target sets; the rank of each is the largest that keeps the adapter <= 1% of the model's parameters
LORA_TARGETS = {
    "attn_VO": ["attn.W_V", "attn.W_O"],
    "attn_VO+pos": ["attn.W_V", "attn.W_O", "pos_embed.W_pos"],
    "mlp": ["mlp.W_in", "mlp.W_out"],
    "attn_all_L0+pos": ["blocks.0.attn.W_Q", "blocks.0.attn.W_K", "blocks.0.attn.W_V", "blocks.0.attn.W_O", "pos_embed.W_pos"],
    "embed_pos_unembed": ["embed.W_E", "pos_embed.W_pos", "unembed.W_U"],
    "pos": ["pos_embed.W_pos"],
}
# base task -> {target task: LoRA target sets tried}. b∘a from a∘b only needs the two operand positions swapped, which
# a rank-2 update of W_pos can do; the others need new computation (tried with the budget spread over attention/MLP).
TASKS = {"add_mod_97": {"sub_mod_97": ["attn_all_L0+pos", "mlp"], "mul_mod_97": ["embed_pos_unembed"]},
         "s5_compose": {"s5_compose_rev": ["pos"], "s5_conjugate": ["attn_VO+pos"]}}
SMOKE_TASKS = {"add_mod_11": {"sub_mod_11": ["pos"]}, "s3_compose": {"s3_compose_rev": ["pos", "attn_VO"]}}


def get_any_task(name):
    "Registered tasks, plus the S_n variants that algocircuits.compress defines until tasks registers them."
    from algocircuits.tasks import get_task
    from algocircuits.compress import symmetric_group_variant_task
    import re
    m = re.fullmatch(r"s(\d)_(compose_rev|conjugate)", name)
    return symmetric_group_variant_task(int(m[1]), m[2]) if m else get_task(name)


class Clock:
    "Wall-clock budget shared by all sections; a section that would start past its share is skipped."
    def __init__(self, budget_s): self.t0, self.budget = time.perf_counter(), budget_s
    def elapsed(self): return time.perf_counter() - self.t0
    def left(self): return self.budget - self.elapsed()


def run_task(task_name, targets, a, clock, dev, log):
    import torch
    from algocircuits.train import TrainConfig, train, evaluate
    from algocircuits import compress as C
    out = dict(task=task_name)
    ds = get_any_task(task_name).dataset(train_frac=0.5, val_frac=0.5, seed=0)
    xv, yv = (t.to(dev) for t in ds.tensors("val"))
    model_cfg = {**REFERENCE_MODEL, **a.model_overrides}
    def tcfg(**kw): return TrainConfig(**{**REFERENCE_TRAIN, "device": str(dev), "wandb": False, "eval_every": a.eval_every, **kw})
    acc = lambda m: evaluate(m, xv, yv)["acc"]
    graph = dev.type == "cuda"

    # -- base model, with the weights at the rewind step kept for IMP
    rewind = {}
    def keep_rewind(step, row, model):
        if step == a.rewind_step: rewind.update({k: v.detach().clone() for k, v in model.state_dict().items()})
    t = time.perf_counter()
    base_res = train(ds, model_cfg, tcfg(steps=a.base_steps, cuda_graph=graph, **BASE_TRAIN), callbacks=[keep_rewind])
    base = base_res.model.eval()
    base_acc = acc(base)
    n_base = C.count_parameters(base)
    out["base"] = dict(val_acc=base_acc, steps=base_res.steps, steps_to_generalize=base_res.grokking.generalization_step,
                       wall_s=time.perf_counter() - t, **C.parameter_stats(base))
    stop_at = lambda cap: max(0.05, min(cap, base_acc - 0.005))   # retraining stops once back within half a point
    log(f"[{task_name}] base: val acc {base_acc:.4f}, generalized at {base_res.grokking.generalization_step}, {out['base']['wall_s']:.1f}s")
    retrain = tcfg(steps=a.retrain_steps, lr=1e-3, warmup_steps=0, early_stop_acc=stop_at(0.995))
    latency_models = {"dense": base}
    holds = lambda v: v is not None and v >= base_acc - 0.01

    # -- one-shot and retrained sparsity curves (retraining stops after two sparsities in a row that fail)
    t, rows, fails = time.perf_counter(), [], 0
    for sp in a.sparsities:
        m = C.dense_copy(base); C.prune_to_sparsity(m, sp)
        row = dict(sparsity=sp, acc=acc(m), retrained_acc=None, retrain_steps=None)
        if fails < 2 and clock.left() > a.reserve:
            res = C.finetune(m, ds, retrain); row.update(retrained_acc=acc(m), retrain_steps=res.steps)
            fails = 0 if holds(row["retrained_acc"]) else fails + 1
        rows.append(row)
    curve = pd_frame(rows)
    out["sparsity_curve"] = rows
    best = dict(oneshot=max([r["sparsity"] for r in rows if holds(r["acc"])], default=0.0),
                retrained=max([r["sparsity"] for r in rows if holds(r["retrained_acc"])], default=0.0))
    out["largest_sparsity_within_1pt"] = best
    log(f"[{task_name}] curve ({time.perf_counter() - t:.1f}s): {best}\n{curve.to_string()}")
    if best["retrained"] > 0:
        pruned = C.dense_copy(base); C.prune_to_sparsity(pruned, best["retrained"]); C.finetune(pruned, ds, retrain)
        out["pruned_best"] = dict(sparsity=best["retrained"], val_acc=acc(pruned), **C.parameter_stats(pruned))
        latency_models["pruned_masked"] = pruned
        latency_models["pruned_permanent"] = C.make_permanent(C.dense_copy(pruned))

    # -- structured: heads + neurons, compact; then residual directions
    if clock.left() > a.reserve:
        t = time.perf_counter()
        m = C.dense_copy(base)
        C.structured_prune(m, ds, heads=a.heads, neurons=a.neurons)
        acc_masked0 = acc(m)
        ft = C.finetune(m, ds, retrain)
        small = C.compact(m)
        diff = (small(xv).float() - m(xv).float()).abs().max().item()
        proj, sliced, info = C.slice_residual(small, ds, keep=a.keep_variance)
        diff_slice = (sliced(xv).float() - proj(xv).float()).abs().max().item()
        acc_sliced0 = acc(sliced)
        ft2 = C.finetune(sliced, ds, retrain)
        out["structured"] = dict(heads_removed=a.heads, neurons_removed=a.neurons, acc_after_mask=acc_masked0,
                                 acc_after_retrain=acc(m), retrain_steps=ft.steps, compact_config=small.cfg.to_dict(),
                                 compact_params=C.parameter_stats(small), compact_acc=acc(small), compact_vs_masked_max_logit_diff=diff,
                                 slice=info, sliced_vs_projected_max_logit_diff=diff_slice, sliced_acc_before_retrain=acc_sliced0,
                                 sliced_acc=acc(sliced), sliced_retrain_steps=ft2.steps, sliced_params=C.parameter_stats(sliced),
                                 param_reduction=1 - C.count_parameters(sliced) / n_base, wall_s=time.perf_counter() - t)
        latency_models["compact"], latency_models["sliced"] = small, sliced
        log(f"[{task_name}] structured: compact {C.count_parameters(small)} params acc {acc(small):.4f} (diff {diff:.1e}); "
            f"sliced d_model {info['d_model']} {C.count_parameters(sliced)} params acc {acc(sliced):.4f} (diff {diff_slice:.1e})")

    # -- LoRA to related tasks, and the same tasks from scratch
    out["lora"] = []
    for target, sets in targets.items():
        if clock.left() < a.reserve: break
        tds = get_any_task(target).dataset(train_frac=0.5, val_frac=0.5, seed=0)
        xt, yt = (v.to(dev) for v in tds.tensors("val"))
        t = time.perf_counter()
        scratch = train(tds, model_cfg, tcfg(steps=a.scratch_steps, early_stop_acc=0.99, cuda_graph=graph))
        row0 = dict(target=target, base_acc_on_target=evaluate(base, xt, yt)["acc"],
                    scratch_steps_to_99=scratch.grokking.generalization_step, scratch_wall_s=time.perf_counter() - t)
        log(f"[{task_name}->{target}] scratch: {row0}")
        for name in sets:
            if clock.left() < a.reserve: break
            tg = LORA_TARGETS[name]
            limit = min(min(p.shape[-2:]) for n, p in base.named_parameters() if n in C.lora_targets(base, tg))
            r = max([r for r in range(1, limit + 1) if C.lora_parameter_count(base, tg, r) <= 0.01 * n_base] or [0])
            if r == 0: continue
            t = time.perf_counter()
            pm = C.apply_lora(base, tg, r=r)
            res = C.finetune(pm, tds, tcfg(steps=a.lora_steps, lr=a.lora_lr, warmup_steps=0, weight_decay=0.0, early_stop_acc=0.99))
            merged = C.merge_lora(pm)
            st = C.parameter_stats(pm)
            row = dict(row0, targets=name, r=r, trainable=st["trainable"], trainable_frac=st["trainable"] / n_base,
                       steps_to_99=res.grokking.generalization_step, steps=res.steps, val_acc=evaluate(pm, xt, yt)["acc"],
                       merged_val_acc=evaluate(merged, xt, yt)["acc"],
                       merged_max_logit_diff=(merged(xt).float() - pm(xt).float()).abs().max().item(), wall_s=time.perf_counter() - t)
            out["lora"].append(row)
            log(f"[{task_name}->{target}] lora {name} r={r}: {row['trainable']} params ({100 * row['trainable_frac']:.2f}%), "
                f"val acc {row['val_acc']:.4f}, 99% at step {row['steps_to_99']} vs scratch {row0['scratch_steps_to_99']} ({row['wall_s']:.1f}s)")
            if "lora_adapter" not in latency_models or row["val_acc"] > latency_models["_lora_acc"]:
                latency_models["lora_adapter"], latency_models["lora_merged"], latency_models["_lora_acc"] = pm, merged, row["val_acc"]
    latency_models.pop("_lora_acc", None)

    # -- iterative magnitude pruning with rewinding
    if clock.left() > a.reserve and rewind:
        t = time.perf_counter(); m = C.dense_copy(base); rows = []
        imp_cfg = tcfg(steps=a.imp_steps, early_stop_acc=stop_at(0.99))
        for r in range(a.imp_rounds):
            if clock.left() < a.reserve: break
            m, h = C.iterative_magnitude_pruning(m, ds, rewind_to=rewind, rounds=1, amount=0.3, retrain_cfg=imp_cfg)
            row = h.iloc[0].to_dict(); row["round"] = r + 1; rows.append(row)
            log(f"[{task_name}] imp round {r + 1}: sparsity {row['sparsity']:.3f}, acc {row['acc']:.4f}, retrain steps {row['retrain_steps']}")
            if not holds(row["acc"]): break
        out["imp"] = dict(rounds=rows, largest_sparsity_within_1pt=max([r["sparsity"] for r in rows if holds(r["acc"])], default=0.0),
                          rewind_step=a.rewind_step, wall_s=time.perf_counter() - t)

    # -- gradual pruning while training from scratch
    if clock.left() > a.reserve:
        t = time.perf_counter()
        gp = C.GradualPruning(a.gradual_sparsity, start_step=a.gradual_start, end_step=a.gradual_end)
        r = train(ds, model_cfg, tcfg(steps=a.gradual_steps, **BASE_TRAIN), callbacks=[gp])
        out["gradual"] = dict(final_sparsity=C.weight_sparsity(r.model), val_acc=acc(r.model), steps=r.steps,
                              steps_to_generalize=r.grokking.generalization_step, wall_s=time.perf_counter() - t)
        log(f"[{task_name}] gradual: {out['gradual']}")

    # -- latency of everything we kept, on the whole held-out set
    out["latency_ms"] = {k: C.measure_latency(m.to(dev), xv, repeats=a.repeats) for k, m in latency_models.items()}
    out["latency_batch"] = list(xv.shape)
    out["params"] = {k: C.parameter_stats(m) for k, m in latency_models.items()}
    log(f"[{task_name}] latency (ms, batch {list(xv.shape)}): " + ", ".join(f"{k} {v:.3f}" for k, v in out["latency_ms"].items()))
    out["summary"] = dict(
        base_val_acc=base_acc, n_params=n_base,
        unstructured_sparsity_within_1pt=max(best["retrained"], out.get("imp", {}).get("largest_sparsity_within_1pt", 0.0),
                                             out["gradual"]["final_sparsity"] if holds(out.get("gradual", {}).get("val_acc")) else 0.0),
        structured_param_reduction=out["structured"]["param_reduction"] if holds(out.get("structured", {}).get("sliced_acc")) else None,
        lora_reaching_99=[dict(target=r["target"], targets=r["targets"], trainable_frac=r["trainable_frac"], steps_to_99=r["steps_to_99"],
                               scratch_steps_to_99=r["scratch_steps_to_99"]) for r in out["lora"] if r["steps_to_99"] is not None])
    return out


def pd_frame(rows):
    import pandas as pd
    return pd.DataFrame(rows)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default=None, help="JSON file (default reports/benchmarks/compress.json, or compress_smoke.json with --smoke)")
    p.add_argument("--smoke", action="store_true", help="tiny CPU run that exercises every section")
    p.add_argument("--device", default=None)
    p.add_argument("--time-budget", type=float, default=330.0, help="seconds for everything; sections past it are skipped")
    p.add_argument("--tasks", default=None, help="comma-separated base tasks (default: add_mod_97,s5_compose)")
    a = p.parse_args(argv)
    import torch
    from algocircuits.train import resolve_device, code_version, package_versions, device_name
    dev = resolve_device(a.device or ("cpu" if a.smoke else None))
    if dev.type == "cuda": torch.backends.cuda.matmul.allow_tf32 = False   # fp32 numbers, comparable across runs
    else: torch.set_num_threads(1)
    S = a.smoke
    a.model_overrides = dict(n_layers=1, d_model=32, d_mlp=64) if S else {}
    a.eval_every = 25 if S else 50
    a.base_steps, a.rewind_step = (200, 50) if S else (2000, 100)
    a.retrain_steps, a.imp_steps, a.imp_rounds = (50, 50, 2) if S else (300, 1000, 10)
    a.gradual_steps, a.gradual_start, a.gradual_end, a.gradual_sparsity = (150, 50, 100, 0.5) if S else (1500, 200, 1000, 0.9)
    a.heads, a.neurons, a.keep_variance = (0.25, 0.5, 0.999) if S else (0.25, 0.75, 0.999)
    a.scratch_steps, a.lora_steps, a.lora_lr = (100, 100, 1e-2) if S else (3000, 1000, 1e-2)
    a.sparsities = [0.5, 0.9] if S else SPARSITIES
    a.repeats, a.reserve = (3, 0.0) if S else (50, 25.0)
    tasks = SMOKE_TASKS if S else TASKS
    if a.tasks: tasks = {t: tasks.get(t, {}) for t in a.tasks.split(",")}
    clock = Clock(a.time_budget)
    def log(msg): print(f"[{clock.elapsed():6.1f}s] {msg}", flush=True)
    log(f"device {device_name(dev)}, torch {torch.__version__}")
    results = []
    for i, (task, targets) in enumerate(tasks.items()):
        share = clock.left() / (len(tasks) - i)
        sub = Clock(share); sub.t0 = time.perf_counter()
        results.append(run_task(task, targets, a, sub, dev, log))
    import peft
    report = dict(benchmark="compress", date=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
                  device=str(dev), device_name=device_name(dev), torch=torch.__version__, python=platform.python_version(),
                  peft=peft.__version__, code=code_version(), packages=package_versions(), smoke=S,
                  reference_model={**REFERENCE_MODEL, **a.model_overrides}, reference_train=REFERENCE_TRAIN,
                  settings={k: v for k, v in vars(a).items() if k not in ("out",)}, total_wall_s=clock.elapsed(), results=results)
    out = Path(a.out or ("reports/benchmarks/compress_smoke.json" if S else "reports/benchmarks/compress.json"))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=1, default=str))
    log(f"wrote {out}")
    return report


if __name__ == "__main__":
    main()

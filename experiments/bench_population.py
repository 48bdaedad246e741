"""Population-training benchmark: model-steps/s and peak memory for N = 1, 16, 64, 256 models against the naive single-model
loop (compiled, fused attention kernel, shared prefixes; at the largest N also elementwise attention, without shared
prefixes, with an eager optimizer, with a bf16 residual stream, and eager with elementwise or SDPA attention), a check of the fused kernel against the
elementwise reference, on the reference configuration (add_mod_97, 2 layers, d_model 128, 4 heads, d_mlp 512, 50% split,
full batch of 4,704, AdamW lr 1e-3 wd 1.0 betas (0.9, 0.98)), all in one run; a profile of the largest population;
and 100 models trained to grokking. Writes reports/benchmarks/population.json.

    PYTHONPATH=. python experiments/bench_population.py            # on the GPU
    PYTHONPATH=. python experiments/bench_population.py --smoke    # tiny CPU check
"""
import argparse, datetime, json, os, platform, subprocess, sys, time
from pathlib import Path
import torch

from algocircuits.model import model_preset
from algocircuits.tasks import get_task
from algocircuits.model import Transformer, TransformerConfig
from algocircuits.train import TrainConfig, code_version, package_versions
from algocircuits.sweep import Population, PopulationAdamW, population_loss_fn, train_population, shared_prefixes

H100_BF16_DENSE = 989e12  # FLOP/s, H100 SXM dense bf16 peak (the usual MFU denominator; the H200 has the same)


def step_flops(cfg, B, T, n_out, s=0, U=0):
    """Matmul FLOPs of one training step (forward + backward = 3x forward) as executed: last layer only at n_out positions;
    with s shared prefix positions, those positions run as U shared rows (plus the one-hot matmul bringing their keys and values)."""
    d, H, Dh, f, V, L = cfg.d_model, cfg.n_heads, cfg.head_dim, cfg.d_mlp, cfg.vocab_size, cfg.n_layers
    rows = U + (T - s) * B                                      # rows through the blocks below the last
    fwd = 0
    for l in range(L):
        last = l == L - 1
        q_rows = n_out * B if last else rows
        fwd += 2 * rows * d * 2 * H * Dh + 2 * q_rows * d * H * Dh   # K, V at every row; Q where queries are
        fwd += 2 * B * H * (n_out if last else T - s) * T * Dh * 2   # scores and pattern @ V of the examples' queries
        fwd += 2 * q_rows * (H * Dh * d + 2 * d * f)                 # W_O and the MLP
        if s: fwd += 2 * s * B * U * 2 * H * Dh                      # one-hot matmul: shared keys/values to the examples
    fwd += 2 * B * n_out * d * V
    return 3 * fwd


def nominal_flops(cfg, B, T):
    "FLOPs of the textbook step (every position through every layer and the unembedding)."
    return step_flops(cfg, B, T, T)


def sync(): torch.cuda.synchronize() if torch.cuda.is_available() else None


def time_naive(cfg, x, y, steps, bf16, device):
    torch.manual_seed(0)
    m = Transformer(cfg).to(device); m.check_inputs = False
    opt = torch.optim.AdamW(m.parameters(), lr=1e-3, weight_decay=1.0, betas=(0.9, 0.98), **(dict(fused=True) if device.type == "cuda" else {}))
    def step():
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=bf16):
            loss = torch.nn.functional.cross_entropy(m(x)[:, -1].float(), y[:, 0])
        opt.zero_grad(set_to_none=True); loss.backward(); opt.step()
    for _ in range(10): step()
    sync(); t = time.perf_counter()
    for _ in range(steps): step()
    sync(); return steps / (time.perf_counter() - t)


def time_population(cfg, X, Y, N, steps, bf16, compile, device, attention="elementwise", prefixes=None, opt_compile=False, compile_mode="default", bf16_residual=False):
    if device.type == "cuda": torch.cuda.empty_cache(); torch.cuda.reset_peak_memory_stats()
    pop = Population(cfg, list(range(N)), attention=attention, residual_dtype=torch.bfloat16 if bf16_residual else None).to(device)
    members = [TrainConfig(seed=i) for i in range(N)]
    opt = PopulationAdamW(list(pop.params), members, compile=opt_compile)
    loss_fn = population_loss_fn(pop, 1, bf16, (compile_mode if compile_mode != "default" else True) if compile else False, prefixes)
    xb, yb = X, Y  # one batch for all members, as train_population passes it when they share a split
    lr = opt.lrs(0)
    def step():
        opt.zero_grad()
        loss_fn(xb, yb).backward(); opt.step(lr)
    t0 = time.perf_counter()
    for _ in range(3): step()
    sync(); warm = time.perf_counter() - t0
    t = time.perf_counter()
    for _ in range(steps): step()
    sync(); dt = time.perf_counter() - t
    peak = torch.cuda.max_memory_allocated() if device.type == "cuda" else None
    return dict(N=N, compile=compile, compile_mode=compile_mode if compile else None, attention=attention, shared_prefixes=prefixes is not None, opt_compile=opt_compile, bf16=bf16, bf16_residual=bf16_residual, steps=steps, seconds=dt, warmup_compile_s=round(warm, 1),
                step_ms=1000 * dt / steps, model_steps_per_s=N * steps / dt, peak_memory_gib=None if peak is None else peak / 2**30), (pop, loss_fn, opt, step)


def check_fused(cfg, X, sp, device, N=4):
    "The fused kernel against the elementwise reference, in a population under bf16 autocast: largest differences of logits and gradients."
    out = {}
    pops = {att: Population(cfg, list(range(N)), attention=att).to(device) for att in ("fused", "elementwise")}
    g = torch.Generator().manual_seed(0)
    x_each = torch.stack([X[torch.randperm(len(X), generator=g)[:512].to(X.device)] for _ in range(N)])  # one batch per member
    for name, x, pre in (("shared_prefixes", X[:512], sp.to(device)), ("shared_prefixes_per_member_batches", x_each, sp.to(device)),
                         ("plain", X[:512], None)):
        res = {}
        for att, pop in pops.items():
            with torch.autocast("cuda", dtype=torch.bfloat16):
                logits = pop(x, n_out=1, prefixes=pre).float()
            res[att] = (logits.detach(), torch.autograd.grad(logits.square().mean(), list(pop.params)))
        (la, ga), (lb, gb) = res["fused"], res["elementwise"]
        # attn.b_K has no gradient in exact arithmetic (a key bias adds the same q.b_K to every score of a query): left out
        rel = {k: float((a - b).abs().max() / (b.abs().max() + 1e-12)) for k, a, b in zip(pops["fused"].names, ga, gb) if not k.endswith("attn.b_K")}
        worst = max(rel, key=rel.get)
        out[name] = dict(logits_max_abs_diff=float((la - lb).abs().max()), logits_max_abs=float(lb.abs().max()),
                         grad_max_rel_diff=rel[worst], grad_max_rel_diff_param=worst)
    print("fused check", json.dumps(out), flush=True)
    return out


def profile_step(step, device, n=5, top_k=15):
    from torch.profiler import profile, ProfilerActivity
    acts = [ProfilerActivity.CUDA] if device.type == "cuda" else [ProfilerActivity.CPU]  # kernels only on the GPU
    with profile(activities=acts) as prof:
        for _ in range(n): step()
        sync()
    key = "self_device_time_total" if device.type == "cuda" else "self_cpu_time_total"
    evs = sorted(prof.key_averages(), key=lambda e: getattr(e, key, 0), reverse=True)
    tot = sum(getattr(e, key, 0) for e in evs) or 1
    return [dict(name=e.key[:110], pct=round(100 * getattr(e, key, 0) / tot, 1), us_per_step=round(getattr(e, key, 0) / n, 1), calls=e.count // n) for e in evs[:top_k]] + [dict(name="(all kernels)", us_per_step=round(tot / n, 1))]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="reports/benchmarks/population.json")
    ap.add_argument("--smoke", action="store_true", help="tiny CPU run")
    ap.add_argument("--sizes", default="1,16,64,256")
    ap.add_argument("--grok-models", type=int, default=100)
    ap.add_argument("--steps", type=int, default=20, help="timed steps per configuration")
    ap.add_argument("--sections", default="throughput,grok", help="throughput (all configurations, profile) and/or grok")
    ap.add_argument("--grok-attention", default="auto", help="attention of the grokking runs when the throughput section is not run")
    ap.add_argument("--grok-compile", action="store_true", help="compile the grokking runs when the throughput section is not run")
    ap.add_argument("--time-budget", type=float, default=330.0, help="seconds after which the configurations and grokking runs still to come are skipped")
    ap.add_argument("--grok-schedules", default="lr3e-3_warmup100,reference_lr1e-3", help="which grokking schedules to run, in order")
    ap.add_argument("--plan", default="full", help="full: every configuration; best: only the default configuration at the largest N")
    ap.add_argument("--compile-mode", default="default", help="torch.compile mode of the compiled configurations (e.g. max-autotune-no-cudagraphs)")
    ap.add_argument("--grok-repeats", type=int, default=1, help="run each grokking schedule this many times in one process (the 2nd run finds "
                    "torch.compile's caches warm)")
    a = ap.parse_args()
    t_bench = time.perf_counter()
    device = torch.device("cuda" if torch.cuda.is_available() and not a.smoke else "cpu")
    torch.backends.cuda.matmul.allow_tf32 = True
    if a.smoke:
        task, mc, sizes, steps, gsteps = "add_mod_11", dict(n_layers=1, d_model=32, n_heads=2, d_mlp=64), [1, 4], 5, 200
    else:
        task, mc, sizes, steps, gsteps = "add_mod_97", model_preset("reference"), [int(s) for s in a.sizes.split(",")], a.steps, 4000
    ds = get_task(task).dataset(train_frac=0.5, val_frac=0.5, seed=0)
    cfg = TransformerConfig(vocab_size=ds.vocab_size, n_ctx=ds.seq_len, **mc)
    X, Y = (t.to(device) for t in ds.tensors("train"))
    B, T = X.shape
    out = dict(benchmark="population", task=task, model_config=cfg.to_dict(), batch=B, device=torch.cuda.get_device_name() if device.type == "cuda" else platform.processor() or "cpu",
               torch=torch.__version__, python=platform.python_version(), date=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
               code=code_version(), packages=package_versions(), flops_per_model_step_executed=step_flops(cfg, B, T, 1), flops_per_model_step_nominal=nominal_flops(cfg, B, T))
    print(json.dumps({k: out[k] for k in ("device", "torch", "flops_per_model_step_executed", "flops_per_model_step_nominal")}), flush=True)
    def save():  # after every section, so a run cut short still leaves its figures
        Path(a.out).parent.mkdir(parents=True, exist_ok=True)
        Path(a.out).write_text(json.dumps(out, indent=1, default=str))
    sections = set(a.sections.split(","))
    out["naive_fp32"] = dict(steps_per_s=time_naive(cfg, X, Y, 5 * steps, False, device))
    if device.type == "cuda": out["naive_bf16"] = dict(steps_per_s=time_naive(cfg, X, Y, 5 * steps, True, device))
    print("naive", out["naive_fp32"], out.get("naive_bf16"), flush=True)
    rows, cuda, best = [], device.type == "cuda", None
    Xall = ds.tensors("all")[0]
    sp = shared_prefixes(Xall, ds.vocab_size, 1)
    out["shared_prefixes"] = dict(positions=sp.positions, rows=sp.rows) if sp else None
    spd = sp.to(device) if sp else None
    out["flops_per_model_step_executed_shared"] = step_flops(cfg, B, T, 1, sp.positions, sp.rows) if sp else None
    top = max(sizes)
    # (N, compile, attention, shared prefixes, compiled optimizer, bf16 residual): the default at every N, then the variants
    # at the largest
    best_att = "fused" if cuda else "elementwise"
    plan = [(N, cuda, best_att, True, cuda, False) for N in sizes]
    plan += [(top, cuda, "elementwise", True, cuda, False), (top, cuda, best_att, False, cuda, False), (top, cuda, "elementwise", False, cuda, False)]
    if cuda: plan += [(top, True, "fused", True, False, False), (top, True, "fused", True, True, True),
                      (top, False, "elementwise", True, False, False), (top, False, "sdpa", True, False, False)]
    if a.plan == "best": plan = [(top, cuda, best_att, True, cuda, False)]
    if cuda and "throughput" in sections:
        try: out["fused_check"] = check_fused(cfg, X, sp, device)
        except Exception as e: out["fused_check"] = dict(error=repr(e)[:500]); print("fused check failed", repr(e)[:500], flush=True)
    for N, compile, att, shared, opt_compile, bf16_res in (plan if "throughput" in sections else []):
        if time.perf_counter() - t_bench > a.time_budget:
            rows.append(dict(N=N, compile=compile, attention=att, shared_prefixes=shared, skipped="time budget")); continue
        try:
            r, (_, _, _, step) = time_population(cfg, X, Y, N, steps, cuda, compile, device, att, spd if shared else None, opt_compile, a.compile_mode, bf16_res)
            fl = out["flops_per_model_step_executed_shared" if shared and sp else "flops_per_model_step_executed"]
            r["tflops_executed"] = r["model_steps_per_s"] * fl / 1e12
            r["tflops_nominal"] = r["model_steps_per_s"] * out["flops_per_model_step_nominal"] / 1e12
            r["mfu_executed"] = r["tflops_executed"] * 1e12 / H100_BF16_DENSE if cuda else None
            r["mfu_nominal"] = r["tflops_nominal"] * 1e12 / H100_BF16_DENSE if cuda else None
            r["speedup_vs_naive_fp32"] = r["model_steps_per_s"] / out["naive_fp32"]["steps_per_s"]
            if N == top and not bf16_res and (best is None or r["model_steps_per_s"] > best["model_steps_per_s"]):
                best = r  # profile the fastest configuration at the largest N while it is built
                out["profile_config"] = {k: r[k] for k in ("N", "compile", "compile_mode", "attention", "shared_prefixes", "opt_compile")}
                out["profile_top_kernels"] = profile_step(step, device)
            if N == top and compile and att == "fused" and shared and not bf16_res and "profile_fused" not in out:  # the default configuration, always
                out["profile_fused"] = profile_step(step, device, top_k=30)
            del step
        except torch.OutOfMemoryError as e:
            r = dict(N=N, compile=compile, attention=att, shared_prefixes=shared, error=f"OOM: {str(e)[:200]}")
        rows.append(r); print(json.dumps(r), flush=True); out["population"] = rows; save()
        if cuda: torch.cuda.empty_cache()
    best = best or dict(compile=a.grok_compile, attention=a.grok_attention)
    out["best_at_max_N"] = {k: best.get(k) for k in ("N", "compile", "attention", "shared_prefixes", "model_steps_per_s", "peak_memory_gib", "mfu_executed", "mfu_nominal")}
    save()
    # N models to grokking, end to end (evaluation every 50 steps and grokking detection included). First the tuned
    # schedule from bench_grokking (lr 3e-3 after 100 warmup steps), then the reference lr 1e-3, each stopping once
    # every model has been >= 99% on its held-out half at an evaluation (each member latched, and frozen from then on:
    # its lr becomes 0, so the model kept is the one that generalized).
    n = 8 if a.smoke else a.grok_models
    grok_att, grok_compile = best["attention"], bool(best["compile"])
    out["grok_population"] = []
    schedules = {"lr3e-3_warmup100": dict(lr=3e-3, warmup_steps=100), "reference_lr1e-3": dict(lr=1e-3)}
    runs = [(nm, schedules[nm], r) for nm in a.grok_schedules.split(",") for r in range(a.grok_repeats)]
    for name, kw, rep in runs if "grok" in sections else []:
        if time.perf_counter() - t_bench > a.time_budget:
            print("skipped", name, "(time budget)", flush=True); out["grok_population"].append(dict(schedule=name, skipped="time budget")); continue
        members = [TrainConfig(steps=gsteps, eval_every=50, seed=i, split_seed=0, precision="bf16", train_frac=0.5, val_frac=0.5,
                               weight_decay=1.0, betas=(0.9, 0.98), wandb=False, **kw) for i in range(n)]
        t = time.perf_counter()
        res = train_population(ds, mc, members, stop_when_all_generalized=True, freeze_generalized=True, compile=grok_compile and cuda, attention=grok_att)
        wall = time.perf_counter() - t
        stg = sorted(s for s in res.steps_to_grok if s is not None)
        steady = (res.seconds - (res.first_step_s or 0) - res.eval_s)
        g = dict(schedule=name, repeat=rep, models=n, attention=grok_att, shared_prefix_positions=res.shared_prefix_positions, compile=grok_compile and cuda, grokked=len(stg), wall_s=round(wall, 1), train_loop_s=round(res.seconds, 1),
                 first_step_s=round(res.first_step_s or 0, 2), eval_s=round(res.eval_s, 2), other_steps_s=round(steady, 2),
                 model_steps_per_s_steady=round(n * max(res.steps_done - 1, 0) / max(steady, 1e-9), 1),
                 steps_run=res.steps_done, median_steps_to_grok=float(stg[len(stg) // 2]) if stg else None, max_steps_to_grok=max(stg) if stg else None,
                 model_steps_per_s_with_eval=round(res.model_steps_per_s, 1), final_val_acc_min=float(res.summary().final_val_acc.min()),
                 final_val_acc_median=float(res.summary().final_val_acc.median()),
                 peak_memory_gib=None if res.peak_memory_bytes is None else res.peak_memory_bytes / 2**30)
        out["grok_population"].append(g); print("grok", json.dumps(g), flush=True); save()
        del res
        if cuda: torch.cuda.empty_cache()
    save(); print("wrote", a.out)


if __name__ == "__main__":
    main()

"""Tune the fused short-attention kernels' launch (examples per program, warps per program) on the GPU, on the reference
configuration's two layer shapes (add_mod_97, N = 256 models, 4,704 examples, 4 heads of 32; layer 0 with 2 query
positions, the last layer with 1), then time the full population step at N = 256 with the best launch against the
same step with compiled elementwise attention, in one process. Writes reports/benchmarks/rows_attention_tuning.json.

    PYTHONPATH=.:experiments python experiments/tune_rows_attention.py
"""
import argparse, datetime, json, platform, time
from pathlib import Path
import torch
from algocircuits.model import model_preset
from algocircuits import sweep
from algocircuits.tasks import get_task
from algocircuits.model import TransformerConfig
from algocircuits.train import code_version, package_versions
from bench_population import time_population, profile_step


def gpu_ms(fn, reps=20):
    for _ in range(3): fn()
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    torch.cuda.synchronize(); start.record()
    for _ in range(reps): fn()
    end.record(); torch.cuda.synchronize()
    return start.elapsed_time(end) / reps


def layer_inputs(N, B, H, D, S, TE, TQ, last, dev):
    HD, bf = H * D, torch.bfloat16
    kv_sh = torch.randn(N, S * B, 2 * HD, device=dev, dtype=bf)
    if last:   # the last layer: queries from their own matmul, keys/values from a [rows, 2*H*D] projection
        q = torch.randn(N, TQ * B, HD, device=dev, dtype=bf); kv_own = torch.randn(N, TE * B, 2 * HD, device=dev, dtype=bf)
    else:      # below it: queries, keys and values are column slices of one [rows, 3*H*D] projection
        qkv = torch.randn(N, TE * B, 3 * HD, device=dev, dtype=bf); q, kv_own = qkv[..., :HD], qkv[..., HD:]
    return q, kv_sh, kv_own


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="reports/benchmarks/rows_attention_tuning.json")
    ap.add_argument("--blocks", default="16,32,64,128")
    ap.add_argument("--warps", default="2,4,8")
    ap.add_argument("--step-steps", type=int, default=30)
    a = ap.parse_args()
    dev = torch.device("cuda")
    N, B, H, D, S, TE = 256, 4704, 4, 32, 2, 2
    shapes = {"layer0": (2, False), "last_layer": (1, True)}
    inputs = {k: layer_inputs(N, B, H, D, S, TE, tq, last, dev) for k, (tq, last) in shapes.items()}
    out = dict(benchmark="rows_attention_tuning", device=torch.cuda.get_device_name(), torch=torch.__version__,
               python=platform.python_version(), date=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
               code=code_version(), packages=package_versions(), shape=dict(N=N, B=B, H=H, D=D, S=S, TE=TE), launches=[])
    for blk in map(int, a.blocks.split(",")):
        for w in map(int, a.warps.split(",")):
            cfg = dict(BLOCK=blk, num_warps=w); sweep.ROWS_ATTENTION_LAUNCH.update(fwd=cfg, bwd=cfg)
            row = dict(BLOCK=blk, num_warps=w)
            try:
                for name, (q, kv_sh, kv_own) in inputs.items():
                    z, lse = sweep.rows_attention_fwd(q, kv_sh, kv_own, B, H); dz = torch.randn_like(z)
                    row[f"{name}_fwd_ms"] = round(gpu_ms(lambda: sweep.rows_attention_fwd(q, kv_sh, kv_own, B, H)), 4)
                    row[f"{name}_bwd_ms"] = round(gpu_ms(lambda: sweep.rows_attention_bwd(q, kv_sh, kv_own, z, lse, dz, B, H)), 4)
            except Exception as e: row["error"] = repr(e)[:300]
            print(json.dumps(row), flush=True); out["launches"].append(row)
    ok = [r for r in out["launches"] if "error" not in r]
    best = {k: min(ok, key=lambda r: sum(r[f"{s}_{k}_ms"] for s in shapes)) for k in ("fwd", "bwd")}
    out["best"] = {k: dict(BLOCK=r["BLOCK"], num_warps=r["num_warps"], ms_per_step=round(sum(r[f"{s}_{k}_ms"] for s in shapes), 3)) for k, r in best.items()}
    base = next((r for r in ok if r["BLOCK"] == 32 and r["num_warps"] == 8), None)
    if base: out["launch_32x8_ms_per_step"] = {k: round(sum(base[f"{s}_{k}_ms"] for s in shapes), 3) for k in ("fwd", "bwd")}
    print("best", json.dumps(out["best"]), flush=True)
    sweep.ROWS_ATTENTION_LAUNCH.update(fwd={k: out["best"]["fwd"][k] for k in ("BLOCK", "num_warps")},
                                       bwd={k: out["best"]["bwd"][k] for k in ("BLOCK", "num_warps")})
    Path(a.out).parent.mkdir(parents=True, exist_ok=True); Path(a.out).write_text(json.dumps(out, indent=1, default=str))
    # the whole step at N = 256 with the tuned launch, and with compiled elementwise attention, side by side
    ds = get_task("add_mod_97").dataset(train_frac=0.5, val_frac=0.5, seed=0)
    cfg = TransformerConfig(vocab_size=ds.vocab_size, n_ctx=ds.seq_len, **model_preset("reference"))
    X, Y = (t.to(dev) for t in ds.tensors("train"))
    sp = sweep.shared_prefixes(ds.tensors("all")[0], ds.vocab_size, 1).to(dev)
    out["step"] = []
    for att in ("fused", "elementwise"):
        r, (_, _, _, step) = time_population(cfg, X, Y, N, a.step_steps, True, True, dev, att, sp, True)
        if att == "fused": out["profile_fused"] = profile_step(step, dev, top_k=12)
        print(json.dumps(r), flush=True); out["step"].append(r); del step; torch.cuda.empty_cache()
        Path(a.out).write_text(json.dumps(out, indent=1, default=str))
    print("wrote", a.out)


if __name__ == "__main__":
    main()

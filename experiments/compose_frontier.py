"""The complexity frontier of composition: for composed modular tasks of growing depth
    depth 1: x0 + x1,  depth 2: (x0 + x1) * x2,  depth 3: ((x0 + x1) * x2) + x3,  ... (mod p)
compare (i) one model of the base size (the size of each module) trained directly on the composed task, and (ii) the
composed task circuits of add_mod_p and mul_mod_p (trained once, their task circuits found and cataloged, run as circuits). The single model
gets a budget of examples processed of `--budget-mult` times what training both modules took.

    PYTHONPATH=. python experiments/compose_frontier.py                 # CPU, ~5 minutes
    PYTHONPATH=. python experiments/compose_frontier.py --smoke         # seconds

Writes reports/benchmarks/compose_frontier.json and reports/figures/compose_frontier.png.
"""
import argparse, datetime, json, os, platform, tempfile, time
from pathlib import Path
import numpy as np, torch, torch.nn.functional as F

os.environ.setdefault("WANDB_MODE", "disabled")
from algocircuits.model import model_preset
from algocircuits.tasks import get_task
from algocircuits.model import Transformer, TransformerConfig
from algocircuits.train import train, TrainConfig, code_version, package_versions
from algocircuits.transcoders import train_transcoders, TranscoderConfig, transcoder_metrics, save_transcoders
from algocircuits.circuits import extract_circuits, save_circuits
from algocircuits.catalog import Catalog
from algocircuits.compose import Module, Program

MC = model_preset("cpu-small")


def reference(xs, p):
    "The composed task: ops alternate +, *, +, ... left to right."
    v = xs[:, 0].copy()
    for i in range(1, xs.shape[1]): v = (v + xs[:, i]) % p if i % 2 == 1 else (v * xs[:, i]) % p
    return v


def program_source(depth):
    args = ", ".join(f"x{i}" for i in range(depth + 1))
    lines, cur = [f"def main({args}):"], "x0"
    for i in range(1, depth + 1):
        lines.append(f"    v{i} = {'add' if i % 2 == 1 else 'mul'}({cur}, x{i})"); cur = f"v{i}"
    return "\n".join(lines + [f"    return {cur}\n"])


def build_modules(p, tmp, steps):
    cat, ids, cost = Catalog(Path(tmp) / "catalog.db"), {}, 0
    for op in ("add", "mul"):
        ds = get_task(f"{op}_mod_{p}").dataset(train_frac=0.5, val_frac=0.5, seed=0)
        res = train(ds, MC, TrainConfig(steps=steps, lr=3e-3, warmup_steps=50, weight_decay=1.0, eval_every=50, early_stop_acc=1.0,
                                        early_stop_patience=2, wandb=False, deterministic=True), run_dir=Path(tmp) / op / "run")
        cost += res.steps * len(ds.tensors("train")[0])
        tc = train_transcoders(res.model, ds, TranscoderConfig(steps=1500, d_transcoder=256, seed=0))
        save_transcoders(tc, Path(tmp) / op / "transcoders")
        ext = extract_circuits(res.model, tc, ds, n_prompts=8, node_threshold=0.99, target=0.9, n_calib=384, n_held=384)
        save_circuits(ext, Path(tmp) / op)
        (Path(tmp) / op / "summary.json").write_text(json.dumps(dict(training=dict(steps=res.steps), circuits=ext["summary"]), default=float))
        cat.add_extraction(Path(tmp) / op)
        ids[op] = cat.task_circuit(f"{op}_mod_{p}")["circuit_id"]   # the task circuit (the granularity more faithful held out)
        print(f"{op}_mod_{p}: val acc {float(res.final['val_acc']):.3f} after {res.steps} steps", flush=True)
    mods = {op: Module.from_catalog(cat, cid, name=op) for op, cid in ids.items()}
    sizes = {op: dict(circuit=cid, granularity=m.runner.circuit.granularity, size=m.size, n_total=m.runner.circuit.n_total,
                      share=m.runner.circuit.share, held_out=m.runner.circuit.held_out) for (op, cid), m in zip(ids.items(), mods.values())}
    return mods, cost, ids, sizes


def train_single(depth, p, vocab, budget_examples, batch, n_train, n_test, seed=0, lr=3e-3):
    "One base-size model trained on the composed task (sampled inputs), for a budget of examples processed."
    rng = np.random.default_rng(seed)
    n_all = p ** (depth + 1)
    n_train = min(n_train, n_all // 2); n_test = min(n_test, n_all - n_train)
    if n_all <= 30_000_000: codes = rng.choice(n_all, n_train + n_test, replace=False)   # disjoint train / held-out inputs
    else:
        codes = np.unique(rng.integers(0, n_all, 2 * (n_train + n_test)))[:n_train + n_test]; rng.shuffle(codes)
    digits = lambda c: np.stack([(c // p ** i) % p for i in range(depth + 1)], 1)
    Xtr, Xte = digits(codes[:n_train]), digits(codes[n_train:])
    enc = lambda X: torch.tensor([[vocab.index("<bos>")] + [vocab.index(str(v)) for v in r] + [vocab.index("=")] for r in X])
    xtr, ytr = enc(Xtr), torch.tensor([vocab.index(str(v)) for v in reference(Xtr, p)])
    xte, yte = enc(Xte), torch.tensor([vocab.index(str(v)) for v in reference(Xte, p)])
    torch.manual_seed(seed)
    m = Transformer(TransformerConfig(vocab_size=len(vocab), n_ctx=depth + 3, **MC))
    opt = torch.optim.AdamW(m.parameters(), lr=lr, weight_decay=1.0, betas=(0.9, 0.98))
    steps = max(1, budget_examples // batch); t = time.time()
    for s in range(steps):
        i = torch.randint(0, len(xtr), (batch,))
        loss = F.cross_entropy(m(xtr[i])[:, -1], ytr[i]); opt.zero_grad(); loss.backward(); opt.step()
    with torch.no_grad():
        acc = lambda x, y: float((m(x)[:, -1].argmax(-1) == y).float().mean())
        return dict(steps=steps, batch=batch, train_examples=len(xtr), test_examples=len(xte), train_acc=acc(xtr[:10000], ytr[:10000]),
                    test_acc=acc(xte, yte), wall_s=round(time.time() - t, 1))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--p", type=int, default=31)
    ap.add_argument("--depths", default="1,2,3,4")
    ap.add_argument("--budget-mult", type=float, default=3.0, help="single model's examples processed / the two modules' training")
    ap.add_argument("--n-test", type=int, default=10000)
    ap.add_argument("--smoke", action="store_true"); ap.add_argument("--figure", default=None, help="PNG to write (default reports/figures/compose_frontier[_smoke].png)")
    ap.add_argument("--out", default="reports/benchmarks/compose_frontier.json")
    a = ap.parse_args()
    p, depths = (11, [1, 2]) if a.smoke else (a.p, [int(d) for d in a.depths.split(",")])
    torch.use_deterministic_algorithms(True, warn_only=True)
    with tempfile.TemporaryDirectory() as tmp:
        mods, cost, ids, sizes = build_modules(p, tmp, 200 if a.smoke else 3000)
        vocab = list(mods["add"].ds.vocab.tokens)
        rows = []
        for d in depths:
            rng = np.random.default_rng(1)
            X = rng.integers(0, p, (a.n_test, d + 1))   # the composed circuits saw none of these tasks: any input is held out
            res = Program(program_source(d), mods).run([tuple(map(str, r)) for r in X])
            comp = float(np.mean([o == str(v) for o, v in zip(res.outputs, reference(X, p))]))
            single = train_single(d, p, vocab, int(a.budget_mult * cost), 512, 100_000, a.n_test)
            rows.append(dict(depth=d, composed_acc=comp, single_model=single, chance=1 / p))
            print(json.dumps(rows[-1]), flush=True)
    out = dict(benchmark="compose_frontier", p=p, model=MC, module_training_examples=cost, budget_mult=a.budget_mult, circuits=ids, circuit_sizes=sizes, rows=rows,
               device=platform.processor() or "cpu", torch=torch.__version__, code=code_version(), packages=package_versions(),
               date=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"))
    Path(a.out).parent.mkdir(parents=True, exist_ok=True); Path(a.out).write_text(json.dumps(out, indent=1, default=str))
    import matplotlib; matplotlib.use("Agg"); import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(5, 3.2))
    ax.plot([r["depth"] for r in rows], [r["composed_acc"] for r in rows], "o-", label="composed circuits (add, mul)")
    ax.plot([r["depth"] for r in rows], [r["single_model"]["test_acc"] for r in rows], "s-", label=f"one base-size model, {a.budget_mult:g}x compute")
    ax.axhline(1 / p, color="gray", ls=":", label="chance"); ax.set_xlabel("depth (operations)"); ax.set_ylabel("held-out accuracy")
    ax.set_title(f"composition frontier, mod {p}", fontsize=10); ax.legend(fontsize=7); ax.set_ylim(-0.02, 1.02)
    fig_path = Path(a.figure or ("reports/figures/compose_frontier_smoke.png" if a.smoke else "reports/figures/compose_frontier.png"))
    fig_path.parent.mkdir(parents=True, exist_ok=True); fig.savefig(fig_path, dpi=100, bbox_inches="tight")
    print("wrote", a.out, fig_path)


if __name__ == "__main__":
    main()

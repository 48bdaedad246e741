"""Compile RASP programs with tracr and export what the project needs to study them without jax.

Runs in its own virtual environment, because tracr pins jax and dm-haiku:

    python3 -m venv /tmp/tracr && /tmp/tracr/bin/pip install tracr-pypi==1.0.0 safetensors
    /tmp/tracr/bin/python experiments/tracr_export.py            # writes reports/tracr/<program>.{safetensors,json}

Per program: the compiled weights (safetensors, tracr's parameter names), the model's shape, the residual basis labels,
the input and output encodings, which heads and MLPs the program uses and which residual directions each of them reads
and writes (the ground-truth circuit: nodes, and edges wherever a writer's directions meet a reader's), and sample
inputs with the compiled model's final residual stream and decoded outputs (for the conversion check).
`algocircuits.circuits.load_tracr` reads these into a TransformerLens HookedTransformer.
"""
import argparse, json, datetime, platform, random
from pathlib import Path
import numpy as np
from safetensors.numpy import save_file
from tracr.compiler import compiling, lib
from tracr.rasp import rasp

def programs():
    "name -> (RASP program, vocabulary, max_seq_len, whether sampled inputs hold distinct tokens)"
    return {
        "length": (lib.make_length(), ["a", "b", "c"], 5, False),
        "reverse": (lib.make_reverse(rasp.tokens), ["a", "b", "c"], 5, False),
        "hist": (lib.make_hist(), ["a", "b", "c"], 5, False),
        "sort": (lib.make_sort(rasp.tokens, rasp.tokens, max_seq_len=5, min_key=1), [1, 2, 3, 4], 5, False),
        "sort_unique": (lib.make_sort_unique(rasp.tokens, rasp.tokens), [1, 2, 3, 4, 5], 5, True),
        "frac_prevs": (lib.make_frac_prevs(rasp.numerical(rasp.Map(lambda t: 1 if t == "x" else 0, rasp.tokens))).named("frac_prevs"),
                       ["x", "y"], 5, False),
        "pair_balance": (lib.make_pair_balance(rasp.tokens, "(", ")"), ["(", ")"], 6, False),
        "sort_freq": (lib.make_sort_freq(max_seq_len=5), ["a", "b", "c"], 5, False),
        "shuffle_dyck": (lib.make_shuffle_dyck(pairs=["()"]), ["(", ")"], 6, False),
    }

def component_io(params, cfg, labels):
    "Per head and MLP: the residual directions it reads (per input: q, k, v / in) and writes; unused components are all-zero."
    nz = lambda a, axis: [labels[i] for i in np.nonzero(np.abs(a).sum(axis=axis) > 1e-9)[0]]
    H, D = cfg["n_heads"], cfg["d_head"]
    out = {}
    for l in range(cfg["n_layers"]):
        a = f"transformer/layer_{l}/attn"
        if f"{a}/query/w" in params:
            q, k, v, o = (params[f"{a}/{n}/w"] for n in ("query", "key", "value", "linear"))
            for h in range(H):
                s = slice(h * D, (h + 1) * D)
                reads = dict(q=nz(q[:, s], 1), k=nz(k[:, s], 1), v=nz(v[:, s], 1))
                writes = nz(o[s, :], 0)
                if writes and any(reads.values()): out[f"L{l}.H{h}"] = dict(kind="head", layer=l, reads=reads, writes=writes)
        m = f"transformer/layer_{l}/mlp"
        if f"{m}/linear_1/w" in params:
            w1, w2 = params[f"{m}/linear_1/w"], params[f"{m}/linear_2/w"]
            reads, writes = nz(w1, 1), nz(w2, 0)
            if reads and writes: out[f"L{l}.MLP"] = dict(kind="mlp", layer=l, reads=dict(in_=reads), writes=writes)
    return out

def ground_truth(io, embed_dirs, output_dirs):
    "Edges (source, target, input): a component (or the embedding) writes a direction that a later component (or the output) reads."
    order = sorted(io, key=lambda n: (io[n]["layer"], 0 if io[n]["kind"] == "head" else 1))
    edges = []
    for t in order:
        for inp, dirs in io[t]["reads"].items():
            dirs = set(dirs)
            if dirs & embed_dirs: edges.append(("embed", t, inp))
            for s in order:
                before = io[s]["layer"] < io[t]["layer"] or (io[s]["layer"] == io[t]["layer"] and io[s]["kind"] == "head" and io[t]["kind"] == "mlp")
                if before and set(io[s]["writes"]) & dirs: edges.append((s, t, inp))
    for s in order:
        if set(io[s]["writes"]) & output_dirs: edges.append((s, "logits", "out"))
    if embed_dirs & output_dirs: edges.append(("embed", "logits", "out"))
    return dict(nodes=order, edges=[list(e) for e in edges])

def export(name, program, vocab, max_seq_len, distinct, out_dir: Path, n_samples: int, seed: int):
    model = compiling.compile_rasp_to_model(program, vocab=set(vocab), max_seq_len=max_seq_len, compiler_bos="BOS")
    params = {f"{mod}/{k}": np.asarray(v, dtype=np.float32) for mod, d in model.params.items() for k, v in d.items()}
    mc = model.model_config
    cfg = dict(n_layers=mc.num_layers, n_heads=mc.num_heads, d_head=mc.key_size, d_mlp=mc.mlp_hidden_size,
               d_model=len(model.residual_labels), n_ctx=max_seq_len + 1, causal=bool(mc.causal), layer_norm=bool(mc.layer_norm))
    labels = list(model.residual_labels)
    enc = dict(model.input_encoder.encoding_map)
    categorical = hasattr(model.output_encoder, "encoding_map")   # CategoricalEncoder (a NumericalEncoder has none)
    out_name = program.label
    output_dirs = [l for l in labels if l.startswith(f"{out_name}:") or l == out_name]
    embed_dirs = {l for l in labels if l.startswith("tokens:") or l.startswith("indices:") or l == "one"}
    io = component_io(params, cfg, labels)
    gt = ground_truth(io, embed_dirs, set(output_dirs))
    rng = random.Random(seed); samples = []
    for _ in range(n_samples):
        n = rng.randint(1, max_seq_len)
        toks = rng.sample(vocab, n) if distinct and n <= len(vocab) else [rng.choice(vocab) for _ in range(n)]
        if distinct and n > len(vocab): toks = rng.sample(vocab, len(vocab))
        res = model.apply(["BOS"] + toks)
        samples.append(dict(tokens=["BOS"] + [str(t) for t in toks], ids=[enc["BOS"]] + [enc[t] for t in toks],
                            residual=np.asarray(res.transformer_output[0]).round(6).tolist(), decoded=[str(d) for d in res.decoded]))
    out_dir.mkdir(parents=True, exist_ok=True)
    save_file(params, str(out_dir / f"{name}.safetensors"))
    meta = dict(name=name, program=out_name, config=cfg, residual_labels=labels, vocab=[str(v) for v in vocab],
                input_encoding={str(k): int(v) for k, v in enc.items()}, categorical_output=bool(categorical),
                output_directions=output_dirs,
                output_decoding={str(i): str(v) for v, i in model.output_encoder.encoding_map.items()} if categorical else None,
                components=io, ground_truth=gt, samples=samples, max_seq_len=max_seq_len, distinct_tokens=distinct,
                tracr="tracr-pypi 1.0.0", python=platform.python_version(), created=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"))
    (out_dir / f"{name}.json").write_text(json.dumps(meta, indent=1))
    print(f"{name}: d_model {cfg['d_model']}, {cfg['n_layers']} layers x {cfg['n_heads']} heads, d_mlp {cfg['d_mlp']}; "
          f"{len(gt['nodes'])} components used, {len(gt['edges'])} edges")

if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", default="reports/tracr"); p.add_argument("--samples", type=int, default=64); p.add_argument("--seed", type=int, default=0)
    p.add_argument("--only", default=None, help="comma-separated program names")
    a = p.parse_args()
    for name, (prog, vocab, L, distinct) in programs().items():
        if a.only and name not in a.only.split(","): continue
        export(name, prog, vocab, L, distinct, Path(a.out), a.samples, a.seed)

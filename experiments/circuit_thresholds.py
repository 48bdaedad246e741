"""Circuit size against faithfulness: re-prune the attribution graphs of finished extractions at several node-influence
thresholds and measure, for each, the circuits' size and their faithfulness under mean ablation (each circuit on its own
prompt) and the circuit-alone accuracy. Reads the output folders of circuit_notebooks/extract_circuit.ipynb (a batch
such as experiments/batch_circuits_cpu.yaml); writes reports/benchmarks/circuit_thresholds.json.

    PYTHONPATH=. python experiments/circuit_thresholds.py reports/batches/batch_circuits_cpu/*/ --prompts 16
"""
import argparse, datetime, json, platform, sys, time
from pathlib import Path
import numpy as np, torch

from algocircuits.train import load_run, code_version, package_versions
from algocircuits.transcoders import load_transcoders
from algocircuits.attribution import replacement_model, attribution_graph, extract_circuit, mean_activations, circuit_faithfulness


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("dirs", nargs="+", help="extraction output folders (each with run/ and transcoders/)")
    ap.add_argument("--thresholds", default="0.8,0.9,0.95,0.99")
    ap.add_argument("--edge-threshold", type=float, default=0.98)
    ap.add_argument("--prompts", type=int, default=16)
    ap.add_argument("--out", default="reports/benchmarks/circuit_thresholds.json")
    a = ap.parse_args()
    torch.set_num_threads(2)
    ths = [float(t) for t in a.thresholds.split(",")]
    rows = []
    for d in map(Path, a.dirs):
        if not (d / "run" / "run.json").exists() or not (d / "transcoders").exists(): print("skip", d); continue
        t0 = time.time()
        model, ds, _ = load_run(d / "run"); model = model.float().eval()
        tc = load_transcoders(d / "transcoders")
        rm = replacement_model(model, tc, ds.vocab)
        xv, yv = ds.tensors("val")
        idx = torch.randperm(len(xv), generator=torch.Generator().manual_seed(0))[:a.prompts]
        means = mean_activations(model, tc, ds.tensors("all")[0])
        graphs = [attribution_graph(rm, xv[i], target=int(yv[i, 0])) for i in idx.tolist()]
        for th in ths:
            cs = [extract_circuit(g, th, a.edge_threshold, ds.vocab) for g in graphs]
            f = circuit_faithfulness(model, tc, xv[idx], yv[idx], cs, means, per_example=True)
            row = dict(task=ds.config["task"], node_threshold=th, edge_threshold=a.edge_threshold, n_prompts=len(cs),
                       features_kept=float(np.mean([c.scores["n_features_kept"] for c in cs])),
                       nodes_kept=float(np.mean([c.scores["n_nodes_kept"] for c in cs])), edges_kept=float(np.mean([c.scores["n_edges_kept"] for c in cs])),
                       active_features=float(np.mean([c.scores["n_features"] for c in cs])),
                       faithfulness=f["faithfulness"], faithfulness_median=float(np.median(f["each"])),
                       circuit_accuracy=f["circuit_accuracy"], model_accuracy=f["model_accuracy"])
            rows.append(row); print(json.dumps({k: round(v, 3) if isinstance(v, float) else v for k, v in row.items()}), flush=True)
        print(f"{d}: {time.time() - t0:.0f}s", flush=True)
    out = dict(benchmark="circuit_thresholds", date=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
               device="cpu", machine=platform.processor() or platform.machine(), python=platform.python_version(), torch=torch.__version__,
               code=code_version(), packages=package_versions(), args=vars(a), rows=rows)
    Path(a.out).parent.mkdir(parents=True, exist_ok=True); Path(a.out).write_text(json.dumps(out, indent=1, default=float))
    print("wrote", a.out)


if __name__ == "__main__":
    main()

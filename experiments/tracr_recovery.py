"""Circuit discovery against known circuits: every program exported by experiments/tracr_export.py (tracr-compiled RASP
programs) is loaded as a HookedTransformer (the conversion checked against the compiled model's outputs), and the
project's edge discovery is scored against the compiled circuit: EAP-IG (fast, one pass per integration step) beside
ACDC (the slow reference, one forward pass per edge), both with zero ablation; node and edge AUROC, ACDC's precision
and recall at its threshold, and run times.

    python experiments/tracr_recovery.py            # CPU, under a minute

Writes reports/benchmarks/tracr_recovery.json.
"""
import argparse, datetime, json, platform
from pathlib import Path
import torch
from algocircuits.circuits import load_tracr, tracr_recovery
from algocircuits.train import code_version, package_versions

def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dir", default="reports/tracr"); ap.add_argument("--n", type=int, default=256); ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="reports/benchmarks/tracr_recovery.json")
    a = ap.parse_args()
    torch.set_num_threads(2)
    rows = []
    for f in sorted(Path(a.dir).glob("*.json")):
        tm = load_tracr(f)
        for ablation in ("zero", "resample"):
            r = tracr_recovery(tm, n=a.n, seed=a.seed, ablation=ablation); rows.append(r)
            print(f"{r['program']:13s} {ablation:8s} EAP-IG edge {r['eap_ig']['edge_auroc']:.3f} node {r['eap_ig']['node_auroc']:.3f} ({r['eap_ig']['seconds']:.2f}s) | "
                  f"ACDC edge {r['acdc']['edge_auroc']:.3f} node {r['acdc']['node_auroc']:.3f} ({r['acdc']['seconds']:.2f}s), kept {r['acdc']['kept']} "
                  f"precision {r['acdc']['precision']:.2f} recall {r['acdc']['recall']:.2f}", flush=True)
    zero = [r for r in rows if r["ablation"] == "zero"]
    ok = lambda r, m: r[m]["edge_auroc"] >= 0.9 and (r[m]["node_auroc"] != r[m]["node_auroc"] or r[m]["node_auroc"] >= 0.95)
    table = [dict(program=r["program"], edges=r["n_edges"], true_edges=r["n_true_edges"], nodes=r["n_nodes"], true_nodes=r["n_true_nodes"],
                  eap_ig_edge_auroc=r["eap_ig"]["edge_auroc"], eap_ig_node_auroc=r["eap_ig"]["node_auroc"], eap_ig_seconds=r["eap_ig"]["seconds"],
                  acdc_edge_auroc=r["acdc"]["edge_auroc"], acdc_node_auroc=r["acdc"]["node_auroc"], acdc_seconds=r["acdc"]["seconds"],
                  acdc_precision=r["acdc"]["precision"], acdc_recall=r["acdc"]["recall"], conversion_max_residual_diff=r["conversion"]["max_residual_diff"],
                  conversion_decoded_equal=r["conversion"]["decoded_equal"]) for r in zero]
    out = dict(benchmark="tracr_recovery", ablation_main="zero", n_inputs=a.n, table=table, runs=rows,
               programs_meeting_target=dict(eap_ig=[r["program"] for r in zero if ok(r, "eap_ig")], acdc=[r["program"] for r in zero if ok(r, "acdc")]),
               note="node AUROC is undefined (NaN) where every component of the compiled model is in the circuit (length, hist)",
               device=platform.processor() or "cpu", torch=torch.__version__, code=code_version(), packages=package_versions(),
               date=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"))
    Path(a.out).parent.mkdir(parents=True, exist_ok=True); Path(a.out).write_text(json.dumps(out, indent=1, default=float))
    print("targets met (edge AUROC >= 0.9, node AUROC >= 0.95):", out["programs_meeting_target"]); print("wrote", a.out)

if __name__ == "__main__":
    main()

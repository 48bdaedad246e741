#!/usr/bin/env python
"""Check the built docs site (_docs/, from `bash scripts/build_docs.sh`) in headless Chromium, as a reader sees it.

Serves _docs/ with `python -m http.server` on a free loopback port, loads pages with the project's own headless
Chromium helpers (`algocircuits.viz.render_dom` / `screenshot`), and asserts that each page shows its title, its
heading, the names it must document, and most of its module's exported functions and classes (callables in `__all__`). Writes screenshots to
reports/figures/docs_<page>.png. Exits non-zero with a message naming every failure.

    python scripts/check_docs.py            # check and take screenshots
    python scripts/check_docs.py --no-shots # check only
"""
import argparse, html, importlib, re, socket, subprocess, sys, time, urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOCS, FIGS = ROOT / "_docs", ROOT / "reports" / "figures"

# page -> (module whose __all__ it documents, title text, names that must appear, screenshot?)
PAGES = {
    "index":       (None, "algocircuits", ["Set-up and the two commands", "scripts/main.sh"], True),
    "model":       ("algocircuits.model", "Model", ["TransformerConfig", "Transformer", "from_hooked_transformer"], True),
    "train":       ("algocircuits.train", "Training", ["TrainConfig", "train"], True),
    "sweep":       ("algocircuits.sweep", "Population training", ["train_population"], False),
    "attribution": ("algocircuits.attribution", "Attribution graphs and circuits", [], True),
    "reports/index": (None, "Executed notebook reports", ["arc_eval_report.ipynb", "broken_task.ipynb"], False),
    "reports/blog__circuits_over_time": (None, "When does a grokking circuit form", ["The circuit forms as validation accuracy rises", "What this does not show"], True),
}
MIN_API_FRACTION = 0.9   # share of a module's public __all__ names that must appear on its page


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0)); return s.getsockname()[1]


def text_of(dom):
    dom = re.sub(r"<(script|style)\b.*?</\1>", " ", dom, flags=re.S | re.I)
    return html.unescape(re.sub(r"<[^>]+>", " ", dom))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--no-shots", action="store_true", help="skip the screenshots")
    ap.add_argument("--wait-ms", type=int, default=3000, help="Chromium virtual-time budget per page")
    a = ap.parse_args()
    if not (DOCS / "index.html").is_file():
        sys.exit(f"check_docs: {DOCS}/index.html is missing: run `bash scripts/build_docs.sh` first")
    from algocircuits.viz import render_dom, screenshot, chromium_path
    print("chromium:", chromium_path())

    port = free_port()
    srv = subprocess.Popen([sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1", "--directory", str(DOCS)],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    failures = []
    try:
        for _ in range(100):
            try: urllib.request.urlopen(base + "/index.html", timeout=1); break
            except OSError: time.sleep(0.1)
        else: sys.exit("check_docs: the http.server serving _docs/ did not come up")
        for page, (mod, title, must, shot) in PAGES.items():
            url = f"{base}/{page}.html"
            t = time.time()
            dom = render_dom(url, wait_ms=a.wait_ms)
            txt = text_of(dom)
            fails = []
            m = re.search(r"<title>(.*?)</title>", dom, re.S)
            if not m or title.lower() not in html.unescape(m.group(1)).lower(): fails.append(f"<title> {m and m.group(1)!r} lacks {title!r}")
            h1 = [text_of(h).strip() for h in re.findall(r"<h1\b.*?</h1>", dom, re.S)]
            if not any(title in h for h in h1): fails.append(f"no <h1> with {title!r} (h1s: {h1[:3]})")
            fails += [f"{n!r} not on the page" for n in must if n not in txt]
            api = ""
            if mod:
                m_ = importlib.import_module(mod)   # nbdev documents functions and classes, not constants
                names = [n for n in m_.__all__ if not n.startswith("_") and callable(getattr(m_, n, None))]
                missing = [n for n in names if not re.search(rf"\b{re.escape(n)}\b", txt)]
                api = f", {len(names) - len(missing)}/{len(names)} of {mod}.__all__ shown"
                if names and (len(names) - len(missing)) / len(names) < MIN_API_FRACTION:
                    fails.append(f"only {len(names) - len(missing)}/{len(names)} exported names of {mod} documented; missing {missing[:10]}")
            if "Traceback (most recent call last)" in txt: fails.append("page shows a Python traceback")
            png = ""
            if shot and not a.no_shots:
                out = FIGS / f"docs_{page.replace('/', '_')}.png"
                FIGS.mkdir(parents=True, exist_ok=True)
                screenshot(url, out, size=(1280, 900), wait_ms=a.wait_ms)
                png = f", screenshot {out.relative_to(ROOT)} ({out.stat().st_size // 1024} kB)"
            status = "ok" if not fails else "FAIL"
            print(f"{status:4} {page}.html: {len(txt) // 1000} k chars of text{api}{png} ({time.time() - t:.1f}s)")
            for f in fails: print(f"       - {f}")
            failures += [f"{page}.html: {f}" for f in fails]
    finally:
        srv.terminate(); srv.wait(10)
    if failures:
        sys.exit(f"check_docs: {len(failures)} failure(s):\n  " + "\n  ".join(failures))
    print(f"check_docs: {len(PAGES)} pages ok")


if __name__ == "__main__":
    main()

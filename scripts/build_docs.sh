#!/usr/bin/env bash
# Build the docs site from nbs/ into _docs/ (git-ignored), and the executed notebooks under reports/ into
# reports/html/ (one page each, plus reports/html/index.html). One command, idempotent, offline.
#
#   bash scripts/build_docs.sh              # docs + report pages
#   bash scripts/build_docs.sh --docs       # docs only
#   bash scripts/build_docs.sh --reports    # report pages only
#   bash scripts/build_docs.sh --force      # re-process every notebook (ignore the _proc/ cache)
#
# Docs engine: Quarto, as nbdev_docs uses it, when a `quarto` executable can be had. nbdev's own installer
# (`nbdev_install_quarto`) and the PyPI package quarto-cli both download Quarto's release tarball from GitHub,
# which an offline machine cannot reach; the script still tries `pip install quarto-cli` once per run
# (a few seconds) unless QUARTO_PIP=0. Without Quarto it renders the same nbdev-processed notebooks
# (_proc/, with the show_doc API sections) to HTML with nbconvert, with a sidebar in sidebar.yml's order.
# DOCS_ENGINE=quarto|nbconvert forces one engine; DOCS_WORKERS (default 2) notebooks are processed at once.
set -euo pipefail
cd "$(dirname "$0")/.."

do_docs=1; do_reports=1; force=0
for a in "$@"; do
  case "$a" in
    --docs) do_reports=0 ;;
    --reports) do_docs=0 ;;
    --force) force=1 ;;
    -h|--help) sed -n 2,15p "$0"; exit 0 ;;
    *) echo "build_docs.sh: unknown argument $a" >&2; exit 2 ;;
  esac
done

export MPLBACKEND=Agg WANDB_MODE=offline
helper="$(mktemp -d)/algocircuits_docs.py"
trap 'rm -rf "$(dirname "$helper")"' EXIT

find_quarto() {
  command -v quarto 2>/dev/null && return 0
  local d; d="$(python -c 'import sysconfig; print(sysconfig.get_path("scripts"))')"
  [ -x "$d/quarto" ] && { echo "$d/quarto"; return 0; }
  return 1
}

cat > "$helper" <<'PY'
"""Docs and report-page builder for scripts/build_docs.sh (written out by it; not part of the package)."""
import ast, html, json, os, re, subprocess, sys, time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path.cwd()

# ---------------------------------------------------------------- nbdev processing (nbs/ -> _proc/)
def proc_one(src, dst):
    """Run nbdev's docs processors on one notebook (the ones nbdev_docs runs), with one change: the
    show_doc execution step runs only what the API docs need (exported cells, import-only cells, show_doc
    cells), never test cells, cells flagged with tst_flags (slow/gpu) or cells mixing imports with code."""
    os.environ["IN_TEST"] = "1"
    from execnb.nbio import read_nb, write_nb
    from nbdev.config import get_config
    from nbdev.process import NBProcessor
    from nbdev.processors import FilterDefaults, exec_show_docs, _show_docs
    flags = set(get_config().get("tst_flags", "").split())
    skipped, failed = [], []

    def wanted(cell):
        if cell.cell_type != "code" or not cell.source or "nbdev_export" + "()" in cell.source: return False
        if (cell.metadata or {}).get("language", "python") != "python": return False
        d = cell.directives_
        if d.get("eval:", [""])[0].lower() == "false" or d.keys() & flags: return False
        if d.keys() & {"export", "exports", "exporti", "exec_doc"}: return True
        try: trees = cell.parsed_()
        except Exception: return False
        if not trees: return False
        if all(isinstance(t, (ast.Import, ast.ImportFrom)) for t in trees): return True
        if len(_show_docs(trees)) == len(trees): return True
        if any(isinstance(t, (ast.Import, ast.ImportFrom)) for t in trees): skipped.append(cell.idx_)
        return False

    class exec_docs_only(exec_show_docs):
        def __call__(self, cell):
            if not self.nb.has_docs_ or not hasattr(self, "k") or not wanted(cell): return
            self.k.cell(cell)
            if self.k.exc:
                failed.append((cell.idx_, repr(self.k.exc)[:200])); self.k.exc = None

    procs = [exec_docs_only if p is exec_show_docs else p for p in FilterDefaults().procs()]
    nb = read_nb(src)
    cwd = os.getcwd(); os.chdir(Path(src).parent)
    try: NBProcessor(nb=nb, procs=procs).process()
    finally: os.chdir(cwd)
    write_nb(nb, dst)
    print(json.dumps(dict(nb=Path(src).name, skipped_mixed_import_cells=skipped, failed=failed)))


def proc_all(force, workers):
    from nbdev.quarto import refresh_quarto_yml, nbdev_sidebar
    refresh_quarto_yml()                      # nbs/_quarto.yml if missing, nbs/nbdev.yml from settings.ini
    nbdev_sidebar.__wrapped__()               # nbs/sidebar.yml (custom_sidebar = False)
    nbs, cache = ROOT / "nbs", ROOT / "_proc"
    cache.mkdir(exist_ok=True)
    for f in ("_quarto.yml", "nbdev.yml", "sidebar.yml", "styles.css"):
        if (nbs / f).exists(): (cache / f).write_bytes((nbs / f).read_bytes())
    me = Path(__file__)
    todo = []
    for src in sorted(nbs.glob("*.ipynb")):
        dst = cache / src.name
        newest = max(src.stat().st_mtime, (ROOT / "settings.ini").stat().st_mtime)
        if force or not dst.exists() or dst.stat().st_mtime < newest: todo.append((src, dst))
    for stale in set(p.name for p in cache.glob("*.ipynb")) - set(p.name for p in nbs.glob("*.ipynb")):
        (cache / stale).unlink()
    print(f"nbdev processing: {len(todo)} of {len(list(nbs.glob('*.ipynb')))} notebooks changed since the last build")
    problems = []
    def run(pair):
        src, dst = pair
        t = time.time()
        r = subprocess.run([sys.executable, str(me), "proc-one", str(src), str(dst)], capture_output=True, text=True)
        line = (r.stdout.strip().splitlines() or ["{}"])[-1]
        if r.returncode != 0:
            if dst.exists(): dst.unlink()
            return src.name, time.time() - t, None, r.stderr[-2000:]
        return src.name, time.time() - t, json.loads(line), ""
    with ThreadPoolExecutor(workers) as ex:
        for name, dt, info, err in ex.map(run, todo):
            if info is None:
                print(f"  {name}: FAILED ({dt:.0f}s)\n{err}"); problems.append(name); continue
            msg = f"  {name}: {dt:.0f}s"
            if info["failed"]: msg += f"; {len(info['failed'])} API-doc cell(s) raised: {info['failed']}"
            if info["skipped_mixed_import_cells"]:
                msg += f"; not run (imports mixed with test code): cells {info['skipped_mixed_import_cells']}"
            print(msg)
    if problems: sys.exit(f"nbdev processing failed for {problems}")


# ---------------------------------------------------------------- nbconvert rendering
def _exporter(prompts=True):
    from nbconvert import HTMLExporter
    from traitlets.config import Config
    c = Config()
    c.TagRemovePreprocessor.enabled = True
    c.TagRemovePreprocessor.remove_input_tags = ("remove_input",)
    c.TagRemovePreprocessor.remove_cell_tags = ("remove_cell",)
    c.TagRemovePreprocessor.remove_all_outputs_tags = ("remove_output",)
    c.HTMLExporter.exclude_input_prompt = c.HTMLExporter.exclude_output_prompt = not prompts
    e = HTMLExporter(config=c, template_name="lab")
    return e

def _frontmatter(nb):
    import yaml
    c = nb.cells[0] if nb.cells else None
    if c is not None and c.cell_type == "raw" and c.source.lstrip().startswith("---"):
        body = c.source.strip().strip("-").strip()
        try: fm = yaml.safe_load(body) or {}
        except Exception: fm = {}
        nb.cells.pop(0)
        return fm
    return {}

_ATTR = re.compile(r'\{(?:target|style|\.|#)[^{}\n]*\}')
def _clean_md(s, site):
    s = _ATTR.sub("", s)
    s = re.sub(r"^:::.*$", "", s, flags=re.M)               # Quarto fenced divs (callouts)
    s = s.replace("<!-- WARNING: THIS FILE WAS AUTOGENERATED! DO NOT EDIT! -->", "")
    if site: s = s.replace(site + "/", "")                  # doc links -> relative links within the site
    return s

def _prep_docs_nb(nb, site):
    """Turn Quarto cell options into what nbconvert understands."""
    keep = []
    for c in nb.cells:
        if c.cell_type == "markdown":
            c.source = _clean_md(c.source, site)
            if not c.source.strip(): continue
        elif c.cell_type == "code":
            lines = c.source.splitlines()
            opts = {}
            while lines and lines[0].startswith("#|"):
                k, _, v = lines.pop(0)[2:].partition(":")
                opts[k.strip()] = v.strip()
            c.source = "\n".join(lines)
            tags = set(c.metadata.get("tags", []))
            if opts.get("include") == "false": continue
            if opts.get("echo") == "false": tags.add("remove_input")
            if opts.get("output") == "false": tags.add("remove_output")
            c.metadata["tags"] = sorted(tags)
            for o in c.get("outputs", []):
                d = o.get("data", {})
                if "text/markdown" in d:
                    d["text/markdown"] = _clean_md(d["text/markdown"], site)
                    d.pop("text/plain", None)
        keep.append(c)
    nb.cells = keep

_SLUG = re.compile(r'<(h[1-4]) id="([^"]+)"')
def _quarto_ids(body):
    "Add Quarto-style lower-case anchors next to nbconvert's, so links like model.html#transformer resolve."
    def f(m):
        slug = re.sub(r"[^\w\- ]", "", html.unescape(m.group(2))).strip().lower().replace(" ", "-")
        return m.group(0) if slug == m.group(2) else f'<span id="{slug}"></span>{m.group(0)}'
    return _SLUG.sub(f, body)

CSS = """
<style>
 body.jp-Notebook, body { margin: 0; }
 .ac-layout { display: flex; align-items: flex-start; }
 .ac-side { position: sticky; top: 0; height: 100vh; overflow-y: auto; width: 230px; flex: none; padding: 1rem .8rem;
            border-right: 1px solid #e3e3e3; background: #f7f8fa; font: 14px/1.45 system-ui, sans-serif; box-sizing: border-box; }
 .ac-side a { display: block; padding: .18rem .4rem; color: #24292f; text-decoration: none; border-radius: 4px; }
 .ac-side a:hover { background: #e8ebef; } .ac-side a.active { background: #dbe6f6; font-weight: 600; }
 .ac-side .ac-brand { font-weight: 700; font-size: 16px; margin-bottom: .6rem; }
 .ac-side .ac-sec { margin: .9rem 0 .2rem; color: #6a737d; font-size: 12px; text-transform: uppercase; letter-spacing: .04em; }
 .ac-main { flex: 1; min-width: 0; max-width: 1100px; padding: 0 1.2rem 3rem; }
 .ac-head { padding: 1.4rem 0 .4rem 0; margin-left: 64px; border-bottom: 1px solid #eee; margin-bottom: .6rem; }
 .ac-head h1.ac-title { font: 600 2rem/1.2 system-ui, sans-serif; margin: 0 0 .4rem; }
 .ac-head p.ac-desc { color: #57606a; font: 1.05rem/1.5 system-ui, sans-serif; margin: 0; }
 .ac-foot { margin: 2rem 0 0 64px; color: #8b949e; font: 12px system-ui, sans-serif; }
</style>
"""

def _wrap(page_html, title, desc, nav, foot):
    head_end = page_html.index("</head>")
    page_html = page_html[:head_end] + CSS + page_html[head_end:]
    page_html = re.sub(r"<title>.*?</title>", f"<title>{html.escape(title)}</title>", page_html, count=1, flags=re.S)
    m = re.search(r"<body[^>]*>", page_html)
    end = page_html.rindex("</body>")
    body = page_html[m.end():end]
    header = f'<div class="ac-head"><h1 class="ac-title">{html.escape(title)}</h1>'
    if desc: header += f'<p class="ac-desc">{desc}</p>'
    header += "</div>"
    return (page_html[:m.end()] + f'<div class="ac-layout"><nav class="ac-side">{nav}</nav><div class="ac-main">'
            + header + body + f'<div class="ac-foot">{foot}</div></div></div>' + page_html[end:])

def _md_inline(s):
    s = html.escape(s or "")
    return re.sub(r"`([^`]+)`", r"<code>\1</code>", s)

def render_docs():
    import nbformat, yaml
    from nbdev.config import get_config
    cfg = get_config()
    site = (cfg.get("doc_host", "") + cfg.get("doc_baseurl", "")).rstrip("/")
    cache, out = ROOT / "_proc", ROOT / "_docs"
    order = yaml.safe_load((cache / "sidebar.yml").read_text())["website"]["sidebar"]["contents"]
    names = [n for n in order if (cache / n).exists()] + sorted(
        p.name for p in cache.glob("*.ipynb") if p.name not in order)
    pages = []
    for n in names:
        nb = nbformat.read(cache / n, as_version=4)
        fm = _frontmatter(nb)
        if n == cfg.get("readme_nb", "index.ipynb"):
            target = "index.html"
            first = nb.cells[0].source if nb.cells else ""
            mt = re.match(r"#\s+(.+)\n+(?:>\s*(.+(?:\n>.*)*))?", first)
            title = fm.get("title") or (mt.group(1).strip() if mt else cfg.title)
            desc = fm.get("description") or (re.sub(r"\n>\s*", " ", mt.group(2)).strip() if mt and mt.group(2) else "")
            if mt: nb.cells[0].source = first[mt.end():]
        else:
            target = fm.get("output-file") or re.sub(r"^\d+[a-z]?_", "", Path(n).stem) + ".html"
            title, desc = fm.get("title", Path(n).stem), fm.get("description", "")
        pages.append((n, target, title, desc, nb))
    out.mkdir(exist_ok=True)
    exp = _exporter(prompts=False)
    written = set()
    for n, target, title, desc, nb in pages:
        _prep_docs_nb(nb, site)
        nav = f'<div class="ac-brand"><a href="index.html">{html.escape(cfg.title)}</a></div>'
        for _, t2, ti2, _, _ in pages:
            active = ' class="active"' if t2 == target else ""
            nav += f'<a href="{t2}"{active}>{html.escape(ti2)}</a>'
        nav += '<div class="ac-sec">Reports</div><a href="reports/index.html">Executed notebooks</a>'
        body, _ = exp.from_notebook_node(nb)
        foot = (f"Rendered from <code>nbs/{html.escape(n)}</code> by scripts/build_docs.sh (nbdev processors + nbconvert); "
                f'<a href="{html.escape(cfg.get("git_url", ""))}/blob/{cfg.get("branch", "main")}/nbs/{html.escape(n)}">source notebook</a>')
        page = _wrap(_quarto_ids(body), title if target != "index.html" else title, _md_inline(desc), nav, foot)
        if target != "index.html": page = page.replace(f"<title>{html.escape(title)}</title>",
                                                        f"<title>{html.escape(title)} – {html.escape(cfg.title)}</title>")
        (out / target).write_text(page, encoding="utf-8"); written.add(target)
        print(f"  _docs/{target:<22} {title}")
    (out / ".nojekyll").write_text("")
    if (ROOT / "nbs" / "styles.css").exists(): (out / "styles.css").write_bytes((ROOT / "nbs" / "styles.css").read_bytes())
    if (ROOT / "reports" / "html").is_dir():                     # the report pages travel with the site
        import shutil
        shutil.rmtree(out / "reports", ignore_errors=True)
        shutil.copytree(ROOT / "reports" / "html", out / "reports")
    for stale in set(p.name for p in out.glob("*.html")) - written: (out / stale).unlink()


# ---------------------------------------------------------------- reports/**/*.ipynb -> reports/html/
def report_name(rel):
    "reports/batches/batch_small/x.ipynb -> batches__batch_small__x (notebooks in different batches share names)."
    return "__".join(rel.with_suffix("").parts)

def _shared_css(page, out, written):
    "Move the template's large <style> blocks (the same ~260 kB on every page) into shared nb-<hash>.css files."
    import hashlib
    def link(m):
        css = m.group(1)
        if len(css) < 10_000: return m.group(0)
        name = f"nb-{hashlib.sha1(css.encode()).hexdigest()[:10]}.css"
        if not (out / name).exists(): (out / name).write_text(css, encoding="utf-8")
        written.add(name)
        return f'<link rel="stylesheet" href="{name}">'
    head_end = page.index("</head>")
    return re.sub(r"<style[^>]*>(.*?)</style>", link, page[:head_end], flags=re.S) + page[head_end:]

def render_reports(force=False):
    import nbformat
    src_root, out = ROOT / "reports", ROOT / "reports" / "html"
    tracked = subprocess.run(["git", "ls-files", "--", "reports/*.ipynb", "reports/**/*.ipynb"],
                             capture_output=True, text=True, cwd=ROOT).stdout.split()
    files = sorted({ROOT / f for f in tracked} | {p for p in src_root.rglob("*.ipynb")
                    if "html" not in p.relative_to(src_root).parts[:1] and ".ipynb_checkpoints" not in p.parts})
    files = [f for f in files if f.exists()]
    out.mkdir(parents=True, exist_ok=True)
    exp = _exporter()
    rows, written = [], {"index.html"}
    for f in files:
        rel = f.relative_to(src_root)
        name = report_name(rel) + ".html"
        nb = nbformat.read(f, as_version=4)
        title = next((re.sub(r"^#+\s*", "", c.source.strip().splitlines()[0]) for c in nb.cells
                      if c.cell_type == "markdown" and c.source.strip().startswith("#")), rel.stem)
        pm = nb.metadata.get("papermill", {})
        n_err = sum(1 for c in nb.cells for o in c.get("outputs", []) if o.get("output_type") == "error")
        dst = out / name
        if force or not dst.exists() or dst.stat().st_mtime < f.stat().st_mtime:
            body, _ = exp.from_notebook_node(nb)
            body = re.sub(r"<title>.*?</title>", f"<title>{html.escape(title)} – reports/{html.escape(str(rel))}</title>",
                          body, count=1, flags=re.S)
            dst.write_text(_shared_css(body, out, written), encoding="utf-8")
            print(f"  reports/html/{name} <- reports/{rel} ({dst.stat().st_size / 1e6:.2f} MB)")
        written.add(name)
        rows.append((str(rel), name, title, pm.get("end_time", "")[:19].replace("T", " "), pm.get("duration"),
                     n_err, dst.stat().st_size))
    for f in out.glob("*.html"):   # pages rendered earlier still name their shared stylesheets
        written.update(re.findall(r'href="(nb-[0-9a-f]+\.css)"', f.read_text(encoding="utf-8")[:20_000]))
    for stale in set(p.name for p in list(out.glob("*.html")) + list(out.glob("nb-*.css"))) - written: (out / stale).unlink()
    groups = {}
    for r in rows: groups.setdefault(str(Path(r[0]).parent), []).append(r)
    trs = []
    for g in sorted(groups, key=lambda g: (g != ".", g)):
        trs.append(f'<tr class="grp"><td colspan="5">{"reports/" if g == "." else "reports/" + html.escape(g) + "/"}</td></tr>')
        for rel, name, title, end, dur, n_err, size in groups[g]:
            dur = f"{dur:.0f} s" if isinstance(dur, (int, float)) else ""
            err = f'<span class="err">{n_err} error output(s)</span>' if n_err else "ok"
            trs.append(f'<tr><td><a href="{name}">{html.escape(Path(rel).name)}</a></td><td>{html.escape(title)}</td>'
                       f"<td>{html.escape(end)}</td><td>{dur}</td><td>{err}</td><td>{size / 1e3:.0f} kB</td></tr>")
    idx = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>algocircuits – executed notebook reports</title>
<style>body{{font:15px/1.5 system-ui,sans-serif;max-width:1100px;margin:2rem auto;padding:0 1rem;color:#24292f}}
table{{border-collapse:collapse;width:100%}}td,th{{padding:.3rem .6rem;border-bottom:1px solid #eee;text-align:left}}
tr.grp td{{background:#f4f6f8;font-weight:600;font-family:monospace}} .err{{color:#b42318}} a{{color:#0b5cad}}</style></head>
<body><h1>Executed notebook reports</h1>
<p>HTML renderings (nbconvert) of the executed notebooks committed under <code>reports/</code>: papermill runs of the
batch specs in <code>experiments/</code> and the ARC evaluation report. Rebuild with <code>bash scripts/build_docs.sh --reports</code>.
<a href="../index.html">Back to the docs</a> (when served from <code>_docs/reports/</code>).</p>
<table><tr><th>notebook</th><th>title</th><th>executed (papermill end)</th><th>run time</th><th>status</th><th>page</th></tr>
{chr(10).join(trs)}
</table></body></html>
"""
    (out / "index.html").write_text(idx, encoding="utf-8")
    total = sum(p.stat().st_size for p in out.glob("*.html"))
    print(f"reports/html: {len(rows)} notebook pages + index.html, {total / 1e6:.1f} MB")
    if total > 15e6: sys.exit(f"reports/html is {total / 1e6:.1f} MB (> 15 MB): drop the largest notebooks from the build")


if __name__ == "__main__":
    cmd = sys.argv[1]
    if cmd == "proc-one": proc_one(sys.argv[2], sys.argv[3])
    elif cmd == "proc": proc_all(force=sys.argv[2] == "1", workers=int(sys.argv[3]))
    elif cmd == "render-docs": render_docs()
    elif cmd == "render-reports": render_reports(force=sys.argv[2:3] == ["1"])
    else: sys.exit(f"unknown command {cmd}")
PY

t0=$(date +%s)
# nbconvert renders both the report pages and (without Quarto) the docs; it is not in the project's requirements
python -c "import nbconvert" 2>/dev/null || { echo "== installing nbconvert"; pip install -q "nbconvert>=7"; }
if [ "$do_reports" = 1 ]; then
  echo "== report pages: reports/**/*.ipynb -> reports/html/"
  python "$helper" render-reports "$force"
fi

if [ "$do_docs" = 1 ]; then
  engine="${DOCS_ENGINE:-auto}"
  q=""
  if [ "$engine" != nbconvert ]; then
    q="$(find_quarto || true)"
    if [ -z "$q" ] && [ "${QUARTO_PIP:-1}" = 1 ]; then
      echo "== quarto not found: trying the PyPI package quarto-cli"
      if pip install -q quarto-cli > /tmp/algocircuits_quarto_pip.log 2>&1; then q="$(find_quarto || true)"
      else echo "   pip install quarto-cli failed ($(grep -m1 -o 'Error downloading Quarto: .*' /tmp/algocircuits_quarto_pip.log || tail -n1 /tmp/algocircuits_quarto_pip.log));" \
                "its build downloads Quarto from github.com. Falling back to nbconvert."; fi
    fi
    [ "$engine" = quarto ] && [ -z "$q" ] && { echo "DOCS_ENGINE=quarto but no quarto executable" >&2; exit 1; }
  fi
  echo "== nbdev processing: nbs/ -> _proc/"
  python "$helper" proc "$force" "${DOCS_WORKERS:-2}"
  if [ -n "$q" ]; then
    echo "== quarto render ($q)"
    export PATH="$(dirname "$q"):$PATH"
    (cd _proc && quarto render --no-cache)
    rm -rf _docs && mv _proc/_docs _docs
    [ -d reports/html ] && { rm -rf _docs/reports; cp -r reports/html _docs/reports; }
  else
    echo "== nbconvert render: _proc/ -> _docs/"
    python "$helper" render-docs
  fi
  echo "docs: $(ls _docs/*.html | wc -l) pages in _docs/ ($(du -sh _docs | cut -f1)); serve with: python -m http.server -d _docs"
fi
echo "build_docs.sh took $(( $(date +%s) - t0 ))s"

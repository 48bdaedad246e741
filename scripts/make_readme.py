"""Write README.md from nbs/index.ipynb (markdown cells as they are, code cells fenced).
nbdev's own `nbdev_readme` needs Quarto, which the project does not require; this keeps README.md a pure
function of the notebook, and CI checks the two agree."""
import json, sys
from pathlib import Path
root = Path(__file__).resolve().parent.parent
nb = json.loads((root / "nbs" / "index.ipynb").read_text())
parts = []
for c in nb["cells"]:
    src = "".join(c["source"]).strip()
    if not src or src.startswith("#| hide"): continue
    parts.append(src if c["cell_type"] == "markdown" else f"```python\n{src}\n```")
text = "<!-- generated from nbs/index.ipynb by scripts/make_readme.py: edit the notebook -->\n\n" + "\n\n".join(parts) + "\n"
out = root / "README.md"
if "--check" in sys.argv:
    if not out.exists() or out.read_text() != text: sys.exit("README.md is out of date with nbs/index.ipynb: run python scripts/make_readme.py")
else: out.write_text(text)

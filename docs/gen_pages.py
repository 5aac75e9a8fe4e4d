"""Pages generated at build time (mkdocs-gen-files runs this from mkdocs.yml).

- Every README of the repository (root, packages, apps) becomes a page; its
  links are rewritten so that they work on the site (see ``rewrite_links``).
- ``choose-an-estimator.md`` is built from the recorded shootout table,
  ``apps/shootout/results/rows.jsonl``: the numbers are read, never copied.
- Each tutorial script under ``docs/tutorials/`` becomes a page: its module
  docstring as the text, its code as a listing.

Nothing here imports structgrad: the build reads files only.
"""

from __future__ import annotations

import ast
import json
import logging
import math
import os
import posixpath
import re
from pathlib import Path

import mkdocs_gen_files

# A warning on a logger under "mkdocs" fails `mkdocs build --strict`.
log = logging.getLogger("mkdocs.plugins.structgrad_gen_pages")
ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
SHOOTOUT_ROWS = ROOT / "apps" / "shootout" / "results" / "rows.jsonl"
IMAGE_SUFFIXES = {".png", ".svg", ".jpg", ".jpeg", ".gif"}
# Copied images keep their repository path under this folder of the site.
ASSETS = "assets/repo"


# --------------------------------------------------------------------------
# READMEs
# --------------------------------------------------------------------------


def readme_pages() -> dict[str, str]:
    """Repository folder (``""`` for the root) -> page path on the site."""
    pages = {"": "index.md"}
    for group in ("packages", "apps"):
        for readme in sorted((ROOT / group).glob("*/README.md")):
            pages[f"{group}/{readme.parent.name}"] = f"{group}/{readme.parent.name}.md"
    return pages


PAGES = readme_pages()
# A Markdown link or image, [text](target) / ![alt](target) with a target
# without spaces; or an inline code span, which is skipped (scanning left to
# right, a span that starts first wins, so links whose text is code still match).
LINK = re.compile(r"(`+)[^`]*?\1|(!?)\[((?:[^\[\]]|\[[^\]]*\])*)\]\(([^()\s]+)\)")
FENCE = re.compile(r"^(```|~~~)")


def _rewrite_target(bang: str, text: str, target: str, folder: str, page: str) -> str:
    """One link of the README in repository ``folder``, shown on ``page``."""
    if re.match(r"^[a-z][a-z0-9+.-]*:", target) or target.startswith("#"):
        return f"{bang}[{text}]({target})"  # a URL or an anchor on the same page
    path, _, anchor = target.partition("#")
    repo_path = posixpath.normpath(posixpath.join(folder, path)) if path else folder
    repo_path = "" if repo_path == "." else repo_path
    if repo_path.endswith("README.md"):
        repo_path = posixpath.dirname(repo_path)
    page_dir = posixpath.dirname(page) or "."
    if repo_path in PAGES:  # another README: its page
        rel = posixpath.relpath(PAGES[repo_path], page_dir)
        return f"{bang}[{text}]({rel}{'#' + anchor if anchor else ''})"
    file = ROOT / repo_path
    inside = not repo_path.startswith("..")
    if inside and file.is_file() and file.suffix.lower() in IMAGE_SUFFIXES:
        site_path = f"{ASSETS}/{repo_path}"
        with mkdocs_gen_files.open(site_path, "wb") as out:
            out.write(file.read_bytes())
        return f"{bang}[{text}]({posixpath.relpath(site_path, page_dir)})"
    if inside and not file.exists():
        log.warning("%s/README.md: link to a missing path: %s", folder or ".", target)
    # Anything else (a source file, a results folder, a file outside the
    # repository): not part of the site. Keep the text and name the path.
    shown = repo_path if inside else target
    plain = text.strip("`")
    if plain.rstrip("/") in (path.rstrip("/"), shown.rstrip("/")):
        return f"`{shown}`"
    return f"{text} (`{shown}`)"


def rewrite_links(markdown: str, folder: str, page: str) -> str:
    """Rewrite the links of a README so that ``mkdocs build --strict`` accepts them.

    Links to a folder or file holding a README go to that README's page;
    images are copied into the site; any other repository path (a source file,
    a results folder, ``../shared/...``) becomes inline code naming the path
    from the repository root. A link to a repository path that does not exist
    is a warning (so ``--strict`` fails). Fenced code blocks are left alone.
    """
    out, fenced = [], False
    for line in markdown.splitlines(keepends=True):
        if FENCE.match(line.lstrip()):
            fenced = not fenced
        if not fenced:
            line = LINK.sub(
                lambda m: m[0] if m[1] else _rewrite_target(m[2], m[3], m[4], folder, page),
                line,
            )
        out.append(line)
    return "".join(out)


def write_readmes() -> None:
    """One page per README, its links rewritten."""
    for folder, page in PAGES.items():
        source = ROOT / folder / "README.md"
        text = rewrite_links(source.read_text(encoding="utf-8"), folder, page)
        with mkdocs_gen_files.open(page, "w") as out:
            out.write(text)
        mkdocs_gen_files.set_edit_path(page, source.relative_to(ROOT).as_posix())


# --------------------------------------------------------------------------
# Choose an estimator (from the shootout rows)
# --------------------------------------------------------------------------

# An unbiased estimator's largest z-score over a handful of entries stays
# below this (the shootout README's own threshold).
Z_UNBIASED = 4.0


def _grid_head(second: str, structures: list[str]) -> list[str]:
    """The header rows of an estimator x structure table."""
    return [
        "| estimator | " + second + " | " + " | ".join(structures) + " |",
        "|---|---|" + "---|" * len(structures),
    ]


def _fmt(x: float, digits: int = 3) -> str:
    if x == 0 or not math.isfinite(x):
        return str(x)
    if abs(x) >= 1000 or abs(x) < 0.01:
        return f"{x:.2e}"
    return f"{x:.{digits}g}"


def _load_rows() -> list[dict]:
    with open(SHOOTOUT_ROWS, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def _summary(rows: list[dict], consistent: set[tuple[str, str]]) -> list[str]:
    """Bullet points computed from the rows: bias and variance of each kind."""
    out = []
    for kind, label in (("score", "score-function"), ("pathwise", "pathwise")):
        rs = [r for r in rows if r["kind"] == kind]
        if not rs:
            continue
        ok = sum((r["structure"], r["estimator"]) in consistent for r in rs)
        var = sorted(r["total_var"] for r in rs)
        cost = sorted(r["ms_per_call"] for r in rs)
        out.append(
            f"- {label}: {ok} of {len(rs)} (structure, estimator) pairs are consistent "
            f"with zero bias (`max |z|` ≤ {Z_UNBIASED:g}); median variance "
            f"{_fmt(var[len(var) // 2])}, median {cost[len(cost) // 2]:.2f} ms per call."
        )
    return out


def choose_page(rows: list[dict]) -> str:
    """The "Choose an estimator" page from the shootout rows (one dict per pair)."""
    structures = list(dict.fromkeys(r["structure"] for r in rows))
    estimators = list(dict.fromkeys(r["estimator"] for r in rows))
    config = {k[len("config_") :]: v for k, v in rows[0].items() if k.startswith("config_")}
    by = {(r["structure"], r["estimator"]): r for r in rows}
    unbiased = {key for key, r in by.items() if r["max_z"] <= Z_UNBIASED and r["kind"] == "score"}
    consistent = {key for key, r in by.items() if r["max_z"] <= Z_UNBIASED}

    lines = [
        "# Choose an estimator",
        "",
        "Which gradient estimator for which structure? This page is generated at",
        "build time from the recorded shootout table, `apps/shootout/results/rows.jsonl`",
        "([shootout](apps/shootout.md): every estimator on a tiny instance of every",
        "structure, against the exact gradient of `E[f(X)]`). Re-run it with",
        "`nox -s shootout` and copy `runs/shootout/rows.jsonl` there to refresh this page.",
        "",
        f"Settings of the recorded run: {config.get('draws')} draws per pair, seed "
        f"{config.get('seed')}, τ = {config.get('tau')}, warm-up {config.get('warmup')} "
        f"steps, {config.get('reference_samples'):,} perturb-and-MAP reference samples.",
        "",
        "## How to read it",
        "",
        "- **Bias.** `cosine` is the cosine similarity between the estimator's mean",
        "  and the exact gradient (1 is the right direction), `rel. bias` is",
        "  `‖mean − exact‖ / ‖exact‖`. Both include Monte Carlo error. `max |z|` is",
        "  the largest `|mean − exact| / stderr` over the gradient's entries: an",
        f"  unbiased estimator stays below about {Z_UNBIASED:g}; a larger value means",
        "  the estimator is biased, by at least that many standard errors.",
        "- **Variance** is the summed variance of one estimate (a `K`-sample",
        "  estimator spends `K` samples on one estimate). Lower means fewer draws, or",
        "  smaller batches, for the same gradient quality.",
        "- **Cost**: `µs/draw` amortised in batches of 1000 draws, `ms/call` for one",
        "  unbatched forward + attach + backward. Timings come from shared CPU cores",
        "  and are noisy; compare orders of magnitude.",
        "- **Law.** Score-function estimators (`kind = score`) sample the recursive",
        "  Gumbel-max law (`rg`) and are compared with its exact gradient; pathwise",
        "  ones sample perturb-and-MAP (`pam`). The two laws coincide for categorical,",
        "  k-subset and spanning tree; for arborescences and matchings they differ, and",
        "  pathwise estimators are compared with the perturb-and-MAP gradient.",
        "",
        "In short: **score-function estimators are unbiased**; with the leave-one-out",
        "baseline (`t-reinforce+`) or a trained RELAX critic their variance is low",
        "too, at the price of `K` samples or a critic. **Pathwise estimators are",
        "biased but often have a much lower variance**; among them, the ones with a",
        "small `max |z|` point in the right direction. In the recorded table:",
        "",
        *_summary(rows, consistent),
        "",
        "## Recommendations from the recorded table",
        "",
        "Per structure: the unbiased estimator (score-function, `max |z|` ≤ "
        f"{Z_UNBIASED:g}) with the lowest variance, the lowest-variance estimator of",
        "all (biased or not), the best-aligned pathwise estimator and the cheapest",
        "call.",
        "",
        "| structure | lowest-variance unbiased | lowest variance overall | best-aligned "
        "pathwise (cosine) | cheapest (ms/call) |",
        "|---|---|---|---|---|",
    ]
    for s in structures:
        rs = [by[(s, e)] for e in estimators if (s, e) in by]
        ub = [r for r in rs if (s, r["estimator"]) in unbiased]
        pw = [r for r in rs if r["kind"] == "pathwise"]
        best_ub = min(ub, key=lambda r: r["total_var"]) if ub else None
        best_var = min(rs, key=lambda r: r["total_var"])
        # Best direction; ties (cosine to 3 decimals) go to the smaller relative bias.
        best_pw = max(pw, key=lambda r: (round(r["cosine"], 3), -r["rel_bias"])) if pw else None
        cheapest = min(rs, key=lambda r: r["ms_per_call"])
        n = rs[0]["n"]
        lines.append(
            f"| {s} (n={n}) "
            + (f"| `{best_ub['estimator']}` ({_fmt(best_ub['total_var'])}) " if best_ub else "| — ")
            + f"| `{best_var['estimator']}` ({_fmt(best_var['total_var'])}, "
            f"max z {best_var['max_z']:.1f}) "
            + (
                f"| `{best_pw['estimator']}` ({best_pw['cosine']:.3f}) "
                if best_pw
                else "| none (no pathwise method) "
            )
            + f"| `{cheapest['estimator']}` ({cheapest['ms_per_call']:.2f}) |"
        )

    # Estimator x structure: max |z| (bias) and variance, at a glance.
    lines += [
        "",
        "## Bias at a glance: `max |z|` per estimator and structure",
        "",
        f"**Bold**: consistent with an unbiased estimator (≤ {Z_UNBIASED:g}). A blank",
        "cell: the structure has no such method.",
        "",
        *_grid_head("kind", structures),
    ]
    for e in estimators:
        kind = next(r["kind"] for r in rows if r["estimator"] == e)
        cells = []
        for s in structures:
            r = by.get((s, e))
            if r is None:
                cells.append("")
            elif (s, e) in consistent:
                cells.append(f"**{r['max_z']:.1f}**")
            else:
                cells.append(f"{r['max_z']:.1f}")
        lines.append(f"| `{e}` | {kind} | " + " | ".join(cells) + " |")

    lines += [
        "",
        "## Variance at a glance: summed variance of one estimate",
        "",
        *_grid_head("K", structures),
    ]
    for e in estimators:
        k = next(r["samples_per_estimate"] for r in rows if r["estimator"] == e)
        cells = [_fmt(by[(s, e)]["total_var"]) if (s, e) in by else "" for s in structures]
        lines.append(f"| `{e}` | {k} | " + " | ".join(cells) + " |")

    lines += ["", "## The full table, per structure", ""]
    header = (
        "| estimator | kind | law | cosine | rel. bias | max abs z | variance | K | "
        "µs/draw | ms/call |"
    )
    for s in structures:
        rs = [by[(s, e)] for e in estimators if (s, e) in by]
        law = {"rg": "recursive Gumbel-max", "pam": "perturb-and-MAP"}
        lines += [f"### {s} (n={rs[0]['n']})", "", header, "|---" * 10 + "|"]
        for r in rs:
            lines.append(
                f"| `{r['estimator']}` | {r['kind']} | {law.get(r['law'], r['law'])} "
                f"| {r['cosine']:.3f} | {_fmt(r['rel_bias'])} | {r['max_z']:.1f} "
                f"| {_fmt(r['total_var'])} | {r['samples_per_estimate']} "
                f"| {r['us_per_draw']:.0f} | {r['ms_per_call']:.2f} |"
            )
        lines.append("")
    lines += [
        "Which estimator each name builds, and the instances and objective, are",
        "described in the [shootout README](apps/shootout.md); the methods each",
        "structure offers are listed in [structgrad-models](packages/models.md).",
        "",
    ]
    return "\n".join(lines)


def write_choose_page() -> None:
    """Write ``choose-an-estimator.md`` from the recorded shootout rows."""
    with mkdocs_gen_files.open("choose-an-estimator.md", "w") as out:
        out.write(choose_page(_load_rows()))
    mkdocs_gen_files.set_edit_path("choose-an-estimator.md", "docs/gen_pages.py")


# --------------------------------------------------------------------------
# Tutorials
# --------------------------------------------------------------------------


def tutorial_page(script: Path) -> str:
    """The script's docstring as the page's text, then the script without it.

    The docstring's first line (its summary, ending with a period) is the title.
    """
    source = script.read_text(encoding="utf-8")
    module = ast.parse(source)
    title, _, text = (ast.get_docstring(module) or script.stem).partition("\n")
    doc = f"# {title.rstrip('.')}\n{text}"
    body = source
    first = module.body[0] if module.body else None
    if (
        isinstance(first, ast.Expr)
        and isinstance(first.value, ast.Constant)
        and isinstance(first.value.value, str)
    ):
        lines = source.splitlines(keepends=True)
        body = "".join(lines[first.end_lineno :]).lstrip("\n")
    rel = script.relative_to(ROOT).as_posix()
    page = (
        f"{doc}\n\n"
        f"Run it from the repository root with `python {rel}` (it asserts its own\n"
        f"result; `nox -s docs` runs every tutorial before building this site).\n\n"
        f"```python\n{body}```\n"
    )
    # The output of the run that `nox -s docs` made just before this build.
    out = Path(os.environ.get("STRUCTGRAD_TUTORIAL_OUTPUT", "/nonexistent")) / f"{script.stem}.txt"
    if out.is_file():
        page += f"\nWhat it printed when this site was built:\n\n```text\n{out.read_text()}```\n"
    return page


def write_tutorials() -> None:
    """One page per tutorial script (``docs/tutorials/NN_*.py``)."""
    for script in sorted((DOCS / "tutorials").glob("[0-9]*.py")):
        page = f"tutorials/{script.stem}.md"
        with mkdocs_gen_files.open(page, "w") as out:
            out.write(tutorial_page(script))
        mkdocs_gen_files.set_edit_path(page, script.relative_to(ROOT).as_posix())


write_readmes()
write_choose_page()
write_tutorials()

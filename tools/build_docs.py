#!/usr/bin/env python
"""Build the isonb documentation site, with Quarto when it is installed and offline without it.

    python tools/build_docs.py [--out _site] [--check]

With `quarto` on PATH this runs `nbdev-docs` (the path users with Quarto take; pages land in
`_docs/`). Without it, it stages the notebooks exactly as nbdev does for Quarto (the steps of
`nbdev-proc-nbs`: nbs/nbdev.yml, nbs/sidebar.yml and the processed copies in `_proc/`, with
`show_doc` output and directives resolved), then renders every page in `_proc/` to static HTML
with nbconvert: same page names as Quarto (`00_core.ipynb` -> `core.html`, the name nbdev's
doc links use), the sidebar from `sidebar.yml`, a navbar with search and the repo link, and
relative links, so the site works from file:// and from any static server with no network.

`--check` then verifies the built site (pages exist and are non-empty, every internal link
resolves, every notebook has a page, no traceback text, no scripts or stylesheets that need the
network) and prints a summary table. It exits non-zero and lists the problems if any. Links to
a missing anchor are warnings (`--strict` makes them errors): nbdev links backticked private
names too, which get no heading on the Quarto site either.
"""
from __future__ import annotations

import argparse, html, json, os, re, shutil, subprocess, sys, time
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from urllib.parse import urlsplit, unquote

ROOT = Path(__file__).resolve().parent.parent
ASSETS = Path(__file__).resolve().parent/'docs_assets'
PAGE_SUFFIXES = ('.ipynb', '.qmd', '.md')
SKIP_PAGE_NAMES = {'readme.md', 'readme.qmd'}  # Quarto does not render README files in a project
TRACEBACK_MARKERS = ('Traceback (most recent call last)',)


# ---------------------------------------------------------------- the Quarto path and staging

def run_quarto(root: Path) -> int:
    "The user path: `nbdev-docs` renders the site with Quarto into doc_path (`_docs/`)."
    print('quarto found on PATH: running nbdev-docs', flush=True)
    return subprocess.call(['nbdev-docs'], cwd=root)


def stage_notebooks(root: Path, n_workers: int):
    "Run the steps of `nbdev-proc-nbs` (minus its Quarto install) and return (config, `_proc` dir)."
    # `nbdev-proc-nbs` itself would first try to install Quarto (`sudo` + `curl` a .deb), and the
    # sidebar it writes lists nbdev.yml and sidebar.yml as pages (it globs every file). So call the
    # steps `nbdev-docs` runs, with `nbdev-docs`' page filter for the sidebar. The symbol index
    # (isonb/_modidx.py) is left to `nbdev-export`, which keeps it current.
    os.chdir(root)  # nbdev's helpers call get_config() on the working directory
    from nbdev.config import get_config
    from nbdev.quarto import refresh_quarto_yml, nbdev_sidebar, _def_file_re
    from nbdev.serve import proc_nbs
    cfg = get_config()
    refresh_quarto_yml()  # (re)writes nbs/nbdev.yml from pyproject.toml; keeps nbs/_quarto.yml
    nbdev_sidebar.__wrapped__(path=cfg.nbs_path, file_glob=None, file_re=_def_file_re)
    proc = proc_nbs(cfg.nbs_path, n_workers=n_workers)
    return cfg, Path(proc)


# ---------------------------------------------------------------- site configuration

def _merge(a: dict, b: dict) -> dict:
    "Deep-merge mapping `b` into a copy of `a` (Quarto merges `metadata-files` this way)."
    out = dict(a)
    for k, v in b.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def load_site_config(proc: Path) -> dict:
    "`_quarto.yml` merged with its `metadata-files` (nbdev.yml, sidebar.yml), as Quarto reads it."
    import yaml
    qy = proc/'_quarto.yml'
    conf = yaml.safe_load(qy.read_text()) if qy.exists() else {}
    for name in conf.get('metadata-files', []) or []:
        f = proc/name
        if f.exists(): conf = _merge(conf, yaml.safe_load(f.read_text()) or {})
    return conf


# ---------------------------------------------------------------- reading pages

_re_fm = re.compile(r'\A\s*---\s*\n(.*?)\n---\s*(?:\n|\Z)', re.DOTALL)


def split_frontmatter(text: str) -> tuple[dict, str]:
    "YAML frontmatter and the rest of a markdown/raw text."
    import yaml
    m = _re_fm.match(text)
    if not m: return {}, text
    try: fm = yaml.safe_load(m.group(1)) or {}
    except yaml.YAMLError: return {}, text
    return (fm if isinstance(fm, dict) else {}), text[m.end():]


@dataclass
class Page:
    src: PurePosixPath   # path inside _proc (and nbs/), e.g. 00_core.ipynb
    out: PurePosixPath   # path inside the site, e.g. core.html
    title: str
    description: str = ''
    nb: object = None    # nbformat notebook to render
    html: str = ''
    toc: list = field(default_factory=list)
    search: list = field(default_factory=list)
    generated: bool = False

    @property
    def depth(self): return len(self.out.parts) - 1


def _source(cell) -> str:
    s = cell.get('source', '')
    return ''.join(s) if isinstance(s, list) else s


def _qmd_to_markdown(text: str) -> str:
    "Quarto code chunks (```{python}) become plain fenced code; they are not executed."
    return re.sub(r'^(\s*```+)\s*\{([A-Za-z0-9_+-]+)[^}]*\}', r'\1\2', text, flags=re.MULTILINE)


def read_page(proc: Path, rel: PurePosixPath) -> Page:
    "Load a processed page and work out its title and the output name Quarto gives it."
    import nbformat
    path = proc/rel
    if rel.suffix == '.ipynb':
        nb = nbformat.read(path, as_version=4)
        fm = {}
        if nb.cells and nb.cells[0].cell_type == 'raw':
            fm, rest = split_frontmatter(_source(nb.cells[0]))
            if fm:
                if rest.strip(): nb.cells[0].source = rest
                else: nb.cells.pop(0)
    else:
        fm, body = split_frontmatter(path.read_text(encoding='utf-8'))
        body = _qmd_to_markdown(body) if rel.suffix == '.qmd' else body
        nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell(body)])
    # Quarto's name: `output-file` (nbdev's FrontmatterProc sets it to the doc-link name), else the stem
    out = rel.with_name(str(fm.get('output-file') or rel.with_suffix('.html').name))
    title = str(fm.get('title') or '')
    if not title:  # Quarto falls back to the first level-1 heading, then the file name
        for c in nb.cells:
            m = re.search(r'^#\s+(.+)$', _source(c), re.MULTILINE) if c.cell_type == 'markdown' else None
            if m: title = m.group(1).strip(); break
    return Page(src=rel, out=out, title=title or rel.stem, description=str(fm.get('description') or ''), nb=nb)


def find_pages(proc: Path) -> list[PurePosixPath]:
    "Every page Quarto would render from `_proc` (skipping `_`/`.` files and folders)."
    res = []
    for p in sorted(proc.rglob('*')):
        rel = p.relative_to(proc)
        if p.suffix not in PAGE_SUFFIXES or not p.is_file(): continue
        if any(part[0] in '_.' for part in rel.parts) or p.name.lower() in SKIP_PAGE_NAMES: continue
        res.append(PurePosixPath(rel.as_posix()))
    return res


# ---------------------------------------------------------------- Quarto syntax -> nbconvert

_re_link_attrs = re.compile(r'(?<!!)\[([^\]\n]*)\]\(([^)\s]+)\)\{([^}\n]*)\}')
_re_attr_kv = re.compile(r'([\w-]+)=("[^"]*"|\'[^\']*\'|\S+)')
_re_heading_attrs = re.compile(r'^(#{1,6}\s.*?)\s*\{([^}]*)\}\s*$')
_re_div_open = re.compile(r'^\s*:::+\s*(?:\{([^}]*)\}|([\w-]+))\s*$')
_re_div_close = re.compile(r'^\s*:::+\s*$')
_re_fence = re.compile(r'^\s*(```+|~~~+)')
CALLOUTS = ('note', 'tip', 'warning', 'caution', 'important')


def _parse_attrs(s: str) -> tuple[str, list, dict]:
    "Pandoc attributes `{#id .class key=val}` -> (id, classes, other attributes)."
    ident, classes, kv = '', [], {}
    for k, v in _re_attr_kv.findall(s): kv[k] = v.strip('"\'')
    for tok in _re_attr_kv.sub('', s).split():
        if tok.startswith('#'): ident = tok[1:]
        elif tok.startswith('.'): classes.append(tok[1:])
    return ident, classes, kv


def _attr_html(ident='', classes=(), kv=None) -> str:
    parts = [f' id="{html.escape(ident)}"'] if ident else []
    if classes: parts.append(f' class="{html.escape(" ".join(classes))}"')
    parts += [f' {k}="{html.escape(v)}"' for k, v in (kv or {}).items()]
    return ''.join(parts)


def _link_with_attrs(m) -> str:
    text, url, attrs = m.groups()
    ident, classes, kv = _parse_attrs(attrs)
    return f'<a href="{html.escape(url)}"{_attr_html(ident, classes, kv)}>{text}</a>'


def quarto_markdown(md: str) -> str:
    "Rewrite the Pandoc/Quarto markdown extensions nbdev emits into markdown that mistune renders."
    out, fence = [], None
    for line in md.split('\n'):
        m = _re_fence.match(line)
        if fence:
            if m and m.group(1)[0] == fence[0] and len(m.group(1)) >= len(fence): fence = None
            out.append(line); continue
        if m: fence = m.group(1); out.append(line); continue
        if (d := _re_div_open.match(line)):
            ident, classes, kv = _parse_attrs(d.group(1) or '.' + d.group(2))
            title = kv.pop('title', '')
            callout = next((c for c in classes if c.startswith('callout-') and c[8:] in CALLOUTS), None)
            if callout:
                classes = ['callout'] + classes
                title = title or callout[8:].capitalize()
            out += ['', f'<div{_attr_html(ident, classes, kv)}>']
            if title: out.append(f'<div class="callout-title">{html.escape(title)}</div>')
            out.append('')
            continue
        if _re_div_close.match(line): out += ['', '</div>', '']; continue
        if (h := _re_heading_attrs.match(line)):
            ident, _, _ = _parse_attrs(h.group(2))
            line = h.group(1) + (f' <span class="heading-id" data-id="{html.escape(ident)}"></span>' if ident else '')
        out.append(_re_link_attrs.sub(_link_with_attrs, line))
    return '\n'.join(out)


def _cell_options(src: str) -> tuple[dict, str]:
    "Split the leading `#| key: value` Quarto options off a code cell."
    import yaml
    lines, opts = src.split('\n'), {}
    i = 0
    while i < len(lines) and lines[i].lstrip().startswith('#|'):
        body = lines[i].lstrip()[2:].strip()
        try: d = yaml.safe_load(body)
        except yaml.YAMLError: d = None
        if isinstance(d, dict): opts.update(d)
        elif body: opts[body] = True
        i += 1
    return opts, '\n'.join(lines[i:])


def _falsy(v) -> bool: return v is False or str(v).lower() == 'false'


def _asis_markdown(outputs) -> str:
    "What Quarto splices into the page for an `output: asis` cell."
    parts = []
    for o in outputs:
        data = o.get('data', {})
        if 'text/markdown' in data: parts.append(_source({'source': data['text/markdown']}))
        elif 'text/html' in data: parts.append('\n' + _source({'source': data['text/html']}) + '\n')
        elif o.get('output_type') == 'stream': parts.append(_source({'source': o.get('text', '')}))
        elif 'text/plain' in data: parts.append(_source({'source': data['text/plain']}))
    return '\n\n'.join(parts)


def quarto_cells(nb):
    "Apply the Quarto cell options nbdev leaves in `_proc` (echo, output, include, code-fold)."
    import nbformat
    cells = []
    for cell in nb.cells:
        if cell.cell_type == 'markdown':
            cell.source = quarto_markdown(_source(cell)); cells.append(cell); continue
        if cell.cell_type == 'raw':  # Quarto passes raw cells through as markdown/HTML
            mime = cell.get('metadata', {}).get('raw_mimetype', '') or cell.get('metadata', {}).get('format', '')
            if mime in ('', 'text/markdown', 'text/html', 'html'):
                cells.append(nbformat.v4.new_markdown_cell(quarto_markdown(_source(cell))))
            continue
        if cell.cell_type != 'code': continue
        cell.metadata.pop('execution', None)  # execnb's timings (floats) fail nbformat's schema
        opts, src = _cell_options(_source(cell))
        if _falsy(opts.get('include', True)): continue
        cell.source = src.strip('\n')
        hide_input = _falsy(opts.get('echo', True)) or not cell.source.strip()
        if _falsy(opts.get('output', True)): cell.outputs = []
        if str(opts.get('output', '')).lower() == 'asis':
            if not hide_input:
                cells.append(nbformat.v4.new_code_cell(cell.source, metadata=cell.metadata))
            md = _asis_markdown(cell.get('outputs', []))
            if md.strip(): cells.append(nbformat.v4.new_markdown_cell(quarto_markdown(md)))
            continue
        for o in cell.get('outputs', []):  # markdown outputs get the same Quarto syntax handling
            if 'text/markdown' in o.get('data', {}):
                o['data']['text/markdown'] = quarto_markdown(_source({'source': o['data']['text/markdown']}))
        if hide_input: cell.metadata.setdefault('transient', {})['remove_source'] = True
        fold = opts.get('code-fold')
        if fold and not _falsy(fold):
            cell.metadata['isonb_fold'] = 'show' if str(fold).lower() == 'show' else 'hide'
            cell.metadata['isonb_fold_summary'] = str(opts.get('code-summary', 'Code'))
        if hide_input and not cell.get('outputs'): continue
        cells.append(cell)
    nb.cells = cells
    return nb


# ---------------------------------------------------------------- HTML

CELL_TEMPLATE = r"""{%- extends 'classic/base.html.j2' -%}
{% block input_group -%}
{%- if cell.metadata.get('isonb_fold') -%}
<details class="code-fold"{% if cell.metadata.isonb_fold == 'show' %} open{% endif %}><summary>{{ cell.metadata.isonb_fold_summary | e }}</summary>
{{ super() }}
</details>
{%- else -%}
{{ super() }}
{%- endif -%}
{%- endblock input_group %}
"""

PAGE_TEMPLATE = r"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{ page.title }} – {{ site_title }}</title>
{%- if page.description %}
<meta name="description" content="{{ page.description }}">
{%- endif %}
<link rel="stylesheet" href="{{ root }}_static/docs.css">
<link rel="stylesheet" href="{{ root }}_static/pygments.css">
{%- for css in extra_css %}
<link rel="stylesheet" href="{{ root }}{{ css }}">
{%- endfor %}
{%- if mathjax_url %}
<script>window.MathJax = {tex: {inlineMath: [['$', '$'], ['\\(', '\\)']]}};</script>
<script async src="{{ mathjax_url }}"></script>
{%- endif %}
</head>
<body data-root="{{ root }}">
<header class="navbar">
  <a class="brand" href="{{ root }}index.html">{{ site_title }}</a>
  {%- if search %}
  <div class="search"><input id="search-input" type="search" placeholder="Search" aria-label="Search" autocomplete="off"><div id="search-results"></div></div>
  {%- endif %}
  <nav class="nav-right">
  {%- for item in nav_right %}
    <a href="{{ item.href }}">{{ item.text }}</a>
  {%- endfor %}
  </nav>
</header>
<div class="layout">
<nav class="sidebar" aria-label="Pages">
{{ sidebar }}
</nav>
<main class="content">
<header class="title-block">
<h1 class="title">{{ page.title }}</h1>
{%- if page.description %}
<div class="description">{{ page.description }}</div>
{%- endif %}
</header>
{{ body }}
<footer class="page-footer">Built offline from <code>{{ page.src }}</code> by tools/build_docs.py (nbdev + nbconvert).</footer>
</main>
{%- if toc %}
<nav class="toc" aria-label="On this page">
<h2>On this page</h2>
{{ toc }}
</nav>
{%- endif %}
</div>
{%- if search %}
<script src="{{ root }}_static/search-index.js"></script>
<script src="{{ root }}_static/search.js"></script>
{%- endif %}
</body>
</html>
"""


def make_exporter():
    from jinja2 import DictLoader
    from nbconvert import HTMLExporter
    exp = HTMLExporter(template_name='basic', extra_loaders=[DictLoader({'isonb_cells.html.j2': CELL_TEMPLATE})],
                       template_file='isonb_cells.html.j2')
    exp.exclude_input_prompt = exp.exclude_output_prompt = True
    return exp


def pandoc_id(text: str) -> str:
    "Pandoc's auto identifier (what Quarto gives headings, and what nbdev's doc links point to)."
    s = ''.join(ch for ch in text.strip() if ch.isalnum() or ch in '_-. \n\t')
    s = re.sub(r'\s+', '-', s).lower()
    first = next((i for i, ch in enumerate(s) if ch.isalpha()), len(s))  # ids start with a letter
    return s[first:] or 'section'


def relpath(target: PurePosixPath, page: Page) -> str:
    return '../' * page.depth + target.as_posix()


def postprocess(page: Page, body: str, site_url: str, src2out: dict) -> None:
    "Heading ids, local doc links, TOC and search entries for one page's body."
    from bs4 import BeautifulSoup
    soup = BeautifulSoup(body, 'html.parser')
    used = set()
    for tag in soup.find_all(['h1', 'h2', 'h3', 'h4', 'h5', 'h6']):
        for a in tag.select('a.anchor-link'): a.decompose()
        marker = tag.select_one('span.heading-id')
        if marker: ident = marker['data-id']; marker.decompose()
        else: ident = pandoc_id(tag.get_text())
        base, n = ident, 0
        while ident in used: n += 1; ident = f'{base}-{n}'
        used.add(ident)
        tag['id'] = ident
        link = soup.new_tag('a', attrs={'class': 'anchor-link', 'href': f'#{ident}'}); link.string = '¶'
        tag.append(link)
    # links: the hosted docs URL -> the local page; links to notebooks -> their pages
    site_url = site_url.rstrip('/')
    page_dir = PurePosixPath(page.src).parent
    for a, attr in [(t, 'href') for t in soup.find_all('a', href=True)] + [(t, 'src') for t in soup.find_all('img', src=True)]:
        url = a[attr]
        if site_url and url.startswith(site_url + '/'):
            a[attr] = '../' * page.depth + url[len(site_url) + 1:]
            continue
        parts = urlsplit(url)
        if parts.scheme or parts.netloc or not parts.path: continue
        target = PurePosixPath(os.path.normpath((page_dir/unquote(parts.path)).as_posix()))
        if target in src2out:
            new = os.path.relpath(src2out[target].as_posix(), page_dir.as_posix() or '.')
            a[attr] = new + (f'#{parts.fragment}' if parts.fragment else '')
    # TOC (h2/h3, like Quarto's default toc-depth) and search sections
    items, section = [], {'head': '', 'id': '', 'text': []}
    sections = [section]
    for el in soup.find_all(['h2', 'h3', 'p', 'li', 'pre', 'td']):
        if el.name in ('h2', 'h3'):
            head = el.get_text().rstrip('¶').strip()
            items.append((el.name, head, el['id']))
            section = {'head': head, 'id': el['id'], 'text': []}; sections.append(section)
        elif el.find_parent(['li', 'td', 'p']) is None:  # text of nested blocks is in their parent's
            section['text'].append(el.get_text() if el.name == 'pre' else el.get_text(' ', strip=True))
    page.toc = items
    for s in sections:
        text = re.sub(r'\s+', ' ', ' '.join(s['text'])).strip()[:1500]
        if not (s['head'] or text): continue
        href = page.out.as_posix() + (f"#{s['id']}" if s['id'] else '')
        page.search.append({'page': page.title, 'head': s['head'], 'href': href, 'text': text})
    page.html = str(soup)


def toc_html(items) -> str:
    if not items: return ''
    out, open_sub = ['<ul>'], False
    for level, head, ident in items:
        link = f'<a href="#{html.escape(ident)}">{html.escape(head)}</a>'
        if level == 'h3':
            if not open_sub: out.append('<ul>'); open_sub = True
            out.append(f'<li>{link}</li>')
        else:
            if open_sub: out.append('</ul>'); open_sub = False
            out.append(f'<li>{link}</li>')
    if open_sub: out.append('</ul>')
    out.append('</ul>')
    return '\n'.join(out)


# ---------------------------------------------------------------- sidebar

def sidebar_tree(conf: dict, pages: list[Page]) -> list:
    "The sidebar entries (sidebar.yml order, nbdev puts index first), plus any page it does not list."
    by_src = {str(p.src): p for p in pages}
    seen = set()

    def walk(items):
        res = []
        for it in items or []:
            if isinstance(it, str) or (isinstance(it, dict) and 'href' in it and 'contents' not in it):
                src = str(PurePosixPath(it if isinstance(it, str) else it['href']))
                p = by_src.get(src)
                if p is None or src in seen: continue  # e.g. nbdev.yml listed by a plain `nbdev-proc-nbs`
                seen.add(src); res.append(('page', p, it.get('text') if isinstance(it, dict) else None))
            elif isinstance(it, dict) and 'contents' in it:
                sub = walk(it['contents'])
                idx = by_src.get(str(PurePosixPath(it['href']))) if it.get('href') else None
                if idx: seen.add(str(idx.src))
                if sub or idx: res.append(('section', it.get('section', ''), idx, sub))
        return res

    contents = ((conf.get('website') or {}).get('sidebar') or {}).get('contents')
    if isinstance(conf.get('website', {}).get('sidebar'), list):  # several sidebars: use the first
        contents = conf['website']['sidebar'][0].get('contents')
    tree = walk(contents if isinstance(contents, list) else [])
    rest = [p for p in pages if str(p.src) not in seen]  # e.g. .md pages, or the generated index
    rest.sort(key=lambda p: (p.out.as_posix() != 'index.html', str(p.src)))
    home = [('page', p, None) for p in rest if p.out.as_posix() == 'index.html']
    return home + tree + [('page', p, None) for p in rest if p.out.as_posix() != 'index.html']


def sidebar_html(tree, current: Page) -> str:
    def render(items):
        out = ['<ul>']
        for it in items:
            if it[0] == 'page':
                _, p, text = it
                cls = ' class="active"' if p is current else ''
                out.append(f'<li><a{cls} href="{relpath(p.out, current)}">{html.escape(text or p.title)}</a></li>')
            else:
                _, name, idx, sub = it
                if idx:
                    cls = ' class="active"' if idx is current else ''
                    head = f'<a{cls} href="{relpath(idx.out, current)}">{html.escape(idx.title)}</a>'
                else: head = f'<span class="section-title">{html.escape(name)}</span>'
                out.append(f'<li>{head}{render(sub)}</li>')
        out.append('</ul>')
        return '\n'.join(out)
    return render(tree)


def fallback_index(pages: list[Page]) -> Page:
    "A landing page listing the others, for a project that has no index.ipynb yet."
    import nbformat
    lines = ['Pages in this site (no `index.ipynb` yet, so this list stands in for the home page):', '']
    lines += [f'- [{p.title}]({p.out.as_posix()})' + (f': {p.description}' if p.description else '') for p in pages]
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell('\n'.join(lines))])
    return Page(src=PurePosixPath('index.ipynb'), out=PurePosixPath('index.html'), title='Home', nb=nb, generated=True)


# ---------------------------------------------------------------- build

def build_site(proc: Path, out: Path, cfg, mathjax_url: str = '') -> list[Page]:
    "Render every page in `proc` into `out`; returns the pages."
    from jinja2 import Environment
    from pygments.formatters import HtmlFormatter
    conf = load_site_config(proc)
    site = conf.get('website') or {}
    site_title = site.get('title') or cfg.get('title') or cfg.get('lib_name', 'docs')
    site_url = site.get('site-url') or (cfg.get('doc_host', '') + cfg.get('doc_baseurl', ''))

    pages = [read_page(proc, rel) for rel in find_pages(proc)]
    if not any(p.out == PurePosixPath('index.html') for p in pages): pages.insert(0, fallback_index(pages))
    src2out = {p.src: p.out for p in pages if not p.generated}

    if out.exists():  # only ever delete a previous build of this script
        if out.resolve() in (ROOT, *ROOT.parents) or (any(out.iterdir()) and not (out/'_static/docs.css').exists()):
            sys.exit(f'refusing to overwrite {out}: it is not empty and not a previous docs build')
        shutil.rmtree(out)
    (out/'_static').mkdir(parents=True)
    # resources next to the pages (images referenced from markdown, styles.css, data files)
    for f in sorted(proc.rglob('*')):
        rel = f.relative_to(proc)
        if not f.is_file() or any(part[0] in '_.' for part in rel.parts): continue
        if f.suffix in PAGE_SUFFIXES + ('.yml', '.yaml'): continue
        (out/rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(f, out/rel)
    for f in ASSETS.iterdir(): shutil.copy2(f, out/'_static'/f.name)
    (out/'_static/pygments.css').write_text(HtmlFormatter(style='default').get_style_defs('.highlight'))
    css = ((conf.get('format') or {}).get('html') or {}).get('css') or []
    extra_css = [c for c in ([css] if isinstance(css, str) else css) if (out/c).exists()]  # nbs/styles.css

    exporter = make_exporter()
    for p in pages:
        body, _ = exporter.from_notebook_node(quarto_cells(p.nb))
        postprocess(p, body, site_url, src2out)

    navbar = site.get('navbar') or {}
    nav_right = [{'href': it.get('href', '#'), 'text': it.get('text') or it.get('icon', '').capitalize() or it.get('href')}
                 for it in (navbar.get('right') or []) + (navbar.get('left') or []) if isinstance(it, dict)]
    if site.get('repo-url') and not any(i['href'].rstrip('/') == site['repo-url'].rstrip('/') for i in nav_right):
        nav_right.append({'href': site['repo-url'], 'text': 'Repository'})
    search = navbar.get('search', True) is not False
    tree = sidebar_tree(conf, pages)
    tmpl = Environment(autoescape=False).from_string(PAGE_TEMPLATE)
    esc = html.escape
    for p in pages:
        shown = Page(src=p.src, out=p.out, title=esc(p.title), description=esc(p.description))
        text = tmpl.render(page=shown, root='../' * p.depth, site_title=esc(site_title), sidebar=sidebar_html(tree, p),
                           body=p.html, toc=toc_html(p.toc), nav_right=[{'href': esc(i['href']), 'text': esc(i['text'])}
                                                                        for i in nav_right],
                           search=search, extra_css=extra_css, mathjax_url=mathjax_url)
        (out/p.out).parent.mkdir(parents=True, exist_ok=True)
        (out/p.out).write_text(text, encoding='utf-8')
    entries = [e for p in pages for e in p.search]
    (out/'_static/search-index.js').write_text('window.ISONB_SEARCH = ' + json.dumps(entries, ensure_ascii=False) + ';\n',
                                                encoding='utf-8')
    (out/'.nojekyll').touch()
    return pages


# ---------------------------------------------------------------- check

def _nbdev_doc_name(rel: PurePosixPath) -> PurePosixPath:
    "The page name nbdev's doc links assume (`nbpath2html`: numeric prefix dropped, lower case)."
    return rel.with_name(re.sub(r'^\d+[a-zA-Z0-9]*_', '', rel.name.lower())).with_suffix('.html')


def check_site(out: Path, nbs_path: Path, pages: list[Page] | None = None,
               offline: bool = True) -> tuple[list[str], list[str], list[tuple]]:
    "Problems and warnings found in the site at `out`, and summary rows (page, title, size, images)."
    from bs4 import BeautifulSoup
    problems, warnings, rows, ids, soups = [], [], [], {}, {}
    htmls = sorted(p for p in out.rglob('*.html') if not any(part.startswith(('_', '.'))
                                                              for part in p.relative_to(out).parts[:-1]))
    for f in htmls:
        rel = f.relative_to(out).as_posix()
        text = f.read_text(encoding='utf-8', errors='replace')
        if not text.strip(): problems.append(f'{rel}: empty page'); continue
        soup = BeautifulSoup(text, 'html.parser')
        soups[rel] = soup
        ids[rel] = {t['id'] for t in soup.find_all(id=True)} | {t['name'] for t in soup.find_all('a', attrs={'name': True})}
        main = soup.find('main') or soup
        title = soup.find('h1').get_text(strip=True) if soup.find('h1') else (soup.title.string if soup.title else '')
        rows.append((rel, title, f.stat().st_size, len(main.find_all('img'))))
        page_text = main.get_text()
        for marker in TRACEBACK_MARKERS:
            if marker in page_text: problems.append(f'{rel}: contains "{marker}" (a failed show_doc or a stored error output)')
        if main.select('.output_error'): problems.append(f'{rel}: contains an error output (a cell that raised)')
        if len(page_text.strip()) < 20: problems.append(f'{rel}: page has (almost) no text')
    # links and anchors
    for rel, soup in soups.items():
        base = PurePosixPath(rel).parent
        for tag in soup.find_all(True):
            for attr in ('href', 'src'):
                url = tag.get(attr)
                if not url: continue
                parts = urlsplit(url)
                if parts.scheme in ('http', 'https') or url.startswith('//'):
                    if offline and (tag.name == 'script' or (tag.name == 'link' and 'stylesheet' in (tag.get('rel') or []))):
                        problems.append(f'{rel}: <{tag.name}> needs the network: {url}')
                    continue
                if parts.scheme: continue  # mailto:, data:, javascript:
                target = PurePosixPath(os.path.normpath((base/unquote(parts.path)).as_posix())) if parts.path else PurePosixPath(rel)
                if not parts.path:
                    pass
                elif target.as_posix().startswith('..') or not (out/target).exists():
                    problems.append(f'{rel}: broken link {attr}="{url}" ({target} is not in the site)'); continue
                if parts.fragment and target.suffix == '.html':
                    tid = ids.get(target.as_posix())
                    if tid is not None and unquote(parts.fragment) not in tid:
                        # nbdev links every backticked name in _modidx, private ones too, but only public
                        # names get a show_doc heading: the same link on the Quarto site lands on the page top
                        warnings.append(f'{rel}: link "{url}" points to a missing anchor #{parts.fragment} in {target}')
    # every notebook has its page, under the name nbdev's doc links use
    by_src = {str(p.src): p for p in (pages or []) if not p.generated}
    for nb in sorted(nbs_path.rglob('*.ipynb')):
        rel = PurePosixPath(nb.relative_to(nbs_path).as_posix())
        if any(part[0] in '_.' for part in rel.parts): continue
        page = by_src.get(str(rel))
        if pages is not None and page is None:
            problems.append(f'{rel}: notebook has no page (was it processed into _proc/?)'); continue
        out_name = page.out if page else _nbdev_doc_name(rel)
        if not (out/out_name).exists():
            problems.append(f'{rel}: page {out_name} missing from the site')
        elif page and out_name != _nbdev_doc_name(rel):
            problems.append(f'{rel}: Quarto names its page {out_name} but nbdev doc links expect '
                            f'{_nbdev_doc_name(rel)}: start the notebook with a `# Title` markdown cell')
    if not (out/'index.html').exists(): problems.append('index.html missing')
    return problems, warnings, rows


def print_table(rows) -> None:
    w = max([len(r[0]) for r in rows] + [4]); tw = min(max([len(r[1]) for r in rows] + [5]), 48)
    print(f"{'page':<{w}}  {'title':<{tw}}  {'size':>9}  {'#img':>4}")
    print(f"{'-'*w}  {'-'*tw}  {'-'*9}  {'-'*4}")
    for page, title, size, nimg in rows:
        print(f'{page:<{w}}  {title[:tw]:<{tw}}  {size:>9,}  {nimg:>4}')


# ---------------------------------------------------------------- CLI

def write_readme(proc: Path, root: Path) -> bool:
    "README.md from the processed index notebook (what `nbdev-readme` does through Quarto). True if it changed."
    from nbconvert import MarkdownExporter
    import nbformat
    nb = nbformat.read(proc/'index.ipynb', as_version=4)
    body, _ = MarkdownExporter().from_notebook_node(nb)
    fm, body = split_frontmatter(body)
    body = re.sub(r'^#\| .*\n', '', body, flags=re.M)   # cell directives, as Quarto strips them
    body = re.sub(r'<!-- WARNING: THIS FILE WAS AUTOGENERATED! DO NOT EDIT! -->\s*', '', body).strip()
    head = f"# {fm.get('title', 'README')}\n\n> {fm['description']}\n\n" if fm.get('description') else f"# {fm.get('title', '')}\n\n"
    text = ('<!-- Generated from nbs/index.ipynb by tools/build_docs.py; edit the notebook, not this file. -->\n\n'
            + head + re.sub(r'\n{3,}', '\n\n', body) + '\n')
    readme = root/'README.md'
    if readme.exists() and readme.read_text() == text: return False
    readme.write_text(text)
    return True


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--out', default='_site', help='output folder for the offline site (default: _site)')
    ap.add_argument('--check', action='store_true', help='verify the built site and print a summary table')
    ap.add_argument('--strict', action='store_true', help='with --check: links to missing anchors are errors too')
    ap.add_argument('--renderer', choices=['auto', 'quarto', 'offline'], default='auto',
                    help='auto: Quarto (`nbdev-docs`) if `quarto` is on PATH, else offline (nbconvert)')
    ap.add_argument('--no-proc', action='store_true', help='reuse _proc/ as it is (skip the nbdev staging step)')
    ap.add_argument('--n-workers', type=int, default=min(8, os.cpu_count() or 1),
                    help='processes for nbdev staging (show_doc execution)')
    ap.add_argument('--mathjax-url', default='', help='load MathJax from this URL for LaTeX (off: the site needs no network)')
    args = ap.parse_args(argv)
    root = ROOT
    t0 = time.time()

    use_quarto = args.renderer == 'quarto' or (args.renderer == 'auto' and shutil.which('quarto'))
    if use_quarto:
        rc = run_quarto(root)
        if args.out != '_site': print('note: --out is ignored with Quarto: nbdev-docs writes to doc_path (_docs/)')
        if rc or not args.check: return rc
        from nbdev.config import get_config
        cfg = get_config(root)
        out, pages = cfg.doc_path, None
    else:
        if args.no_proc:
            os.chdir(root)
            from nbdev.config import get_config
            cfg, proc = get_config(), root/'_proc'
            if not proc.exists(): sys.exit('_proc/ does not exist: run without --no-proc first')
        else:
            print('staging notebooks into _proc/ (nbdev: show_doc, directives, frontmatter)...', flush=True)
            try: cfg, proc = stage_notebooks(root, args.n_workers)
            except Exception as e:
                print(f'error: nbdev could not process the notebooks:\n{type(e).__name__}: {e}', file=sys.stderr)
                return 2
            print(f'  staged in {time.time()-t0:.1f}s', flush=True)
        if (proc/'index.ipynb').exists() and write_readme(proc, root): print('README.md updated from nbs/index.ipynb')
        out = Path(args.out) if Path(args.out).is_absolute() else root/args.out
        t1 = time.time()
        pages = build_site(proc, out, cfg, mathjax_url=args.mathjax_url)
        print(f'rendered {len(pages)} pages into {out} in {time.time()-t1:.1f}s '
              f'(open {out/"index.html"}, or serve with `python -m http.server -d {args.out}`)')
        if not (cfg.nbs_path/'index.ipynb').exists():
            print('note: nbs/index.ipynb does not exist; index.html is a generated list of pages')

    if not args.check: return 0
    problems, warnings, rows = check_site(out, cfg.nbs_path, pages, offline=not use_quarto)
    if args.strict: problems, warnings = problems + warnings, []
    print()
    print_table(rows)
    print(f'\n{len(rows)} pages, {sum(r[3] for r in rows)} images, {time.time()-t0:.1f}s in all')
    if warnings:
        print(f'\n{len(warnings)} warning(s) (--strict makes them errors):')
        for w in warnings: print(f'  - {w}')
    sys.stdout.flush()
    if problems:
        print(f'\nFAILED: {len(problems)} problem(s):', file=sys.stderr)
        for p in problems: print(f'  - {p}', file=sys.stderr)
        return 1
    print('check passed: every notebook has its page, pages non-empty, every internal link resolves')
    return 0


if __name__ == '__main__':
    sys.exit(main())

"""The offline docs build (tools/build_docs.py) on a copy of the repo, plus two probe notebooks.

The copy keeps the working tree untouched (the build writes nbs/sidebar.yml and _proc/ like
`nbdev-docs` does). The probes cover what the project's notebooks may not have yet: an
index.ipynb, a stored matplotlib figure, hidden/echo-less cells, a Quarto callout and a
cross-notebook link.
"""
import base64, io, os, shutil, subprocess, sys
from pathlib import Path

import nbformat
import pytest
from bs4 import BeautifulSoup

ROOT = Path(__file__).resolve().parent.parent
PROBE = '99_docs_probe.ipynb'


def _png() -> str:
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(3, 2))
    ax.plot([0, 1, 2], [0, 1, 4])
    buf = io.BytesIO(); fig.savefig(buf, format='png'); plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode()


def _probe_notebooks(nbs: Path) -> None:
    v4 = nbformat.v4
    if not (nbs/'index.ipynb').exists():
        index = v4.new_notebook(cells=[
            v4.new_markdown_cell('# isonb\n> Deep learning on RNA transcript isoforms, notebook first'),
            v4.new_markdown_cell('Start with [the core notebook](00_core.ipynb).\n\n'
                                 '::: {.callout-note}\nA Quarto callout.\n:::'),
        ])
        nbformat.write(index, nbs/'index.ipynb')
    fig = v4.new_code_cell('plt.plot([0, 1, 2], [0, 1, 4]);', outputs=[
        v4.new_output('display_data', data={'image/png': _png(), 'text/plain': '<Figure size 300x200>'})])
    probe = v4.new_notebook(cells=[
        v4.new_markdown_cell('# Docs probe\n> A throwaway page for tests/test_docs.py'),
        v4.new_markdown_cell('## A figure {#the-figure}\n\nSee [load_config](00_core.ipynb#load_config).'),
        fig,
        v4.new_code_cell('#| hide\nsecret_hidden_cell = 1'),
        v4.new_code_cell('#| echo: false\nprint("only the output")', outputs=[
            v4.new_output('stream', name='stdout', text='only the output\n')]),
    ])
    nbformat.write(probe, nbs/PROBE)


@pytest.fixture(scope='module')
def site(tmp_path_factory):
    repo = tmp_path_factory.mktemp('repo')
    for name in ('nbs', 'tools', 'pyproject.toml', 'isonb'):
        src = ROOT/name
        if src.is_dir(): shutil.copytree(src, repo/name, ignore=shutil.ignore_patterns('.ipynb_checkpoints', '__pycache__'))
        else: shutil.copy2(src, repo/name)
    _probe_notebooks(repo/'nbs')
    out = repo/'_site'
    env = {k: v for k, v in os.environ.items() if k != 'IN_TEST'}  # nbdev skips work when IN_TEST is set
    res = subprocess.run([sys.executable, 'tools/build_docs.py', '--renderer', 'offline', '--out', str(out), '--check'],
                         cwd=repo, capture_output=True, text=True, timeout=300, env=env)
    return repo, out, res


def test_build_and_check_pass(site):
    repo, out, res = site
    assert res.returncode == 0, res.stdout + res.stderr
    assert 'check passed' in res.stdout


def test_every_notebook_has_a_page_linked_from_every_sidebar(site):
    repo, out, res = site
    pages = sorted(p.name for p in out.glob('*.html'))
    assert 'index.html' in pages and 'core.html' in pages and 'docs_probe.html' in pages
    nbs = [p for p in (repo/'nbs').glob('*.ipynb') if not p.name.startswith(('_', '.'))]
    assert len(pages) == len(nbs)
    for page in pages:
        soup = BeautifulSoup((out/page).read_text(), 'html.parser')
        assert {a['href'] for a in soup.select('nav.sidebar a')} == set(pages), page
        assert soup.select_one('header.navbar a.brand')['href'] == 'index.html'
        assert soup.select_one('#search-input') is not None


def test_core_page_content(site):
    _, out, _ = site
    soup = BeautifulSoup((out/'core.html').read_text(), 'html.parser')
    assert soup.select_one('h1.title').get_text() == 'Core'
    assert soup.find(id='load_config') is not None           # show_doc heading, anchor as nbdev links it
    assert 'default_exp' not in soup.get_text()              # directives and hidden cells are gone
    assert soup.select_one('nav.sidebar a.active')['href'] == 'core.html'


def test_probe_page(site):
    _, out, _ = site
    soup = BeautifulSoup((out/'docs_probe.html').read_text(), 'html.parser')
    img = soup.select_one('main img')
    assert img is not None and img['src'].startswith('data:image/png;base64,')
    assert soup.find(id='the-figure') is not None
    assert soup.find('a', href='core.html#load_config') is not None  # .ipynb link -> page
    text = soup.select_one('main').get_text()
    assert 'secret_hidden_cell' not in text and 'only the output' in text and 'print(' not in text
    # nothing that needs the network to render
    assert not soup.select('script[src^=http]') and not soup.select('link[href^=http]')

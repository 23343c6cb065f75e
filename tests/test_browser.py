"""The docs site in a real browser: built, served on localhost, every page opened in headless Debian chromium.

`tools/build_docs.py` builds the site from a copy of the repository (as tests/test_docs.py does). A small HTTP
server in a thread serves it on a free localhost port and injects, into every HTML page it serves, a probe script
that records JavaScript errors, `console.error` calls and failed resource loads (capture-phase `error` events), and
after `load` writes a JSON report (title, main text length, every image's size once loaded) into the page. Chromium
renders each page with `--dump-dom`; the test reads the report from the DOM and the server's own log of 4xx/5xx
answers. ISONB_DOCS_SITE=DIR tests an already built site instead of building one. One screenshot of the start page is kept: under $ISONB_ARTIFACTS when set (CI uploads it), else the
pytest temporary directory; its path is printed in the log either way.

Without chromium the test is skipped, unless ISONB_REQUIRE_BROWSER=1 (CI), where a missing browser fails.
"""
import functools, http.server, json, os, re, shutil, subprocess, sys, threading
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM_FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
                  '--disable-component-update', '--no-first-run']
REPORT_ID = 'isonb-browser-report'
PROBE = """<script>
(function () {
  var errs = [];
  window.addEventListener('error', function (e) {
    var t = e.target;
    errs.push(t && t !== window ? 'failed to load ' + (t.src || t.href || t.tagName) : 'js error: ' + e.message);
  }, true);
  var ce = console.error;
  console.error = function () { errs.push('console.error: ' + Array.prototype.join.call(arguments, ' ')); return ce.apply(console, arguments); };
  window.addEventListener('load', function () {
    var main = document.querySelector('main');
    var imgs = Array.prototype.map.call(document.images, function (i) {
      return {src: (i.currentSrc || i.src).slice(0, 48), complete: i.complete, w: i.naturalWidth, h: i.naturalHeight,
              in_main: !!(main && main.contains(i))};
    });
    var pre = document.createElement('pre');
    pre.id = '%s'; pre.style.display = 'none';
    pre.textContent = JSON.stringify({title: document.title, main_text: main ? main.innerText.trim().length : -1,
                                      h1: (document.querySelector('h1') || {}).textContent || '', errors: errs, images: imgs});
    document.body.appendChild(pre);
  });
})();
</script>""" % REPORT_ID


def _chromium() -> str | None:
    for name in ('chromium', 'chromium-browser', 'google-chrome'):
        p = shutil.which(name) or (f'/usr/bin/{name}' if Path(f'/usr/bin/{name}').exists() else None)
        if p: return p
    return None


class _Handler(http.server.SimpleHTTPRequestHandler):
    "Serves the site, injecting the probe into HTML pages and recording every answer's status."
    log: list = []

    def send_head(self):
        path = Path(self.translate_path(self.path))
        if path.is_dir(): path = path/'index.html'
        if path.suffix == '.html' and path.is_file():
            html = path.read_text(encoding='utf-8')
            html = re.sub(r'(<head[^>]*>)', lambda m: m.group(1) + PROBE, html, count=1, flags=re.I)
            body = html.encode('utf-8')
            self.send_response(200)
            self.send_header('Content-Type', 'text/html; charset=utf-8')
            self.send_header('Content-Length', str(len(body)))
            self.end_headers()
            import io
            return io.BytesIO(body)
        return super().send_head()

    def log_request(self, code='-', size='-'):
        self.log.append((self.path, int(code) if str(code).isdigit() else code))

    def log_message(self, *args): pass


@pytest.fixture(scope='module')
def chromium():
    exe = _chromium()
    if exe is None:
        if os.environ.get('ISONB_REQUIRE_BROWSER') == '1':
            pytest.fail('ISONB_REQUIRE_BROWSER=1 but no chromium on PATH or in /usr/bin (apt-get install chromium)')
        pytest.skip('chromium is not installed (Debian: apt-get install chromium); set ISONB_REQUIRE_BROWSER=1 to fail instead')
    return exe


@pytest.fixture(scope='module')
def site(tmp_path_factory, chromium):
    if os.environ.get('ISONB_DOCS_SITE'):   # an already built site (e.g. CI's docs job output): test it as it is
        return Path(os.environ['ISONB_DOCS_SITE'])
    repo = tmp_path_factory.mktemp('repo')
    for name in ('nbs', 'tools', 'pyproject.toml', 'isonb'):
        src = ROOT/name
        if src.is_dir(): shutil.copytree(src, repo/name, ignore=shutil.ignore_patterns('.ipynb_checkpoints', '__pycache__'))
        else: shutil.copy2(src, repo/name)
    out = repo/'_site'
    env = {k: v for k, v in os.environ.items() if k != 'IN_TEST'}  # nbdev skips work when IN_TEST is set
    res = subprocess.run([sys.executable, 'tools/build_docs.py', '--renderer', 'offline', '--out', str(out)],
                         cwd=repo, capture_output=True, text=True, timeout=900, env=env)
    assert res.returncode == 0, (res.stdout + res.stderr)[-4000:]
    return out


@pytest.fixture(scope='module')
def server(site):
    _Handler.log = []
    handler = functools.partial(_Handler, directory=str(site))
    httpd = http.server.ThreadingHTTPServer(('127.0.0.1', 0), handler)   # port 0: a free port
    thread = threading.Thread(target=httpd.serve_forever, daemon=True); thread.start()
    yield f'http://127.0.0.1:{httpd.server_address[1]}'
    httpd.shutdown(); httpd.server_close()


def _run_chromium(exe: str, tmp: Path, *args, timeout: int = 90) -> subprocess.CompletedProcess:
    profile = tmp/'profile'; profile.mkdir(exist_ok=True)
    return subprocess.run([exe, *CHROMIUM_FLAGS, f'--user-data-dir={profile}', *args], capture_output=True, text=True,
                          timeout=timeout)


@pytest.fixture(scope='module')
def rendered(site, server, chromium, tmp_path_factory):
    "page -> (report dict or None, dumped DOM) for every page of the site, as chromium rendered it."
    tmp = tmp_path_factory.mktemp('chromium')
    pages = sorted(str(p.relative_to(site)) for p in site.rglob('*.html'))
    out = {}
    for page in pages:
        res = _run_chromium(chromium, tmp, '--virtual-time-budget=5000', '--dump-dom', f'{server}/{page}')
        m = re.search(rf'<pre id="{REPORT_ID}"[^>]*>(.*?)</pre>', res.stdout, re.S)
        import html
        out[page] = (json.loads(html.unescape(m.group(1))) if m else None, res.stdout)
    return out


def test_every_page_renders_without_errors(rendered, site):
    assert len(rendered) >= 5 and 'index.html' in rendered, sorted(rendered)
    problems = []
    for page, (rep, dom) in rendered.items():
        if rep is None: problems.append(f'{page}: no report in the DOM (page did not load; DOM starts {dom[:200]!r})'); continue
        if rep['errors']: problems.append(f"{page}: {rep['errors'][:3]}")
        if not rep['title'].strip(): problems.append(f'{page}: empty <title>')
        if rep['main_text'] < 50: problems.append(f"{page}: <main> holds {rep['main_text']} characters of text")
        if 'Traceback (most recent call last)' in dom: problems.append(f'{page}: a Python traceback is rendered')
    assert not problems, '\n'.join(problems)


def test_no_failed_requests(rendered):
    # /favicon.ico is the browser's own request, not a page's (the site declares no icon)
    failed = [(path, code) for path, code in _Handler.log
              if not (isinstance(code, int) and code < 400) and path != '/favicon.ico']
    assert not failed, failed[:10]
    assert len(_Handler.log) >= len(rendered)


def test_figures_appear(rendered):
    with_figures = {page: rep['images'] for page, (rep, _) in rendered.items() if rep and any(i['in_main'] for i in rep['images'])}
    assert len(with_figures) >= 3, f'only {sorted(with_figures)} show figures'   # the site's notebooks store seaborn figures
    broken = [(page, i['src']) for page, imgs in with_figures.items() for i in imgs
              if not (i['complete'] and i['w'] > 0 and i['h'] > 0)]
    assert not broken, broken[:10]
    n = sum(len(v) for v in with_figures.values())
    print(f'{n} figures on {len(with_figures)} pages loaded with non-zero size')


def test_screenshot(server, chromium, tmp_path, capsys):
    art = Path(os.environ['ISONB_ARTIFACTS']) if os.environ.get('ISONB_ARTIFACTS') else tmp_path
    art.mkdir(parents=True, exist_ok=True)
    shot = art/'docs_index_screenshot.png'
    res = _run_chromium(chromium, tmp_path, '--window-size=1280,900', '--virtual-time-budget=5000',
                        f'--screenshot={shot}', f'{server}/index.html')
    assert shot.exists() and shot.stat().st_size > 10_000, res.stderr[-2000:]
    png = shot.read_bytes()
    assert png[:8] == b'\x89PNG\r\n\x1a\n'
    width, height = int.from_bytes(png[16:20], 'big'), int.from_bytes(png[20:24], 'big')
    assert (width, height) == (1280, 900)
    with capsys.disabled(): print(f'\ndocs screenshot (1280x900): {shot}')

"The main job end to end: `isonb run`, `isonb predict`, the papermill notebook, and bad input to predict."
import json, subprocess, sys
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import pytest

from conftest import ROOT, run_isonb
from isonb import datasets


@pytest.fixture(scope='module')
def smoke_run(tmp_path_factory):
    out = tmp_path_factory.mktemp('runs')
    r = run_isonb('run', '--config', ROOT/'configs/smoke.yaml', '--out-dir', out)
    assert r.returncode == 0, r.stderr[-3000:]
    return out/'smoke', r


def test_run_writes_results_report_and_models(smoke_run):
    run_dir, r = smoke_run
    res = pd.read_csv(run_dir/'results.csv')
    assert set(res['method']) == {'mean_fraction', 'pca+fraction'} and set(res['fold']) == {'diku_1'}
    v = res.set_index(['method', 'metric'])['value']
    # the baseline knows each gene's expression exactly: held-out per-sample correlation must be high, fractions sane
    assert v['mean_fraction', 'pearson_sample_mean'] > 0.9
    assert 0 < v['mean_fraction', 'fraction_mae'] < 0.2 and 0.5 < v['mean_fraction', 'dominant_accuracy'] <= 1
    assert 'dominant_accuracy' in r.stdout
    html = (run_dir/'report.html').read_text()
    assert 'data:image/png;base64' in html and 'macrophage_donors' in html
    assert {p.name for p in (run_dir/'models').iterdir()} == {'mean_fraction', 'pca_fraction'}


def _geuvadis_genes(tmp_path) -> Path:
    "A user's gene-level h5ad: GEUVADIS genes without isonb's interop bookkeeping in uns."
    g = datasets.geuvadis_gencode('salmon').genes.copy()
    g.uns = {}
    p = tmp_path/'geuvadis_genes.h5ad'; g.write_h5ad(p); return p


def test_predict_on_other_study(smoke_run, tmp_path):
    run_dir, _ = smoke_run
    model = run_dir/'models'/'pca_fraction'
    genes = _geuvadis_genes(tmp_path)
    r = run_isonb('predict', '--model', model, '--genes', genes, '-o', tmp_path/'pred.h5ad')
    assert r.returncode == 2 and 'fill-missing' in r.stderr and not (tmp_path/'pred.h5ad').exists()   # newer Ensembl genes absent
    r = run_isonb('predict', '--model', model, '--genes', genes, '-o', tmp_path/'pred.h5ad', '--fill-missing')
    assert r.returncode == 0, r.stderr
    p = ad.read_h5ad(tmp_path/'pred.h5ad')
    assert p.n_obs == 6 and p.n_vars > 1000 and np.isfinite(p.X).all() and (p.X >= 0).all()
    assert 'gene_id' in p.var


def test_predict_bad_input(smoke_run, tmp_path):
    run_dir, _ = smoke_run
    model = run_dir/'models'/'pca_fraction'
    mouse = tmp_path/'mouse.h5ad'; datasets.tasic().genes.write_h5ad(mouse)
    r = run_isonb('predict', '--model', model, '--genes', mouse, '-o', tmp_path/'x.h5ad')
    assert r.returncode == 2 and 'Same species' in r.stderr and not (tmp_path/'x.h5ad').exists()
    # a model directory from another format version
    import shutil
    old = tmp_path/'old_model'; shutil.copytree(model, old)
    meta = json.loads((old/'model.json').read_text()); meta['format_version'] = 0; (old/'model.json').write_text(json.dumps(meta))
    r = run_isonb('predict', '--model', old, '--genes', _geuvadis_genes(tmp_path), '-o', tmp_path/'x.h5ad')
    assert r.returncode == 2 and 'Retrain' in r.stderr and not (tmp_path/'x.h5ad').exists()
    # NaN in the input
    g = ad.read_h5ad(_geuvadis_genes(tmp_path)); g.layers['tpm'][0, 0] = np.nan; g.write_h5ad(tmp_path/'nan.h5ad')
    r = run_isonb('predict', '--model', model, '--genes', tmp_path/'nan.h5ad', '-o', tmp_path/'x.h5ad', '--fill-missing')
    assert r.returncode == 2 and 'NaN' in r.stderr and not (tmp_path/'x.h5ad').exists()


def _ensure_kernel(name='isonb'):
    from jupyter_client.kernelspec import KernelSpecManager
    if name not in KernelSpecManager().find_kernel_specs():
        subprocess.run([sys.executable, '-m', 'ipykernel', 'install', '--sys-prefix', '--name', name], check=True)


def test_papermill_notebook_runs_the_same_pipeline(tmp_path):
    papermill = pytest.importorskip('papermill')
    _ensure_kernel()
    out_nb = tmp_path/'executed.ipynb'
    papermill.execute_notebook(str(ROOT/'papermill_runs/isoform_pipeline.ipynb'), str(out_nb), kernel_name='isonb', cwd=str(ROOT),
                               parameters={'config': 'configs/smoke.yaml', 'out_dir': str(tmp_path/'runs'),
                                           'overrides': ['model.train.epochs=2']}, progress_bar=False)
    assert (tmp_path/'runs/smoke/results.csv').exists()
    nb = json.loads(out_nb.read_text())
    assert any('dominant_accuracy' in ''.join(o.get('data', {}).get('text/plain', '')) for c in nb['cells'] for o in c.get('outputs', []))

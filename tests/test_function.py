"Tests of the isoform function system: the `isonb function` command on IsoResolve-format files, and bad input."
import gzip, shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from isonb.core import data_dir

ROOT = Path(__file__).resolve().parent.parent


def _small_isoresolve(dst: Path, n_genes: int = 600, prefix: str = 'train') -> Path:
    "A real subset of the IsoResolve mouse files: all positive genes plus the first negatives."
    src = data_dir('function/isoresolve_mouse')
    lab = pd.read_csv(src/'train_label.label', sep='\t', header=None)
    keep = set(lab[lab[2] == 1][0]) | set(lab[lab[2] == 0][0][:n_genes])
    iso = pd.read_csv(src/'train_iso.tsv.gz', sep='\t', header=None)
    gene = pd.read_csv(src/'train_gene.tsv.gz', sep='\t', header=None)
    dst.mkdir(parents=True, exist_ok=True)
    iso[iso[1].isin(keep)].to_csv(dst/f'{prefix}_iso.tsv', sep='\t', header=False, index=False)
    gene[gene[0].isin(keep)].to_csv(dst/f'{prefix}_gene.tsv', sep='\t', header=False, index=False)
    lab[lab[0].isin(keep)].to_csv(dst/f'{prefix}_label.label', sep='\t', header=False, index=False)
    return dst


def test_function_help(isonb):
    for args in (['function'], ['function', 'train'], ['function', 'predict']):
        r = isonb(*args, '--help')
        assert r.returncode == 0 and 'usage: isonb' in r.stdout, (args, r.stderr)


def test_function_train_and_predict(isonb, tmp_path):
    d = _small_isoresolve(tmp_path/'data')
    model = tmp_path/'model.pt'
    r = isonb('function', 'train', '--data', d, '--out', model, '--config', ROOT/'configs/function_isoresolve.yaml',
              '--set', 'train.epochs=3')
    assert r.returncode == 0, r.stderr
    assert 'validation ROC-AUC' in r.stdout and model.exists()
    for f in ('iso', 'gene'): shutil.copy(d/f'train_{f}.tsv', d/f'test_{f}.tsv')
    r = isonb('function', 'predict', '--model', model, '--data', d, '--out', tmp_path/'out')
    assert r.returncode == 0, r.stderr
    iso = pd.read_csv(tmp_path/'out'/'isoform_scores.tsv', sep='\t', index_col=0)
    gene = pd.read_csv(tmp_path/'out'/'gene_scores.tsv', sep='\t', index_col=0)
    src_iso = pd.read_csv(d/'test_iso.tsv', sep='\t', header=None, index_col=0)
    assert list(iso.index) == list(src_iso.index)  # every isoform, in file order
    assert iso['label'].between(0, 1).all()
    # a gene's score is the max over its isoforms (multiple-instance pooling)
    np.testing.assert_allclose(iso.groupby('gene')['label'].max().loc[gene.index], gene['label'], rtol=1e-6)


def test_function_bad_input_is_a_clear_error(isonb, tmp_path):
    d = _small_isoresolve(tmp_path/'data', n_genes=50)
    lines = (d/'train_iso.tsv').read_text().splitlines()
    parts = lines[3].split('\t'); parts[5] = 'n/a'; lines[3] = '\t'.join(parts)
    (d/'train_iso.tsv').write_text('\n'.join(lines) + '\n')
    r = isonb('function', 'train', '--data', d, '--out', tmp_path/'m.pt')
    assert r.returncode == 2 and 'row 4' in r.stderr and 'non-numeric' in r.stderr and 'Traceback' not in r.stderr
    assert not (tmp_path/'m.pt').exists()  # nothing half-written
    r = isonb('function', 'predict', '--model', tmp_path/'nope.pt', '--data', d, '--out', tmp_path/'out')
    assert r.returncode == 2 and 'does not exist' in r.stderr
    r = isonb('function', 'train', '--data', tmp_path/'empty', '--out', tmp_path/'m.pt')
    assert r.returncode == 2 and 'not a directory' in r.stderr


def test_hierarchy_layer_on_real_go():
    import torch
    from isonb.go import read_go_tsv, HierarchyMax
    d = data_dir('function/go')
    go = read_go_tsv(d/'go_terms_2022-07-01.tsv.gz', d/'go_parents_2022-07-01.tsv.gz')
    terms = ['GO:0005739', 'GO:0005743', 'GO:0005759', 'GO:0005634', 'GO:0043231']  # mitochondrion, inner membrane, matrix, nucleus, organelle
    layer = HierarchyMax.from_ontology(go, terms)
    s = layer(torch.tensor([[0.0, 0.8, 0.1, 0.3, 0.2]]))[0]
    assert s[0] >= 0.8 and s[4] >= 0.8 and s[3] == pytest.approx(0.3)  # mitochondrion and organelle lifted by the inner membrane


def test_protein_input_errors():
    from isonb.data import IsonbInputError
    from isonb.protein import check_protein, unirep_tokens
    with pytest.raises(IsonbInputError, match='stop codon'): check_protein('MKV*LL', 'iso1')
    with pytest.raises(IsonbInputError, match="non-amino-acid letter 'J1'|non-amino-acid letter '1'"): unirep_tokens(['MKV1'])


def test_function_experiment_help_and_bad_name(isonb):
    r = isonb('function', 'experiment', '--help')
    assert r.returncode == 0 and 'genome-regions' in r.stdout and 'isoformswitch' in r.stdout
    r = isonb('function', 'experiment', 'chr1')
    assert r.returncode == 2 and 'invalid choice' in r.stderr and 'Traceback' not in r.stderr


def test_function_experiment_is_cached(isonb, tmp_path):
    "An experiment run through the command stores its per-term table; the same call again reads it back unchanged."
    env = {'ISONB_CACHE': str(tmp_path/'cache'), 'OMP_NUM_THREADS': '1'}
    args = ('function', 'experiment', 'isoresolve', '--seeds', '0', '--set', 'train.epochs=1', 'batches_per_epoch=2')
    r1 = isonb(*args, '--out', tmp_path/'a.tsv', env=env)
    assert r1.returncode == 0, r1.stderr
    assert 'MIL (isoform expression)' in r1.stdout and 'prior' in r1.stdout
    stored = list((tmp_path/'cache'/'function'/'isoresolve').glob('*.parquet'))
    assert len(stored) == 1
    mtime = stored[0].stat().st_mtime
    r2 = isonb(*args, '--out', tmp_path/'b.tsv', env=env)
    assert r2.returncode == 0, r2.stderr
    assert stored[0].stat().st_mtime == mtime  # read, not recomputed
    a, b = pd.read_csv(tmp_path/'a.tsv', sep='\t'), pd.read_csv(tmp_path/'b.tsv', sep='\t')
    pd.testing.assert_frame_equal(a, b)
    assert set(a['method']) >= {'MIL (isoform expression)', 'gene LR', 'prior'} and len(a) == 5 * a['method'].nunique()
    assert np.allclose(a.loc[a.method == 'prior', 'roc_auc'], 0.5)

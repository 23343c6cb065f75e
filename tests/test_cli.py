"Integration tests of the `isonb` command on the real data under ISONB_DATA."
import gzip, shutil
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import pytest

from isonb.core import data_dir


def test_help_everywhere(isonb):
    for args in ([], ['data'], ['data', 'import'], ['datasets'], ['datasets', 'summary']):
        r = isonb(*args, '--help')
        assert r.returncode == 0 and 'usage: isonb' in r.stdout, (args, r.stderr)


def test_missing_data_dir_says_what_to_set(isonb, tmp_path):
    r = isonb('datasets', 'summary', env={'ISONB_DATA': str(tmp_path/'nowhere'), 'ISONB_CACHE': str(tmp_path/'cache')})
    assert r.returncode == 2
    assert 'Set ISONB_DATA' in r.stderr and 'Traceback' not in r.stderr


def test_datasets_summary_writes_table_and_figure(isonb, tmp_path):
    r = isonb('datasets', 'summary', '--out', tmp_path)
    assert r.returncode == 0, r.stderr
    t = pd.read_csv(tmp_path/'datasets_summary.csv', index_col=0)
    assert t.loc['macrophage', 'samples'] == 20 and t.loc['flames', 'samples'] == 991
    assert t.loc['flames', 'multi_isoform_genes'] == 353
    # the same reads quantified by Salmon and kallisto against RefSeq: identical transcript sets
    assert t.loc['geuvadis_refseq_salmon', 'transcripts'] == t.loc['geuvadis_refseq_kallisto', 'transcripts']
    png = (tmp_path/'isoforms_per_gene.png').read_bytes()
    assert png[:8] == b'\x89PNG\r\n\x1a\n' and len(png) > 10_000


def _copy_kallisto(dst: Path, runs=('ERR188088', 'ERR188297')) -> Path:
    src = data_dir('bulk/geuvadis_refseq/kallisto')
    for r in runs: shutil.copytree(src/r, dst/r)
    return dst


def test_import_real_kallisto_roundtrip(isonb, tmp_path):
    q = _copy_kallisto(tmp_path/'quants')
    r = isonb('data', 'import', q, '--tx2gene', data_dir('bulk/geuvadis_refseq/tx2gene.csv'), '-o', tmp_path/'out/refseq')
    assert r.returncode == 0, r.stderr
    g = ad.read_h5ad(tmp_path/'out/refseq_genes.h5ad'); t = ad.read_h5ad(tmp_path/'out/refseq_transcripts.h5ad')
    assert list(g.obs_names) == ['ERR188088', 'ERR188297'] and g.obs_names.equals(t.obs_names)
    raw = pd.read_csv(q/'ERR188088/abundance.tsv', sep='\t', index_col=0)
    np.testing.assert_array_equal(t.layers['counts'][0], raw.loc[t.var_names, 'est_counts'].to_numpy())
    summed = pd.Series(t.layers['counts'][0], index=t.var['gene_id'].to_numpy()).groupby(level=0).sum()
    np.testing.assert_allclose(g.layers['counts'][0], summed.loc[g.var_names].to_numpy(), rtol=1e-12)


@pytest.mark.parametrize('damage, message', [
    ('truncate', 'unreadable'),
    ('empty', 'is empty'),
    ('negative', 'negative'),
    ('other_index', "lists different features"),
])
def test_import_bad_input_writes_nothing(isonb, tmp_path, damage, message):
    q = _copy_kallisto(tmp_path/'quants')
    f = q/'ERR188297/abundance.tsv'
    if damage == 'truncate':
        gz = q/'ERR188297/abundance.tsv.gz'; gz.write_bytes(gzip.compress(f.read_bytes())[:5000]); f.unlink()
    elif damage == 'empty': f.write_text('')
    elif damage == 'negative':
        df = pd.read_csv(f, sep='\t'); df.loc[10, 'est_counts'] = -3; df.to_csv(f, sep='\t', index=False)
    elif damage == 'other_index':
        df = pd.read_csv(f, sep='\t'); df.iloc[:-100].to_csv(f, sep='\t', index=False)
    out = tmp_path/'out'
    r = isonb('data', 'import', q, '--tx2gene', data_dir('bulk/geuvadis_refseq/tx2gene.csv'), '-o', out/'x')
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert message in r.stderr and 'Traceback' not in r.stderr
    assert 'ERR188297' in r.stderr   # names the offending sample/file
    assert not out.exists() or list(out.iterdir()) == []


def test_import_wrong_species_map(isonb, tmp_path):
    q = _copy_kallisto(tmp_path/'quants')
    r = isonb('data', 'import', q, '--tx2gene', data_dir('annotation/mouse_tx2gene_grcm38.csv.gz'), '-o', tmp_path/'x')
    assert r.returncode == 2 and 'map to no gene' in r.stderr
    assert not list(tmp_path.glob('x*'))

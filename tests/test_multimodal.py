"Multi-modal isoform expression: the IsoFormer/GTEx table reader, masks for missing modalities, and the CLI end to end on a small table."
import os

import numpy as np
import pandas as pd
import pytest
import torch

from isonb.cli import main
from isonb.data import IsonbInputError
from isonb.multimodal import (GTEX_TISSUES, EncoderConfig, MultiModalConfig, MultiModalDataset, MultiModalRegressor,
                              load_multimodal, read_isoformer_table)

torch.set_num_threads(1)


def _table(n=24, seed=0):
    "A small table in the public IsoFormer layout (30 GTEx tissue columns), written by the test itself."
    rng = np.random.default_rng(seed)
    nts = lambda k: ''.join(rng.choice(list('ACGT'), k))
    rows = []
    for i in range(n):
        rna = nts(int(rng.integers(40, 160)))
        rows.append({'transcript_id': f'ENST{i:011d}.2', 'gene_id': f'ENSG{i // 3:011d}.1', 'DNA': '' if i % 5 == 4 else nts(200),
                     'RNA': rna, 'Protein': '' if i % 4 == 3 else ''.join(rng.choice(list('ACDEFGHIKLMNPQRSTVWY'), 30)) + '*',
                     # a learnable signal: GC content of the RNA drives expression in every tissue
                     **{t: 4 * (rna.count('G') + rna.count('C')) / len(rna) + 0.1 * rng.normal() for t in GTEX_TISSUES}})
    return pd.DataFrame(rows)


TINY = ['model.d_model=8', 'model.head_hidden=8', 'model.n_heads=2', 'batch_size=8', 'seeds=[0]', 'train.epochs=2',
        'val_frac=0.2', 'test_frac=0.2', 'dna_window=100',
        'model.dna={kind: cnn, max_len: 100, crop: center, channels: 8, n_layers: 2, kernel_size: 5, pool: 4}',
        'model.rna={kind: resnet, max_len: 160, crop: ends, channels: 8, n_layers: 2, kernel_size: 5, pool: 4}',
        'model.protein={kind: cnn, max_len: 40, crop: start, channels: 8, n_layers: 1, kernel_size: 3, pool: 2}']


def _set(args):
    return [x for a in args for x in ('--set', a)]


def test_reader_keeps_rows_without_a_modality(tmp_path):
    _table().to_csv(tmp_path/'gtex.csv.gz', index=False)
    a = read_isoformer_table(tmp_path/'gtex.csv.gz')
    assert a.shape == (24, 30) and list(a.var_names) == list(GTEX_TISSUES)
    assert (a.obs['protein'] == '').sum() == 6 and (a.obs['dna'] == '').sum() == 4  # kept, not dropped
    model = MultiModalRegressor(MultiModalConfig(d_model=8, head_hidden=8, n_heads=2), a.n_vars)
    batch = MultiModalDataset(a, model)[list(range(8))]
    assert batch['protein_present'].tolist() == [True, True, True, False] * 2
    out = model(batch)
    assert out.shape == (8, 30) and torch.isfinite(out).all()


def test_reader_errors_name_the_problem(tmp_path):
    t = _table(); t.loc[2, 'Protein'] = 'MK#V'
    t.to_csv(tmp_path/'bad.csv', index=False)
    with pytest.raises(IsonbInputError, match=r"ENST00000000002.2: '#'"): read_isoformer_table(tmp_path/'bad.csv')
    t = _table().astype({'Brain': object}); t.loc[0, 'Brain'] = 'high'
    t.to_csv(tmp_path/'bad.csv', index=False)
    with pytest.raises(IsonbInputError, match="non-numeric expression.*'Brain'"): read_isoformer_table(tmp_path/'bad.csv')
    _table().drop(columns=['Testis']).to_csv(tmp_path/'bad.csv', index=False)
    assert main(['multimodal', 'evaluate', '--config', os.devnull, '--set', f'data={tmp_path/"bad.csv"}', *_set(TINY)]) == 2


def test_cli_evaluate_train_predict(tmp_path, capsys):
    _table(n=30).to_csv(tmp_path/'gtex.tsv', sep='\t', index=False)
    data = f'data={tmp_path/"gtex.tsv"}'
    assert main(['multimodal', 'evaluate', '--config', os.devnull, '--out-dir', str(tmp_path/'eval'),
                 *_set([data, *TINY, 'ablations=[aggregators]'])]) == 0
    res = pd.read_csv(tmp_path/'eval'/'results.csv')
    assert res['method'].tolist() == ['mean', 'ridge', 'dna+rna+protein | concat', 'dna+rna+protein', 'dna+rna+protein | perceiver']
    assert res['n_test'].gt(0).all() and np.isfinite(res['r2']).all()
    assert main(['multimodal', 'train', '--config', os.devnull, '--out-dir', str(tmp_path/'model'), *_set([data, *TINY])]) == 0
    # predict on sequences alone (no expression columns): the GTEx layout minus the tissues
    _table(n=6, seed=3).drop(columns=list(GTEX_TISSUES)).to_csv(tmp_path/'new.csv', index=False)
    assert main(['multimodal', 'predict', '--model', str(tmp_path/'model'), '--data', str(tmp_path/'new.csv'),
                 '--dna-window', '100', '-o', str(tmp_path/'pred.csv')]) == 0
    pred = pd.read_csv(tmp_path/'pred.csv', index_col=0)
    assert pred.shape == (6, 30) and list(pred.columns) == list(GTEX_TISSUES) and np.isfinite(pred.to_numpy()).all()
    model, outputs = load_multimodal(tmp_path/'model')
    assert outputs == list(GTEX_TISSUES) and model.cfg.rna.kind == 'resnet'
    assert main(['multimodal', 'predict', '--model', str(tmp_path), '--data', str(tmp_path/'new.csv'), '-o', str(tmp_path/'x.csv')]) == 2
    assert 'not a saved multimodal model' in capsys.readouterr().err

"Tests of the contrastive isoform encoder and the transcript builder it reads, on the shipped isoform sets."
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import torch

from isonb.contrastive import (ContrastiveConfig, EncoderConfig, GenePairSampler, IsoformDataset, IsoformEncoder,
                               ProbeTask, ablation_table, benchmark, collate_tracks, config_hash, dcl_loss, embed,
                               load_encoder, load_isoform_sets, paired_differences, pretrain, probe_cv, probe_table,
                               random_encoder, run_dir, save_encoder, seed_scores)
from isonb.core import data_dir, load_config
from isonb.loaders import assert_no_leakage, group_kfold
from isonb.training import TrainConfig
from isonb.transcripts import build_transcripts, read_fasta

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope='module')
def chr9():
    return load_isoform_sets(['chr9_region'])


def test_tp53_rebuilt_from_genome_matches_gencode():
    d = data_dir('isoforms/chr17_region')
    t = build_transcripts(d/'gencode.v45.annotation.chr17.gtf.gz', d/'hg38_chr17_1-8M.fa.gz')
    ref = {h.split('|')[0]: s for h, s in read_fasta(d/'gencode.v45.transcripts.tp53.fa', full_header=True).items()}
    assert len(ref) == 27
    assert {k: t.loc[k, 'sequence'] for k in ref} == ref
    assert t.loc['ENST00000269305.9', 'protein'].startswith('MEEPQSDPSV')


def test_configs_load():
    for p in sorted((ROOT/'configs').glob('contrastive*.yaml')):
        cfg = load_config(ContrastiveConfig, p)
        assert cfg.encoder.size in ('S', 'M', 'L') and cfg.train.scheduler == 'cosine', p
    assert not load_config(ContrastiveConfig, ROOT/'configs/contrastive_no_splice_pairs.yaml').splice_pairs


def test_embedding_does_not_depend_on_batch(chr9):
    torch.manual_seed(0)
    enc = IsoformEncoder(EncoderConfig(size='S')).eval()
    ds = IsoformDataset(chr9.head(6), max_len=2048)
    b = collate_tracks([ds[i] for i in range(6)])
    with torch.no_grad():
        together = enc(b['x'], b['mask'])
        alone = torch.cat([enc(ds[i]['x'][None], torch.ones(1, ds[i]['x'].shape[1], dtype=torch.bool)) for i in range(6)])
    assert torch.allclose(together, alone, atol=1e-4)


def test_sampler_never_pairs_across_genes(chr9):
    groups = chr9['group'].to_numpy()
    for a, b, n in GenePairSampler(groups, seed=3):
        assert groups[a] == groups[b] and (a != b or n == 1)


def test_dcl_prefers_aligned_pairs():
    z = torch.eye(16)[:8] * 3
    assert dcl_loss(z, z)['loss'] < dcl_loss(z, z.roll(1, 0))['loss']


def test_pretrain_resume_save_load_embed(chr9, tmp_path):
    cfg = ContrastiveConfig(max_len=128, batch_genes=8, valid_frac=0.2, encoder=EncoderConfig(n_blocks=2),
                            train=TrainConfig(epochs=1, lr=1e-3, scheduler='cosine', warmup_epochs=0.5, progress=False))
    enc, hist = pretrain(cfg, tmp_path/'run', table=chr9)
    assert len(hist) == 1 and np.isfinite(hist['train_loss']).all() and 'valid_top1' in hist
    cfg2 = ContrastiveConfig(**{**cfg.__dict__, 'train': TrainConfig(**{**cfg.train.__dict__, 'epochs': 2})})
    enc2, hist2 = pretrain(cfg2, tmp_path/'run', table=chr9, resume=True)
    assert hist2['epoch'].tolist() == [1, 2] and hist2['train_loss'][0] == hist['train_loss'][0]
    loaded = load_encoder(tmp_path/'run'/'encoder.pt')
    a, b = embed(loaded, chr9, max_len=1024, progress=False), embed(enc2, chr9, max_len=1024, progress=False)
    assert a.shape == (105, loaded.out_dim) and list(a.obs_names) == list(chr9.index)
    np.testing.assert_allclose(a.X, b.X, atol=1e-5)


def test_probe_is_gene_grouped_and_scores_signal():
    rng = np.random.default_rng(0)
    genes = np.repeat(np.arange(60), 3)
    folds = group_kfold(genes, 5)
    assert_no_leakage(pd.Series(folds.astype(str)), genes)
    X = rng.normal(size=(180, 4)); y = X[:, 0] + 0.1 * rng.normal(size=180)
    assert probe_cv(X, y, folds, genes).score.min() > 0.9


def test_cli_embed_and_errors(isonb, chr9, tmp_path):
    torch.manual_seed(0)
    save_encoder(IsoformEncoder(EncoderConfig(n_blocks=2)), tmp_path/'encoder.pt')
    r = isonb('contrastive', 'embed', '--encoder', tmp_path/'encoder.pt', '--sets', 'chr9_region',
              '--max-len', '512', '--out', tmp_path/'emb.h5ad')
    assert r.returncode == 0, r.stderr
    assert ad.read_h5ad(tmp_path/'emb.h5ad').n_obs == 105
    r = isonb('contrastive', 'embed', '--encoder', tmp_path/'nope.pt', '--sets', 'chr9_region', '--out', tmp_path/'x.h5ad')
    assert r.returncode == 2 and 'pretrain' in r.stderr and not (tmp_path/'x.h5ad').exists()
    assert isonb('contrastive', 'pretrain', '--help').returncode == 0


def test_layer_pooling_ends_with_the_embedding(chr9):
    torch.manual_seed(0)
    enc = IsoformEncoder(EncoderConfig(size='S', n_blocks=3)).eval()
    a = embed(enc, chr9.head(8), max_len=1024, progress=False, pooling='layers')
    b = embed(enc, chr9.head(8), max_len=1024, progress=False)
    assert a.shape == (8, (3 + 2) * enc.out_dim) and a.uns['isoclr']['pooling'] == 'layers'
    np.testing.assert_allclose(a.X[:, -enc.out_dim:], b.X, atol=1e-5)
    with pytest.raises(ValueError, match='pooling'): embed(enc, chr9.head(2), pooling='mean')


def test_run_cache_key_and_random_start():
    cfg = load_config(ContrastiveConfig, ROOT/'configs/contrastive.yaml', ['seed=3'])
    assert config_hash(cfg) == config_hash(load_config(ContrastiveConfig, ROOT/'configs/contrastive.yaml', ['seed=3']))
    assert config_hash(cfg) != config_hash(load_config(ContrastiveConfig, ROOT/'configs/contrastive.yaml', ['seed=4']))
    assert run_dir(cfg, '/r').name == f'isoclr_s-{config_hash(cfg)}'
    a, b = random_encoder(cfg), random_encoder(cfg)
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))


def _fake_scores():
    "Two arms, 3 seeds, 2 tasks, 2 folds (one dev, one untouched); pretrained = random + 0.1 (+0.2 on untouched)."
    rows = []
    for arm in ('full', 'abl'):
        for seed in range(3):
            for task in ('t1', 't2'):
                for fold, dev in ((0, True), (1, False)):
                    base = 0.5 + 0.01 * seed
                    for init, add in (('random', 0.0), ('pretrained', (0.1 if dev else 0.2) - (0.05 if arm == 'abl' else 0))):
                        rows.append(dict(arm=arm, init=init, seed=seed, task=task, label_fraction=1.0, fold=fold,
                                         dev=dev, score=base + add))
    return pd.DataFrame(rows)


def test_paired_differences_and_tables():
    sc = _fake_scores()
    d = paired_differences(sc, 'full')
    np.testing.assert_allclose(d.difference, 0.15)
    np.testing.assert_allclose(paired_differences(sc, 'full', 'untouched').difference, 0.2)
    np.testing.assert_allclose(seed_scores(sc, 'dev').score.values, seed_scores(sc[sc.dev]).score.values)
    base = pd.DataFrame([dict(task=t, model=m, fold=0, dev=True, label_fraction=1.0, score=0.3)
                         for t in ('t1', 't2') for m in ('sequence features', 'length only')])
    tab = probe_table(sc, base, 'full')
    assert tab.loc['t1', 'paired diff'] == '0.150 ± 0.000' and tab.loc['t1', 'seeds pretrained > random'] == '3/3'
    abl = ablation_table(sc, 'full')
    assert abl.loc[('abl', 't1'), 'minus full model'] == '-0.050 ± 0.000' and abl.loc[('full', 't1'), 'seeds'] == 3


def test_cli_benchmark_and_throughput(isonb):
    r = isonb('contrastive', 'benchmark', '--config', 'configs/missing.yaml')
    assert r.returncode == 2 and 'does not exist' in r.stderr
    r = isonb('contrastive', 'throughput', '--sizes', 'S', '--length', '256', '--batch', '2', '--steps', '1')
    assert r.returncode == 0 and 'pretrain views/s' in r.stdout, r.stderr


def test_cli_probe_on_a_users_tables(isonb, tmp_path):
    "`isonb contrastive probe`: a sequence-level MPRA table needs no transcripts; bad tables fail clearly, writing nothing."
    torch.manual_seed(0)
    save_encoder(IsoformEncoder(EncoderConfig(n_blocks=2)), tmp_path/'encoder.pt')
    rng = np.random.default_rng(0)
    utrs = [''.join(rng.choice(list('ACGU'), 50)) for _ in range(60)]
    rl = [3 + u.count('AUG') * -1.0 + rng.normal(0, 0.3) for u in utrs]  # upstream AUGs lower ribosome load
    pd.DataFrame({'utr': utrs, 'total_reads': 100, 'rl': rl}).to_csv(tmp_path/'mrl.csv')
    r = isonb('contrastive', 'probe', '--encoder', tmp_path/'encoder.pt', '--labels', tmp_path/'mrl.csv', '--folds', '3',
              '--out', tmp_path/'scores.csv')
    assert r.returncode == 0, r.stderr
    assert 'rl (mpra-mrl, sequence level): 60 rows, 3 folds' in r.stdout
    s = pd.read_csv(tmp_path/'scores.csv')
    assert set(s.model) == {'encoder', 'random init', 'sequence features', 'length only'} and len(s) == 12
    assert s[s.model == 'sequence features'].score.mean() > 0.5  # 4-mer counts see the AUGs
    pd.DataFrame({'gene': ['ENSG00000141510'], 'hl': ['x']}).to_csv(tmp_path/'bad.csv', index=False)
    r = isonb('contrastive', 'probe', '--encoder', tmp_path/'encoder.pt', '--labels', tmp_path/'bad.csv',
              '--id-col', 'gene', '--value-col', 'hl', '--sets', 'chr9_region', '--out', tmp_path/'bad_scores.csv')
    assert r.returncode == 2 and 'holds no numeric label' in r.stderr and not (tmp_path/'bad_scores.csv').exists()
    r = isonb('contrastive', 'probe', '--encoder', tmp_path/'encoder.pt', '--labels', tmp_path/'mrl.csv', '--layout', 'hp5')
    assert r.returncode == 2 and "label layout 'hp5'" in r.stderr

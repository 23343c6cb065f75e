"The data layer against an independent implementation (pytximport) and on real-data invariants."
import numpy as np
import pandas as pd
import pytest

from isonb.core import data_dir
from isonb import datasets
from isonb.data import read_tx2gene, strip_version


def test_gene_aggregation_matches_pytximport():
    "isonb's tximport-style gene counts and abundances equal pytximport's on the 6 GEUVADIS GENCODE Salmon runs."
    pytximport = pytest.importorskip('pytximport')
    d = data_dir('bulk/geuvadis_gencode')
    pair = datasets.geuvadis_gencode('salmon')
    runs = list(pair.genes.obs_names)
    t2g = read_tx2gene(d/'tx2gene_gencode_v27.tsv.gz').rename('gene_id').rename_axis('transcript_id').reset_index()
    ref = pytximport.tximport([d/'salmon'/r/'quant.sf.gz' for r in runs], 'salmon', t2g, ignore_transcript_version=True,
                              output_type='anndata')
    ref_counts = pd.DataFrame(np.asarray(ref.X), columns=strip_version(ref.var_names)).T
    ref_tpm = pd.DataFrame(np.asarray(ref.obsm['abundance']), columns=strip_version(ref.var_names)).T
    ours_counts = pd.DataFrame(pair.genes.layers['counts'].T, index=pair.genes.var_names)
    ours_tpm = pd.DataFrame(pair.genes.layers['tpm'].T, index=pair.genes.var_names)
    # pytximport strips '.N_PAR_Y' whole, folding GENCODE's chrY pseudo-autosomal copies into their chrX ids;
    # isonb keeps them as separate '_PAR_Y' genes. Every other gene must agree.
    par_y = {g for g in ours_counts.index if g.endswith('_PAR_Y')}
    assert 0 < len(par_y) < 100
    assert set(ref_counts.index) == set(ours_counts.index) - par_y
    twins = sorted(g[:-len('_PAR_Y')] for g in par_y)
    plain = ref_counts.index.difference(twins)
    np.testing.assert_allclose(ours_counts.loc[plain].to_numpy(), ref_counts.loc[plain].to_numpy(), rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(ours_tpm.loc[plain].to_numpy(), ref_tpm.loc[plain].to_numpy(), rtol=1e-9, atol=1e-9)
    # ...and for the chrX genes with a PAR_Y twin, pytximport's number is isonb's X gene plus its Y copy
    folded = ours_counts.loc[twins].to_numpy() + ours_counts.loc[[t + '_PAR_Y' for t in twins]].to_numpy()
    np.testing.assert_allclose(folded, ref_counts.loc[twins].to_numpy(), rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize('name', ['macrophage', 'geuvadis_refseq_kallisto', 'tasic'])
def test_gene_table_is_sum_of_transcripts(name):
    pair = datasets.all_datasets()[name] if name != 'macrophage' else datasets.macrophage()
    t = pair.transcripts
    summed = pd.DataFrame(np.asarray(t.layers['counts']).T).groupby(t.var['gene_id'].to_numpy()).sum()
    g = pd.DataFrame(np.asarray(pair.genes.layers['counts']).T, index=pair.genes.var_names)
    np.testing.assert_allclose(summed.loc[g.index].to_numpy(), g.to_numpy(), rtol=1e-12, atol=0)


def test_macrophage_unmapped_fraction_is_reported():
    "98% of GENCODE v29 transcripts map to Ensembl 109 genes (README); the rest are counted, not silently lost."
    pair = datasets.macrophage()
    n_unmapped = pair.genes.uns['isonb']['n_unmapped_transcripts']
    assert n_unmapped + pair.transcripts.n_vars == 205_870
    assert 0.01 < n_unmapped / 205_870 < 0.03

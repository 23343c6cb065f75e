"CLI round trip of the splicing system on real library rows, and its refusals of bad input."
import gzip, json
from pathlib import Path

import pandas as pd
import pytest

from isonb.cli import main
from isonb.core import data_dir

FULL = 'splicing/schirman2021_full/single_introns.csv.gz'
CS230 = 'splicing/schirman2021_cs230/sample.csv.gz'


@pytest.fixture(scope='module')
def model_dir(tmp_path_factory):
    "A model trained by the CLI on a tiny budget (500 constructs, 1 epoch)."
    out = tmp_path_factory.mktemp('splicing') / 'model'
    rc = main(['splicing', 'train', '--out', str(out), '--set', 'max_train=500', 'train.epochs=1', 'train.patience=0'])
    assert rc == 0
    return out


def test_train_writes_model_dir(model_dir):
    assert {'model.pt', 'config.yaml', 'version.json', 'test_metrics.json', 'history.csv'} <= {p.name for p in model_dir.iterdir()}
    meta = json.loads((model_dir / 'version.json').read_text())
    assert meta['format'] == 'isonb.splicing' and meta['n_params'] > 1000
    m = json.loads((model_dir / 'test_metrics.json').read_text())
    assert m['n_test'] > 500 and 0 <= m['mse'] < 1


@pytest.mark.parametrize('table,seq_col', [(FULL, 'seq'), (CS230, 'full_seq')])
def test_predict_round_trip_both_layouts(model_dir, tmp_path, table, seq_col):
    rows = pd.read_csv(data_dir(table)).head(20)
    src, out = tmp_path / 'in.csv', tmp_path / 'out.csv'
    rows.to_csv(src, index=False)
    assert main(['splicing', 'predict', '--model', str(model_dir), '--csv', str(src), '-o', str(out)]) == 0
    pred = pd.read_csv(out)
    assert len(pred) == 20 and list(pred[seq_col]) == list(rows[seq_col])
    assert pred['predicted_splicing_eff'].between(0, 10).all() and pred['predicted_splicing_eff'].notna().all()


def _bad_predict(model_dir, tmp_path, rows, capsys):
    src, out = tmp_path / 'bad.csv', tmp_path / 'out.csv'
    rows.to_csv(src, index=False)
    rc = main(['splicing', 'predict', '--model', str(model_dir), '--csv', str(src), '-o', str(out)])
    assert rc == 2 and not out.exists()  # nothing half-written
    return capsys.readouterr().err


def test_missing_index_columns(model_dir, tmp_path, capsys):
    rows = pd.read_csv(data_dir(FULL)).head(5).drop(columns=['branch_inds'])
    err = _bad_predict(model_dir, tmp_path, rows, capsys)
    assert 'isonb: error:' in err and "missing ['branch_inds']" in err


def test_bad_characters_named_by_row(model_dir, tmp_path, capsys):
    rows = pd.read_csv(data_dir(FULL)).head(5)
    rows.loc[3, 'seq'] = rows.loc[3, 'seq'][:100] + 'X' + rows.loc[3, 'seq'][101:]
    err = _bad_predict(model_dir, tmp_path, rows, capsys)
    assert "row 3: character(s) ['X']" in err


def test_wrong_length_named_by_row(model_dir, tmp_path, capsys):
    rows = pd.read_csv(data_dir(CS230)).head(5)
    rows.loc[2, 'full_seq'] = rows.loc[2, 'full_seq'][:-7]
    err = _bad_predict(model_dir, tmp_path, rows, capsys)
    assert 'row 2: length 1608, expected 1615' in err


def test_not_a_model_dir(tmp_path, capsys):
    src = tmp_path / 'in.csv'
    pd.read_csv(data_dir(FULL)).head(2).to_csv(src, index=False)
    rc = main(['splicing', 'predict', '--model', str(tmp_path), '--csv', str(src), '-o', str(tmp_path / 'o.csv')])
    assert rc == 2 and 'is not a splicing model directory' in capsys.readouterr().err


def test_summary_table_counts_stuck_seeds():
    "A constant-prediction seed is counted in `stuck`, left out of the defined-Pearson mean (with its count) and r = 0 in the other."
    import numpy as np
    from isonb.splicing import TABLE_COLUMNS, summary_table
    scores = pd.DataFrame({'method': ['m'] * 4, 'seed': range(4), 'mse': [0.03, 0.03, 0.03, 0.06],
                           'pearson': [0.7, 0.7, 0.7, np.nan], 'spearman': [0.6, 0.6, 0.6, np.nan],
                           'constant': [False, False, False, True], 'n_params': [10] * 4})
    t = summary_table(scores)
    assert list(t[TABLE_COLUMNS].columns) == TABLE_COLUMNS
    assert t.loc['m', 'stuck'] == 1 and t.loc['m', 'pearson'] == '0.700 ± 0.000 (3/4 seeds)'
    assert abs(t.loc['m', 'pearson_r0_mean'] - 0.525) < 1e-9


def test_benchmark_help_lists_fresh(capsys):
    with pytest.raises(SystemExit):
        main(['splicing', 'benchmark', '--help'])
    assert '--fresh' in capsys.readouterr().out


# --- design features, gradient boosting, hybrid model, blends ---

@pytest.fixture(scope='module')
def library():
    "The authors' table in the standard frame, with its first 3,000 rows split (clusters are computed per table)."
    from isonb.splicing import read_splicing_table, split_library
    lib = read_splicing_table(data_dir(FULL)).iloc[:3000]
    return lib, split_library(lib)


def test_table_features_refuse_measured_columns(library):
    from isonb.data import IsonbInputError
    from isonb.splicing import MEASURED_COLUMNS, table_features
    lib, _ = library
    for col in ('splicing_eff', 'unspliced_ratio', 'expression', 'total_abundance'):
        with pytest.raises(IsonbInputError, match='measured by the experiment'):
            table_features(lib.head(3), columns=('intron_len', col))
    names = table_features(lib.head(3)).columns
    assert not [c for c in names if any(c == m or c.startswith(m + '_') for m in MEASURED_COLUMNS)]


def test_features_need_design_columns_for_table_part():
    from isonb.data import IsonbInputError
    from isonb.splicing import feature_count, read_splicing_table, splicing_features
    cs = read_splicing_table(data_dir(CS230)).head(4)
    with pytest.raises(IsonbInputError, match='lacks the design columns'):
        splicing_features(cs)
    assert splicing_features(cs, table=False).shape == (4, feature_count(False))


def test_splicing_features_values(library):
    import numpy as np
    from isonb.splicing import feature_count, splicing_features
    lib, _ = library
    f = splicing_features(lib.head(5))
    assert f.shape == (5, feature_count())
    col = lambda name: np.asarray(f[:, name].X)[:, 0]
    np.testing.assert_array_equal(col('intron_length'), (lib.ss3_end - lib.ss5).head(5).to_numpy())
    np.testing.assert_array_equal(col('5ss_0G') + col('5ss_1T'), 2.0)  # every designed 5'SS starts GT


def test_hybrid_model_shapes_and_round_trip(tmp_path):
    import numpy as np, torch
    from isonb.splicing import ModelConfig, SpliceCNN, SplicingConfig, SplicingModel, InputConfig
    cfg = SplicingConfig(input=InputConfig('windows'), model=ModelConfig(n_features=6, feature_hidden=4, out='sigmoid'))
    m = SplicingModel(cfg)
    f = np.random.default_rng(0).normal(size=(5, 6)).astype('float32'); f[1, 3] = np.nan
    m.net.set_feature_scaling(f)
    m.net.eval()  # batch norm with its running statistics, as a loaded model predicts
    x = torch.rand(5, 480)
    y = m.net({'x': x, 'features': torch.from_numpy(f)})
    assert y.shape == (5,) and torch.isfinite(y).all() and ((y > 0) & (y < 1)).all()
    with pytest.raises(ValueError, match='joins 6 design features'):
        m.net({'x': x})
    m2 = SplicingModel.load(m.save(tmp_path / 'hybrid'))
    torch.testing.assert_close(m2.net.feature_scale, m.net.feature_scale)
    torch.testing.assert_close(m2.net({'x': x, 'features': torch.from_numpy(f)}), y.detach())


def test_gbm_fits_and_predicts_in_range(library, tmp_path):
    import numpy as np
    from isonb.splicing import GBMConfig, SplicingGBM, fit_gbm, test_rows
    lib, split = library
    m = fit_gbm(GBMConfig(max_iter=20, max_train=1000), lib, split)
    te = test_rows(lib, split)
    p = m.predict(lib.iloc[te])
    assert len(p) == len(te) and p.min() >= 0 and p.max() <= 1 and np.ptp(p) > 0
    np.testing.assert_allclose(SplicingGBM.load(m.save(tmp_path / 'gbm')).predict(lib.iloc[te]), p)



def test_gbm_saved_before_grammar_loads_as_it_was_trained(library, tmp_path):
    "A model directory written before `GBMConfig.grammar` existed is read as grammar=False, and is not reused for the default."
    import numpy as np, yaml
    from isonb.data import IsonbInputError
    from isonb.splicing import GBMConfig, SplicingGBM, fit_gbm, fit_or_load, split_fingerprint, test_rows
    lib, split = library
    old = fit_gbm(GBMConfig(max_iter=5, max_train=300, grammar=False), lib, split)
    rd = old.save(tmp_path / 'old')
    cfg = yaml.safe_load((rd / 'config.yaml').read_text()); del cfg['grammar']  # as that isonb wrote it
    (rd / 'config.yaml').write_text(yaml.safe_dump(cfg))
    (rd / 'split.txt').write_text(split_fingerprint(lib, split) + '\n')
    te = test_rows(lib, split)[:50]
    loaded = SplicingGBM.load(rd)
    assert loaded.cfg.grammar is False
    np.testing.assert_allclose(loaded.predict(lib.iloc[te]), old.predict(lib.iloc[te]))
    assert fit_or_load(GBMConfig(max_iter=5, max_train=300, grammar=False), lib, split, rd).reused
    new = fit_or_load(GBMConfig(max_iter=5, max_train=300), lib, split, rd)  # the default (grammar) retrains
    assert not new.reused and new.cfg.grammar and new.est.n_features_in_ == old.est.n_features_in_ + 17
    loaded.cfg.grammar = True  # a config that no longer matches its trees is refused, not silently misread
    with pytest.raises(IsonbInputError, match='retrain it'):
        loaded.predict(lib.iloc[te])

def test_blend_weights_are_chosen_on_the_given_split():
    import numpy as np
    from isonb.splicing import blend_weights
    y = np.array([0.0, 0.2, 0.9, 0.4])
    assert blend_weights(np.column_stack([np.zeros(4), y]), y).tolist() == [0.0, 1.0]
    assert blend_weights(np.column_stack([y, np.full(4, 0.5)]), y).tolist() == [1.0, 0.0]
    np.testing.assert_allclose(blend_weights(np.column_stack([y + 0.2, y - 0.2]), y), [0.5, 0.5])
    w = blend_weights(np.column_stack([y + 0.2, np.full(4, 0.3), y - 0.2, y + 0.2]), y)
    assert w[1] == 0 and abs(w.sum() - 1) < 1e-12 and abs(w[0] + w[3] - 0.5) < 1e-12


def test_fit_or_load_reuses_only_on_the_same_split(library, tmp_path):
    "A saved model is reused for the same config and split, and retrained when any row changes side."
    from isonb.splicing import GBMConfig, fit_or_load
    lib, split = library
    cfg, rd = GBMConfig(max_iter=5, max_train=300), tmp_path / 'run'
    assert not fit_or_load(cfg, lib, split, rd).reused
    assert fit_or_load(cfg, lib, split, rd).reused
    moved = split.copy()
    moved.iloc[split['split'].eq('test').to_numpy().nonzero()[0][:1], moved.columns.get_loc('split')] = 'train'
    assert not fit_or_load(cfg, lib, moved, rd).reused  # one test construct moved to train: the old model is stale
    assert fit_or_load(cfg, lib, moved, rd).reused


def test_out_of_fold_predicts_every_training_construct_once(library, tmp_path):
    "Out-of-fold predictions cover the labelled training constructs; fold models never see the test split."
    import numpy as np
    from isonb.splicing import GBMConfig, cv_choice, cv_folds, cv_splits, out_of_fold, test_rows
    lib, split = library
    oof, y = out_of_fold({'gbm': GBMConfig(max_iter=5)}, lib, split, k=3, run_dir=tmp_path)
    assert len(oof) == len(y) == len(test_rows(lib, split, 'train')) and oof['gbm'].notna().all()
    np.testing.assert_array_equal(y, lib['splicing_eff'].to_numpy()[test_rows(lib, split, 'train')])
    assert all(s['split'][split['split'].eq('test').to_numpy()].eq('none').all() for s in cv_splits(split, 3))
    assert len(list((tmp_path / 'cv' / 'gbm').glob('fold*/split.txt'))) == 3
    folds = cv_folds(split, 3)[test_rows(lib, split, 'train')]
    assert sorted(np.unique(folds)) == [0, 1, 2]
    w, table, pick = cv_choice(oof.assign(flat=float(np.mean(y))), y, {'blend': ('gbm', 'flat')}, folds)
    assert abs(w['blend'].sum() - 1) < 1e-12 and (w['blend'] >= 0).all()
    assert pick in table.index and table.loc[pick, 'mse'] == table['mse'].min()

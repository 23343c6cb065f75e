"""Does a positive output-bias initialisation stop the ReLU output of the splicing CNN from dying?

In the notebook's benchmark (nbs/11_splicing.ipynb), seeds 2 and 3 of the best config (dilated residual CNN on the
intron + flanks) collapsed to predicting 0 for every construct. This re-trains exactly those seeds, on the same
split, with `model.out_bias` set, and prints their held-out test scores.

usage: OMP_NUM_THREADS=1 python benchmarks/splicing_output_init.py [--out-bias 0.15] [--seeds 2 3]
"""
import argparse, dataclasses

import torch

from isonb.splicing import (best_config, efficiency_metrics, fit_splicing, read_splicing_table, split_library,
                            table_path, test_rows)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--out-bias', type=float, default=0.15)
    ap.add_argument('--seeds', type=int, nargs='+', default=[2, 3])
    a = ap.parse_args()
    torch.set_num_threads(1)
    base = best_config()
    cfg = dataclasses.replace(base, model=dataclasses.replace(base.model, out_bias=a.out_bias))
    lib = read_splicing_table(table_path(cfg.table))
    split = split_library(lib, cfg.split)
    te = test_rows(lib, split)
    y = lib['splicing_eff'].to_numpy()[te]
    for seed in a.seeds:
        m = fit_splicing(dataclasses.replace(cfg, seed=seed), lib, split)
        s = efficiency_metrics(m.predict(lib.iloc[te]), y)
        print(f"out_bias={a.out_bias} seed={seed} epochs={len(m.history)} n_test={len(te)} "
              + ' '.join(f'{k}={v:.4f}' for k, v in s.items()), flush=True)


if __name__ == '__main__':
    main()

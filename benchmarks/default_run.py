"""Wall time of the default run (`make run`'s main job) on this machine, by stage.

    .venv/bin/python benchmarks/default_run.py [--config configs/macrophage_default.yaml]

Prints a table: stage, seconds, and the target (the whole default run under 5 minutes on 2 CPU cores).
Data sets are read from the ISONB_CACHE (built first if missing, and that build is timed separately).
"""
import argparse, os, platform, tempfile, time

import torch

from isonb import datasets
from isonb.core import load_config
from isonb.pipeline import RunConfig, run


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--config', default='configs/macrophage_default.yaml')
    a = ap.parse_args()
    rows = []
    t = time.perf_counter(); datasets.macrophage(); datasets.geuvadis_gencode('salmon'); datasets.geuvadis_rsem_genes()
    rows.append(('build or read cached data sets', time.perf_counter() - t, ''))
    cfg = load_config(RunConfig, a.config, [f'out_dir={tempfile.mkdtemp()}'])
    t = time.perf_counter(); res = run(cfg); total = time.perf_counter() - t
    n_fits = res['results'].query("experiment == 'macrophage_donors'")[['fold', 'method']].drop_duplicates().shape[0]
    rows.append((f'isonb run {os.path.basename(a.config)} ({n_fits} CV fits + refit + cross-study)', total, '< 300 s'))
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, threads {torch.get_num_threads()}")
    print(f"{'stage':70s} {'seconds':>8s}  target")
    for name, s, target in rows: print(f"{name:70s} {s:8.1f}  {target}")


if __name__ == '__main__':
    main()

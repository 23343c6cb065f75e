"""Out-of-core `isonb predict`: a million single cells streamed from a backed .h5ad, peak memory and throughput.

    .venv/bin/python benchmarks/out_of_core.py [--cells 1000000] [--chunk-size 8192] [--workdir /tmp/isonb_out_of_core]

1. Model (cached in WORKDIR): isoform-fraction head on a 16-dimensional PCA of the real macrophage bulk data (Alasoo
   et al.; 4 donors train, the 5th validates), with the genes restricted to the 20,000 most expressed ones so the
   model's gene index is what a 20,000-gene single-cell matrix carries. The head is linear on the PCA embedding
   (`n_layers=0`) and predicts the transcripts with mean training TPM >= --min-tpm.
2. Cells (cached in WORKDIR, written atomically): CELLS x 20,000 genes, CSR UMI counts in `layers['counts']`, with
   single-cell sparsity drawn from the real data: a gene's detection probability is 1 - exp(-depth * TPM / 1e6) at
   its macrophage mean TPM, the depth set so a cell detects --density of the genes on average; per-cell size factors
   are log-normal; a detected gene's count is geometric (zero-truncated negative binomial with theta = 1) around
   size * depth * TPM / 1e6. Gene ids are the model's, in Ensembl-id order (not the model's order).
3. `isonb predict --model MODEL --genes CELLS.h5ad -o OUT.h5ad --chunk-size N` as a subprocess, its resident memory
   (with children) sampled every 50 ms with psutil. Prints one table row and the seconds per stage (read, check,
   represent, head, write); targets: peak RSS < 4 GB, >= 20,000 cells/s. OMP_NUM_THREADS=1 holds BLAS to one thread;
   the compiled block kernels (numba, where installed) use NUMBA_NUM_THREADS (default: all cores).

The output (sparse: only isoforms of the genes each cell expresses; see the models notebook) is deleted afterwards
unless --keep-output; the generated input stays cached in WORKDIR (outside the repository) for the next run.
"""
import argparse, os, platform, subprocess, sys, threading, time
from pathlib import Path

import numpy as np
import pandas as pd
import psutil


def build_model(workdir: Path, n_genes: int, min_tpm: float) -> Path:
    "Fit (or reuse) the fraction-head model on the real macrophage data restricted to the n_genes most expressed genes."
    out = workdir/f'model_top{n_genes}_mintpm{min_tpm:g}'
    if (out/'model.json').exists(): return out
    from isonb import datasets
    from isonb.data import IsoformPair
    from isonb.loaders import leave_group_out_folds
    from isonb.models import IsoformPredictor, ModelConfig, tpm_layer
    from isonb.training import TrainConfig
    macro = datasets.macrophage()
    keep = macro.genes.var_names[np.argsort(-tpm_layer(macro.genes).mean(0), kind='stable')[:n_genes]]
    tx = macro.transcripts[:, macro.transcripts.var['gene_id'].isin(keep).to_numpy()]
    pair = IsoformPair(macro.genes[:, keep].copy(), tx.copy())
    split = leave_group_out_folds(pair.genes.obs, 'donor', seed=0)[0]
    train, valid = pair[(split != 'val').to_numpy()], pair[(split == 'val').to_numpy()]   # 4 donors fit, 1 stops early
    cfg = ModelConfig(representation='pca', repr_params={'n_components': 16}, head='fraction', n_layers=0, min_tpm=min_tpm,
                      train=TrainConfig(epochs=30, lr=3e-3, patience=5, progress=False))
    model = IsoformPredictor(cfg).fit(train, valid)
    return model.save(out)


def detection_depth(tpm: np.ndarray, density: float) -> float:
    "UMIs per cell at which the expected share of detected genes is `density` (bisection on a monotone function)."
    lo, hi = 1.0, 1e8
    for _ in range(100):
        mid = (lo * hi) ** 0.5
        lo, hi = (mid, hi) if (1 - np.exp(-mid * tpm / 1e6)).mean() < density else (lo, mid)
    return (lo * hi) ** 0.5


def sorted_draws(rng, cdf: np.ndarray, draws: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    "Per cell, `draws[i]` genes drawn from `cdf`, returned sorted and without repeats (rows, cols) -- with no sort."
    # sorted uniforms per cell from exponential spacings: u_k = (E_1 + .. + E_k) / (E_1 + .. + E_{n+1})
    n = len(draws)
    e = np.cumsum(rng.standard_exponential(int(draws.sum()) + n))
    ends = np.cumsum(draws + 1) - 1                                   # index of each cell's closing spacing
    base = np.concatenate([[0.], e[ends[:-1]]])
    row = np.repeat(np.arange(n, dtype=np.int64), draws + 1)
    pos = np.ones(len(e), bool); pos[ends] = False                    # drop the closing spacing of every cell
    u = (e - base[row]) / (e[ends] - base)[row]
    row, genes = row[pos], np.searchsorted(cdf, u[pos]).clip(max=len(cdf) - 1)
    new = np.ones(len(genes), bool); new[1:] = (genes[1:] != genes[:-1]) | (row[1:] != row[:-1])
    return row[new], genes[new].astype(np.int32)


def write_cells(path: Path, gene_ids: pd.Index, tpm: np.ndarray, n_cells: int, density: float, seed: int = 0,
                block: int = 20_000):
    "Generate the sparse single-cell counts block by block straight into a CSR .h5ad (atomically)."
    import h5py
    from anndata.io import write_elem
    from tqdm import tqdm
    from isonb.core import atomic_path
    rng = np.random.default_rng(seed)
    n_genes = len(gene_ids)
    depth = detection_depth(tpm, density)
    p_detect = 1 - np.exp(-depth * tpm / 1e6)
    cdf = np.cumsum(p_detect / p_detect.sum())
    mu = depth * tpm / 1e6
    # draws with replacement land on already-drawn genes; calibrate the number of draws on a pilot cell
    per_cell = int(density * n_genes)
    pilot = np.searchsorted(cdf, rng.random(per_cell * 20)).clip(max=n_genes - 1)
    oversample = per_cell / np.mean([len(np.unique(c)) for c in pilot.reshape(20, per_cell)])
    with atomic_path(path) as tmp, h5py.File(tmp, 'w') as f:
        f.attrs['encoding-type'], f.attrs['encoding-version'] = 'anndata', '0.1.0'
        write_elem(f, 'obs', pd.DataFrame(index=pd.Index([f'cell{i:07d}' for i in range(n_cells)])))
        write_elem(f, 'var', pd.DataFrame(index=gene_ids))
        for k in ('obsm', 'varm', 'obsp', 'varp', 'uns', 'layers'): write_elem(f, k, {})
        g = f['layers'].create_group('counts')
        g.attrs['encoding-type'], g.attrs['encoding-version'], g.attrs['shape'] = 'csr_matrix', '0.1.0', np.array([n_cells, n_genes])
        data = g.create_dataset('data', (0,), np.float32, maxshape=(None,), chunks=(1 << 20,))
        indices = g.create_dataset('indices', (0,), np.int32, maxshape=(None,), chunks=(1 << 20,))
        indptr = g.create_dataset('indptr', (n_cells + 1,), np.int64)
        indptr[0], nnz = 0, 0
        for a in tqdm(range(0, n_cells, block), desc='generate cells'):
            b = min(a + block, n_cells)
            size = rng.lognormal(0, 0.4, b - a)
            draws = np.clip(np.round(size * density * n_genes * oversample), 50, n_genes).astype(np.int64)
            row, col = sorted_draws(rng, cdf, draws)
            counts = rng.geometric(1 / (1 + size[row] * mu[col])).astype(np.float32)
            n = data.shape[0]
            data.resize((n + len(counts),)); data[n:] = counts
            indices.resize((n + len(col),)); indices[n:] = col
            indptr[a + 1:b + 1] = nnz + np.cumsum(np.bincount(row, minlength=b - a))
            nnz += len(counts)
    return nnz, depth


def peak_rss_run(cmd: list, env: dict, interval: float = 0.05) -> tuple[int, float, float, float, str]:
    "Run `cmd`, sampling the resident memory of it and its children; (returncode, wall s, CPU s, peak RSS bytes, output)."
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    peak, cpu, ps = 0, 0.0, psutil.Process(proc.pid)
    out = []
    reader = threading.Thread(target=lambda: out.extend(proc.stdout), daemon=True); reader.start()
    while proc.poll() is None:
        try:
            rss = ps.memory_info().rss + sum(c.memory_info().rss for c in ps.children(recursive=True))
            peak = max(peak, rss)
            t = ps.cpu_times(); cpu = max(cpu, t.user + t.system + t.children_user + t.children_system)
        except psutil.Error: pass
        time.sleep(interval)
    reader.join()
    return proc.returncode, time.perf_counter() - t0, cpu, peak, ''.join(out)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--cells', type=int, default=1_000_000, help='cells in the generated matrix')
    ap.add_argument('--genes', type=int, default=20_000, help='genes (the most expressed of the real data)')
    ap.add_argument('--density', type=float, default=0.05, help='mean share of genes detected per cell')
    ap.add_argument('--min-tpm', type=float, default=10.0, help="the model's transcript selection (mean training TPM)")
    ap.add_argument('--chunk-size', type=int, default=8192, help='cells per block in isonb predict')
    ap.add_argument('--workdir', default='/tmp/isonb_out_of_core', help='cache for the model, the cells and the output')
    ap.add_argument('--keep-output', action='store_true', help='keep the predicted .h5ad (large)')
    a = ap.parse_args()
    work = Path(a.workdir); work.mkdir(parents=True, exist_ok=True)
    t = time.perf_counter(); model_dir = build_model(work, a.genes, a.min_tpm); t_model = time.perf_counter() - t
    from isonb.models import load_model
    from isonb import datasets
    from isonb.models import tpm_layer
    model = load_model(model_dir)
    gene_ids = pd.Index(sorted(model.rep.var_names))
    macro = datasets.macrophage()
    tpm = tpm_layer(macro.genes[:, gene_ids]).mean(0)
    cells = work/f'cells_{a.cells}x{a.genes}_d{a.density:g}.h5ad'
    t = time.perf_counter()
    if not cells.exists(): write_cells(cells, gene_ids, tpm, a.cells, a.density)
    t_cells = time.perf_counter() - t
    import h5py
    with h5py.File(cells, 'r') as f: nnz_in = int(f['layers/counts/indptr'][-1])
    out = work/f'predicted_{a.cells}.h5ad'
    env = {**os.environ, 'OMP_NUM_THREADS': '1', 'MKL_NUM_THREADS': '1'}
    cmd = [str(Path(sys.executable).parent/'isonb'), 'predict', '--model', str(model_dir), '--genes', str(cells),
           '-o', str(out), '--chunk-size', str(a.chunk_size)]
    rc, wall, cpu, peak, log = peak_rss_run(cmd, env)
    if rc != 0: sys.exit(f"isonb predict failed ({rc}):\n{log[-3000:]}")
    with h5py.File(out, 'r') as f: nnz_out, n_tx = int(f['X/indptr'][-1]), int(f['X'].attrs['shape'][1])
    out_gb, in_gb = out.stat().st_size / 1e9, cells.stat().st_size / 1e9
    if not a.keep_output: out.unlink()
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, {psutil.virtual_memory().total / 2**30:.0f} GiB RAM; "
          f"OMP_NUM_THREADS=1; model fit {t_model:.0f} s, cells generated in {t_cells:.0f} s (0 = cached)")
    print(f"model: {model}")
    stages = next((l for l in log.splitlines() if l.startswith('stages (s):')), '')
    try: import numba; compiled = f"numba {numba.__version__} kernels, {numba.config.NUMBA_NUM_THREADS} threads"
    except ImportError: compiled = 'numpy path (numba not installed)'
    print(f"block expansion: {compiled}; main-thread {stages} (read and write overlap compute in their own threads)")
    print(f"input {cells.name}: {in_gb:.2f} GB on disk; output: {n_tx:,} transcripts, {nnz_out:,} stored predictions "
          f"({nnz_out / a.cells:,.0f} per cell), {out_gb:.2f} GB{' (deleted)' if not a.keep_output else ''}")
    load = os.getloadavg()[0]
    print(f"load average at the end: {load:.1f} on {os.cpu_count()} cores (other work on the machine stretches wall time; "
          f"CPU s is the process's own user+system time)")
    cols = ['cells', 'genes', 'nnz', 'density', 'chunk size', 'wall s', 'cells/s', 'CPU s', 'cells/CPU-s', 'peak RSS GB', 'target']
    row = [f'{a.cells:,}', f'{a.genes:,}', f'{nnz_in:,}', f'{nnz_in / a.cells / a.genes:.3f}', f'{a.chunk_size:,}',
           f'{wall:.1f}', f'{a.cells / wall:,.0f}', f'{cpu:.1f}', f'{a.cells / max(cpu, 1e-9):,.0f}', f'{peak / 1e9:.2f}',
           'RSS < 4 GB, >= 20,000 cells/s']
    w = [max(len(c), len(r)) for c, r in zip(cols, row)]
    print('  '.join(c.rjust(n) for c, n in zip(cols, w)))
    print('  '.join(r.rjust(n) for r, n in zip(row, w)))


if __name__ == '__main__':
    main()

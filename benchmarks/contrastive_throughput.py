"""Contrastive pretraining throughput: the encoder's step rate beside the rate at which views can be built for it.

    .venv/bin/python benchmarks/contrastive_throughput.py                  # CPU (or --device cuda on a GPU)
    .venv/bin/python benchmarks/contrastive_throughput.py --device cuda --workers 0 4 8

1. Model: `isonb.contrastive.throughput` times a pretraining step (forward + backward of both views, DCL, AdamW) and a
   frozen forward pass of the S and M encoders on random 6-track inputs of --length nucleotides (default 2,048, the
   issue's reference length), in views (sequences) per second on --device.
2. Views: one pass of `pair_loader` over every shipped isoform set (4,913 transcripts, 1,151 gene groups; real
   sequences from ISONB_DATA), timed on its second epoch, with 0, 1, 2 ... DataLoader workers (`ContrastiveConfig.workers`) at the same crop
   length: encoding, random cropping, masking and padding, no model. Pretraining runs at the slower of the two rates,
   so the table says how many workers a device needs.
"""
import argparse, os, time

import pandas as pd
import torch

from isonb.contrastive import ContrastiveConfig, load_isoform_sets, pair_loader, throughput


def loader_rate(table: pd.DataFrame, max_len: int, workers: int, batch_genes: int) -> float:
    "Views per second built by `pair_loader` over the second epoch of `table` (the first starts the workers)."
    dl = pair_loader(table, ContrastiveConfig(max_len=max_len, workers=workers, batch_genes=batch_genes))
    for _ in dl: pass
    t0, n = time.perf_counter(), 0
    for b in dl: n += 2 * b['x1'].shape[0]
    return n / (time.perf_counter() - t0)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    ap.add_argument('--length', type=int, default=2048, help='nucleotides per view')
    ap.add_argument('--batch', type=int, default=16, help='pairs per timed model step')
    ap.add_argument('--steps', type=int, default=5, help='timed model steps (after one warm-up)')
    ap.add_argument('--workers', type=int, nargs='+', default=[0, 1, 2], help='DataLoader worker counts to time')
    ap.add_argument('--threads', type=int, default=1, help='torch CPU threads of the main process')
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    rows = [{'what': f'encoder {r["size"]} ({r["params"]:,} params)', 'device': r['device'],
             'pretrain views/s': r['pretrain views/s'], 'embed seq/s': r['embed seq/s']}
            for r in (throughput(s, a.length, a.batch, a.steps, a.device) for s in ('S', 'M'))]
    table = load_isoform_sets()
    for w in a.workers:
        rows.append({'what': f'pair_loader, {w} worker(s)', 'device': 'cpu',
                     'pretrain views/s': round(loader_rate(table, a.length, w, 64), 1), 'embed seq/s': float('nan')})
    print(f"length {a.length} nt; {os.cpu_count()} CPU cores; torch {torch.__version__}; "
          f"{torch.cuda.get_device_name() if a.device.startswith('cuda') else 'no GPU used'}")
    print(pd.DataFrame(rows).to_string(index=False))


if __name__ == '__main__':
    main()

"""Steady-state training throughput of the isoform-fraction model at realistic size, as a share of a bf16 matmul.

    .venv/bin/python benchmarks/gpu_throughput.py                 # on a CUDA GPU: 20,000 genes -> 200,000 transcripts, batch 512
    .venv/bin/python benchmarks/gpu_throughput.py --small --device cpu   # a seconds-long check that the script runs

The model is `isonb.models.IsoformHead` (kind 'fraction': MLP trunk, per-gene segment softmax over 200,000
transcripts, times the observed gene expression), fed the raw 20,000-gene expression as its representation, trained
with AdamW under bf16 autocast. Model FLOPs per step = 6 x batch x (weights of the two linear layers) (forward +
backward); the reference is a large bf16 matmul timed in the same process on the same device. Target: >= 40%.
"""
import argparse, time

import torch

from isonb.models import IsoformHead, isoform_loss


def _sync(dev):
    if dev.type == 'cuda': torch.cuda.synchronize()


def matmul_tflops(dev, n, dtype, reps):
    a, b = torch.randn(n, n, device=dev, dtype=dtype), torch.randn(n, n, device=dev, dtype=dtype)
    for _ in range(3): a @ b
    _sync(dev); t = time.perf_counter()
    for _ in range(reps): a @ b
    _sync(dev)
    return 2 * n**3 * reps / (time.perf_counter() - t) / 1e12


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    ap.add_argument('--genes', type=int, default=20_000)
    ap.add_argument('--transcripts', type=int, default=200_000)
    ap.add_argument('--hidden', type=int, default=1024)
    ap.add_argument('--batch', type=int, default=512)
    ap.add_argument('--steps', type=int, default=30)
    ap.add_argument('--small', action='store_true', help='tiny sizes, for checking the script on a CPU')
    a = ap.parse_args()
    if a.small: a.genes, a.transcripts, a.hidden, a.batch, a.steps = 500, 5_000, 128, 64, 5
    dev = torch.device(a.device)
    torch.manual_seed(0)
    gene_idx = torch.sort(torch.randint(0, a.genes, (a.transcripts,))).values   # ~10 isoforms per gene
    model = IsoformHead(a.genes, gene_idx, 'fraction', 'mse', n_hidden=a.hidden, n_layers=1, dropout=0.0).to(dev)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    amp = torch.autocast(dev.type, dtype=torch.bfloat16, enabled=dev.type == 'cuda')
    z = torch.rand(a.batch, a.genes, device=dev)
    batch = {'z': torch.log1p(z * 100), 'gene': z * 100, 'target': torch.rand(a.batch, a.transcripts, device=dev) * 10}
    def step():
        with amp: loss = isoform_loss(model(batch), batch, 'mse')
        opt.zero_grad(set_to_none=True); loss.backward(); opt.step()
    for _ in range(3): step()   # warm-up
    _sync(dev); t = time.perf_counter()
    for _ in range(a.steps): step()
    _sync(dev); dt = (time.perf_counter() - t) / a.steps
    weights = a.genes * a.hidden + a.hidden * a.transcripts
    model_tflops = 6 * a.batch * weights / dt / 1e12
    ref = matmul_tflops(dev, 8192 if dev.type == 'cuda' else 1024, torch.bfloat16 if dev.type == 'cuda' else torch.float32, 20 if dev.type == 'cuda' else 3)
    name = torch.cuda.get_device_name(dev) if dev.type == 'cuda' else 'cpu'
    print(f"device: {name}; torch {torch.__version__}; {a.genes:,} genes -> {a.transcripts:,} transcripts, hidden {a.hidden}, batch {a.batch}")
    print(f"{'measure':40s} {'value':>12s}")
    print(f"{'step time (ms)':40s} {dt*1e3:12.2f}")
    print(f"{'samples / s':40s} {a.batch/dt:12.0f}")
    print(f"{'model TFLOP/s (6 x batch x weights)':40s} {model_tflops:12.2f}")
    print(f"{'matmul TFLOP/s (' + ('bf16 8192^3' if dev.type == 'cuda' else 'fp32 1024^3') + ')':40s} {ref:12.2f}")
    print(f"{'share of matmul (target >= 40%)':40s} {100*model_tflops/ref:11.1f}%")


if __name__ == '__main__':
    main()

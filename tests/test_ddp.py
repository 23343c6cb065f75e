"""Data-parallel training: 2 gloo processes under torchrun follow the loss trajectory of 1 process.

The problem is small, deterministic and real: log1p TPM of the 64 most variable genes of the 20 macrophage samples
(Alasoo et al.) -> log1p TPM of the 32 most variable transcripts (both standardised), a two-layer MLP without dropout, 4 donors for
training and the 5th for validation. The same job script runs once as a plain process and once under
`torchrun --nproc_per_node=2`, both with a global batch of 4 (2 rows per rank under DDP). The validation loader's
global batch of 3 leaves the ranks uneven shards (2+1, then 1+0 rows), which the metric reduction must weight right.
"""
import json, os, socket, subprocess, sys, textwrap
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip('torch.distributed')

SCRIPT = textwrap.dedent('''
    import json, os, sys
    from pathlib import Path
    import numpy as np, anndata as ad, pandas as pd, torch
    from torch import nn
    torch.set_num_threads(1)
    import isonb.training as T
    from isonb.loaders import AnnDataset, make_loader
    from isonb.metrics import pearson, nan_mean

    data, out = Path(sys.argv[1]), Path(sys.argv[2])
    rank = int(os.environ.get('RANK', 0))
    writes = []                                  # every file the Trainer writes goes through one of these three
    def spy_path(f):
        def spy(path, *a, **k): writes.append(Path(path).name); return f(path, *a, **k)
        return spy
    T.atomic_path, T.atomic_write = spy_path(T.atomic_path), spy_path(T.atomic_write)
    _save_config = T.save_config
    def spy_config(cfg, path, *a, **k): writes.append(Path(path).name); return _save_config(cfg, path, *a, **k)
    T.save_config = spy_config

    z = np.load(data)
    def anns(rows):
        obs = pd.DataFrame(index=[f's{i}' for i in rows])
        return {'genes': ad.AnnData(z['x'][rows], obs=obs), 'target': ad.AnnData(z['y'][rows], obs=obs)}
    train_rows, valid_rows = np.flatnonzero(z['valid'] == 0), np.flatnonzero(z['valid'] == 1)
    train_dl = make_loader(AnnDataset(anns(train_rows)), batch_size=4, shuffle=True, seed=0)
    valid_dl = make_loader(AnnDataset(anns(valid_rows)), batch_size=3)

    class Net(nn.Module):
        def __init__(self):
            super().__init__(); self.net = nn.Sequential(nn.Linear(64, 16), nn.Tanh(), nn.Linear(16, 32))
        def forward(self, b): return self.net(b['genes'])

    rows_seen = [0]
    def loss_fn(o, b):
        rows_seen[0] = len(b['target']); return ((o - b['target']) ** 2).mean()
    class Spy(T.Callback):                       # rows this rank trained on per step (checks the per-rank batch)
        def __init__(self): self.rows = []
        def on_batch_end(self, tr): self.rows.append(rows_seen[0])
    spy_rows = Spy()
    metric = lambda o, b: {'pearson': float(nan_mean(pearson(b['target'], o, axis=0)))}
    torch.manual_seed(0)
    cfg = T.TrainConfig(epochs=6, lr=3e-2, scheduler='cosine', warmup_epochs=1, progress=False, seed=3)
    tr = T.Trainer(Net(), loss_fn, train_dl, valid_dl, cfg, metric_fn=metric, out_dir=out/'run', callbacks=[spy_rows])
    hist = tr.fit()
    res = {'rank': tr.rank, 'world_size': tr.world_size, 'history': hist.to_dict('list'), 'writes': writes,
           'rows_per_step': spy_rows.rows, 'ddp': type(tr.model).__name__,
           'weights': {k: v.tolist() for k, v in tr._unwrapped.state_dict().items()}}
    (out/f'result_rank{rank}.json').write_text(json.dumps(res))
''')


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0)); return s.getsockname()[1]


@pytest.fixture(scope='module')
def runs(tmp_path_factory):
    from isonb import datasets
    from isonb.models import tpm_layer
    tmp = tmp_path_factory.mktemp('ddp')
    macro = datasets.macrophage()
    g, t = np.log1p(tpm_layer(macro.genes)), np.log1p(tpm_layer(macro.transcripts))
    x = g[:, np.argsort(-g.var(0))[:64]]
    x = (x - x.mean(0)) / (x.std(0) + 1e-6)
    y = t[:, np.argsort(-t.var(0))[:32]]
    y = (y - y.mean(0)) / (y.std(0) + 1e-6)
    donors = macro.genes.obs['donor'].astype(str).to_numpy()
    valid = (donors == sorted(set(donors))[-1]).astype(int)
    np.savez(tmp/'data.npz', x=x.astype(np.float32), y=y.astype(np.float32), valid=valid)
    (tmp/'job.py').write_text(SCRIPT)
    env = {**os.environ, 'OMP_NUM_THREADS': '1'}
    if sys.platform.startswith('linux'): env.setdefault('GLOO_SOCKET_IFNAME', 'lo')   # containers: hostname may not resolve
    env.pop('IN_TEST', None)
    env.pop('WORLD_SIZE', None); env.pop('RANK', None)
    single = subprocess.run([sys.executable, str(tmp/'job.py'), str(tmp/'data.npz'), str(tmp/'single')],
                            capture_output=True, text=True, timeout=300, env=env)
    assert single.returncode == 0, single.stderr[-3000:]
    ddp = subprocess.run([sys.executable, '-m', 'torch.distributed.run', '--nnodes=1', '--nproc_per_node=2',
                          '--master_addr=127.0.0.1', f'--master_port={_free_port()}',
                          str(tmp/'job.py'), str(tmp/'data.npz'), str(tmp/'ddp')],
                         capture_output=True, text=True, timeout=300, env=env)
    assert ddp.returncode == 0, ddp.stderr[-3000:]
    load = lambda p: json.loads(p.read_text())
    return (load(tmp/'single'/'result_rank0.json'), load(tmp/'ddp'/'result_rank0.json'),
            load(tmp/'ddp'/'result_rank1.json'), tmp)


def test_ddp_really_ran_two_ranks_on_half_batches(runs):
    single, r0, r1, _ = runs
    assert (single['world_size'], single['ddp']) == (1, 'Net')
    assert (r0['rank'], r0['world_size'], r1['rank'], r0['ddp']) == (0, 2, 1, 'DistributedDataParallel')
    assert set(single['rows_per_step']) == {4}                        # 16 training rows, global batch 4
    assert set(r0['rows_per_step']) == set(r1['rows_per_step']) == {2}  # each rank: half of every global batch
    assert len(r0['rows_per_step']) == len(single['rows_per_step']) == 6 * 4


def test_loss_trajectories_match_one_process(runs):
    single, r0, r1, _ = runs
    cols = ['train_loss', 'train_grad_norm', 'valid_loss', 'valid_pearson']
    for c in cols:
        a, b = np.array(single['history'][c]), np.array(r0['history'][c])
        np.testing.assert_allclose(b, a, rtol=1e-4, atol=1e-6, err_msg=c)
        np.testing.assert_allclose(np.array(r1['history'][c]), b, rtol=0, atol=0, err_msg=f'{c}: ranks disagree')
    h = single['history']
    assert h['train_loss'][-1] < 0.5 * h['train_loss'][0]             # the trajectory is not flat: training happened
    for k, w in single['weights'].items():
        np.testing.assert_allclose(np.array(r0['weights'][k]), np.array(w), rtol=1e-4, atol=1e-5, err_msg=k)


def test_only_rank0_writes(runs):
    single, r0, r1, tmp = runs
    assert r1['writes'] == []
    assert {'last.pt', 'best.pt', 'history.csv', 'history.json', 'train_config.yaml'} <= set(r0['writes'])
    assert r0['writes'].count('last.pt') == 6
    files = sorted(p.name for p in (tmp/'ddp'/'run').iterdir())
    assert files == ['best.pt', 'history.csv', 'history.json', 'last.pt', 'train_config.yaml']
    import torch
    ck = torch.load(tmp/'ddp'/'run'/'last.pt', weights_only=True)
    assert not any(k.startswith('module.') for k in ck['model'])      # the DDP wrapper never reaches the checkpoint

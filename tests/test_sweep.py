"Local papermill sweeps: stable plans, skipping finished runs, failures listed and rerun alone, interrupted runs, collection."
import json, os, signal, subprocess, sys, time
from pathlib import Path

import pandas as pd
import pytest
import yaml

from isonb.sweep import (load_sweep, plan, run_sweep, run_state, run_dir, sweep_status, collect, write_demo_notebook,
                         sbatch_script, submit)
from isonb.data import IsonbInputError

BIN = Path(sys.executable).parent


def _sweep_file(tmp: Path, **extra) -> Path:
    nb = write_demo_notebook(tmp/'demo.ipynb')
    spec = {'name': 'demo', 'notebook': str(nb), 'cwd': str(tmp), 'out_root': str(tmp/'runs'), 'metrics': 'metrics.json',
            'params': {'scale': 2.0}, 'grid': {'x': [1, 2]}, 'runs': [{'x': 3, 'fail_on': 3}], 'env': {'OMP_NUM_THREADS': 1},
            'plot_metrics': ['score'], **extra}
    p = tmp/'demo.yaml'
    p.write_text(yaml.safe_dump(spec))
    return p


@pytest.fixture
def isonb_sweep(capsys, monkeypatch):
    "`isonb ...` in-process (the CLI's startup would dominate these small tests): (exit code, stdout, stderr)."
    from isonb.cli import main
    def call(*args, env=None):
        monkeypatch.delenv('ISONB_SWEEP_FIXED', raising=False)
        for k, v in (env or {}).items(): monkeypatch.setenv(k, v)
        try: rc = main(list(map(str, args)))
        except SystemExit as e: rc = e.code
        out = capsys.readouterr()
        return subprocess.CompletedProcess(args, rc, out.out, out.err)
    return call


def _files(root: Path) -> set:
    return {p.relative_to(root) for p in root.rglob('*') if p.is_file()}


def test_plan_ids_stable_and_checked(tmp_path):
    f = _sweep_file(tmp_path)
    a, b = plan(load_sweep(f)), plan(load_sweep(f))
    assert [r.run_id for r in a] == [r.run_id for r in b] and len(a) == 3
    assert len({r.run_id for r in a}) == 3
    assert a[0].run_id.startswith('x-1-') and a[0].params == {'scale': 2.0, 'x': 1}
    # moving the output root does not rename runs; changing a parameter does
    assert [r.run_id for r in plan(load_sweep(f, ['out_root=/elsewhere']))] == [r.run_id for r in a]
    assert plan(load_sweep(f, ['params.scale=3.0']))[0].run_id != a[0].run_id
    with pytest.raises(IsonbInputError, match=r"no parameter\(s\) \['nope'\]"): plan(load_sweep(f, ['grid={"nope": [1]}']))
    with pytest.raises(IsonbInputError, match='unknown_key'):
        bad = tmp_path/'bad.yaml'; bad.write_text('name: x\nunknown_key: 1\n'); load_sweep(bad)


def test_local_sweep_skip_fail_rerun_collect(tmp_path, isonb_sweep):
    f = _sweep_file(tmp_path)
    before = _files(tmp_path)
    r = isonb_sweep('sweep', 'run', f)
    assert r.returncode == 1, r.stderr[-2000:]          # one run failed on purpose: the sweep says so
    sweep = load_sweep(f)
    st = sweep_status(sweep).set_index('run_id')
    assert sorted(st['state']) == ['done', 'done', 'failed']
    failed = st.index[st['state'] == 'failed'].item()
    assert 'fails on purpose' in st.loc[failed, 'error']
    assert 'fails on purpose' in (run_dir(sweep, failed)/'notebook.ipynb').read_text()   # executed notebook keeps the error
    assert not (run_dir(sweep, failed)/'DONE').exists()
    s = isonb_sweep('sweep', 'status', f)
    assert s.returncode == 0 and f'failed: {failed}' in s.stdout
    # nothing written outside the sweep folder
    new = _files(tmp_path) - before
    assert all(p.parts[:2] == ('runs', 'demo') for p in new), sorted(map(str, new))[:10]
    # a second run skips everything (done runs, and the failed one until asked)
    mtimes = {p: p.stat().st_mtime for p in (tmp_path/'runs'/'demo').glob('*/DONE')}
    failed_mtime = (run_dir(sweep, failed)/'FAILED').stat().st_mtime
    r2 = isonb_sweep('sweep', 'run', f)
    assert r2.returncode == 1 and r2.stdout.count('skipped') == 3, r2.stdout
    assert {p: p.stat().st_mtime for p in (tmp_path/'runs'/'demo').glob('*/DONE')} == mtimes
    assert (run_dir(sweep, failed)/'FAILED').stat().st_mtime == failed_mtime
    # fix the cause, rerun only the failed run
    r3 = isonb_sweep('sweep', 'run', f, '--rerun-failed', env={'ISONB_SWEEP_FIXED': '1'})
    assert r3.returncode == 0, r3.stdout + r3.stderr[-2000:]
    assert {p: p.stat().st_mtime for p in mtimes} == mtimes
    st = sweep_status(sweep)
    assert set(st['state']) == {'done'}
    c = isonb_sweep('sweep', 'collect', f)
    assert c.returncode == 0, c.stderr[-2000:]
    table = pd.read_csv(tmp_path/'runs'/'demo'/'collected.csv')
    assert sorted(table['score']) == [2.0, 4.0, 6.0] and table['run_id'].nunique() == 3
    assert pd.read_parquet(tmp_path/'runs'/'demo'/'collected.parquet').shape == table.shape
    assert (tmp_path/'runs'/'demo'/'collected_comparison.png').read_bytes()[:4] == b'\x89PNG'


def test_interrupted_run_never_looks_finished_and_resumes_training(tmp_path):
    "Kill a run mid-training (as a dead node would): it is not DONE, not collected; the rerun resumes from its checkpoint."
    f = _sweep_file(tmp_path, grid={'x': [1]}, runs=[], params={'train_epochs': 6, 'epoch_sleep_s': 1.5})
    sweep = load_sweep(f)
    (run,) = plan(sweep)
    d = run_dir(sweep, run.run_id)
    p = subprocess.Popen([str(BIN/'isonb'), 'sweep', 'run-one', str(f), '--run-id', run.run_id],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    t0 = time.time()
    while not (d/'train'/'last.pt').exists() and time.time() - t0 < 120 and p.poll() is None: time.sleep(0.2)
    assert (d/'train'/'last.pt').exists(), 'training never checkpointed'
    os.killpg(p.pid, signal.SIGKILL); p.wait()     # the node dies mid-run
    assert run_state(d) == 'interrupted' and not (d/'DONE').exists()
    with pytest.raises(IsonbInputError, match='no finished run'): collect(sweep, write=False)
    # the next sweep run picks it up again (attempt 2); training continues from last.pt instead of starting over
    out = run_sweep(sweep).set_index('run_id')
    assert out.loc[run.run_id, 'state'] == 'done' and int(out.loc[run.run_id, 'attempt']) == 2
    m = json.loads((d/'metrics.json').read_text())
    assert m['resumed_from_epoch'] >= 1 and m['epochs_in_history'] == 6, m
    hist = pd.read_csv(d/'train'/'history.csv')
    assert hist['epoch'].tolist() == [1, 2, 3, 4, 5, 6]


def test_sbatch_script_and_dry_run(tmp_path, isonb_sweep):
    f = _sweep_file(tmp_path, slurm={'partition': 'gpu', 'gres': 'gpu:1', 'max_parallel': 2, 'setup': ['module load cuda']})
    res = submit(load_sweep(f), f, dry_run=True)
    assert res['job_id'] is None and len(res['run_ids']) == 3
    text = Path(res['script']).read_text()
    for line in ('#SBATCH --array=0-2%2', '#SBATCH --partition=gpu', '#SBATCH --gres=gpu:1', '#SBATCH --requeue', 'module load cuda',
                 'isonb sweep run-one'):
        assert line in text, line
    assert Path(res['script']).with_suffix('.runs').read_text().split() == res['run_ids']
    r = isonb_sweep('sweep', 'submit', f, '--dry-run', '--set', 'slurm.time=00:05:00')
    assert r.returncode == 0 and 'dry run' in r.stdout, r.stderr


def test_cli_errors_are_clear(tmp_path, isonb_sweep):
    r = isonb_sweep('sweep', 'plan', tmp_path/'missing.yaml')
    assert r.returncode == 2 and 'does not exist' in r.stderr and 'Traceback' not in r.stderr
    f = _sweep_file(tmp_path)
    r = isonb_sweep('sweep', 'run-one', f, '--run-id', 'nope')
    assert r.returncode == 2 and "run 'nope' is not in sweep demo" in r.stderr
    r = isonb_sweep('sweep', 'collect', f)
    assert r.returncode == 2 and 'no finished run' in r.stderr


def test_help_everywhere_and_missing_kernel(tmp_path, isonb_sweep):
    r = subprocess.run([str(BIN/'isonb'), 'sweep', '--help'], capture_output=True, text=True)   # the installed command
    assert r.returncode == 0 and 'usage: isonb sweep' in r.stdout, r.stderr
    for sub in ('plan', 'run', 'run-one', 'submit', 'status', 'collect'):
        h = isonb_sweep('sweep', sub, '--help')
        assert h.returncode == 0 and f'usage: isonb sweep {sub}' in h.stdout, (sub, h.stderr)
    f = _sweep_file(tmp_path, kernel='no-such-kernel')
    r = isonb_sweep('sweep', 'run', f)
    assert r.returncode == 2 and 'ipykernel install --sys-prefix --name no-such-kernel' in r.stderr
    assert not (tmp_path/'runs').exists()   # refused before anything was written

"""Sweeps through a REAL SLURM scheduler: a one-node cluster on localhost (tools/slurm_cluster.sh), sbatch job arrays,
a failed task rerun alone, a requeued task that resumes, and the collected table.

Skips when the SLURM/munge binaries are missing or we are not root -- unless ISONB_REQUIRE_SLURM=1 (CI), then it fails.
Uses a cluster that is already up when SLURM_CONF points at one; otherwise starts its own and stops exactly its daemons.
"""
import json, os, shutil, socket, subprocess, sys, time
from pathlib import Path

import pandas as pd
import pytest
import yaml

from isonb.sweep import load_sweep, plan, submit, sweep_status, wait_for_jobs, collect, run_dir, write_demo_notebook

ROOT = Path(__file__).resolve().parent.parent
CLUSTER = ROOT/'tools'/'slurm_cluster.sh'
BINARIES = ('munged', 'slurmctld', 'slurmd', 'sbatch', 'squeue', 'scontrol', 'sinfo', 'scancel')
TIMEOUT = 300


def _unavailable(reason: str):
    if os.environ.get('ISONB_REQUIRE_SLURM') == '1': pytest.fail(f"ISONB_REQUIRE_SLURM=1 but {reason}")
    pytest.skip(reason)


def _node_up(env) -> bool:
    r = subprocess.run(['sinfo', '-h', '-o', '%t'], capture_output=True, text=True, env=env)
    return r.returncode == 0 and any(s.strip().rstrip('*') in ('idle', 'mix', 'alloc') for s in r.stdout.split())


def _free_port() -> int:
    with socket.socket() as s: s.bind(('127.0.0.1', 0)); return s.getsockname()[1]


@pytest.fixture(scope='module')
def slurm(tmp_path_factory):
    "SLURM_CONF of a running one-node cluster (ours, started here and stopped at the end, or one already up)."
    missing = [b for b in BINARIES if shutil.which(b, path=os.environ.get('PATH', '') + ':/usr/sbin:/sbin') is None]
    if missing: _unavailable(f"SLURM binaries missing: {missing} (install with .ci/install_system_deps.sh: apt-get install slurm-wlm munge)")
    conf = os.environ.get('SLURM_CONF')
    if conf and Path(conf).exists() and _node_up(os.environ):
        yield conf; return
    if os.geteuid() != 0: _unavailable("starting the test cluster needs root (slurmd runs jobs as their users)")
    d = tmp_path_factory.mktemp('slurm')
    env = {**os.environ, 'ISONB_SLURM_DIR': str(d), 'ISONB_SLURMCTLD_PORT': str(_free_port()), 'ISONB_SLURMD_PORT': str(_free_port())}
    r = subprocess.run([str(CLUSTER), 'start'], capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 0, f"tools/slurm_cluster.sh start failed:\n{r.stdout}\n{r.stderr}"
    pids = [int(l.split()[1]) for l in (d/'pids').read_text().splitlines()]
    try:
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv('SLURM_CONF', str(d/'slurm.conf'))
            yield str(d/'slurm.conf')
    finally:
        r = subprocess.run([str(CLUSTER), 'stop'], capture_output=True, text=True, env=env, timeout=120)
        print(r.stdout, r.stderr)
        time.sleep(0.5)
        alive = [p for p in pids if Path(f'/proc/{p}').exists() and 'zombie' not in Path(f'/proc/{p}/status').read_text().lower()]
        assert not alive, f"daemons still running after stop: {alive}"


def _write(path: Path, spec: dict) -> Path:
    path.write_text(yaml.safe_dump(spec)); return path


def _slurm_section(**kw) -> dict:
    "Small tasks that fit any test node; the tasks activate this interpreter's environment."
    return {'time': '00:10:00', 'cpus_per_task': 1, 'mem': None, 'stagger_s': 1,
            'setup': [f'source {Path(sys.prefix)/"bin"/"activate"}'], **kw}


def test_sweep_array_failure_rerun_and_collect(slurm, tmp_path, monkeypatch):
    monkeypatch.delenv('ISONB_SWEEP_FIXED', raising=False)
    demo = _write(tmp_path/'demo.yaml', {
        'name': 'demo', 'notebook': str(write_demo_notebook(tmp_path/'demo.ipynb')), 'cwd': str(tmp_path),
        'out_root': str(tmp_path/'runs'), 'metrics': 'metrics.json', 'params': {'fail_on': 3}, 'grid': {'x': [3, 1, 2]},
        'env': {'OMP_NUM_THREADS': 1}, 'slurm': _slurm_section()})   # task 0 (x=3) fails on purpose
    # one run of the real pipeline notebook on the macrophage data (smoke budget: one donor held out)
    real = _write(tmp_path/'pipeline.yaml', {
        'name': 'pipeline', 'notebook': str(ROOT/'papermill_runs'/'isoform_pipeline.ipynb'), 'cwd': str(ROOT),
        'out_root': str(tmp_path/'runs'), 'params': {'config': 'configs/smoke.yaml', 'overrides': ['name=run', 'save_models=false']},
        'override_grid': {'repr_params.pca.n_components': [8]}, 'env': {'OMP_NUM_THREADS': 1}, 'slurm': _slurm_section()})
    s_demo, s_real = load_sweep(demo), load_sweep(real)
    jobs = [submit(s_real, real), submit(s_demo, demo)]   # the pipeline first: it holds one CPU, the demo tasks share the other
    assert all(j['job_id'] for j in jobs) and [len(j['run_ids']) for j in jobs] == [1, 3]
    assert wait_for_jobs([jobs[1]['job_id']], timeout=TIMEOUT), "demo array tasks did not finish in time"

    st = sweep_status(s_demo).set_index('run_id')
    assert sorted(st['state']) == ['done', 'done', 'failed'], st
    failed = st.index[st['state'] == 'failed'].item()
    assert 'fails on purpose' in st.loc[failed, 'error']
    assert st.loc[failed, 'slurm_state'] in ('FAILED', None)           # squeue/sacct still remember the task, or forgot it
    assert set(st.loc[st['state'] == 'done', 'slurm_state'].dropna()) <= {'COMPLETED'}
    out = subprocess.run([str(Path(sys.executable).parent/'isonb'), 'sweep', 'status', str(demo)], capture_output=True, text=True)
    assert out.returncode == 0 and f'failed: {failed}' in out.stdout, out.stdout + out.stderr
    logs = list((tmp_path/'runs'/'demo'/'slurm'/'logs').glob('*.out'))
    assert len(logs) == 3 and any('Executing Cell' in p.read_text() for p in logs)   # papermill --log-output reached the SLURM logs

    # fix the cause (the environment the task sees) and resubmit: only the failed run becomes an array task
    monkeypatch.setenv('ISONB_SWEEP_FIXED', '1')
    again = submit(s_demo, demo, rerun_failed=True)
    assert again['run_ids'] == [failed]
    assert wait_for_jobs([again['job_id'], jobs[0]['job_id']], timeout=TIMEOUT), "rerun or pipeline run did not finish in time"
    table = collect(s_demo)
    assert sorted(table['score']) == [2.0, 4.0, 6.0] and table['run_id'].nunique() == 3
    assert json.loads((run_dir(s_demo, failed)/'DONE').read_text())['slurm_job'] is not None

    rst = sweep_status(s_real)
    assert list(rst['state']) == ['done'], rst.to_dict('records')
    res = collect(s_real)
    pear = res[(res['metric'] == 'pearson_feature_mean')].set_index('method')['mean']
    assert {'mean_fraction', 'pca+fraction'} <= set(pear.index) and pear.notna().all()
    assert (tmp_path/'runs'/'pipeline'/'collected.parquet').exists()


def _task_state(job: str) -> str:
    r = subprocess.run(['squeue', '-h', '-r', '--states=all', '-j', job, '-o', '%T'], capture_output=True, text=True)
    return r.stdout.strip()


def test_requeued_task_resumes(slurm, tmp_path):
    "A task killed by `scontrol requeue` (what preemption does) runs again and its training resumes from last.pt."
    spec = _write(tmp_path/'slow.yaml', {
        'name': 'slow', 'notebook': str(write_demo_notebook(tmp_path/'demo.ipynb')), 'cwd': str(tmp_path),
        'out_root': str(tmp_path/'runs'), 'metrics': 'metrics.json', 'runs': [{'x': 5, 'train_epochs': 5, 'epoch_sleep_s': 2.0}],
        'slurm': _slurm_section()})
    sweep = load_sweep(spec)
    job = submit(sweep, spec)['job_id']
    d = run_dir(sweep, plan(sweep)[0].run_id)
    t0 = time.time()
    while not (d/'train'/'last.pt').exists() and time.time() - t0 < 180: time.sleep(0.5)
    assert (d/'RUNNING').exists() and not (d/'DONE').exists() and (d/'train'/'last.pt').exists()
    subprocess.run(['scontrol', 'requeue', f'{job}_0'], check=True)
    t0 = time.time()   # SLURM holds a requeued job ~2 minutes (BeginTime); release it now
    while _task_state(job) != 'PENDING' and time.time() - t0 < 60: time.sleep(0.5)
    time.sleep(2)   # slurmd refuses a launch whose credential dates from the same second as the requeue's revocation
    subprocess.run(['scontrol', 'update', f'jobid={job}_0', 'StartTime=now'], check=True)
    assert wait_for_jobs([job], timeout=TIMEOUT)
    done = json.loads((d/'DONE').read_text())
    assert done['attempt'] == 2
    log = (tmp_path/'runs'/'slow'/'slurm'/'logs'/f'{job}_0.out').read_text()
    assert 'restart 0' in log and 'restart 1' in log and 'DUE TO JOB REQUEUE' in log
    m = collect(sweep, write=False).iloc[0]
    assert m['score'] == 10.0 and m['resumed_from_epoch'] >= 1 and m['epochs_in_history'] == 5, m.to_dict()

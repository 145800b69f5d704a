#!/usr/bin/env python3
"""Per-thread CPU of migration_bench's two processes, next to its write latency.

    benchmarks/thread_timeline.py sample OUT     # every 100 ms until killed
    benchmarks/thread_timeline.py align RUN_DIR [--from S] [--to S] [--hot]

`sample` writes one line per 100 ms: CLOCK_MONOTONIC ms, then for every thread
of every process named migration_bench (node-1 and the client) or exe (node-2,
which the bench starts through /proc/self/exe) that used a CPU in the interval,
pid/comm:cpu_ms/wait_ms (wait: runnable but not running, from schedstat).

`align` reads RUN_DIR/bench.jsonl and RUN_DIR/bench.err of a run with
`--mode impact --timeline-ms 100` and RUN_DIR/samp (the sampler's output for
that run) and prints, for each 100 ms from the throttled move's request, the
writes' p50 and p99 in that window and each thread's CPU. Processes are
numbered n1, n2 in the order they appear (node-1 first). --hot prints only
the windows with a p50 over 4 ms or a p99 over 10 ms.

    benchmarks/thread_timeline.py sample run/samp & s=$!
    build/release/benchmarks/migration_bench --mode impact \\
        --load-writes-per-s 35000 --timeline-ms 100 > run/bench.jsonl 2> run/bench.err
    kill $s; benchmarks/thread_timeline.py align run --hot

docs/benchmarks.md ("Thirteenth round") shows what it found.
"""
import glob
import json
import sys
import time

NAMES = ('migration_bench', 'exe')


def read(path):
    with open(path) as f:
        return f.read()


def sample(out_path):
    prev = {}
    with open(out_path, 'w') as out:
        while True:
            t = time.clock_gettime(time.CLOCK_MONOTONIC)
            cur = {}
            for comm_path in glob.glob('/proc/[0-9]*/comm'):
                try:
                    if read(comm_path).strip() not in NAMES:
                        continue
                except OSError:
                    continue
                pid = comm_path.split('/')[2]
                for task in glob.glob(f'/proc/{pid}/task/*'):
                    try:
                        comm = read(task + '/comm').strip()
                        cpu, wait, _ = read(task + '/schedstat').split()
                    except (OSError, ValueError):
                        continue
                    tid = task.rsplit('/', 1)[1]
                    cur[(pid, tid, 'main' if tid == pid else comm)] = (int(cpu), int(wait))
            per_thread = {}
            for key, (cpu, wait) in cur.items():
                was_cpu, was_wait = prev.get(key, (cpu, wait))
                slot = per_thread.setdefault((key[0], key[2]), [0.0, 0.0])
                slot[0] += (cpu - was_cpu) / 1e6
                slot[1] += (wait - was_wait) / 1e6
            prev = cur
            fields = [f'{t * 1000:.0f}']
            for (pid, comm), (cpu, wait) in sorted(per_thread.items()):
                if cpu >= 0.5 or wait >= 0.5:
                    fields.append(f'{pid}/{comm}:{cpu:.0f}/{wait:.0f}')
            out.write(' '.join(fields) + '\n')
            out.flush()
            time.sleep(max(0.0, 0.1 - (time.clock_gettime(time.CLOCK_MONOTONIC) - t)))


def align(run_dir, start_s, end_s, hot_only):
    marks = [json.loads(line) for line in open(f'{run_dir}/bench.jsonl')
             if '"migration_stage_cpu"' in line and '"label":"impact"' in line]
    if not marks:
        sys.exit(f'{run_dir}/bench.jsonl has no impact stage marks')
    move_ms = marks[0]['mono_start_ms']
    windows = {}
    for line in open(f'{run_dir}/bench.err'):
        if line.startswith('[timeline]'):
            f = line.split()
            windows[round(float(f[1]), 1)] = (f[3][:3], float(f[7]), float(f[9]))
    numbers = {}
    for line in open(f'{run_dir}/samp'):
        f = line.split()
        t = (float(f[0]) - move_ms) / 1000
        if t < start_s or t > end_s:
            continue
        threads = []
        for field in f[1:]:
            if ':' not in field:
                continue
            name, times = field.rsplit(':', 1)
            pid, comm = name.split('/', 1)
            n = numbers.setdefault(pid, len(numbers) + 1)
            cpu, wait = times.split('/')
            if int(cpu) + int(wait) >= 5:
                threads.append(f'n{n}:{comm}={cpu}/{wait}')
        # The sample closes the 100 ms before it: the window that began then.
        stage, p50, p99 = windows.get(round(t - 0.1, 1), ('', 0.0, 0.0))
        if hot_only and not (p50 > 4 or p99 > 10):
            continue
        print(f'{t:6.2f} {stage:3} p50 {p50:6.1f} p99 {p99:6.1f} | {" ".join(sorted(threads))}')


def main(argv):
    if len(argv) == 3 and argv[1] == 'sample':
        sample(argv[2])
    elif len(argv) >= 3 and argv[1] == 'align':
        args = argv[3:]
        start_s, end_s = -1.0, 1e9
        if '--from' in args:
            start_s = float(args[args.index('--from') + 1])
        if '--to' in args:
            end_s = float(args[args.index('--to') + 1])
        align(argv[2], start_s, end_s, '--hot' in args)
    else:
        sys.exit(__doc__)


if __name__ == '__main__':
    main(sys.argv)

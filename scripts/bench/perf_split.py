#!/usr/bin/env python3
"""CPU split of a perf recording by part, per committed write (BENCHMARKS.md,
"Durable writes versus etcd (issue 15)").

Usage: perf script -i perf-topod-insecure-r1-c64.data > s.txt
       scripts/bench/perf_split.py s.txt WRITES [HZ=499]

WRITES is the request count wrk printed for that run. Rust frames carry no
frame pointers, so each sample is classified by its user frames that did
resolve (mostly the leaf) and its kernel stack; the thread name tells
sled's IO pool apart.
"""
import sys, re, collections
path, writes = sys.argv[1], float(sys.argv[2])
hz = float(sys.argv[3]) if len(sys.argv) > 3 else 499.0
samples = []
cur = None
for line in open(path, errors='replace'):
    if not line.strip():
        if cur: samples.append(cur); cur = None
        continue
    if not line.startswith('\t') and not line.startswith(' ' * 8):
        parts = line.split()
        cur = {'comm': parts[0], 'tid': parts[1], 'frames': []}
    elif cur is not None:
        m = re.match(r'\s*[0-9a-f]+ (.*?) \((.*)\)', line)
        if m: cur['frames'].append((m.group(1), m.group(2)))
if cur: samples.append(cur)
def cat(s):
    c = s['comm']
    if c.startswith('sled-io') or c == 'log flusher': return 'sled IO pool threads (log writes for flushes)'
    fr = s['frames']
    user = [f for f, d in fr if '[kernel' not in d]
    kern = [f for f, d in fr if '[kernel' in d]
    text = ' '.join(user)
    ktext = ' '.join(kern)
    if 'sync_file_range' in text or 'sync_file_range' in ktext or 'sled::pagecache::iobuf' in text or 'flush' in text and 'sled' in text:
        return 'sled flush (Db::flush, sync_file_range)'
    if 'sled::' in text: return 'sled tree ops (insert/apply_batch/get)'
    if 'openraft' in text: return 'openraft'
    if 'postcard' in text: return 'postcard'
    if 'serde_json' in text: return 'JSON (serde_json)'
    if 'rustls' in text or 'ring::' in text or 'aws_lc' in text: return 'TLS (rustls)'
    if 'hyper' in text or 'axum' in text or 'h2::' in text or 'tower' in text or 'http::' in text: return 'HTTP (hyper/axum)'
    if 'tracing' in text: return 'tracing'
    if 'metrics' in text: return 'metrics'
    if 'topod::' in text: return 'topod code'
    if 'tcp_' in ktext or 'sock_' in ktext or 'ip_' in ktext or 'epoll' in ktext or 'epoll' in text: return 'kernel network (TCP loopback, epoll)'
    if 'futex' in ktext or 'schedule' in ktext: return 'thread wake/sleep (futex, scheduler)'
    if 'malloc' in text or 'free' in text or '_int_' in text: return 'allocator'
    if 'tokio' in text: return 'tokio runtime'
    if kern: return 'kernel other'
    return 'other user'
cnt = collections.Counter(cat(s) for s in samples)
tot = sum(cnt.values())
print(f'{tot} samples = {tot/hz:.2f} CPU-s; {writes:.0f} writes; {tot/hz/writes*1e6:.0f} us CPU per write')
for k, v in cnt.most_common():
    print(f'{100*v/tot:5.1f}%  {v/hz/writes*1e6:6.0f} us/write  {k}')

#!/usr/bin/env bash
# Benchmark: `berth validate` on a generated tree of 10,000 objects (1,000 files of 10 documents:
# RCs, Pods and Services in equal measure). Prints wall time (median, p99) and peak RSS over RUNS
# runs of the release binary. Usage: benches/validate.sh [RUNS] (default 30).
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-30}
tree=$(mktemp -d /tmp/berth-bench-validate.XXXXXX)
trap 'rm -rf "$tree"' EXIT

python3 - "$tree" <<'PY'
import os, sys
root = sys.argv[1]
rc = """apiVersion: v1
kind: ReplicationController
metadata:
  name: app-{i}
  labels: {{app: app-{i}, tier: web}}
spec:
  replicas: 3
  template:
    metadata:
      labels: {{app: app-{i}, tier: web}}
    spec:
      containers:
      - name: web
        image: example/web:{i}
        env: [{{name: MODE, value: production}}]
        ports: [{{name: http, containerPort: 8080}}]
        resources:
          requests: {{cpu: 100m, memory: 64Mi}}
          limits: {{cpu: "0.5", memory: 128Mi}}
        readinessProbe:
          httpGet: {{path: /healthz, port: http}}
"""
pod = """apiVersion: v1
kind: Pod
metadata:
  name: job-{i}
spec:
  volumes: [{{name: scratch, emptyDir: {{}}}}]
  containers:
  - name: main
    image: example/job:{i}
    command: [sh, -c, "sleep 1"]
    volumeMounts: [{{name: scratch, mountPath: /scratch}}]
"""
svc = """apiVersion: v1
kind: Service
metadata:
  name: svc-{i}
spec:
  selector: {{app: app-{i}}}
  ports: [{{name: http, port: 80, targetPort: http}}]
"""
n = 0
for f in range(1000):
    d = os.path.join(root, f"team-{f % 20}")
    os.makedirs(d, exist_ok=True)
    docs = []
    for k in range(10):
        docs.append([rc, pod, svc][n % 3].format(i=n))
        n += 1
    with open(os.path.join(d, f"app-{f}.yaml"), "w") as out:
        out.write("---\n".join(docs))
PY

cargo build --release --quiet
bin=target/release/berth
"$bin" validate "$tree" >/dev/null
samples=$(mktemp)
for _ in $(seq "$runs"); do
  /usr/bin/time -f '%e %M' -o "$samples.one" "$bin" validate "$tree" >/dev/null
  cat "$samples.one" >> "$samples"
done
python3 - "$samples" "$runs" "$("$bin" validate "$tree")" <<'PY'
import sys
rows = [l.split() for l in open(sys.argv[1]) if l.strip()]
wall = sorted(float(r[0]) * 1000 for r in rows)
rss = sorted(int(r[1]) / 1024 for r in rows)
def pct(xs, p):
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]
print(f"berth validate, {sys.argv[3]} ({sys.argv[2]} runs)")
print(f"wall ms: median {pct(wall, 50):.0f}, p99 {pct(wall, 99):.0f}")
print(f"peak RSS MiB: median {pct(rss, 50):.1f}, p99 {pct(rss, 99):.1f}")
PY
rm -f "$samples" "$samples.one"

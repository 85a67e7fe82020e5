#!/usr/bin/env bash
# Site models against on-box learning alone (docs/evaluation.md §7, issue 18), on lab runs the
# fleet model never saw. Per run: the lead-in's NetFlow v9 records (those that ended before the
# first attack, less eval's 1 s slack) become the site's samples (the rows the reservoir keeps:
# ts_ms + flow-v1 features); `site-train` fine-tunes the fleet model on them (and, second, trains
# one from scratch); `netwarden eval --flow-model BUNDLE --after-lead-in` judges what follows the
# lead-in with the site model's own threshold, beside `netwarden eval --learn-lead-in` (the
# built-in model with the threshold the learning period fits on the same lead-in).
#
#   models/site-report.sh [RUN_DIR ...]     (default /work/lab-runs/seed21 /work/lab-runs/seed22)
#   OUT=/tmp/site NETWARDEN_BIN=target/debug/netwarden models/site-report.sh
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${NETWARDEN_BIN:-target/debug/netwarden}
OUT=${OUT:-/tmp/netwarden-site-report}
PY=models/.venv/bin/python
EPOCHS=${EPOCHS:-200}
mkdir -p "$OUT"
runs=("$@")
[ ${#runs[@]} -gt 0 ] || runs=(/work/lab-runs/seed21 /work/lab-runs/seed22)
for run in "${runs[@]}"; do
  name=$(basename "$run")
  d="$OUT/$name"
  mkdir -p "$d"
  "$BIN" features --netflow-pcap "$run/netflow-v9.pcap" > "$d/features.csv"
  "$PY" - "$run/labels.csv" "$d/features.csv" "$d/samples.csv" <<'PY'
import csv, sys
labels, feats, out = sys.argv[1:4]
rows = list(csv.DictReader(open(labels)))
start = min(int(r["start_ms"]) for r in rows)
attack = min(int(r["start_ms"]) for r in rows if r["label"] == "malicious")
end = attack - 1000  # eval's --slack-ms default
names = ["bidirectional_packets", "bidirectional_bytes", "bidirectional_duration_ms",
         "bidirectional_mean_ps", "tcp_syn_without_ack", "src_flows_window",
         "src_distinct_dst_ports_window", "src_distinct_dst_addrs_window"]
n = 0
with open(out, "w") as f:
    f.write("ts_ms," + ",".join(names) + ",score\n")
    for r in csv.DictReader(open(feats)):
        t = int(r["last_seen_ms"])
        if start <= t < end:
            f.write(f"{t}," + ",".join(r[k] for k in names) + ",\n")
            n += 1
print(f"{out}: {n} lead-in rows ({(end - start) / 1000:.0f} s)", file=sys.stderr)
PY
  for mode in finetune scratch; do
    ( cd models && /usr/bin/time -f "%e s wall" .venv/bin/python -m netwarden_models site-train \
        --samples "../$d/samples.csv" --out "../$d/bundle-$mode" --site "$name" --mode "$mode" \
        --epochs "$EPOCHS" --version 2026.12.2.1 --quiet ) 2>&1 | tail -1
    "$BIN" eval "$run" --json --no-graph --flow-model "$d/bundle-$mode" --after-lead-in \
        > "$d/eval-site-$mode.json"
  done
  "$BIN" eval "$run" --json --no-graph --learn-lead-in > "$d/eval-learn.json"
done
"$PY" - "$OUT" "${runs[@]}" <<'PY'
import json, sys, pathlib
out = pathlib.Path(sys.argv[1])
print("| run | path | model | threshold | phases | false | false / h | benign over threshold | flow recall | ROC-AUC |")
print("|---|---|---|---:|---:|---:|---:|---:|---:|---:|")
for run in sys.argv[2:]:
    name = pathlib.Path(run).name
    for tag, label in (("eval-learn", "built-in, threshold learnt on the lead-in"),
                       ("eval-site-finetune", "site model, fine-tuned"),
                       ("eval-site-scratch", "site model, from scratch")):
        rep = json.loads((out / name / f"{tag}.json").read_text())
        for r in rep["results"]:
            if r["detector"] != "flow_ae":
                continue
            f = r["flows"]
            fp = f["confusion"]["fp"]
            fph = r["false_alerts_per_hour"]
            print(f"| {name} | {r['path']} | {label} | {r['threshold']:.4f} | "
                  f"{r['detected_phases']}/{r['attack_phases']} | {r['alerts']['false']} | "
                  f"{fph:.0f} | {fp}/{f['benign']} = {100 * fp / max(f['benign'], 1):.1f} % | "
                  f"{f['recall'] or 0:.3f} | {f['roc_auc'] or 0:.3f} |")
PY

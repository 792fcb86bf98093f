#!/usr/bin/env bash
# GET /metrics of `postmark serve` as Prometheus sees it:
#  1. after s1.pmtx is submitted and flushed (--block-txs 32), the text
#     passes `promtool check metrics` and holds the tip height, verdict
#     counts, UTXO count and the requests by route and status;
#  2. a real Prometheus server (Debian's `prometheus`), started here on
#     loopback, scrapes the service and answers a query for the tip height.
# Both servers are stopped on exit (trap), also when a check fails.
# Usage: cli_serve_metrics.sh POSTMARK VECTORS_DIR
. "$(dirname "$0")/support/cli_lib.sh" "$@"
need_vectors
. "$(dirname "$0")/support/serve_lib.sh"
need_tools promtool prometheus

start m --chain "$T/m.pmbk" --init "$V/s1.pmtx" --block-txs 32 || bad "start"
python3 "$HERE/../examples/serve_client.py" "http://127.0.0.1:$PORT" submit "$V/s1.pmtx" --batch 50 --flush > /dev/null || bad "submit"
fetch() { python3 -c "import sys, urllib.request; sys.stdout.write(urllib.request.urlopen(sys.argv[1]).read().decode())" "$1"; }
fetch "http://127.0.0.1:$PORT/metrics" > "$T/metrics.txt" || bad "GET /metrics"
promtool check metrics < "$T/metrics.txt" && ok || bad "promtool check metrics"
for line in 'postmark_tip_height 8' 'postmark_utxo_count 1150' \
    'postmark_transactions_total{verdict="accepted"} 257' \
    'postmark_transactions_total{verdict="rejected"} 43' \
    'postmark_rejects_total{reason="BAD_SIGNATURE"} 8' \
    'postmark_http_requests_total{route="txs",code="200"} 6' \
    'postmark_http_requests_total{route="flush",code="200"} 1'; do
    grep -qxF "$line" "$T/metrics.txt" && ok || bad "metrics lack: $line"
done

# A Prometheus server on a free loopback port, scraping every second.
pport=$(python3 -c "import socket; s = socket.socket(); s.bind(('127.0.0.1', 0)); print(s.getsockname()[1])")
cat > "$T/prometheus.yml" <<YML
global:
  scrape_interval: 1s
scrape_configs:
  - job_name: postmark
    static_configs:
      - targets: ['127.0.0.1:$PORT']
YML
prometheus --config.file="$T/prometheus.yml" --storage.tsdb.path="$T/tsdb" \
    --web.listen-address="127.0.0.1:$pport" > "$T/prometheus.log" 2>&1 &
SERVERS+=("$!")
answer=
for _ in $(seq 1 300); do
    answer=$(python3 -c "
import json, sys, urllib.request
r = json.load(urllib.request.urlopen('http://127.0.0.1:%s/api/v1/query?query=postmark_tip_height' % sys.argv[1]))
print(r['data']['result'][0]['value'][1] if r['data']['result'] else '')" "$pport" 2> /dev/null)
    [ -n "$answer" ] && break
    sleep 0.1
done
[ "$answer" = 8 ] && ok || { bad "Prometheus: postmark_tip_height is '$answer', not 8"; tail -5 "$T/prometheus.log" >&2; }
stop && ok || bad "SIGTERM"
finish

import json, sys, statistics as st
rows = [json.loads(l) for l in open(sys.argv[1]) if l.startswith('{')]
names = ['jetsocket', 'gsio', 'zishang', 'own']
runs = sorted({r['run'] for r in rows})
def get(r, path):
    for p in path.split('.'):
        r = r[p]
    return r
metrics = [
  ('Go client, websocket: RSS/conn (B)', 'go.rssPerConn'),
  ('Go client, websocket: heap in use/conn (B)', 'go.heapPerConn'),
  ('Go client, websocket: stack/conn (B)', 'go.stackPerConn'),
  ('Go client, websocket: goroutines/conn', 'go.goroutinesPerConn'),
  ('Go client, websocket: connects/s', 'go.connectsPerSec'),
  ('Go client, websocket: server CPU/connect (us)', 'go.cpuPerConnectUs'),
  ('JS client, websocket: RSS/conn (B)', 'rssPerConn'),
  ('JS client, websocket: heap/conn (B)', 'heapPerConn'),
  ('JS client, websocket: connects/s', 'connectsPerSec'),
  ('JS client, websocket: server CPU/connect (us)', 'cpuPerConnectUs'),
  ('JS client, default path: RSS/conn (B)', 'def.rssPerConn'),
  ('JS client, default path: heap/conn (B)', 'def.heapPerConn'),
  ('JS client, default path: goroutines/conn', 'def.goroutinesPerConn'),
  ('JS client, default path: connects/s', 'def.connectsPerSec'),
  ('JS client, default path: server CPU/connect (us)', 'def.cpuPerConnectUs'),
]
print('| metric (median of %d runs; ratio to jetsocket = median of per-run ratios) | ' % len(runs) + ' | '.join(names) + ' |')
print('|---|' + '---|' * len(names))
for label, path in metrics:
    cells = []
    for n in names:
        vals = [get(r, path) for r in rows if r['name'] == n]
        ratios = []
        for run in runs:
            a = [get(r, path) for r in rows if r['name'] == n and r['run'] == run]
            b = [get(r, path) for r in rows if r['name'] == 'jetsocket' and r['run'] == run]
            if a and b and b[0]:
                ratios.append(a[0] / b[0])
        med = st.median(vals)
        fmtv = f'{med:.2f}' if med < 10 else f'{med:,.0f}'
        rng = f' [{min(vals):,.0f}–{max(vals):,.0f}]' if med >= 10 else ''
        cells.append(fmtv + rng + ('' if n == 'jetsocket' else f' ({st.median(ratios):.2f}x)'))
    print(f'| {label} | ' + ' | '.join(cells) + ' |')
print()
for n in names:
    rel = [r['rel'] for r in rows if r['name'] == n]
    bur = [r['burst'] for r in rows if r['name'] == n]
    fails = [get(r, 'failed') + get(r, 'go.failed') + get(r, 'def.failed') for r in rows if r['name'] == n]
    print(f"{n}: staggered {sum(x['clientsWithLoss'] for x in rel)}/{sum(x['clients'] for x in rel)} clients with loss, {sum(x['messagesLost'] for x in rel)} messages lost; burst {sum(x['clientsWithLoss'] for x in bur)}/{sum(x['clients'] for x in bur)} clients with loss, {sum(x['messagesLost'] for x in bur)} lost; failed connects in memory phases {sum(fails)}; final transports {[x['transports'] for x in rel][:1]}; examples {[x['examples'] for x in rel + bur if x['examples']][:3]}")

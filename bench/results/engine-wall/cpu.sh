#!/bin/bash
# alternating bursts of N connects against two servers; prints µs of server CPU per connection
# base: .bin/jetsocket-base (e163669); new: .bin/jetsocket-final (this branch)
cd "$(dirname "$0")/../../.."
EIO=${EIO:-3}; N=${N:-2000}; K=${K:-8}; BURST=${BURST:-0}
start() { # bin port
  env -i PATH=$PATH HOME=$HOME ADDR=127.0.0.1:$2 APP_ENV=development JWT_SECRET=0123456789abcdef0123456789abcdef APP_ID=1 APP_KEY=key APP_SECRET=secret0123456789 MAX_CONNECTIONS_PER_IP=0 MAX_CONNECTIONS_PER_USER=0 LOG_LEVEL=warn $1 -env-file "" >/dev/null 2>&1 &
  echo $!
}
cpu() { awk '{print $14+$15}' /proc/$1/stat; }
PB=$(start .bin/jetsocket-base $((18171+EIO*10))); PN=$(start .bin/jetsocket-final $((18172+EIO*10)))
sleep 2
tck=$(getconf CLK_TCK)
for i in $(seq 1 $K); do
  for s in base:$PB:$((18171+EIO*10)) new:$PN:$((18172+EIO*10)); do
    IFS=: read name pid port <<< "$s"
    a=$(cpu $pid)
    ./.bin/jetbench run -url http://127.0.0.1:$port -jwt-secret 0123456789abcdef0123456789abcdef -app-id 1 -key key -secret secret0123456789 -eio $EIO -n $N -events 0 -burst $BURST -settle 0 > /tmp/h22s-cpu-run.log 2>&1
    sleep 1.5
    b=$(cpu $pid)
    cps=$(grep -o '([0-9]*/s)' /tmp/h22s-cpu-run.log | head -1)
    echo "$name eio$EIO burst$i events$BURST us_per_conn $(( (b-a)*1000000/tck/N )) $cps"
  done
done
kill $PB $PN

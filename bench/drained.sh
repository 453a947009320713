# shellcheck shell=bash
# Sourced by bench/inbox and bench/ordered: the wait for a draining worker's own report.

# Waits until the worker whose log is $1 prints `DRAINED <handled> <ms>` and prints
# "<handled> <ms>"; gives up after $2 seconds, printing the log. The worker counts from
# its start, once connected, to its DRAIN_EXPECT-th handled delivery, and only then
# looks, every 100 ms, until it finds nothing left (a look during the drain would be
# work the timed server does for the looking).
wait_drained() {
    local log=$1 deadline=$((SECONDS + $2)) line
    until line=$(grep -m1 '^DRAINED' "$log"); do
        if [ "$SECONDS" -ge "$deadline" ]; then
            echo "no drain reported in $2 s:" >&2
            cat "$log" >&2
            return 1
        fi
        sleep 0.1
    done
    echo "${line#DRAINED }"
}

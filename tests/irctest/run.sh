#!/usr/bin/env bash
# Runs the public IRC conformance suite irctest against chat-runner's IRC dialect, through our
# controller (chat_runner_controller.py, next to this script), and prints pytest's summary.
#
# Usage:
#   tests/irctest/run.sh [--wide] [IRCTEST_DIR [CHAT_RUNNER_BIN]] [-- EXTRA_PYTEST_ARGS...]
#
# Without --wide: the files of the first table in docs/IRC-CONFORMANCE.md (registration, ping,
# messages, join, part, names, quit, topic, who, whois, list, isupport). With --wide: those plus
# every other file that needs neither services, websockets nor Ergo (buffering, utf8, away,
# cap, IRCv3 capabilities, whowas, kick, invite, monitor, ..., and chmodes/*); the list is
# `wide_files` below. `-k 'not oper'` also drops chmodes/operator.py (its name holds "oper"),
# so run that one apart: `--only chmodes/operator`.
#   --only FILE      run just this file (a path under irctest/server_tests/, without .py), with
#                    no -k filter; may be repeated; overrides --wide
#
# EXTRA_PYTEST_ARGS are added to the fixed selection (e.g. -x, -v, --junitxml=FILE, or
# -k 'testJoin' to narrow it further: pytest combines several -k with the last one winning,
# so repeat 'not oper' in it).
#
# Arguments win over the environment:
#   IRCTEST_DIR      an irctest checkout (https://github.com/progval/irctest); required
#   CHAT_RUNNER_BIN  the server binary; default <repo>/target/debug/chat-runner.
#                    Build it first: cargo build -p chat-runner
#   PYTHON           a Python with irctest's requirements, pytest-timeout and pytest-xdist
#                    (default python3)
#   IRCTEST_TIMEOUT  seconds for the whole run before it is killed (default 900)
#   IRCTEST_JOBS     pytest-xdist workers (default 2)
#   IRCTEST_LOG      also write pytest's full output to this file
#
# Every server listens on 127.0.0.1 only (the controller refuses anything else). Each test is
# bounded by pytest-timeout (60 s) and the whole run by `timeout`. The exit status is pytest's
# (0 all passed, 1 some failed, 5 no tests collected) or 124 when the run timed out.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)

positional=()
wide=0
only=()
while [ $# -gt 0 ]; do
    case "$1" in
        --) shift; break ;;
        --wide) wide=1; shift ;;
        --only) [ $# -ge 2 ] || { echo "run.sh: --only needs a file" >&2; exit 2; }
                only+=("$2"); shift 2 ;;
        -h|--help) sed -n '2,/^set /p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) positional+=("$1"); shift ;;
    esac
done
[ ${#positional[@]} -le 2 ] || { echo "run.sh: too many arguments (see --help)" >&2; exit 2; }
irctest_dir=${positional[0]:-${IRCTEST_DIR:-}}
bin=${positional[1]:-${CHAT_RUNNER_BIN:-$repo/target/debug/chat-runner}}
python=${PYTHON:-python3}
total_timeout=${IRCTEST_TIMEOUT:-900}
jobs=${IRCTEST_JOBS:-2}
log=${IRCTEST_LOG:+$(realpath -m "$IRCTEST_LOG")}   # absolute: pytest runs from the checkout

[ -n "$irctest_dir" ] || { echo "run.sh: give the irctest checkout as IRCTEST_DIR or the first argument" >&2; exit 2; }
[ -f "$irctest_dir/conftest.py" ] && [ -d "$irctest_dir/irctest/server_tests" ] \
    || { echo "run.sh: $irctest_dir is not an irctest checkout" >&2; exit 2; }
irctest_dir=$(cd "$irctest_dir" && pwd)
[ -x "$bin" ] || { echo "run.sh: $bin is not an executable; run: cargo build -p chat-runner" >&2; exit 2; }
bin=$(cd "$(dirname "$bin")" && pwd)/$(basename "$bin")
"$python" -c 'import pytest, pytest_timeout, xdist' 2>/dev/null \
    || { echo "run.sh: $python lacks pytest, pytest-timeout or pytest-xdist" >&2; exit 2; }

# A binary older than the sources it is built from is probably stale: say so (not fatal).
if [ "$bin" = "$repo/target/debug/chat-runner" ] \
    && [ -n "$(find "$repo/core" "$repo/runner" -name '*.rs' -newer "$bin" -print -quit)" ]; then
    echo "run.sh: warning: $bin is older than the sources; cargo build -p chat-runner" >&2
fi

files=(connection_registration pingpong messages join part names quit topic who whois list isupport)
wide_files=(buffering utf8 regressions away cap message_tags echo_message labeled_responses lusers
            away_notify multi_prefix whowas kick invite monitor statusmsg setname time info help
            wallops channel_rename links multiline read_marker redact)
kfilter=(-k 'not oper')
if [ ${#only[@]} -gt 0 ]; then
    files=("${only[@]}")
    kfilter=()
elif [ "$wide" = 1 ]; then
    files+=("${wide_files[@]}")
    for f in "$irctest_dir"/irctest/server_tests/chmodes/*.py; do
        case "$(basename "$f")" in __init__.py) ;; *) files+=("chmodes/$(basename "$f" .py)") ;; esac
    done
fi
paths=()
for f in "${files[@]}"; do
    [ -f "$irctest_dir/irctest/server_tests/$f.py" ] || { echo "run.sh: no irctest/server_tests/$f.py" >&2; exit 2; }
    paths+=("irctest/server_tests/$f.py")
done

cmd=(timeout -k 10 "$total_timeout" "$python" -m pytest -p no:cacheprovider
     --controller chat_runner_controller
     -m 'not services and not implementation-specific and not deprecated and not strict'
     ${kfilter[@]+"${kfilter[@]}"}
     -n "$jobs" --timeout 60 -q -rfEsxX
     "$@" "${paths[@]}")

echo "run.sh: irctest $(git -C "$irctest_dir" rev-parse --short HEAD 2>/dev/null || echo '?') at $irctest_dir"
echo "run.sh: server $bin"
echo "run.sh: (cd $irctest_dir && $(printf '%q ' "${cmd[@]}"))"

ports_file=$("$python" -c 'import tempfile; print(tempfile.gettempdir())')/irctest_ports.json
status=0
(
    cd "$irctest_dir"
    export CHAT_RUNNER_BIN="$bin"
    export PYTHONPATH="$here${PYTHONPATH:+:$PYTHONPATH}"
    export PYTHONDONTWRITEBYTECODE=1   # no __pycache__ in our tree
    if [ -n "$log" ]; then
        "${cmd[@]}" 2>&1 | tee "$log"
        exit "${PIPESTATUS[0]}"
    else
        exec "${cmd[@]}" 2>&1
    fi
) || status=$?

# Every test releases the ports it reserved; anything left over is a controller leak (or
# another irctest run going on at the same time).
if [ -s "$ports_file" ] && [ "$(tr -d '[:space:]' < "$ports_file")" != "[]" ]; then
    echo "run.sh: warning: ports still reserved in $ports_file: $(cat "$ports_file")" >&2
fi
[ "$status" -ne 124 ] || echo "run.sh: the run was killed after ${total_timeout}s" >&2
exit "$status"

#!/bin/sh
# generate.sh: fill the outputs of the lesson pages (docs/lessons/*.md) by
# running the commands their markers name (make docs); --check only says
# which pages are stale. See docs/generate.py.
exec python3 "$(dirname "$0")/generate.py" "$@"

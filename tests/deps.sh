#!/bin/sh
# deps.sh: install the Debian packages that building and testing libspy need.
# Silent when everything is there; as root installs what is missing; as
# another user prints the one command to run and fails.
set -u

# build: compiler, make, libunwind (stacks), libdw/libelf (symbols)
# tests: the real programs run under libspy, and the tools the tests use
# report: chromium, which the browser test opens the HTML report in
# bench: the peer tools measured beside libspy, jemalloc for the heap lessons
# (mimalloc and tcmalloc too: programs on other allocators, t585)
# analyze: capstone decodes the instructions sampled for false sharing
# analyze lock-graph --svg: Graphviz's dot draws the graph
# varnish: a daemon that closes every descriptor and drops root (t146)
pkgs="gcc g++ make pkg-config libc6-dev libunwind-dev libdw-dev libelf-dev
python3 perl sqlite3 git bash coreutils util-linux procps file binutils
valgrind heaptrack strace ltrace gdb libjemalloc2 libmimalloc2.0
libtcmalloc-minimal4 chromium
libcapstone-dev
graphviz varnish"

missing=
for p in $pkgs; do
	s=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null)
	case $s in
	*" installed") ;;
	*) missing="$missing $p" ;;
	esac
done
[ -z "$missing" ] && exit 0

if [ "$(id -u)" -eq 0 ]; then
	echo "deps: installing$missing" >&2
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -q >/dev/null &&
	apt-get install -y -q --no-install-recommends $missing >/dev/null || {
		echo "deps: apt-get install$missing failed" >&2
		exit 1
	}
	exit 0
fi
echo "deps: missing packages; run:" >&2
echo "sudo apt-get install -y --no-install-recommends$missing" >&2
exit 1

#!/usr/bin/env bash
# ./run.sh [run arguments]   set up what is missing, build, run the default comparison
# ./run.sh test              set up what is missing, build, run every test
set -euo pipefail
cd "$(dirname "$0")"

# Debian packages virtbench uses: QEMU and its tools, the guest kernel,
# mkfs.ext4, xz (to extract the vmlinux), runc and crun (peer runtimes), podman
# (the daemonless engine), lxc (application containers), libvirt-daemon (the
# libvirt driver's libvirtd and virtlogd, started for the tests by
# deploy/libvirt/libvirtd.sh), runsc
# (gVisor, the sandboxed-kernel driver),
# hyperfine (for cross-checks), iproute2, debootstrap (the debian image
# profile), Chromium (renders report.html in the report tests), and Wine
# with the mingw-w64 cross compiler (the wine driver builds the agent's
# Windows twin from source with it), Ansible (with community.docker:
# the engine of campaigns on many hosts, deploy/ansible), and the field's
# benchmark tools: fio, iperf3, Redis and nginx (copied into the tools
# layer every instance runs them from) with the host's load generators
# redis-benchmark (redis-tools) and wrk; for VM disk images (qemu's
# vm_image), dosfstools and mtools (the NoCloud seed) and, to make the
# example one, syslinux, syslinux-common and fdisk (its bootloader and
# partition table, written without mounting anything).
PACKAGES=(qemu-system-x86 qemu-utils linux-image-amd64 e2fsprogs xz-utils runc crun podman lxc libvirt-daemon runsc hyperfine iproute2 debootstrap chromium wine64 gcc-mingw-w64-x86-64 ansible fio iperf3 redis-server redis-tools nginx-light wrk dosfstools mtools syslinux syslinux-common fdisk)

log() { printf 'run.sh: %s\n' "$*" >&2; }

setup_packages() {
	local missing=()
	for p in "${PACKAGES[@]}"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
	done
	[ ${#missing[@]} -eq 0 ] && return 0
	if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
		log "installing ${missing[*]}"
		apt-get update -qq
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
	else
		log "missing Debian packages: ${missing[*]}"
		log "install them with: sudo apt-get install ${missing[*]}"
		log "drivers that need them will report themselves unavailable"
	fi
}

setup_go() {
	if ! command -v go >/dev/null; then
		if [ -x /usr/local/go/bin/go ]; then
			export PATH=/usr/local/go/bin:$PATH
		else
			log "Go is not installed: install Go 1.26 or later (https://go.dev/doc/install)"
			exit 1
		fi
	fi
}

# fuzz runs one fuzz target for ten seconds. It fails when the fuzzer
# found a failing input (written under testdata/fuzz); an engine that
# merely ran out of time while minimizing, with no failing input, is
# reported and not counted as a failure of the code.
fuzz() {
	local pkg=$1 target=$2
	if go test -run '^$' -fuzz "^$target\$" -fuzztime 10s -fuzzminimizetime 2s "./$pkg"; then
		return 0
	fi
	if [ -n "$(git status --porcelain -- "$pkg/testdata/fuzz" 2>/dev/null)" ] || ! command -v git >/dev/null; then
		log "fuzz: $target found a failing input, kept in $pkg/testdata/fuzz"
		return 1
	fi
	log "fuzz: $target stopped without a failing input (the fuzzing engine's own deadline)"
}

build() {
	mkdir -p bin
	local version
	version=$(git describe --always --dirty 2>/dev/null || echo unknown)
	go build -ldflags "-X virtbench/bench.version=$version" -o bin/virtbench ./cmd/virtbench
	CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' -o bin/virtbench-guest ./cmd/virtbench-guest
}

setup_packages
setup_go
build

case "${1:-}" in
test)
	shift
	export VIRTBENCH_AGENT="$PWD/bin/virtbench-guest"
	# Images are cached across test runs, as across virtbench runs: the
	# Debian profile is debootstrapped once per machine.
	export VIRTBENCH_CACHE="${VIRTBENCH_CACHE:-/var/cache/virtbench}"
	go vet ./...
	# The libvirt driver's tests need libvirtd: where the host runs none,
	# one of virtbench's own runs for the tests and is stopped after them.
	libvirt_state=$(mktemp -d)
	trap 'deploy/libvirt/libvirtd.sh stop "$libvirt_state"; rm -rf "$libvirt_state"' EXIT
	deploy/libvirt/libvirtd.sh start "$libvirt_state" || log "libvirtd did not start: the libvirt driver's tests say so"
	# Explicit timeouts, sized for a loaded 2-core machine: the slowest
	# package (the qemu driver under TCG) takes about 3 minutes alone.
	go test -count=1 -timeout 30m "$@" ./...
	# The runner and the drivers are concurrent: run their tests under the
	# race detector too.
	go test -count=1 -timeout 30m -race ./bench/... ./drivers/...
	# Bounded fuzzing of what reads untrusted input: scenario files and the
	# guest's console. Crashers land in testdata/fuzz and fail later runs.
	# Minimizing a new interesting input may take longer than the whole
	# budget (and then fails the run with "context deadline exceeded"), so
	# it is bounded too.
	fuzz scenarios FuzzParse
	fuzz guest FuzzReadMessages
	;;
*)
	bin/virtbench run "$@"
	;;
esac

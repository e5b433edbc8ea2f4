#!/usr/bin/env bash
# deploy/libvirt/libvirtd.sh start|stop STATE_DIR
#
# Starts libvirtd and virtlogd for virtbench's libvirt driver on a host
# that runs none (no systemd is assumed), and stops them again: ./run.sh
# test runs the tests between the two. Nothing of the host's changes:
#   - the daemons run in a mount namespace of their own, where a tmpfs on
#     /etc/libvirt holds this directory's qemu.conf and libvirtd.conf, and
#     where /etc/passwd and /etc/group are copies with the libvirt-qemu
#     user Debian's libvirtd looks up before it reads qemu.conf (the
#     libvirt-daemon-system package would add it to the host's; QEMU runs
#     as root all the same);
#   - the state directories libvirtd needs that the host lacks
#     (/etc/libvirt, the tmpfs's mount point, /run/libvirt, /var/lib/libvirt,
#     /var/log/libvirt, /var/cache/libvirt)
#     are made, listed in STATE_DIR/made with the daemons' pid files, and
#     removed by stop;
#   - libvirtd makes no cgroups (qemu.conf) and defines no network.
# start does nothing when a libvirtd already serves /run/libvirt/libvirt-sock.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cmd=${1:?usage: libvirtd.sh start|stop STATE_DIR}
dir=${2:?usage: libvirtd.sh start|stop STATE_DIR}
sock=/run/libvirt/libvirt-sock

start() {
	if [ -S "$sock" ] && virt_running; then
		echo "libvirtd.sh: a libvirtd serves $sock already; using it"
		return 0
	fi
	command -v libvirtd >/dev/null || { echo "libvirtd.sh: no libvirtd (sudo apt-get install libvirt-daemon)" >&2; return 1; }
	mkdir -p "$dir"
	: >"$dir/made"
	for d in /etc/libvirt /run/libvirt /var/lib/libvirt /var/log/libvirt /var/cache/libvirt /run/libvirtd.pid /run/virtlogd.pid; do
		if [ ! -e "$d" ]; then
			case "$d" in *.pid) ;; *) mkdir -p "$d" ;; esac
			echo "$d" >>"$dir/made"
		fi
	done
	# setsid: the daemons and this shell form a process group of their
	# own, which stop kills.
	setsid unshare --mount --propagation private -- sh -c '
		set -e
		mount -t tmpfs -o mode=0755,size=1m virtbench-libvirt /etc/libvirt
		cp "$1"/qemu.conf "$1"/libvirtd.conf /etc/libvirt/
		for f in passwd group; do cp /etc/$f /etc/libvirt/$f; done
		grep -q "^libvirt-qemu:" /etc/passwd || echo "libvirt-qemu:x:64055:64055:libvirt (virtbench):/nonexistent:/usr/sbin/nologin" >>/etc/libvirt/passwd
		grep -q "^libvirt-qemu:" /etc/group || echo "libvirt-qemu:x:64055:" >>/etc/libvirt/group
		mount --bind /etc/libvirt/passwd /etc/passwd
		mount --bind /etc/libvirt/group /etc/group
		virtlogd &
		exec libvirtd' libvirtd-sh "$here" >"$dir/libvirtd.log" 2>&1 &
	echo $! >"$dir/pid"
	for _ in $(seq 100); do
		if [ -S "$sock" ] && virt_running; then
			echo "libvirtd.sh: started libvirtd and virtlogd (log: $dir/libvirtd.log)"
			return 0
		fi
		sleep 0.1
	done
	echo "libvirtd.sh: libvirtd did not come up within 10 s; its log:" >&2
	tail -20 "$dir/libvirtd.log" >&2
	stop
	return 1
}

# virt_running reports whether something accepts connections on $sock.
virt_running() {
	python3 -c 'import socket,sys; s=socket.socket(socket.AF_UNIX); s.settimeout(2); s.connect(sys.argv[1])' "$sock" 2>/dev/null
}

stop() {
	[ -f "$dir/pid" ] || return 0
	local pid
	pid=$(cat "$dir/pid")
	kill -TERM -- "-$pid" 2>/dev/null || true
	for _ in $(seq 50); do
		kill -0 -- "-$pid" 2>/dev/null || break
		sleep 0.1
	done
	kill -KILL -- "-$pid" 2>/dev/null || true
	rm -f "$dir/pid"
	if [ -f "$dir/made" ]; then
		# Deepest first; only what start made.
		tac "$dir/made" | while read -r d; do rm -rf -- "$d"; done
		rm -f "$dir/made"
	fi
	echo "libvirtd.sh: stopped libvirtd and virtlogd"
}

case "$cmd" in
start) start ;;
stop) stop ;;
*) echo "usage: libvirtd.sh start|stop STATE_DIR" >&2; exit 2 ;;
esac

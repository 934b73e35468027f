# daemons.sh: sourced by the bench scripts that watch kpbench's daemons.
# kp_start BIN WORK PORT [kpbench options]: start kpbench in the
# background (its output in WORK/kpbench.txt), then wait up to 60 s for
# both of its daemons.  Sets K (kpbench), S (the sender, lp.conf) and R
# (the receiver, halt.conf); returns 1, with kpbench stopped, if they did
# not start.
kp_start() {
	local bin=$1 work=$2 port=$3
	shift 3
	"$bin"/kpbench --bin "$bin" --port-base "$port" --dir "$work" "$@" \
	    > "$work"/kpbench.txt 2>&1 &
	K=$!
	S='' R=''
	for _ in $(seq 1 300); do
		S=$(pgrep -f "^[^ ]*/ketenpostd --config $work/.*/lp.conf" | head -1)
		R=$(pgrep -f "^[^ ]*/ketenpostd --config $work/.*/halt.conf" | head -1)
		[ -n "$S" ] && [ -n "$R" ] && return 0
		sleep 0.2
	done
	echo "${0##*/}: kpbench's daemons did not start" >&2
	kill "$K" 2>/dev/null
	return 1
}

#!/bin/sh
# Installs kube-gw on a router over ssh, or removes it; safe to run again.
#
#   scripts/install.sh [options] [user@]router
#   scripts/install.sh --uninstall [--keep-addresses] [options] [user@]router
#
# Options:
#   --binary PATH      the compiled binary (default: dist/kube-gw, or
#                      dist/kube-gw-aarch64 for an aarch64 router)
#   --ssh-config FILE  ssh configuration to use (ssh -F FILE)
#   --ssh-option OPT   extra ssh option, e.g. Port=2222 (ssh -o OPT); repeatable
#   --keep-addresses   with --uninstall: do not run `kube-gw drain` first
#   --sonic            a SONiC switch (docs/sonic.md): the binary and the
#                      settings go to /host/kube-gw/ (image upgrades keep
#                      /host), the units to /etc/systemd/system with the drop-in
#                      kube-gw.service.d/sonic.conf (--install-as sonic) and
#                      kube-gw-frr.service (FRR in the bgp container), and a hook
#                      in /etc/config-setup/config-migration-post-hooks.d/ puts
#                      the units back after `sonic-installer install`
#   --sonic-root DIR   --sonic, every path under DIR (a SONiC root mounted
#                      elsewhere; the tests)
#   --api-server-address ADDR
#                      an address (or prefix) of the Kubernetes API server;
#                      repeatable. Writes the drop-in
#                      /etc/systemd/system/kube-gw.service.d/apiserver.conf
#                      (IPAddressAllow=ADDR...): the unit allows localhost only,
#                      and kube-gw cannot reach the API server without it
#
# Install copies the binary to /usr/local/bin/kube-gw, the unit to
# /etc/systemd/system/kube-gw.service, the examples to /usr/local/share/kube-gw/,
# and the settings example to /etc/default/kube-gw unless that file exists. It
# names kube-gw's route protocol for iproute2 in
# /etc/iproute2/rt_protos.d/kube-gw.conf (KUBEGW_ROUTE_PROTOCOL, default 200,
# so `ip route` shows `proto kube-gw`). It
# reloads systemd when the unit changed, enables the unit, and starts it once
# it is configured: KUBEGW_NETWORK set, a kubeconfig in /etc/kube-gw, and the
# API server's addresses allowed by a drop-in (restarts it when the binary,
# unit or drop-in changed: the addresses
# stay in place). Uninstall stops and disables it, withdraws its addresses with
# `kube-gw drain` (unless --keep-addresses), and removes what install put
# there, keeping /etc/default/kube-gw and /etc/kube-gw.
#
# The remote user is root, or has passwordless sudo. One ssh connection is
# opened and reused (ControlMaster), so a password is asked for once.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
action=install
binary=
keep_addresses=0
target=
api_servers=
sonic_root=-
set -- "$@" --end-of-options
while [ "$1" != --end-of-options ]; do
  case $1 in
    --uninstall) action=uninstall ;;
    --keep-addresses) keep_addresses=1 ;;
    --binary) binary=$2; shift ;;
    --sonic) [ "$sonic_root" != - ] || sonic_root= ;;
    --sonic-root) sonic_root=$2; shift ;;
    --sonic-root=*) sonic_root=${1#--sonic-root=} ;;
    --binary=*) binary=${1#--binary=} ;;
    --api-server-address|--api-server-address=*)
      if [ "$1" = --api-server-address ]; then addr=${2-}; shift; else addr=${1#*=}; fi
      # Digits, hex, dots and colons, an optional /len: an IPv4 or IPv6 address or prefix.
      case $addr in
        *[!0-9A-Fa-f.:/]*|''|*/*/*|/*|*/) addr_ok=0 ;;
        *[0-9]*) addr_ok=1 ;;
        *) addr_ok=0 ;;
      esac
      [ "$addr_ok" = 1 ] || {
        echo "install.sh: --api-server-address: \"$addr\" is not an IP address or prefix" >&2
        exit 2
      }
      api_servers="${api_servers:+$api_servers }$addr" ;;
    --ssh-config) set -- "$@" -F "$2"; shift ;;
    --ssh-config=*) set -- "$@" -F "${1#--ssh-config=}" ;;
    --ssh-option) set -- "$@" -o "$2"; shift ;;
    --ssh-option=*) set -- "$@" -o "${1#--ssh-option=}" ;;
    -h|--help) sed -n '2,/^set -eu/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    -*) echo "install.sh: unknown option $1" >&2; exit 2 ;;
    *) [ -z "$target" ] || { echo "install.sh: one router at a time" >&2; exit 2; }
       target=$1 ;;
  esac
  shift
done
shift # --end-of-options; "$@" now holds the ssh options
[ -n "$target" ] || { echo "usage: install.sh [--uninstall] [options] [user@]router" >&2; exit 2; }

control=$(mktemp -d)
trap 'ssh "$@" -o ControlPath="$control/ssh" -O exit "$target" 2>/dev/null || true; rm -rf "$control"' EXIT
case $sonic_root in
  -|''|/*) ;;
  *) echo "install.sh: --sonic-root: \"$sonic_root\" is not an absolute path" >&2; exit 2 ;;
esac
case $sonic_root in *[!A-Za-z0-9_./-]*)
  echo "install.sh: --sonic-root: \"$sonic_root\" has characters other than A-Za-z0-9_./-" >&2; exit 2 ;;
esac
# The part that runs on the router: POSIX sh, argv: ACTION DIR KEEP_ADDRESSES SONIC_ROOT
# (SONIC_ROOT "-": not SONiC).
# DIR/apiserver.conf, when there, is the API-server drop-in to install.
remote_script='
set -eu
action=$1 dir=$2 keep_addresses=$3 sonic_root=$4
if [ "$(id -u)" -eq 0 ]; then as_root() { "$@"; }; else as_root() { sudo -n "$@"; }; fi
BIN=/usr/local/bin/kube-gw
UNIT=/etc/systemd/system/kube-gw.service
ENV_FILE=/etc/default/kube-gw
CONF=/etc/kube-gw
SHARE=/usr/local/share/kube-gw
DROPIN_DIR=/etc/systemd/system/kube-gw.service.d
changed=0
if [ "$sonic_root" != - ]; then
  R=$sonic_root
  [ -f "$R/etc/sonic/sonic_version.yml" ] || {
    echo "install.sh: --sonic: $R/etc/sonic/sonic_version.yml is missing: not a SONiC switch" >&2
    rm -rf "$dir"; exit 1
  }
  HOSTDIR=$R/host/kube-gw
  BIN=$HOSTDIR/kube-gw
  UNIT=$R/etc/systemd/system/kube-gw.service
  ENV_FILE=$HOSTDIR/kube-gw.env
  CONF=$HOSTDIR/secret
  SHARE=$HOSTDIR/share
  DROPIN_DIR=$R/etc/systemd/system/kube-gw.service.d
  FRR_UNIT=$R/etc/systemd/system/kube-gw-frr.service
  HOOK=$R/etc/config-setup/config-migration-post-hooks.d/kube-gw
fi
APISERVER=$DROPIN_DIR/apiserver.conf
RT_PROTOS=${R:-}/etc/iproute2/rt_protos.d/kube-gw.conf

put() { # put SOURCE TARGET MODE: replaces TARGET atomically unless it is identical
  if [ -f "$2" ] && cmp -s "$1" "$2"; then echo "  unchanged $2"; return 1; fi
  as_root install -D -m "$3" "$1" "$2.kube-gw-new"
  as_root mv -f "$2.kube-gw-new" "$2"
  echo "  installed $2"
}
setting() { # the value of a variable in the settings file, quotes removed
  [ -f "$ENV_FILE" ] || return 0
  sed -n "s/^$1=//p" "$ENV_FILE" | tail -n 1 | sed "s/^\"\\(.*\\)\"\$/\\1/; s/^'"'"'\\(.*\\)'"'"'\$/\\1/"
}
api_allowed() { # a drop-in allows an address besides localhost (IPAddressAllow=)
  as_root sh -c "grep -qs \"^IPAddressAllow=.\" $DROPIN_DIR/*.conf"
}
configured() {
  [ -n "$(setting KUBEGW_NETWORK)" ] && as_root test -s "$CONF/kubeconfig" && api_allowed
}

if [ "$action" = install ]; then
  echo "kube-gw on $(hostname):"
  put "$dir/kube-gw" "$BIN" 0755 && changed=1
  if put "$dir/kube-gw.service" "$UNIT" 0644; then
    changed=1
    as_root systemctl daemon-reload
  fi
  put "$dir/kube-gw.env" "$SHARE/kube-gw.env" 0644 || true
  put "$dir/kube-gw-netns.conf" "$SHARE/kube-gw-netns.conf" 0644 || true
  put "$dir/kube-gw-apiserver.conf" "$SHARE/kube-gw-apiserver.conf" 0644 || true
  if [ -f "$dir/apiserver.conf" ] && put "$dir/apiserver.conf" "$APISERVER" 0644; then
    changed=1
    as_root systemctl daemon-reload
  fi
  if [ "$sonic_root" != - ]; then
    if put "$dir/kube-gw-sonic.conf" "$DROPIN_DIR/sonic.conf" 0644; then
      changed=1
      as_root systemctl daemon-reload
    fi
    put "$dir/kube-gw-frr.service" "$FRR_UNIT" 0644 && as_root systemctl daemon-reload
    put "$dir/kube-gw-frr.sh" "$HOSTDIR/kube-gw-frr.sh" 0755 || true
    put "$dir/frr-sonic.conf" "$SHARE/frr-sonic.conf" 0644 || true
    if [ -e "$HOSTDIR/frr-sonic.conf" ]; then
      echo "  kept $HOSTDIR/frr-sonic.conf"
    else
      as_root install -m 0644 "$dir/frr-sonic.conf" "$HOSTDIR/frr-sonic.conf"
      echo "  installed $HOSTDIR/frr-sonic.conf (the example: set your networks)"
    fi
    put "$dir/kube-gw-migration-hook" "$HOSTDIR/migration-hook" 0755 || true
    put "$dir/kube-gw-migration-hook" "$HOOK" 0755 || true
    # What the hook puts back after an image upgrade: the units as installed now.
    for f in "$UNIT" "$FRR_UNIT" "$DROPIN_DIR"/*.conf; do
      [ -f "$f" ] || continue
      put "$f" "$HOSTDIR/systemd/${f#"$R/etc/systemd/system/"}" 0644 || true
    done
    if ! as_root systemctl is-enabled --quiet kube-gw-frr.service; then
      as_root systemctl enable --quiet kube-gw-frr.service
      echo "  enabled kube-gw-frr.service (applies $HOSTDIR/frr-sonic.conf at each start of bgp)"
    fi
  fi
  if [ -e "$ENV_FILE" ]; then
    echo "  kept $ENV_FILE"
  else
    as_root install -m 0644 "$dir/kube-gw.env" "$ENV_FILE"
    echo "  installed $ENV_FILE (the example: edit it)"
  fi
  as_root install -d -m 0700 "$CONF"
  # Names the route protocol for iproute2: `ip route` shows `proto kube-gw`.
  proto=$(setting KUBEGW_ROUTE_PROTOCOL)
  case ${proto:=200} in
    *[!0-9]*) echo "  KUBEGW_ROUTE_PROTOCOL=$proto is not a number: $RT_PROTOS not written" ;;
    *) printf "%s\n" "# Written by scripts/install.sh: the route protocol of the kube-gw routes" \
         "# (KUBEGW_ROUTE_PROTOCOL in $ENV_FILE)." "$proto kube-gw" > "$dir/rt_protos.conf"
       put "$dir/rt_protos.conf" "$RT_PROTOS" 0644 || true ;;
  esac
  if ! as_root systemctl is-enabled --quiet kube-gw.service; then
    as_root systemctl enable --quiet kube-gw.service
    echo "  enabled kube-gw.service"
  fi
  echo "  binary: $("$BIN" version 2>&1 || echo "does not run on this router")"
  [ "$sonic_root" = - ] ||
    echo "  after editing $HOSTDIR/frr-sonic.conf: systemctl restart kube-gw-frr.service"
  if ! configured; then
    echo "Not started: kube-gw is not configured yet. On $(hostname):"
    [ -n "$(setting KUBEGW_NETWORK)" ] ||
      echo "  - set KUBEGW_NETWORK (the managed networks) in $ENV_FILE"
    as_root test -s "$CONF/kubeconfig" ||
      echo "  - put a kubeconfig for kube-gw at $CONF/kubeconfig (mode 0600; inline certificates or a token)"
    api_allowed ||
      echo "  - allow the API server: the unit reaches localhost only. Run the installer again with --api-server-address ADDR (repeatable: every address the kubeconfig server resolves to), or install $SHARE/kube-gw-apiserver.conf as $APISERVER with your addresses"
    echo "  - then: systemctl start kube-gw; systemctl status kube-gw; curl -s 127.0.0.1:9472/readyz"
    echo "  - for KUBEGW_NETNS: install $SHARE/kube-gw-netns.conf as /etc/systemd/system/kube-gw.service.d/netns.conf"
  elif as_root systemctl is-active --quiet kube-gw.service; then
    if [ "$changed" = 1 ]; then
      as_root systemctl restart kube-gw.service
      echo "  restarted kube-gw.service (the addresses stayed in place)"
    else
      echo "  kube-gw.service is running; nothing changed"
    fi
  else
    as_root systemctl start kube-gw.service
    echo "  started kube-gw.service: check with systemctl status kube-gw; curl -s 127.0.0.1:9472/readyz"
  fi
else
  echo "removing kube-gw from $(hostname):"
  if as_root systemctl is-active --quiet kube-gw.service; then
    as_root systemctl stop kube-gw.service
    echo "  stopped kube-gw.service"
  fi
  if [ "$keep_addresses" = 0 ] && [ -x "$BIN" ] && [ -n "$(setting KUBEGW_NETWORK)" ]; then
    set -- --network="$(setting KUBEGW_NETWORK)"
    [ -z "$(setting KUBEGW_INTERFACE)" ] || set -- "$@" --interface="$(setting KUBEGW_INTERFACE)"
    [ -z "$(setting KUBEGW_NETNS)" ] || set -- "$@" --netns="$(setting KUBEGW_NETNS)"
    if [ "$sonic_root" != - ]; then
      set -- "$@" --install-as=sonic
      for v in LOOPBACK:loopback REDIS_SOCKET:redis-socket DB:db; do
        value=$(setting "KUBEGW_SONIC_${v%:*}")
        [ -z "$value" ] || set -- "$@" "--sonic-${v#*:}=$value"
      done
    fi
    as_root "$BIN" drain "$@"
    echo "  drained: its addresses are withdrawn"
  fi
  if as_root systemctl is-enabled --quiet kube-gw.service; then
    as_root systemctl disable --quiet kube-gw.service
    echo "  disabled kube-gw.service"
  fi
  set -- "$UNIT" "$BIN" "$SHARE/kube-gw.env" "$SHARE/kube-gw-netns.conf" "$SHARE/kube-gw-apiserver.conf" "$RT_PROTOS"
  if [ "$sonic_root" != - ]; then
    if as_root systemctl is-enabled --quiet kube-gw-frr.service; then
      as_root systemctl disable --quiet kube-gw-frr.service
      echo "  disabled kube-gw-frr.service (FRR keeps the snippet until bgp restarts)"
    fi
    set -- "$@" "$DROPIN_DIR/sonic.conf" "$FRR_UNIT" "$HOOK" "$HOSTDIR/migration-hook" \
      "$HOSTDIR/kube-gw-frr.sh" "$SHARE/frr-sonic.conf"
    [ ! -d "$HOSTDIR/systemd" ] || { as_root rm -rf "$HOSTDIR/systemd"; echo "  removed $HOSTDIR/systemd"; }
  fi
  for f in "$@"; do
    if [ -e "$f" ]; then as_root rm -f "$f"; echo "  removed $f"; fi
  done
  [ ! -d "$SHARE" ] || as_root rmdir "$SHARE" 2>/dev/null || true
  as_root systemctl daemon-reload
  [ "$sonic_root" = - ] || echo "  kept $HOSTDIR/frr-sonic.conf"
  echo "  kept $ENV_FILE, $CONF and $DROPIN_DIR (your settings and credentials); remove them if you want"
fi
rm -rf "$dir"
'

# From here on "$@" is the list of ssh options given to this script.
run() { # run REMOTE_COMMAND [< input]
  ssh "$@" -o ControlMaster=auto -o ControlPath="$control/ssh" -o ControlPersist=120 "$target" "$remote_cmd"
}

remote_cmd='uname -m'
arch=$(run "$@") || { echo "install.sh: cannot reach $target over ssh" >&2; exit 1; }

if [ "$action" = install ]; then
  if [ -z "$binary" ]; then
    case $arch in
      x86_64|amd64) binary=$here/../dist/kube-gw ;;
      aarch64|arm64) binary=$here/../dist/kube-gw-aarch64 ;;
      *) echo "install.sh: no kube-gw build for $arch; pass --binary" >&2; exit 1 ;;
    esac
  fi
  [ -f "$binary" ] || {
    echo "install.sh: $binary not found: build it with deno task compile, or pass --binary" >&2
    exit 1
  }
fi
remote_cmd='mktemp -d /tmp/kube-gw-install.XXXXXX'
dir=$(run "$@")
if [ "$action" = install ]; then
  dropin=
  if [ -n "$api_servers" ]; then
    dropin=$control/apiserver.conf
    printf '%s\n' "# Written by scripts/install.sh --api-server-address: the Kubernetes API" \
      "# server addresses kube-gw may connect to (the unit allows localhost only)." \
      "[Service]" "IPAddressAllow=$api_servers" > "$dropin"
  fi
  for f in "$binary:kube-gw" "$here/kube-gw.service:kube-gw.service" \
    "$here/kube-gw.env:kube-gw.env" "$here/kube-gw-netns.conf:kube-gw-netns.conf" \
    "$here/kube-gw-apiserver.conf:kube-gw-apiserver.conf" ${dropin:+"$dropin:apiserver.conf"}; do
    remote_cmd="cat > '$dir/${f##*:}'"
    run "$@" < "${f%:*}"
  done
  if [ "$sonic_root" != - ]; then
    for f in "$here/sonic/kube-gw-sonic.conf" "$here/sonic/kube-gw-frr.service" \
      "$here/sonic/kube-gw-frr.sh" "$here/router/frr-sonic.conf" "$here/sonic/kube-gw-migration-hook"; do
      remote_cmd="cat > '$dir/${f##*/}'"
      run "$@" < "$f"
    done
  fi
fi
remote_cmd="sh -s -- $action '$dir' $keep_addresses '$sonic_root'"
printf '%s\n' "$remote_script" | run "$@"

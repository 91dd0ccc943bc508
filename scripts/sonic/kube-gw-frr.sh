#!/bin/sh
# Applies kube-gw's FRR snippet in SONiC's bgp container: FRR's configuration
# there is rendered from CONFIG_DB at every start of the container, so the
# snippet is applied again after each (kube-gw-frr.service). Idempotent.
#
#   kube-gw-frr.sh [SNIPPET]     (default /host/kube-gw/frr-sonic.conf)
#
# It waits (up to 120 s) for bgpd to hold `router bgp ASN`, ASN being
# DEVICE_METADATA|localhost bgp_asn, then sends the snippet's lines as one
# vtysh session. VTYSH and CONFIG_ASN replace the commands it runs (tests).
set -eu
snippet=${1:-/host/kube-gw/frr-sonic.conf}
vtysh=${VTYSH:-docker exec -i bgp vtysh}
config_asn=${CONFIG_ASN:-sonic-db-cli CONFIG_DB HGET DEVICE_METADATA|localhost bgp_asn}

[ -r "$snippet" ] || { echo "kube-gw-frr: $snippet is missing" >&2; exit 1; }
asn=$($config_asn)
case $asn in
  ''|*[!0-9]*) echo "kube-gw-frr: no BGP ASN in CONFIG_DB (got \"$asn\")" >&2; exit 1 ;;
esac
tries=0
until $vtysh -c 'show running-config' 2>/dev/null | grep -q "^router bgp $asn\$"; do
  tries=$((tries + 1))
  [ "$tries" -lt 120 ] || { echo "kube-gw-frr: bgpd has no router bgp $asn after 120 s" >&2; exit 1; }
  sleep 1
done
# One vtysh session: each line a -c, comments and blank lines left out.
set -- -c 'configure terminal'
while IFS= read -r line; do
  case $line in ''|'!'*) continue ;; esac
  set -- "$@" -c "$(printf '%s' "$line" | sed "s/{{ASN}}/$asn/g")"
done < "$snippet"
$vtysh "$@" -c end
echo "kube-gw-frr: applied $snippet (router bgp $asn)"

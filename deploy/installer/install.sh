#!/bin/sh
# Installs warren on a node: copies the binaries, adds the runtime handler
# "warren" to containerd's config (or k3s' template), restarts containerd
# when the config changed, and labels the node warren.dev/runtime=ready.
#
# Safe to run again: binaries are replaced atomically, the config keeps one
# managed block, and an unchanged config does not restart anything.
#
# Settings (environment):
#   HOST_ROOT          where the node's / is mounted          (default /host)
#   SOURCE_DIR         where warren-runc and warren-interceptor are
#                                                      (default /opt/warren/bin)
#   BIN_DIR            where they go on the node          (default /usr/local/bin)
#   CONTAINERD_CONFIG  the config to edit, a path on the node (default: k3s'
#                      config-v3.toml.tmpl on k3s, else /etc/containerd/config.toml)
#   RESTART_CMD        how to restart containerd          (default: systemctl in
#                      the node's namespaces, for containerd, k3s or k3s-agent)
#   NODE_NAME          the node to label (downward API); unset: no label
set -eu

HOST_ROOT=${HOST_ROOT:-/host}
SOURCE_DIR=${SOURCE_DIR:-/opt/warren/bin}
BIN_DIR=${BIN_DIR:-/usr/local/bin}
K3S_DIR=/var/lib/rancher/k3s/agent/etc/containerd

say() { echo "warren-install: $*"; }
die() { echo "warren-install: error: $*" >&2; exit 1; }

host() { echo "${HOST_ROOT%/}$1"; }

if [ -z "${CONTAINERD_CONFIG:-}" ]; then
    if [ -d "$(host /var/lib/rancher/k3s)" ]; then
        CONTAINERD_CONFIG=$K3S_DIR/config-v3.toml.tmpl
        FLAVOR=k3s
    else
        CONTAINERD_CONFIG=/etc/containerd/config.toml
        FLAVOR=containerd
    fi
else
    case "$CONTAINERD_CONFIG" in
        *.tmpl) FLAVOR=k3s ;;
        *) FLAVOR=containerd ;;
    esac
fi

# 1. The binaries, each replaced with a rename so that a running
#    warren-runc or interceptor is never overwritten in place.
dest=$(host "$BIN_DIR")
mkdir -p "$dest"
for bin in warren-runc warren-interceptor; do
    [ -x "$SOURCE_DIR/$bin" ] || die "$SOURCE_DIR/$bin is missing"
    if cmp -s "$SOURCE_DIR/$bin" "$dest/$bin"; then
        say "$BIN_DIR/$bin is up to date"
        continue
    fi
    cp "$SOURCE_DIR/$bin" "$dest/.$bin.new"
    chmod 0755 "$dest/.$bin.new"
    mv -f "$dest/.$bin.new" "$dest/$bin"
    say "installed $BIN_DIR/$bin"
done

# 2. The runtime entry, in a block between markers that a later run
#    replaces. containerd 2.x (config version 3) and 1.x (version 2) name
#    the CRI plugin differently.
config=$(host "$CONTAINERD_CONFIG")
mkdir -p "$(dirname "$config")"
if [ -f "$config" ]; then
    current=$(cat "$config")
elif [ "$FLAVOR" = k3s ]; then
    current='{{ template "base" . }}'
else
    current='version = 3'
fi
if printf '%s\n' "$current" | grep -Eq '^[[:space:]]*version[[:space:]]*=[[:space:]]*2'; then
    plugin='io.containerd.grpc.v1.cri'
else
    plugin='io.containerd.cri.v1.runtime'
fi
# Everything but the managed block, without the blank lines it leaves.
rest=$(printf '%s\n' "$current" | awk '
    /^# BEGIN warren/ { skip = 1; next }
    /^# END warren/ { skip = 0; next }
    skip { next }
    NF { for (; blank > 0; blank--) print ""; print; next }
    { blank++ }')
if printf '%s\n' "$rest" | grep -Fq 'runtimes.warren]'; then
    die "$CONTAINERD_CONFIG already defines a runtime \"warren\" outside the installer's block; remove it first"
fi
new=$(cat <<EOF
$rest

# BEGIN warren (managed by warren's installer; edits here are replaced)
[plugins."$plugin".containerd.runtimes.warren]
  runtime_type = "io.containerd.runc.v2"
[plugins."$plugin".containerd.runtimes.warren.options]
  BinaryName = "$BIN_DIR/warren-runc"
# END warren
EOF
)
if [ -f "$config" ] && [ "$new" = "$current" ]; then
    say "$CONTAINERD_CONFIG already has the warren runtime"
    changed=no
else
    printf '%s\n' "$new" > "$config.warren-new"
    mv -f "$config.warren-new" "$config"
    say "added the warren runtime to $CONTAINERD_CONFIG"
    changed=yes
fi

# 3. Restart containerd so that it reads the config; not when unchanged.
if [ "$changed" = yes ]; then
    if [ -n "${RESTART_CMD:-}" ]; then
        sh -c "$RESTART_CMD" || die "restart command failed: $RESTART_CMD"
    else
        if [ "$FLAVOR" = k3s ]; then
            units="k3s k3s-agent"
        else
            units="containerd"
        fi
        restarted=no
        for unit in $units; do
            if nsenter -t 1 -m -u -i -n -p -- systemctl is-active -q "$unit" 2>/dev/null; then
                nsenter -t 1 -m -u -i -n -p -- systemctl restart "$unit"
                restarted=yes
                say "restarted $unit"
            fi
        done
        [ "$restarted" = yes ] || die "no running unit among: $units (set RESTART_CMD)"
    fi
fi

# 4. The label the RuntimeClass selects nodes by.
if [ -n "${NODE_NAME:-}" ]; then
    sa=/var/run/secrets/kubernetes.io/serviceaccount
    curl -fsS --cacert "$sa/ca.crt" \
        -H "Authorization: Bearer $(cat "$sa/token")" \
        -H 'Content-Type: application/merge-patch+json' \
        -X PATCH "https://${KUBERNETES_SERVICE_HOST}:${KUBERNETES_SERVICE_PORT}/api/v1/nodes/${NODE_NAME}" \
        -d '{"metadata":{"labels":{"warren.dev/runtime":"ready"}}}' >/dev/null \
        || die "cannot label node $NODE_NAME"
    say "labelled node $NODE_NAME warren.dev/runtime=ready"
fi
say "done"

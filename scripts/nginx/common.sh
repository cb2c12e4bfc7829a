# shellcheck shell=bash
# Helpers for the scripts that run nginx (sourced, not run): find it, fill in one of the templates
# next to this file, check it, and start it with its own prefix folder (a mktemp folder: nothing
# under /etc/nginx or /var is read or written, so root and other users alike can run it).
# The caller runs with `set -euo pipefail` from the repository's root.
#
#   nginx_find                       sets NGINX (env NGINX, else `nginx` on PATH); 1 if none
#   nginx_render TEMPLATE DIR K=V..  writes DIR/nginx.conf, fills in @K@ and the common
#                                    @RUN_DIR@ @USER_DIRECTIVE@ @NOFILE@ @CONNECTIONS@; checks it
#   nginx_start DIR LOG              starts nginx in the background; its master's pid in NGINX_PID
#   nginx_stop                       SIGTERM (fast shutdown) to the master, waits for it

# shellcheck disable=SC2034 # read by the scripts that source this file
NGINX_INSTALL_HINT="apt-get install -y nginx-light (as root), or set NGINX=/path/to/nginx"
NGINX_PID=""

nginx_find() {
    NGINX=${NGINX:-$(command -v nginx || true)}
    [ -n "$NGINX" ] && [ -x "$NGINX" ]
}

nginx_render() {
    local template=$1 dir=$2 conf nofile user="" pair
    shift 2
    nofile=$(ulimit -n)
    [[ $nofile =~ ^[0-9]+$ ]] || nofile=65536
    # As root, nginx's worker processes run as nobody: they must be able to reach the folder
    # (nginx creates the temporary folders under it and hands them over itself).
    if [ "$(id -u)" = 0 ]; then
        chmod 755 "$dir"
        user="user nobody $(id -gn nobody);"
    fi
    conf=$(<"$template")
    for pair in "$@"; do
        conf=${conf//@${pair%%=*}@/"${pair#*=}"}
    done
    conf=${conf//@USER_DIRECTIVE@/"$user"}
    conf=${conf//@RUN_DIR@/"$dir"}
    conf=${conf//@NOFILE@/"$nofile"}
    # Two descriptors per proxied request; leave room for the listening socket and logs.
    conf=${conf//@CONNECTIONS@/"$((nofile / 2 > 16384 ? 16384 : nofile / 2))"}
    if [[ $conf =~ @[A-Z_]+@ ]]; then
        echo "nginx: placeholder ${BASH_REMATCH[0]} of $template not filled in" >&2
        return 1
    fi
    printf '%s\n' "$conf" >"$dir/nginx.conf"
    "$NGINX" -t -q -e stderr -p "$dir" -c "$dir/nginx.conf"
}

nginx_start() {
    "$NGINX" -e stderr -p "$1" -c "$1/nginx.conf" </dev/null >"$2" 2>&1 &
    NGINX_PID=$!
}

nginx_stop() {
    if [ -n "$NGINX_PID" ]; then
        kill -TERM "$NGINX_PID" 2>/dev/null || true
        wait "$NGINX_PID" 2>/dev/null || true
        NGINX_PID=""
    fi
}

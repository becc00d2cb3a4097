# Shared by scripts/demo and scripts/test: make sure the programs they need
# are there, installing MariaDB from the distribution when it is missing.

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

ensure_mariadb() {
    if command -v mariadbd >/dev/null 2>&1 || [ -x /usr/sbin/mariadbd ] || [ -x /usr/sbin/mysqld ]; then
        return 0
    fi
    echo "MariaDB server programs not found: installing mariadb-server" >&2
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq mariadb-server mariadb-client >/dev/null
}

ensure_cargo() {
    if command -v cargo >/dev/null 2>&1; then
        return 0
    fi
    [ -x "$HOME/.cargo/bin/cargo" ] && export PATH="$HOME/.cargo/bin:$PATH" && return 0
    echo "cargo not found: indilookup needs Rust 1.89 or newer (https://rustup.rs," >&2
    echo "or the distribution's cargo package where it is that recent)" >&2
    exit 1
}

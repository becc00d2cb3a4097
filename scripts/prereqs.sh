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

# The man page tests run groff.
ensure_groff() {
    command -v groff >/dev/null 2>&1 && return 0
    echo "groff not found: installing groff-base" >&2
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq groff-base >/dev/null
}

# The TLS tests make their certificates with the openssl command.
ensure_openssl() {
    command -v openssl >/dev/null 2>&1 && return 0
    echo "openssl not found: installing openssl" >&2
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openssl >/dev/null
}

# The oldest Rust that builds indilookup (rust-version in Cargo.toml).
RUST_MIN=1.89

rust_recent_enough() {
    local v
    v=$(rustc --version 2>/dev/null | awk '{print $2}')
    [ -n "$v" ] && [ "$(printf '%s\n%s\n' "$RUST_MIN" "$v" | sort -V | head -n1)" = "$RUST_MIN" ]
}

ensure_cargo() {
    [ -x "$HOME/.cargo/bin/cargo" ] && export PATH="$HOME/.cargo/bin:$PATH"
    if command -v cargo >/dev/null 2>&1 && rust_recent_enough; then
        return 0
    fi
    # Debian's own rustc is older than indilookup needs: install the
    # current stable toolchain for this user with rustup.
    echo "Rust $RUST_MIN or newer not found: installing it with rustup (minimal profile)" >&2
    if ! command -v curl >/dev/null 2>&1; then
        as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
        as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq curl ca-certificates gcc libc6-dev >/dev/null
    fi
    command -v cc >/dev/null 2>&1 || as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq gcc libc6-dev >/dev/null
    curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal >&2
    export PATH="$HOME/.cargo/bin:$PATH"
    rust_recent_enough || { echo "could not install Rust $RUST_MIN or newer" >&2; exit 1; }
}

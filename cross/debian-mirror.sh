# Sourced by cross/setup.sh and cross/rss.sh (from the project root).
# host_mirror prints the Debian mirror to fetch foreign-architecture packages
# from: CROSS_DEBIAN_MIRROR, else the host's first Debian mirror.
host_mirror() {
    if [ -n "${CROSS_DEBIAN_MIRROR:-}" ]; then echo "$CROSS_DEBIAN_MIRROR"; return; fi
    local m
    m=$({ sed -n 's/^URIs:[[:space:]]*//p' /etc/apt/sources.list.d/*.sources 2>/dev/null | tr ' ' '\n'
          sed -n 's/^deb[[:space:]]\{1,\}\(\[[^]]*\][[:space:]]*\)\{0,1\}\([^[:space:]]*\).*/\2/p' \
              /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null
        } | grep -E '^https?://.*/debian/?$' | head -n1)
    echo "${m:-http://deb.debian.org/debian}"
}

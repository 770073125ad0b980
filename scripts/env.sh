# Sourced by scripts/test and .ci/run. Where ccache is installed, its compiler links come
# first on PATH, so the C/C++ builds of librdkafka and RocksDB are cached across clean target
# dirs. PATH, unlike CC or CXX, is not part of cargo's fingerprint of those builds: a plain
# `cargo build` or `cargo test` without this file reuses the same compiled libraries.
if [[ -d /usr/lib/ccache ]]; then
    case ":$PATH:" in
        *:/usr/lib/ccache:*) ;;
        *) export PATH="/usr/lib/ccache:$PATH" ;;
    esac
fi

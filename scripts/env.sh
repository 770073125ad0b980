# Sourced by scripts/test, benchmarks/run and .ci/run. Where ccache is installed, its
# compiler links come first on PATH, so the C/C++ builds of librdkafka and RocksDB are cached
# across clean target dirs. PATH, unlike CC or CXX, is not part of cargo's fingerprint of
# those builds: a plain `cargo build` or `cargo test` without this file reuses the same
# compiled libraries.
if [[ -d /usr/lib/ccache ]]; then
    case ":$PATH:" in
        *:/usr/lib/ccache:*) ;;
        *) export PATH="/usr/lib/ccache:$PATH" ;;
    esac
fi

# Starts an Apache Kafka broker with scripts/kafka on free local ports (or HOMA_KAFKA_PORT
# and HOMA_KAFKA_CONTROLLER_PORT), owned by this shell: it stops when the shell exits,
# however that happens, and a run that set status_ok=1 also removes its files. Exports
# HOMA_BOOTSTRAP_SERVERS. Call from the root of the repository.
start_local_broker() {
    local free_port='import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
    broker_port="${HOMA_KAFKA_PORT:-$(python3 -c "$free_port")}"
    local controller_port="${HOMA_KAFKA_CONTROLLER_PORT:-$(python3 -c "$free_port")}"
    # --owner-pid stops the broker if this shell is killed before its trap can run.
    scripts/kafka start --port "$broker_port" --controller-port "$controller_port" --owner-pid $$ >&2
    trap 'scripts/kafka stop --port "$broker_port" ${status_ok:+--clean} >/dev/null' EXIT
    export HOMA_BOOTSTRAP_SERVERS="127.0.0.1:$broker_port"
}

# Sourced by scripts/test and .ci/run so that every build of this workspace sees the same
# C/C++ compiler settings: a change of CC or CXX makes cargo rebuild librdkafka and RocksDB.
# ccache, where installed, keeps those C/C++ builds across clean target dirs.
if command -v ccache >/dev/null 2>&1; then
    export CC="${CC:-ccache gcc}" CXX="${CXX:-ccache g++}"
fi

#!/bin/sh
# Servers in the container (worker /metrics, Flower) bind to the container's own address, not to
# every interface; set CIRCUIT_METRICS_HOST or CIRCUIT_FLOWER_ADDRESS to choose another.
own="$(hostname -i | cut -d' ' -f1)"
export CIRCUIT_METRICS_HOST="${CIRCUIT_METRICS_HOST:-$own}"
export CIRCUIT_FLOWER_ADDRESS="${CIRCUIT_FLOWER_ADDRESS:-$own}"
exec "$@"

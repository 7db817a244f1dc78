# Journey Stream: every developer and CI entry point. `make help` lists the targets.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
UI_VENDOR := stream/web/static/vendor/chart.umd.js stream/web/static/vendor/dagre.min.js
KAFKA := deploy/local/kafka.sh
export JOURNEY_BROKER ?= 127.0.0.1:9092
GO ?= $(shell command -v go 2>/dev/null || echo /usr/local/go/bin/go)
VEGETA := .cache/bin/vegeta
VEGETA_VERSION := v12.13.0

.PHONY: help install kafka-fetch kafka-up kafka-down kafka-status lint format test test-unit test-integration test-faults test-shifted demo bench bench-decide bench-timers bench-learning bench-collector bench-off-policy clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-17s %s\n", $$1, $$2}'

$(BIN)/journey: pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "need $(PYTHON)"; exit 1; }
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	@touch $@

install: $(BIN)/journey $(UI_VENDOR) ## create .venv, install the package with dev tools, fetch the page's chart and graph libraries

$(UI_VENDOR) &: deploy/local/ui_vendor.sh
	deploy/local/ui_vendor.sh

kafka-fetch: ## resolve the Kafka jars from Maven Central into .cache/
	$(KAFKA) fetch

kafka-up: ## start the local KRaft broker on 127.0.0.1:9092 (reuses a running one)
	$(KAFKA) up

kafka-down: ## stop the local broker by its PID
	$(KAFKA) down

kafka-status: ## exit 0 if the local broker answers
	$(KAFKA) status

lint: install ## ruff (lint + format check) and mypy on the pure core
	$(BIN)/ruff check stream tests bench deploy
	$(BIN)/ruff format --check stream tests bench deploy
	$(BIN)/mypy

format: install ## apply ruff fixes and formatting
	$(BIN)/ruff check --fix stream tests bench deploy
	$(BIN)/ruff format stream tests bench deploy

test-unit: install ## unit tests only (no broker)
	$(BIN)/pytest tests/unit -q

test-integration: install ## integration tests against a running broker (make kafka-up)
	$(BIN)/pytest tests/integration -q

test-faults: install ## only the fault tests (kill -9, rebalance, broker restart, poison input; about 3 min; make test runs them too); starts and stops Kafka
	$(MAKE) kafka-up
	set -o pipefail; rc=0; $(BIN)/pytest -q -ra -s tests/faults || rc=$$?; $(MAKE) kafka-down; exit $$rc

test: install ## install, start Kafka, run the whole suite, stop Kafka
	$(MAKE) kafka-up
	set -o pipefail; rc=0; $(BIN)/pytest -q -ra tests || rc=$$?; $(MAKE) kafka-down; exit $$rc

test-shifted: install ## the whole suite with the tests' clock shifted (SHIFT=+365d, -365d, "@2027-03-28 00:50:00 UTC"); own broker
	tests/run_shifted.sh "$(or $(SHIFT),+365d)"

demo: install ## local Kafka + a worker + simulated traffic; actions print live; Ctrl-C stops all
	$(BIN)/python deploy/local/demo.py

bench: install kafka-up ## the performance run: decision step, pipeline vs baselines, latency, state scale and recovery (about 8 min)
	$(BIN)/python bench/decide.py
	$(BIN)/python bench/pipeline.py
	$(BIN)/python bench/scale.py

bench-decide: install ## time the decision step (default and 200-action policies)
	$(BIN)/python bench/decide.py

bench-timers: install kafka-up ## 1M pending timers (index rebuild, memory) and firing lag at 1,000/s
	$(BIN)/python bench/timers.py

bench-learning: install kafka-up ## learning curve: shipped policy, Thompson vs fixed, same traffic
	$(BIN)/python bench/learning.py

bench-off-policy: install kafka-up ## off-policy evaluation against the truth: estimate a candidate from the shipped policy's live log, then run it live (about 10 min)
	$(BIN)/python bench/off_policy.py

$(VEGETA):
	GOBIN=$(CURDIR)/.cache/bin $(GO) install github.com/tsenart/vegeta/v12@$(VEGETA_VERSION)

bench-collector: install kafka-up $(VEGETA) ## the HTTP collector: events/s per process and p99 acknowledgement at a fixed rate, beside a raw producer (installs vegeta with Go)
	$(BIN)/python bench/collector.py

clean: ## remove local state (broker data, worker state); keeps the jar cache and .venv
	-$(KAFKA) down
	rm -rf .run

# ttsframe front door. `make setup`, `make test`, then e.g.
#   make recipe=valle stage=0 stop_stage=1 data=ljspeech data.root=/data/LJSpeech-1.1
# Any other VAR=value on the command line is passed on as a config override (key=value).
PYTHON := .venv/bin/python
recipe ?=
stage ?= 0
stop_stage ?= 1000
RESERVED := recipe stage stop_stage force PYTHON
OVERRIDES := $(foreach v,$(filter-out $(RESERVED),$(.VARIABLES)),$(if $(filter command line,$(origin $(v))),$(v)=$($(v))))

.PHONY: run setup test test-fast help

run:
ifeq ($(recipe),)
	@$(PYTHON) -m ttsframe --help
else
	$(PYTHON) -m ttsframe run $(recipe) --stage $(stage) --stop-stage $(stop_stage) $(if $(force),--force) $(OVERRIDES)
endif

setup:
	bash scripts/setup.sh

test:
	$(PYTHON) -m pytest -q tests

test-fast:
	$(PYTHON) -m pytest -q tests -m "not integration"

help:
	@$(PYTHON) -m ttsframe --help

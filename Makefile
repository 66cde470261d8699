# `make bench`: the performance comparisons in benchmarks/ (see benchmarks/README.md); ARGS=--quick etc.
PYTHON ?= python

.PHONY: bench
bench:
	$(PYTHON) benchmarks/run.py $(ARGS)

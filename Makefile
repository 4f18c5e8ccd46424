# The two commands of the README, and the few an instructor or contributor needs besides.
# Everything is installed into .venv from requirements.txt and pyproject.toml; nothing else is assumed.

PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin

.PHONY: book test release clean

# (re)install when the requirements change
$(VENV)/.installed: requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -r requirements.txt -e .
	touch $@

## book: install and build the website into _build/html (executed chapters are cached)
book: $(VENV)/.installed
	$(BIN)/jupyter-book build .
	@echo "Website built: open _build/html/index.html"

## test: install (Python packages, Chromium for the browser test, bubblewrap for the grading sandbox) and run the whole test suite on 2 processes
test: $(VENV)/.installed
	.ci/install-browser
	.ci/install-sandbox
	$(BIN)/python -m pytest -n 2 --dist loadgroup --durations=20

## release: regenerate exercises/ from solutions/
release: $(VENV)/.installed
	$(BIN)/python -m autograder release

clean:
	rm -rf _build

# Two commands on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test call bench package init-db clean browser

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(STAMP): $(BIN)/python requirements.txt requirements-dev.txt
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/python -m callback.local

call: $(STAMP)
	$(BIN)/python -m callback.simulator $(ARGS)

test: $(STAMP) browser
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# The admin-portal browser test drives Debian's chromium (Playwright's own download cannot
# work offline). Installed when missing and possible; otherwise that one test says why it skips.
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  if command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
	    echo "installing chromium for the browser tests"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null \
	      || echo "chromium could not be installed: the browser test will be skipped"; \
	  elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then \
	    sudo -n apt-get update -qq && sudo -n DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null \
	      || echo "chromium could not be installed: the browser test will be skipped"; \
	  else echo "no chromium and no way to install it: the browser test will be skipped"; fi; }

bench: $(STAMP)
	$(BIN)/python -m bench --write $(ARGS)

# The Lambda zip, built by `zappa package` from a virtualenv holding only the runtime
# requirements (and Zappa, whose handler runs in the Lambda).
STAGE ?= dev
LAMBDA_VENV := build/lambda-venv
ZIP := build/callback-$(STAGE).zip

$(LAMBDA_VENV)/.installed: requirements.txt
	rm -rf $(LAMBDA_VENV)
	$(PYTHON) -m venv $(LAMBDA_VENV)
	$(LAMBDA_VENV)/bin/pip install --quiet --upgrade pip
	$(LAMBDA_VENV)/bin/pip install --quiet -r requirements.txt zappa==0.63.0
	touch $@

package: $(LAMBDA_VENV)/.installed
	rm -f $(ZIP)
	VIRTUAL_ENV=$(abspath $(LAMBDA_VENV)) PATH=$(abspath $(LAMBDA_VENV))/bin:$$PATH \
	  AWS_DEFAULT_REGION=$${AWS_DEFAULT_REGION:-us-east-1} \
	  $(LAMBDA_VENV)/bin/zappa package $(STAGE) -o $(ZIP)
	@$(PYTHON) -c "import os; s = os.path.getsize('$(ZIP)'); print(f'$(ZIP): {s / 2**20:.1f} MiB zipped (Lambda allows 50 MiB)')"

init-db: $(STAMP)
	$(BIN)/flask --app app init-db

clean:
	rm -rf $(VENV) build dist .pytest_cache

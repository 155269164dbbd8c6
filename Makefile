# Two commands on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test call bench soak package init-db clean browser java dynamodb-local

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(STAMP): $(BIN)/python requirements.txt requirements-dev.txt
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/python -m devtools.local $(ARGS)

call: $(STAMP)
	$(BIN)/python -m devtools.simulator $(ARGS)

test: $(STAMP) browser dynamodb-local
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# The admin-portal browser test drives Debian's chromium (Playwright's own download cannot
# work offline). Installed when missing and possible; otherwise that one test says why it skips.
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  echo "installing chromium for the browser tests"; \
	  $(call APT_INSTALL,chromium) || echo "chromium could not be installed: the browser test will be skipped"; }

# Debian packages, as root or through passwordless sudo; false when neither can install them.
APT_INSTALL = { command -v apt-get >/dev/null 2>&1 && \
	  if [ "$$(id -u)" = 0 ]; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(1) >/dev/null; \
	  elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then \
	    sudo -n apt-get update -qq && sudo -n DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(1) >/dev/null; \
	  else false; fi; }

# Amazon's DynamoDB Local, the engine the tests run on: the jar AWS ships, taken from the npm
# package that carries it (pinned, its integrity checked), on Java 17 from Debian when missing.
DYNAMODB_LOCAL_NPM := amplify-dynamodb-simulator@2.9.30
DYNAMODB_LOCAL_SHA512 := xTeeRLvzEfqyd5lh3bH4c0kHvSHHmmhD5ZDsHFKAQ5g2Zl6JqlFdutaQhCLHzxEp6Ry1o7TB6niIoXuQAnSewQ==
DYNAMODB_LOCAL := build/dynamodb-local
DYNAMODB_LOCAL_STAMP := $(DYNAMODB_LOCAL)/.installed-$(DYNAMODB_LOCAL_NPM)
NO_DYNAMODB_LOCAL := the storage, dispatch, race and fault tests cannot run without it

dynamodb-local: java $(DYNAMODB_LOCAL_STAMP)

java:
	@command -v java >/dev/null 2>&1 || { \
	  echo "installing Java 17 (default-jre-headless) for DynamoDB Local"; \
	  $(call APT_INSTALL,default-jre-headless) || { \
	    echo "no java and no way to install it (Debian: default-jre-headless): $(NO_DYNAMODB_LOCAL)"; exit 1; }; }

$(DYNAMODB_LOCAL_STAMP):
	@command -v npm >/dev/null 2>&1 || { \
	  echo "installing npm to fetch DynamoDB Local"; \
	  $(call APT_INSTALL,npm) || { echo "no npm and no way to install it: $(NO_DYNAMODB_LOCAL)"; exit 1; }; }
	@echo "fetching DynamoDB Local: npm pack $(DYNAMODB_LOCAL_NPM)"
	@rm -rf $(DYNAMODB_LOCAL) && mkdir -p $(DYNAMODB_LOCAL)
	@cd $(DYNAMODB_LOCAL) && npm pack --silent $(DYNAMODB_LOCAL_NPM) >/dev/null || { \
	  echo "npm could not fetch $(DYNAMODB_LOCAL_NPM) from its registry: $(NO_DYNAMODB_LOCAL)"; exit 1; }
	@$(PYTHON) -c "import base64, hashlib, glob, sys; \
	  data = open(glob.glob('$(DYNAMODB_LOCAL)/*.tgz')[0], 'rb').read(); \
	  ok = base64.b64encode(hashlib.sha512(data).digest()).decode() == '$(DYNAMODB_LOCAL_SHA512)'; \
	  sys.exit(0 if ok else 'the DynamoDB Local package does not match its pinned sha512')"
	@tar xzf $(DYNAMODB_LOCAL)/*.tgz -C $(DYNAMODB_LOCAL) && rm $(DYNAMODB_LOCAL)/*.tgz
	@touch $@

# The cold-start part measures the Lambda package, so it is built first; the sweep part
# runs on DynamoDB Local as well as moto.
bench: $(STAMP) package dynamodb-local
	$(BIN)/python -m bench --write $(ARGS)

# The app in several processes against a chaotic Twilio, then the books checked (not part of
# `make test`; fails when anything that must never happen did). ARGS="--seed N" replays a run.
soak: $(STAMP)
	@$(MAKE) --no-print-directory dynamodb-local || echo "no DynamoDB Local: the soak runs on moto"
	$(BIN)/python -m bench.soak --write $(ARGS)

# The Lambda zip, built by `zappa package` from a virtualenv holding only the runtime
# requirements (and Zappa, whose handler runs in the Lambda). Zappa's zip callback
# (lambda_bytecode.py) adds the modules' bytecode, so it must be built with the Python of
# the stage's runtime: checked here before the slow install, and again by the callback.
STAGE ?= dev
LAMBDA_VENV := build/lambda-venv
ZIP := build/callback-$(STAGE).zip

$(LAMBDA_VENV)/.installed: requirements.txt
	$(PYTHON) lambda_bytecode.py $(STAGE)
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

# Two commands on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test call bench soak package init-db clean browser java dynamodb-local runtime-python deploy update twilio-setup

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

test: $(STAMP) browser dynamodb-local runtime-python
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

# The Lambda package. Zappa packages the folder it runs in and the site-packages of
# VIRTUAL_ENV, so `make package` gives it exactly what ships: a staging copy of the app, and
# the runtime requirements installed as wheels for the Lambda's Python and platform. Both
# sit in hidden folders under build/, which Zappa's WebSocket search skips. Zappa itself
# runs from .venv; its callbacks (devtools/lambda_package.py) check the zip and add
# bytecode compiled by the runtime's own Python (`runtime-python`).
STAGE ?= dev
LAMBDA_RUNTIME = $(shell $(PYTHON) devtools/lambda_package.py runtime $(STAGE))
RUNTIME_PYTHON = build/.runtime/$(LAMBDA_RUNTIME)/python
# Zappa reads VIRTUAL_ENV/lib/<the Python running Zappa>/site-packages.
HOST_PYTHON := $(shell $(PYTHON) -c 'import sys; print("python%d.%d" % sys.version_info[:2])')
LAMBDA_ENV = build/.lambda-env-$(STAGE)
LAMBDA_SITE = $(LAMBDA_ENV)/lib/$(HOST_PYTHON)/site-packages
STAGING = build/.staging/$(STAGE)
ZIP = build/callback-$(STAGE).zip
# Amazon Linux 2023 (glibc 2.34) on x86_64, as `architecture` in zappa_settings.json says.
LAMBDA_WHEELS = --only-binary=:all: --implementation cp --platform manylinux2014_x86_64 \
  --platform manylinux_2_28_x86_64 --python-version $(subst python,,$(LAMBDA_RUNTIME))
# Zappa's handler runs in the Lambda; the rest of Zappa (its CLI's dependencies) does not.
LAMBDA_HANDLER = zappa==0.63.0 durationpy==0.12
ZAPPA = cd $(1) && VIRTUAL_ENV=$(abspath $(LAMBDA_ENV)) PYTHONPATH=$(CURDIR) \
  LAMBDA_RUNTIME_PYTHON=$(abspath $(RUNTIME_PYTHON)) \
  AWS_DEFAULT_REGION=$${AWS_DEFAULT_REGION:-us-east-1} $(abspath $(BIN))/zappa


runtime-python: $(STAMP)
	@test -x $(RUNTIME_PYTHON) || { \
	  command -v debootstrap >/dev/null 2>&1 || [ "$(LAMBDA_RUNTIME)" = "$(HOST_PYTHON)" ] || { \
	    echo "installing debootstrap to unpack $(LAMBDA_RUNTIME) from Debian"; \
	    $(call APT_INSTALL,debootstrap) || echo "debootstrap could not be installed"; }; \
	  echo "unpacking $(LAMBDA_RUNTIME), the Lambda's Python, for the package's bytecode"; \
	  $(PYTHON) devtools/lambda_package.py runtime-python $(STAGE); }

$(LAMBDA_ENV)/.installed: requirements.txt Makefile
	rm -rf $(LAMBDA_ENV) && mkdir -p $(LAMBDA_SITE)
	$(BIN)/pip install --quiet --target $(LAMBDA_SITE) $(LAMBDA_WHEELS) -r requirements.txt
	$(BIN)/pip install --quiet --target $(LAMBDA_SITE) $(LAMBDA_WHEELS) --no-deps $(LAMBDA_HANDLER)
	$(PYTHON) devtools/lambda_package.py prune-sdk $(LAMBDA_SITE)
	touch $@

package: $(STAMP) runtime-python $(LAMBDA_ENV)/.installed
	@# build/lambda-venv (before #29) holds Zappa's handler where Zappa looks for WebSockets.
	rm -rf build/lambda-venv $(STAGING) $(ZIP) && mkdir -p $(STAGING)
	cp -R app.py callback templates zappa_settings.json $(STAGING)/
	$(call ZAPPA,$(STAGING)) package $(STAGE) -o $(abspath $(ZIP))
	@$(PYTHON) -c "import os; s = os.path.getsize('$(ZIP)'); print(f'$(ZIP): {s / 2**20:.1f} MiB zipped (Lambda allows 50 MiB)')"

# The zip `make package` built and tested, deployed: `deploy` creates the stage, or updates
# it when it exists (so the README's steps can run twice); `update` only updates.
deploy: package
	command=$$($(BIN)/python devtools/lambda_package.py deploy-command $(STAGE)) && \
	  $(call ZAPPA,$(CURDIR)) $$command $(STAGE) --zip $(abspath $(ZIP))

update: package
	$(call ZAPPA,$(CURDIR)) update $(STAGE) --zip $(abspath $(ZIP))

# Point every IVR number at the stage (Voice URL, fallback, status callback): run with the
# account's TWILIO_AUTH_TOKEN (or CALLBACK_SECRETS_SSM_PATH) in the environment; ARGS=--dry-run.
twilio-setup: $(STAMP)
	env $$($(BIN)/python devtools/lambda_package.py stage-env $(STAGE) | tr '\n' ' ') \
	  $(BIN)/flask --app app twilio-setup $(ARGS)

init-db: $(STAMP)
	$(BIN)/flask --app app init-db

clean:
	rm -rf $(VENV) build dist .pytest_cache

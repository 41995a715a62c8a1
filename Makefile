# The two commands: `make run` (embedded defaults: SQLite, eager Celery, console mail)
# and `make test` (the whole suite). Both create the virtualenv when needed. `make test-full`
# is `make test` on PostgreSQL and Redis, started when they are down (.ci/with-services).
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# Where `make run` listens: `make run PORT=8001`, or `make run HOST=0.0.0.0` to serve other
# machines (plain assignments, so a shell's own HOST variable never leaks in; the command
# line still wins; IPv6 in brackets: HOST=[::1]). In development ALLOWED_HOSTS follows HOST.
HOST = 127.0.0.1
PORT = 8000

.PHONY: run test test-full install worker migrate clean

$(STAMP): requirements.txt
	@command -v $(PYTHON) >/dev/null || { echo "$(PYTHON) is required"; exit 1; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	touch $(STAMP)

install: $(STAMP)

migrate: install
	$(PY) manage.py migrate --noinput

run: migrate
	$(PY) manage.py load_default_templates
	$(PY) manage.py ensure_admin
	RUNSERVER_HOST=$(HOST) $(PY) manage.py runserver $(HOST):$(PORT)

worker: install
	$(VENV)/bin/celery -A config worker -Q urgent,default,bulk -l INFO

test: install
	$(VENV)/bin/ruff check .
	$(PY) -m pytest $(PYTEST_ARGS)

# Nothing skipped for want of PostgreSQL or a broker: a throwaway database, dropped after.
test-full: install
	.ci/with-services $(MAKE) test VENV=$(VENV) PYTEST_ARGS="$(PYTEST_ARGS)"

clean:
	rm -rf $(VENV) .test-db-*.sqlite3*

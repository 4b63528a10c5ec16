# `make demo` and `make test` are the commands the README documents; the work is in scripts/.
.PHONY: demo test install

install:
	scripts/bootstrap.sh

demo: install
	.venv/bin/journey demo

# Pass pytest arguments with ARGS, e.g. `make test ARGS="-k topics"`.
test:
	scripts/test.sh $(ARGS)

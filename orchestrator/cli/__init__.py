"""The `journey` command line; each subcommand lives in its own module and is registered in `main`."""

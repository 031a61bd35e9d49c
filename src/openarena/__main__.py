"""``python -m openarena``: the same command line as the ``openarena`` script."""

from openarena.cli.main import run

if __name__ == "__main__":
    run()

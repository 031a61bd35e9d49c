"""``python -m openarena``: the same command line as the ``openarena`` executable."""

from openarena.cli.main import run

if __name__ == "__main__":
    run()

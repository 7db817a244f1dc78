"""``python -m stream`` runs the ``journey`` CLI."""

from stream.cli import main

if __name__ == "__main__":
    main()

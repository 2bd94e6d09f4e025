"""``python -m cli``: the ``loanrisk`` command without its console script."""

from cli import main

if __name__ == "__main__":
    main()

"""Runs the papers' reproductions: ``python experiments/reproduce.py [--scale=quick] [--papers=all]``.

The same command as the ``jaxpapers-reproduce`` console script (``--help`` lists the flags).
"""

from jaxpapers._src import reproduce

if __name__ == "__main__":
  raise SystemExit(reproduce.run())

"""Runs every paper's reproductions: ``python experiments/reproduce.py --papers=all --scale=cpu``."""

from absl import app

from jaxpapers._src import reproduce

if __name__ == "__main__":
  app.run(reproduce.main)

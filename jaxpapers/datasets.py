"""Where jaxpapers looks for real data sets, and where each comes from.

Real-data experiments look for ``<root>/<name>/`` in ``$JAXPAPERS_DATA`` and then in
``shared/data`` beside the checkout; every loader also takes an explicit folder. Nothing is
downloaded at run time: fetch a data set from its source (``SOURCES``) into one of those folders.
"""

from jaxpapers._src.data import DatasetNotFoundError as DatasetNotFoundError
from jaxpapers._src.data import default_roots as default_roots
from jaxpapers._src.data import find_dataset as find_dataset
from jaxpapers._src.data import has_dataset as has_dataset
from jaxpapers._src.registry import DATA_SOURCES as SOURCES

__all__ = ["SOURCES", "DatasetNotFoundError", "default_roots", "find_dataset", "has_dataset"]

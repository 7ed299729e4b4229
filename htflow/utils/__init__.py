"""Small helpers every layer may use: import paths and entry points, YAML, thread pinning, hints."""

from htflow.utils.imports import import_object, plugin_names, resolve
from htflow.utils.text import suggest
from htflow.utils.threads import THREAD_VARS, pin_threads
from htflow.utils.yaml import read_yaml

__all__ = ["THREAD_VARS", "import_object", "pin_threads", "plugin_names", "read_yaml", "resolve", "suggest"]

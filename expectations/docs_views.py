"""Data Docs views that compile GX's page templates once per process, not once per validation.

Each validation renders its Data Docs page and the site's index through GX's Jinja views, and every
view makes a new Jinja environment, which compiles GX's templates again: about 100 templates, 80%
of the docs' cost (0.55 s of 0.67 s per audit on a slow 2-core machine, 2026-12-08). A close audits
a dozen tables, each under the GX lock (``runner._GX_LOCK``), so the steps' audits waited for one
another's template compilation. These views are GX's own, given one shared cache of compiled
templates (Jinja's bytecode cache, in memory): a template's source is still read and checked, and
the pages are byte-for-byte what GX's own views render. ``runner._context`` names them in the
docs site's configuration (GX's ``view`` setting of each site section and of the index).
"""

import threading

from jinja2 import BytecodeCache
from jinja2.bccache import Bucket

from expectations.gx import LazyModule

_views = LazyModule("great_expectations.render.view")


class _CompiledTemplates(BytecodeCache):
    """Compiled templates by Jinja's key (template name and file); Jinja checks each entry
    against the template's current source before using it."""

    def __init__(self) -> None:
        self._code: dict[str, bytes] = {}
        self._lock = threading.Lock()

    def load_bytecode(self, bucket: Bucket) -> None:
        with self._lock:
            code = self._code.get(bucket.key)
        if code is not None:
            bucket.bytecode_from_string(code)

    def dump_bytecode(self, bucket: Bucket) -> None:
        code = bucket.bytecode_to_string()
        with self._lock:
            self._code[bucket.key] = code

    def clear(self) -> None:
        with self._lock:
            self._code.clear()

    def __len__(self) -> int:
        return len(self._code)


COMPILED_TEMPLATES = _CompiledTemplates()


def _cached(base: type) -> type:
    class View(base):
        def __init__(self, *args, **kwargs) -> None:
            super().__init__(*args, **kwargs)
            # Every GX Jinja view builds its environment alike (the same loaders, autoescape and
            # extensions), so one compiled template serves them all.
            self.env.bytecode_cache = COMPILED_TEMPLATES

    View.__name__ = View.__qualname__ = f"Cached{base.__name__}"
    View.__doc__ = f"GX's ``{base.__name__}``, its templates compiled once per process."
    return View


def __getattr__(name: str) -> type:
    # Built on first use, as GX itself is imported (expectations/gx.py): GX instantiates these
    # by name from the site's configuration.
    if name.startswith("Cached") and name.endswith("View"):
        view = _cached(getattr(_views, name.removeprefix("Cached")))
        globals()[name] = view
        return view
    raise AttributeError(name)


def view_config(base: str) -> dict[str, str]:
    """The site configuration's ``view`` entry for GX's ``base`` view, cached."""
    return {"module_name": __name__, "class_name": f"Cached{base}"}

"""The one espeak-ng that ttsframe uses: the library and data of the `espeakng-loader` wheel.

espeak-ng releases phonemize some words differently (1.51 vs 1.52), and a vocabulary depends
on that, so phonemizer is always pointed at this single pip-installed copy, never at a system
package. `configure_espeak()` does that once per process; call it before any EspeakBackend.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from ttsframe.errors import UserError

_FIX = "reinstall it with `make setup` (or `pip install espeakng-loader`)"


@dataclass(frozen=True)
class EspeakInfo:
    library: str  # path of libespeak-ng
    data_path: str  # path of espeak-ng-data
    version: str  # e.g. "1.52.0"


@functools.cache
def configure_espeak() -> EspeakInfo:
    """Points phonemizer at espeakng-loader's espeak-ng; idempotent.

    Raises:
        UserError: the wheel is missing or its library cannot be loaded.
    """
    try:
        import espeakng_loader

        library, data_path = espeakng_loader.get_library_path(), espeakng_loader.get_data_path()
    except (ImportError, RuntimeError) as e:
        raise UserError(f"espeak-ng is unavailable: the espeakng-loader wheel fails ({e}); {_FIX}") from None

    from phonemizer.backend.espeak.wrapper import EspeakWrapper

    EspeakWrapper.set_library(library)
    EspeakWrapper.set_data_path(data_path)
    try:
        version = ".".join(str(v) for v in EspeakWrapper().version)
    except (OSError, RuntimeError) as e:
        raise UserError(f"cannot load espeak-ng from {library} ({e}); {_FIX}") from None
    return EspeakInfo(library=library, data_path=data_path, version=version)

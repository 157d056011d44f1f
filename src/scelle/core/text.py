"""Text from the outside world that may be stored: no NUL, no lone surrogate.

JSON may carry both (`"\\u0000"`, `"\\ud800"`); PostgreSQL refuses them in text and
jsonb, and UTF-8 cannot encode a lone surrogate, so such text is refused where it
enters, never turned into a server error where it is written.
"""

from __future__ import annotations

import re

_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def storable(value: str) -> bool:
    """True when `value` holds no NUL and no lone surrogate."""
    return _UNSTORABLE.search(value) is None

"""``$expand`` as DSP0266 (the Redfish specification, "Query parameters", ``$expand``) states it, for the
simulated BMCs.

* ``$expand=*``: every hyperlink is replaced by the resource it points to, those in ``Links`` included;
  ``$expand=.``: the hyperlinks outside ``Links`` (a collection's ``Members``, a member's ``RelatedItem``...);
  ``$expand=~``: only those inside ``Links``. ``($levels=n)`` (``$expand=.($levels=2)``) expands the expanded
  resources again, ``n`` levels deep; without it one level.
* A hyperlink is an object whose only property is ``@odata.id``. One that names no resource of the BMC's fixed
  tree (a task, a session) is left as it is.
* The service root says what is supported (``ProtocolFeaturesSupported.ExpandQuery``: :data:`EXPAND_QUERY`): all
  three forms, ``$levels`` up to :data:`MAX_LEVELS`. A ``$levels`` above it answers 400
  ``QueryParameterOutOfRange``, a value of another form 400 ``QueryParameterValueFormatError``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any, Final

from flasher_sandbox.bmc.errors import BASE, RedfishError

#: The deepest ``$levels`` the simulated BMCs expand.
MAX_LEVELS: Final = 2
#: ``ProtocolFeaturesSupported.ExpandQuery`` of every simulated BMC.
EXPAND_QUERY: Final = {"ExpandAll": True, "Levels": True, "Links": True, "NoLinks": True, "MaxLevels": MAX_LEVELS}

_FORM = re.compile(r"^([*.~])(?:\(\$levels=(\d+)\))?$")

Renderer = Callable[[], dict[str, Any]]


def parse(value: str) -> tuple[str, int]:
    """``(form, levels)`` of a ``$expand`` value (``*``, ``.``, ``~``, optionally ``($levels=n)``). Raises
    :class:`RedfishError` 400 naming the value when it is of another form or deeper than :data:`MAX_LEVELS`."""
    match = _FORM.match(value.strip())
    if match is None:
        raise RedfishError(
            400,
            f"{BASE}.QueryParameterValueFormatError",
            f"The value '{value}' for the parameter $expand is of a different format than the parameter can accept.",
            args=[value, "$expand"],
        )
    levels = int(match.group(2) or 1)
    if not 1 <= levels <= MAX_LEVELS:
        raise RedfishError(
            400,
            f"{BASE}.QueryParameterOutOfRange",
            f"The value '{levels}' for the query parameter $levels is out of range 1 to {MAX_LEVELS}.",
            args=[str(levels), "$levels", f"1 to {MAX_LEVELS}"],
        )
    return match.group(1), levels


def _is_link(value: Any) -> bool:
    return isinstance(value, dict) and len(value) == 1 and isinstance(value.get("@odata.id"), str)


def expand(doc: dict[str, Any], form: str, levels: int, resources: Mapping[str, Renderer]) -> dict[str, Any]:
    """``doc`` with its hyperlinks of ``form`` replaced by the resources they name (rendered from
    ``resources``, each expanded again while ``levels`` allow). ``doc`` itself is not changed."""

    def walk(value: Any, in_links: bool, depth: int) -> Any:
        if _is_link(value):
            wanted = form == "*" or (form == "~") == in_links
            render = resources.get(value["@odata.id"].rstrip("/"))
            if not wanted or render is None:
                return value
            target = render()
            return {key: walk(item, False, depth - 1) for key, item in target.items()} if depth > 1 else target
        if isinstance(value, dict):
            return {key: walk(item, in_links or key == "Links", depth) for key, item in value.items()}
        if isinstance(value, list):
            return [walk(item, in_links, depth) for item in value]
        return value

    return {key: walk(value, key == "Links", levels) for key, value in doc.items()}

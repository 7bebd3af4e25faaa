"""A refused form comes back filled in with what was typed and its refused field marked
(WCAG 2.2 SC 3.3.7 Redundant Entry, 3.3.1 Error Identification).

The page is rendered again in answer to the post (no redirect: what was typed must not travel
in a URL), with the message at the top as an alert whose id the refused field points at.
Secret fields (passwords) are never sent back: they are typed again.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass

from fastapi import status
from markupsafe import Markup

#: The id of the message a refused field's aria-describedby points at.
MESSAGE_ID = "form-error"


@dataclass(frozen=True)
class Refused:
    """Form ``form`` (its id on the page) was refused with ``message``; ``field`` names the
    field the message is about, ``values`` what was typed (secrets left out)."""

    form: str
    message: str
    field: str | None = None
    values: Mapping[str, str] = dataclasses.field(default_factory=dict)
    status_code: int = status.HTTP_422_UNPROCESSABLE_CONTENT

    def on(self, form: str) -> bool:
        """This form was refused: a disclosure holding it opens."""
        return bool(self.form) and self.form == form

    def value(self, form: str, name: str, default: object = "") -> str:
        """What was typed into ``name`` of a refused ``form``; ``default`` otherwise."""
        if self.on(form) and name in self.values:
            return self.values[name]
        return "" if default is None else str(default)

    def invalid(self, form: str, name: str) -> Markup:
        """The attributes that mark the refused field and tie the message to it."""
        if self.on(form) and self.field == name:
            return Markup(f' aria-invalid="true" aria-describedby="{MESSAGE_ID}"')
        return Markup("")


#: No form refused: templates call the same methods either way.
NO_REFUSAL = Refused(form="", message="")

"""The time budget one request has for turning its prompts into conditioning (see PROMPT_TIME_BUDGET_S)."""
from __future__ import annotations

import contextlib
import time
from typing import Iterator

from webui.errors import UserInputError
from webui.prompts import limits


class PromptBudgetExceeded(UserInputError):
    """The prompts took longer to parse and encode than the request's budget; nothing was generated from them."""


class PromptBudget:
    """Seconds spent on prompt work so far (only while `counting`), checked against a limit between pieces of work.

    Only prompt work counts: sampling between two passes' prompt encodes does not use up the budget.
    """

    def __init__(self, seconds: float | None = None) -> None:
        self.seconds = limits.PROMPT_TIME_BUDGET_S if seconds is None else float(seconds)
        self.spent = 0.0
        self._since: float | None = None

    def restart(self) -> None:
        """A new generation on the same job (scripts run many): its prompt work starts from zero."""
        self.spent = 0.0

    @contextlib.contextmanager
    def counting(self) -> Iterator[None]:
        """Count the time inside the block as prompt work (nested blocks count once)."""
        if self._since is not None:
            yield
            return
        self._since = time.monotonic()
        try:
            yield
        finally:
            self.spent += time.monotonic() - self._since
            self._since = None

    def used(self) -> float:
        return self.spent + (time.monotonic() - self._since if self._since is not None else 0.0)

    def check(self) -> None:
        """Raise PromptBudgetExceeded once the prompt work of this request has run past its budget."""
        used = self.used()
        if used > self.seconds:
            raise PromptBudgetExceeded(
                f"The prompts took {used:.1f} s to parse and encode, above the budget of {self.seconds:g} s "
                f"per request (PROMPT_TIME_BUDGET_S); shorten the prompt or use fewer AND parts and prompt edits")

"""Sentences shared by every part of the lab."""

MESSAGES: dict[str, tuple[str, str]] = {
    "common.steps.one": ("{n} step", "{n} 步"),
    "common.steps.other": ("{n} steps", "{n} 步"),
}

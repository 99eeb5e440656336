"""Regex matching that cannot hang: the regex match mode runs on RE2, a linear-time engine.

Python's ``re`` backtracks: a pattern with nested quantifiers such as ``(.*.*)*Q`` takes
exponential time on a response that almost matches, holding the GIL all along, so one task row
froze the whole server (issue 10). RE2 (google-re2) compiles a pattern to an automaton and
searches in time linear in the text, whatever the pattern; its program size is capped by its
memory budget (``max_mem``, 8 MiB by default), so a huge pattern is refused at compile time.

The price: RE2 leaves out the constructs that need backtracking (backreferences, lookahead and
lookbehind, atomic groups, possessive quantifiers, conditionals). A pattern that uses one gets a
message naming the construct. Other differences a task author may meet: ``\\d``, ``\\w`` and
``\\b`` are ASCII-only in RE2 (Unicode in Python), and the end of text is ``\\z`` (Python's ``\\Z``).

Search semantics are those of the old ``re.search(pattern, text, re.IGNORECASE)``: anywhere in
the text, case-insensitive. Only the first ``MAX_MATCHED_CHARS`` characters are searched.
"""

from __future__ import annotations

import re

try:
    import re2
except ImportError:  # a pinned requirement: say how to get it rather than fail later mid-run
    raise ImportError("The regex match mode needs google-re2 (pinned in requirements.txt): "
                      "pip install -r requirements.txt") from None

# Responses are at most max_new_tokens tokens (256 under the default limits); a token decodes to
# a few characters, so real responses stay far below this. The bound keeps a direct caller of
# rule_reward (CLI, tests, a custom script) linear in a known size too: a search over 4096
# characters takes at most ~130 ms with the costliest pattern RE2 accepts that we found
# ((?:a?){1000}a{1000}), and well under 1 ms with everyday patterns.
MAX_MATCHED_CHARS = 4096

# The RE2 options the lab matches with, as data: the exported reward.py (export/reward_file.py)
# sets the same ones, so a run taken to TRL, veRL or OpenRLHF scores exactly as here.
RE2_OPTIONS = {
    "case_sensitive": False,  # re.IGNORECASE
    "log_errors": False,  # RE2 would also print every refused pattern to stderr
}
_OPTIONS = re2.Options()
for _name, _value in RE2_OPTIONS.items():
    setattr(_OPTIONS, _name, _value)

_ENGINE = "regex mode runs on RE2, a linear-time engine that no pattern can make hang"

# (what RE2's error message quotes, what the construct is called, a hint). Each needs
# backtracking, which is exactly what RE2 gives up to guarantee linear time.
_BACKTRACKING = [
    (re.compile(r"^\\[1-9]"), "a backreference", "Spell the repeated text out instead."),
    (re.compile(r"^\\k"), "a named backreference", "Spell the repeated text out instead."),
    (re.compile(r"^\(\?="), "a lookahead", "Match the following text itself instead."),
    (re.compile(r"^\(\?!"), "a negative lookahead", ""),
    (re.compile(r"^\(\?<="), "a lookbehind", "Match the preceding text itself instead."),
    (re.compile(r"^\(\?<!"), "a negative lookbehind", ""),
    (re.compile(r"^\(\?>"), "an atomic group", "Use a plain group (?:...) instead."),
    (re.compile(r"^\(\?\("), "a conditional group", ""),
    (re.compile(r"^[*+?}]\+$"), "a possessive quantifier", "Drop the second '+'."),
]


class PatternError(ValueError):
    """A pattern RE2 cannot compile. The message completes "The expected answer '...' ...".

    ``invalid`` is RE2's message when the pattern is no regular expression at all (Python's
    ``re`` refuses it too), None when it is one that RE2 does not support.
    """

    def __init__(self, message: str, invalid: str | None = None):
        super().__init__(message)
        self.invalid = invalid


def _python_accepts(pattern: str) -> bool:
    """Compiling (never matching) with Python's re is safe: it tells a typo from an RE2 gap."""
    try:
        re.compile(pattern)
        return True
    except (re.error, RecursionError, OverflowError):
        return False


INVALID = "is not a valid regular expression: {}."


def _explain(pattern: str, re2_message: str) -> str:
    """Turn RE2's terse error ('invalid perl operator: (?<=') into a sentence for a task author."""
    reason, _, fragment = re2_message.partition(": ")
    if fragment.startswith("(?P") and "(?P=" in pattern:
        fragment = "(?P="  # RE2 quotes only '(?P'; (?P<name>...) itself is supported
    for rx, construct, hint in [(re.compile(r"^\(\?P="), "a named backreference",
                                 "Spell the repeated text out instead."), *_BACKTRACKING]:
        if rx.search(fragment):
            return (f"uses {construct} ({fragment}), which is not supported: {_ENGINE}, and RE2 "
                    f"leaves out what needs backtracking. {hint}").rstrip()
    if not _python_accepts(pattern):
        return INVALID.format(re2_message)
    if fragment == "\\Z":
        return f"uses \\Z, which RE2 writes \\z ({_ENGINE}). Write \\z instead."
    if reason == "invalid repetition size":
        return (f"repeats more than RE2 allows ({fragment}: at most 1000 repetitions, nested counts "
                f"multiplied; {_ENGINE}). Use smaller counts.")
    return (f"uses syntax RE2 does not support ({re2_message}; {_ENGINE}). "
            "Its syntax: https://github.com/google/re2/wiki/Syntax")


def utf8_safe(text: str) -> str:
    """RE2 works on UTF-8. A lone surrogate (a JSON task file may hold one) has no UTF-8 form,
    so it becomes U+FFFD, in the pattern and in the response alike."""
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")


def compile_pattern(pattern: str):
    """The compiled RE2 pattern (case-insensitive), or PatternError explaining the refusal."""
    try:
        return re2.compile(utf8_safe(pattern), _OPTIONS)
    except re2.error as exc:
        raw = exc.args[0] if exc.args else ""
        message = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
        if "pattern too large" in message:
            raise PatternError(f"is too large for RE2's memory budget ({_ENGINE}). "
                               "Use fewer or smaller repetitions.") from None
        explained = _explain(pattern, message)
        raise PatternError(explained, message if explained == INVALID.format(message) else None) from None


def search(compiled, text: str) -> bool:
    """Does the pattern occur anywhere in the text's first MAX_MATCHED_CHARS characters?"""
    return compiled.search(utf8_safe(text[:MAX_MATCHED_CHARS])) is not None

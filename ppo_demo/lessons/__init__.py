"""Lessons: classroom questions as data, each a one-click experiment with a control run and a
verdict computed from the runs' own numbers.

* ``core``     the Lesson/Arm data, statistics over histories, the verdict renderer
* ``probes``   per-step numbers read from the rollouts (negative-KL tokens, tied groups, ...)
* ``library``  the lessons and their predicates
* ``runner``   trains a lesson's arms (seed after seed) and judges them
* ``export``   the verdict with its numbers as Markdown, for class notes
"""

from .core import Arm, Check, Lesson, LessonError, Outcome, fmt, verdict_text
from .library import LESSONS
from .runner import band, get_lesson, judge, parse_seeds, plan, repeat_with_seeds, run_lesson

__all__ = ["Arm", "Check", "Lesson", "LessonError", "Outcome", "LESSONS", "band", "fmt", "get_lesson", "judge",
           "parse_seeds", "plan", "repeat_with_seeds", "run_lesson", "verdict_text"]

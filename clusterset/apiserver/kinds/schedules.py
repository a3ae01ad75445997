"""CronJob schedules: what kube-apiserver accepts, and when a schedule fires next.

Upstream parses schedules with robfig/cron's `ParseStandard`: exactly five fields (minute, hour, day of
month, month, day of week), `*` `?` `,` `-` `/`, month and weekday names, and the descriptors `@yearly`
… `@hourly` and `@every <duration>`. croniter computes the times; this module only holds croniter to
that grammar (croniter also takes seconds and year fields, `L`, `#` and `H`, which kube-apiserver
refuses) and gives robfig's error wording. `TZ=`/`CRON_TZ=` prefixes are refused as upstream does on
create: the time zone goes in `spec.timeZone`, checked against the IANA database (the `tzdata` package
when the host has none), as kube-apiserver checks it against the one compiled into it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter

DESCRIPTORS = {
    "@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *", "@monthly": "0 0 1 * *", "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *", "@midnight": "0 0 * * *", "@hourly": "0 * * * *",
}
# (name, minimum, maximum, names) of the five fields
_FIELDS = (
    ("minute", 0, 59, ()),
    ("hour", 0, 23, ()),
    ("day of month", 1, 31, ()),
    ("month", 1, 12, ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")),
    ("day of week", 0, 6, ("sun", "mon", "tue", "wed", "thu", "fri", "sat")),
)
_GO_DURATION = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")
_GO_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


class ScheduleError(ValueError):
    """A schedule or time zone kube-apiserver refuses; the message is upstream's."""


@dataclass(frozen=True)
class Schedule:
    """A parsed schedule in a time zone: `next(t)` is the first firing strictly after epoch second t."""

    expression: str  # five fields, descriptors expanded; "" for @every
    every: float  # seconds between runs of an @every schedule, else 0
    zone: ZoneInfo

    def next(self, after: float) -> float:
        """Raises ValueError when no date matches (31 February)."""
        if self.every:
            return float(int(after)) + self.every
        start = datetime.fromtimestamp(after, self.zone)
        return float(croniter(self.expression, start).get_next(float))


def parse_schedule(text: str, time_zone: str | None = None) -> Schedule:
    """The schedule of a CronJob; raises ScheduleError with the reason kube-apiserver gives."""
    zone = load_zone(time_zone) if time_zone is not None else ZoneInfo("UTC")
    if "TZ" in text:
        raise ScheduleError("cannot use TZ or CRON_TZ in schedule, use timeZone field instead")
    text = text.strip()
    if text.startswith("@every "):
        return Schedule("", _every_seconds(text[len("@every "):].strip()), zone)
    if text.startswith("@"):
        if text not in DESCRIPTORS:
            raise ScheduleError(f"unrecognized descriptor: {text}")
        return Schedule(DESCRIPTORS[text], 0.0, zone)
    fields = text.split()
    if len(fields) != len(_FIELDS):
        raise ScheduleError(f"expected exactly 5 fields, found {len(fields)}: [{' '.join(fields)}]")
    checked = [_check_field(value, *spec) for value, spec in zip(fields, _FIELDS, strict=True)]
    expression = " ".join(checked)
    try:
        croniter(expression)
    except ValueError as err:  # the grammar above should leave croniter nothing to refuse
        raise ScheduleError(str(err)) from err
    # "0 0 31 2 *" is accepted, as upstream: valid fields, though no date matches (next() raises)
    return Schedule(expression, 0.0, zone)


def load_zone(name: str) -> ZoneInfo:
    """An IANA time zone, refused as kube-apiserver's ValidateTimeZone refuses it."""
    if not name:
        raise ScheduleError("timeZone must be nil or non-empty string")
    if name.lower() == "local":
        raise ScheduleError("timeZone must be an explicit time zone as defined in https://www.iana.org/time-zones")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError) as err:
        raise ScheduleError(f"unknown time zone {name}") from err


def _check_field(value: str, field: str, low: int, high: int, names: tuple[str, ...]) -> str:
    """One field in robfig's grammar (comma-separated `*`, `?`, `a`, `a-b`, each with an optional `/step`);
    returns it with `?` as `*`, which croniter wants."""
    for part in value.split(","):
        span, _, step = part.partition("/")
        if step and not (step.isdigit() and int(step) > 0):
            raise ScheduleError(f'failed to parse int from {step}: strconv.Atoi: parsing "{step}": invalid syntax')
        if span in ("*", "?"):
            continue
        bounds = [_atom(atom, names) for atom in span.split("-", 1)]
        if bounds[0] < low:
            raise ScheduleError(f"beginning of range ({bounds[0]}) below minimum ({low}): {part}")
        if bounds[-1] > high:
            raise ScheduleError(f"end of range ({bounds[-1]}) above maximum ({high}): {part}")
        if bounds[0] > bounds[-1]:
            raise ScheduleError(f"beginning of range ({bounds[0]}) beyond end of range ({bounds[-1]}): {part}")
    return value.replace("?", "*")


def _atom(atom: str, names: tuple[str, ...]) -> int:
    if atom.lower() in names:
        return names.index(atom.lower()) + (1 if len(names) == 12 else 0)
    if not atom.isdigit():
        raise ScheduleError(f'failed to parse int from {atom}: strconv.Atoi: parsing "{atom}": invalid syntax')
    return int(atom)


def _every_seconds(text: str) -> float:
    """A Go duration (`1h30m`, `90s`), at least one second and whole seconds, as robfig's `@every` takes it."""
    if not text or _GO_DURATION.sub("", text):
        raise ScheduleError(f"failed to parse duration @every {text}: time: invalid duration \"{text}\"")
    seconds = sum(float(number) * _GO_UNITS[unit] for number, unit in _GO_DURATION.findall(text))
    return float(max(1, int(seconds)))

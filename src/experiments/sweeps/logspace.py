"""`key=logspace(LOW,HIGH[,COUNT])` on the command line: a log-spaced list for Hydra's grid sweeper.

Hydra's override grammar has `range` but no log range (Hydra issue #1944), and it rejects unknown
functions while composing, so the expression is expanded in the argument list before Hydra reads it:
`optimizer.lr=logspace(1e-4,1e-1)` becomes `optimizer.lr=0.0001,0.001,0.01,0.1`. Without COUNT there is
one value per decade; with it, COUNT values evenly spaced in log10 between the bounds, both included.
"""

import math
import re

from experiments.config.errors import UserError

EXPRESSION = re.compile(r"^(?P<key>[^=]+)=logspace\((?P<args>[^()]*)\)$")


def expand_logspace(arguments: list[str]) -> list[str]:
    return [_expand(argument) for argument in arguments]


def _expand(argument: str) -> str:
    match = EXPRESSION.match(argument.strip())
    if match is None:
        return argument
    key, text = match["key"], match["args"]
    allowed = "logspace(LOW,HIGH) or logspace(LOW,HIGH,COUNT) with 0 < LOW < HIGH and an integer COUNT >= 1"
    parts = [part.strip() for part in text.split(",")]
    try:
        low, high = float(parts[0]), float(parts[1])
        count = int(parts[2]) if len(parts) == 3 else None
        if len(parts) not in (2, 3):
            raise ValueError
    except (ValueError, IndexError):
        raise UserError(f"{argument} is not allowed: expected {allowed}") from None
    if not (0 < low < high and math.isfinite(high)):
        raise UserError(f"{argument} is not allowed: expected {allowed}")
    if count is None:
        decades = math.log10(high / low)
        if abs(decades - round(decades)) > 1e-9:
            raise UserError(f"{argument}: {low:g} to {high:g} is not a whole number of decades; give COUNT")
        count = abs(round(decades)) + 1
    if count < 1:
        raise UserError(f"{argument} is an empty range: expected COUNT >= 1")
    if count == 1:
        values = [low]
    else:
        step = (math.log10(high) - math.log10(low)) / (count - 1)
        values = [10 ** (math.log10(low) + i * step) for i in range(count)]
    return f"{key}=" + ",".join(f"{value:.3g}" for value in values)

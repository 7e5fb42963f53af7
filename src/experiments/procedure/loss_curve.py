"""Step 7 of the note: read the training-loss curve of a finished run and name its shape.

Shapes, most urgent first (a curve can show several; the first found is the verdict):
- exploded: the loss became non-finite or passed 3x its start (the divergence rule stopped the run);
- flat, then decreasing: the loss stays near its starting level for a while before it falls.
  The note: "bad initialization is a prime suspect";
- flat throughout: the loss never left its starting level (nothing was learned);
- overfitting: validation loss rises from its best epoch while the training loss keeps falling, so
  the gap between them grows;
- still decreasing: the last epoch still lowered the loss by 2% or more; training longer should help;
- settled: none of the above, the loss has levelled off.
Each verdict comes with the numbers it rests on, named for what they measure: opening_median_loss is the
median over the first smoothing window (not the first step's loss, which the initial-loss check reports), and
lowest_val_loss_epoch counts from 0 by validation loss (best_epoch in metrics.json is by validation accuracy).
"""

import logging
import math
import statistics
from pathlib import Path

log = logging.getLogger(__name__)

# Thresholds, chosen so that mini-batch noise on the embedded sample does not trigger them.
FLAT_BAND = 0.1  # "near the starting level": within 10% of it
FLAT_SHARE = 0.15  # "for a while": at least 15% of the steps
DROP_AFTER = 0.3  # and then it falls: to at least 30% below the start
VAL_RISE = 0.05  # overfitting: validation loss 5% above its best...
STILL_FALLING = 0.02  # still decreasing: the last tenth is 2% below the tenth before it
EXPLODED = 3.0  # the note's rule
WARMUP_SLACK = 1.2  # a flat start that ends within the warm-up (and a little after) is the warm-up's doing

ADVICE = {
    "exploded": "lower the learning rate (the note's 3x rule)",
    "flat, then decreasing": "bad initialization is a prime suspect (the note): try model.init=he or xavier",
    "flat throughout": "nothing was learned: check the learning rate (too low?) and the initialization",
    "overfitting": "stop earlier or regularize more: regularization=[early_stopping], dropout or l2",
    "still decreasing": "train longer: raise trainer.max_epochs",
    "settled": "more epochs will not help much; change the rate, the model or the regularization",
    "too short to tell": "log more steps",
}


def moving_average(step_losses: list[float]) -> tuple[int, list[float]]:
    """The window the verdict reads the step losses through (2% of the steps, at least 3), and the curve."""
    window = max(3, len(step_losses) // 50)
    return window, smooth(step_losses, window)


def smooth(values: list[float], window: int) -> list[float]:
    """Trailing moving average (the first points average what there is so far)."""
    out, total = [], 0.0
    for i, value in enumerate(values):
        total += value - (values[i - window] if i >= window else 0.0)
        out.append(total / min(i + 1, window))
    return out


def diagnose(
    step_losses: list[float],
    train_epoch: list[float],
    val_epoch: list[float],
    diverged: bool = False,
    warmup_until: int | None = None,
) -> dict:
    """{"verdict", "advice", "also" (other shapes seen), "evidence" (the numbers)} for a run's curves.
    `warmup_until`: the step where a learning-rate warm-up ends (one-cycle), which explains a flat start."""
    if len(step_losses) < 20 and not diverged:
        return _verdict(["too short to tell"], {"steps": len(step_losses)})
    found, evidence = [], {"steps": len(step_losses)}
    window, curve = moving_average(step_losses)
    start = statistics.median(step_losses[:window])
    final = curve[-1] if curve and math.isfinite(curve[-1]) else None  # JSON has no NaN
    evidence |= {"opening_median_loss": round(start, 4), "final_loss": round(final, 4) if final is not None else None}
    # the note's 3x rule, against the original loss: the first step's, or the opening level if a fast fall
    # put the first steps above the median of the opening window
    original = max(step_losses[0], start) if math.isfinite(step_losses[0]) else start
    if diverged or not all(map(math.isfinite, step_losses)) or max(curve, default=0) > EXPLODED * original:
        found.append("exploded")
    flat = _flat_steps(curve, start)
    if flat is not None and warmup_until is not None and flat <= WARMUP_SLACK * warmup_until:
        evidence |= {"flat_steps": flat, "warmup_steps": warmup_until}  # the rate was still rising: not the init
    elif flat is not None:
        found.append("flat, then decreasing")
        evidence |= {"flat_steps": flat, "flat_share": round(flat / len(curve), 3)}
    elif "exploded" not in found and min(curve) >= original * (1 - FLAT_BAND):
        found.append("flat throughout")
    overfit = _overfitting(train_epoch, val_epoch)
    if overfit:
        found.append("overfitting")
        evidence |= overfit
    if "exploded" not in found:
        measure, drop = _recent_drop(step_losses, train_epoch)
        evidence[measure] = drop
        if drop > STILL_FALLING:
            found.append("still decreasing")
    return _verdict(found or ["settled"], evidence)


def _recent_drop(step_losses: list[float], train_epoch: list[float]) -> tuple[str, float]:
    """How much the loss fell at the end: the last epoch's mean against the one before (less noisy than
    steps), or within a single epoch the last tenth of the steps against the tenth before it."""
    if len(train_epoch) >= 2:
        before, last = train_epoch[-2], train_epoch[-1]
        measure = "last_epoch_drop"
    else:
        tenth = max(len(step_losses) // 10, 1)
        before, last = statistics.fmean(step_losses[-2 * tenth : -tenth]), statistics.fmean(step_losses[-tenth:])
        measure = "last_tenth_drop"
    return measure, round((before - last) / before, 4) if before > 0 else 0.0


def _flat_steps(curve: list[float], start: float) -> int | None:
    """Steps spent near the starting level before a fall of at least DROP_AFTER, if that was long enough."""
    if start <= 0 or not curve:
        return None
    below = next((i for i, value in enumerate(curve) if value < start * (1 - FLAT_BAND)), None)
    if below is None or below < FLAT_SHARE * len(curve):
        return None
    stayed_near = max(curve[:below]) <= start * (1 + FLAT_BAND)
    fell = min(curve[below:]) <= start * (1 - DROP_AFTER)
    return below if stayed_near and fell else None


def _overfitting(train_epoch: list[float], val_epoch: list[float]) -> dict | None:
    """Validation loss rose VAL_RISE above its best epoch, at least two epochs back, while training loss fell."""
    epochs = min(len(train_epoch), len(val_epoch))
    if epochs < 3:
        return None
    train, val = train_epoch[-epochs:], val_epoch[-epochs:]
    best = min(range(epochs), key=val.__getitem__)
    if best > epochs - 3 or val[best] <= 0:  # a validation loss of 0 (it underflows on easy data): no rise to measure
        return None
    rise = val[-1] / val[best] - 1
    gap_then, gap_now = val[best] - train[best], val[-1] - train[-1]
    if rise >= VAL_RISE and train[-1] < train[best] and gap_now > gap_then:
        gaps = {"gap_then": round(gap_then, 4), "gap_now": round(gap_now, 4)}
        return {"lowest_val_loss_epoch": best, "val_rise": round(rise, 4), **gaps}
    return None


def _verdict(found: list[str], evidence: dict) -> dict:
    return {"verdict": found[0], "advice": ADVICE[found[0]], "also": found[1:], "evidence": evidence}


def report_loss_curve(
    history: dict,
    diverged: bool,
    loggers: list = (),
    run_dir: str | Path | None = None,
    step: int = 0,
    warmup_until: int | None = None,
):
    """The verdict on a run's curves (ClassifierModule.history), logged with its numbers: a warning for
    the shapes that need action. With a run directory, the curve is drawn too (figures/train_loss_curve.png
    and train/loss_curve in each logger)."""
    found = diagnose(history["train_steps"], history["train_epoch"], history["val_epoch"], diverged, warmup_until)
    if run_dir is not None and history["train_steps"]:
        from experiments.records.figures import publish
        from experiments.records.pictures.loss_curve import curve_figure

        window, smoothed = moving_average(history["train_steps"])
        figure = curve_figure(history["train_steps"], smoothed, window, history["val_epoch"], found)
        publish(figure, "train/loss_curve", list(loggers), run_dir, step)
    line = f"loss curve: {found['verdict']} ({_numbers(found['evidence'])}); {found['advice']}"
    urgent = found["verdict"] in ("exploded", "flat, then decreasing", "flat throughout", "overfitting")
    log.log(logging.WARNING if urgent else logging.INFO, line)
    return found


def _numbers(evidence: dict) -> str:
    shown = (f"{key} {value:.4g}" if isinstance(value, float) else f"{key} {value}" for key, value in evidence.items())
    return ", ".join(shown)

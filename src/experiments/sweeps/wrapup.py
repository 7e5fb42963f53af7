"""When a sweep ends (or is interrupted): write and print the summary, and fail if trials failed."""

import logging

from experiments.config.errors import TrialsFailed
from experiments.records.disk_full import disk_full_line
from experiments.sweeps.summary import print_summary, write_summary

log = logging.getLogger(__name__)


def finish_sweep(plan, trackers=None, interrupted: bool = False) -> None:
    """`trackers`: the sweep's SweepTrackers, which receive the summary files (records/tracking/sweep_runs.py)."""
    try:
        _, rows = write_summary(plan.dir)
    except OSError as err:  # a full disk: the trials' own records stand; the summary is written on the rerun
        if (full := disk_full_line(err, plan.dir)) is None:
            raise
        log.error(f"no summary written: {full}")
        return
    if trackers is not None:
        trackers.close(interrupted)
    print_summary(plan.name, rows, plan.swept_keys)
    log.info(f"sweep summary: {plan.dir}/summary.md, heatmap.png, best.yaml")
    if plan.skipped:
        log.warning(skipped_line(plan, len(rows)))
    failed = [row["trial"] for row in rows if row["status"] == "failed"]
    if failed and not interrupted:
        raise TrialsFailed(
            f"{len(failed)} of {len(rows)} trials failed ({', '.join(failed[:3])}{'...' if len(failed) > 3 else ''}); "
            f"each has error.txt in {plan.dir}"
        )


def skipped_line(plan, trials: int) -> str:
    """Rerunning a sweep resumes it, so a finished trial is not trained again: say so, and how to start afresh."""
    skipped = len(plan.skipped)
    what = "every trial" if skipped >= trials else f"{skipped} of {trials} trials"
    were = "were" if 1 < skipped < trials else "was"
    return (
        f"{what} of sweep {plan.name} had finished in an earlier run in {plan.dir} and {were} skipped, not trained "
        "again; to train them afresh (e.g. to compare launchers), add sweep_name=NEW_NAME"
    )

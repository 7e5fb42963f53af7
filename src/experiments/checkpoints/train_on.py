"""What a fit that goes on from a checkpoint keeps, and what it takes from the configuration.

Lightning restores the optimizer's and the scheduler's state dicts as they were saved. Two cases need more:
- **A schedule that would run out.** One-cycle and cosine are built for a length. Trained past it, one-cycle
  raises "Tried to step N times" and cosine climbs back up. So when the fit goes past the saved schedule's
  end, or the schedule is another kind than the checkpoint's, a new schedule covers the steps (epochs) that
  remain: one-cycle warms up and anneals again over the added steps, cosine falls from optimizer.lr to
  eta_min over the added epochs. Step and plateau carry on from their state, as they extend naturally.
- **The optimizer's settings.** torch restores every param-group setting with the moments. The
  configuration decides them instead (its learning rate, weight decay, momentum), except the rates a
  carried-on schedule has set.

Both are applied to the checkpoint Lightning is about to restore from (the dict its on_load_checkpoint hook
hands the module), in configure_optimizers, which Lightning calls between the two.
"""

# Param-group keys a schedule owns while it carries on (torch's OneCycleLR also cycles momentum or betas).
SCHEDULE_KEYS = ("lr", "initial_lr", "max_lr", "min_lr", "base_momentum", "max_momentum", "momentum", "betas")


def new_schedule_length(kind: str, options: dict, restored: dict | None, trainer) -> dict | None:
    """The scheduler options for a new schedule over what remains, or None when the saved one carries on.
    `options` are this fit's (one-cycle's total_steps already set for the whole fit)."""
    if not restored or not restored.get("lr_schedulers"):
        return None
    saved_kind = str((restored.get("hyper_parameters", {}).get("scheduler") or {}).get("_target_", "")).rsplit(".")[-1]
    state, done = restored["lr_schedulers"][0], restored.get("global_step", 0)
    if kind == "OneCycleLR" and (saved_kind != kind or options["total_steps"] > state.get("total_steps", 0)):
        return {"total_steps": max(1, options["total_steps"] - done)}
    if kind == "CosineAnnealingLR" and (saved_kind != kind or trainer.max_epochs > state.get("T_max", 0)):
        steps_per_epoch = int(trainer.estimated_stepping_batches) // max(1, trainer.max_epochs)
        epochs_done = done // max(1, steps_per_epoch)
        return {"T_max": max(1, trainer.max_epochs - epochs_done)}
    if saved_kind != kind:  # step or plateau instead of the checkpoint's schedule: theirs starts afresh
        return {}
    return None


def adopt_settings(restored: dict, optimizer, schedule_carries_on: bool) -> None:
    """Write this fit's optimizer settings into the checkpoint's param groups (the moments stay)."""
    fresh = optimizer.state_dict()["param_groups"]
    for saved, new in zip(restored["optimizer_states"][0]["param_groups"], fresh, strict=False):
        for key, value in new.items():
            if key != "params" and not (schedule_carries_on and key in SCHEDULE_KEYS):
                saved[key] = value


def forget_saved_schedule(restored: dict) -> None:
    """The new schedule replaces the saved one: Lightning restores each scheduler from this list, in order."""
    restored["lr_schedulers"].clear()

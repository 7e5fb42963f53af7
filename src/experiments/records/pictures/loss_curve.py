"""The training-loss curve with its verdict, as the note draws it: every step's loss, a moving average,
validation loss at each epoch's end, and the flat stretch shaded when there is one."""

from experiments.records.figures import plt


def curve_figure(
    step_losses: list[float], smoothed: list[float], window: int, val_epoch: list[float], found: dict
) -> plt.Figure:
    """Every step's training loss (light), its moving average over `window` steps (dark, as the verdict
    `found` read it), validation loss at each epoch's end."""
    figure, ax = plt.subplots(figsize=(8, 4.5))
    steps = range(1, len(step_losses) + 1)
    ax.plot(steps, step_losses, color="tab:blue", alpha=0.25, linewidth=0.8, label="training loss, each step")
    ax.plot(steps, smoothed, color="tab:blue", label=f"moving average ({window} steps)")
    if val_epoch:
        per_epoch = len(step_losses) / len(val_epoch)
        ends = [round(per_epoch * (epoch + 1)) for epoch in range(len(val_epoch))]
        ax.plot(ends, val_epoch, "o-", color="tab:orange", label="validation loss, each epoch")
    flat = found["evidence"].get("flat_steps")
    if flat:
        ax.axvspan(1, flat, color="tab:red", alpha=0.1, label=f"flat for {flat} steps")
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("loss")
    ax.grid(True, alpha=0.3)
    ax.legend(loc="upper right", fontsize=9)
    ax.set_title(f"loss curve: {found['verdict']}\n{found['advice']}", fontsize=10)
    figure.tight_layout()
    return figure

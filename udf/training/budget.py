"""Default fine-tuning budgets of ``s1ndvi adapt``, ``run``, ``compare`` and ``demo``, in optimisation steps.

A budget in steps (seeded) gives the same adapted weights on any machine, however loaded; the former wall-clock
budgets did not (the demo's adapted P2_90 MAE was 0.076 after 195 epochs on a quiet machine, 0.084 after 71 and 0.106
after 29 on busy ones). Each default is what the former time budget ran on a quiet 2-core CPU (with two torch threads
then; one thread, now adapt's default, ran 8x faster than two at load ~7 and was not timed on a quiet machine). A
time limit (``--minutes``) is only a cap that warns when it cuts training short.
Kept free of heavy imports: the command-line parser reads it.
"""

__all__ = ["describe_budget", "ADAPT_STEPS_PER_EPOCH", "DEFAULT_ADAPT_STEPS", "DEMO_ADAPT_STEPS", "RUN_ADAPT_STEPS",
           "COMPARE_ADAPT_STEPS"]

ADAPT_STEPS_PER_EPOCH = 80
"""Optimisation steps between two validations (the best validation epoch is kept)."""

DEFAULT_ADAPT_STEPS = 450 * ADAPT_STEPS_PER_EPOCH
"""``s1ndvi adapt``: the former 4 minutes ran 451 epochs on the embedded sample (docs/model.md)."""

COMPARE_ADAPT_STEPS = 340 * ADAPT_STEPS_PER_EPOCH
"""``s1ndvi compare --adapt``: about the former 3 minutes (3/4 of ``adapt``'s default)."""

RUN_ADAPT_STEPS = 225 * ADAPT_STEPS_PER_EPOCH
"""``s1ndvi run``: about the former 2 minutes (half of ``adapt``'s default)."""

DEMO_ADAPT_STEPS = 195 * ADAPT_STEPS_PER_EPOCH
"""``s1ndvi demo``: the 195 epochs the README's demo table came from (the former 1.5 minutes on a quiet machine)."""


def describe_budget(budget: dict) -> str:
    """``N steps, E epochs, M min`` of an adaptation (its checkpoint's ``adapt`` record), and any time-cap cut."""
    text = f"{budget['steps_run']} steps, {budget['epochs_run']} epochs, {budget['minutes']:.1f} min"
    if budget.get("cut_by_time_cap"):
        text += (f", cut short of the {budget['steps']} steps asked by the {budget['time_cap_minutes']:g}-min time "
                 "cap, so it depends on the machine's speed and load")
    return text

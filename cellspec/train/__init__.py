"""The numpy trainer: tasks' batches through a generated cell's `Layer`, a readout and a loss,
torch.optim's update rules, clipping (`optim`, `readout`, `model`); one run of a config
(`trial.run_trial`), and `cellspec train` (`cli`, `progress`, `outputs`).

`run_trial`, `train`, `check`, `DEFAULTS` and `TrialError` are imported from `trial` on first
use, so that the command line (which reads `cli` for its options) loads no Numba to build a spec."""

_TRIAL = ("DEFAULTS", "TrialError", "check", "run_trial", "train")


def __getattr__(name: str):
    if name in _TRIAL:
        from . import trial

        return getattr(trial, name)
    raise AttributeError(f"module 'cellspec.train' has no attribute {name!r}")


__all__ = list(_TRIAL)

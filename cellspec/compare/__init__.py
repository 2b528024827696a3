"""`cellspec compare`: many training trials of cells (every spec x gap x seed x hyperparameter),
run in parallel, kept one file per trial so a run can be resumed, and summed up in tables and
figures. Submodules, one job each:

* `grid`: the trials of a compare run, their configs (checked by the trainer's `check`) and ids;
* `store`: `DIR/trials/<id>.json`, one finished trial each, written atomically;
* `worker`: one trial in a worker process (BLAS single-threaded, errors recorded, not raised);
* `local`: the default engine, joblib's loky processes;
* `on_ray`: the Ray Tune engine, optionally with the ASHA scheduler;
* `progress`: trials done, on a TTY (rich) or as plain lines;
* `table`: results.md and results.json, sorted so that neither engine nor finish order shows;
* `figures`: solved.png, curves.png and final.png (matplotlib, imported only when drawing);
* `cli`: the `cellspec compare` subcommand.

The trainer is a module with `run_trial`, `check`, `warm` (`cellspec.train.trial` unless told
otherwise); it is named by its module path, so that worker processes import it themselves.
"""

from .grid import Trial, expand, spec_digest, trial_id
from .store import Store

TRAINER = "cellspec.train.trial"

__all__ = ["TRAINER", "Store", "Trial", "expand", "spec_digest", "trial_id"]
